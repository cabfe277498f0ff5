"""Where a stacked sweep's groups run: ``hydra.launcher.executor``.

- ``local``: one after another in the launching process;
- ``joblib``: ``hydra.launcher.n_jobs`` at a time in loky worker processes;
- ``submitit``: one task of a SLURM job array per group, with ``hydra.launcher.submitit``'s
  settings (``partition``, ``timeout_min``, ``gpus_per_node``, ...); ``submitit.cluster=local``
  runs the same array with submitit's local executor;
- ``ray``: each group a Ray task on the cluster at ``hydra.launcher.address``, or on a Ray
  instance started on 127.0.0.1 for the sweep when there is none.

Every executor runs ``run_group_in_worker`` on the same pickled arguments, so a group's folders
and ``results.json`` are the same wherever it runs. A group that fails on its worker (the worker
dies, the task raises) has its members recorded ``failed`` (``lost``); the other groups go on.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from hydra.core.utils import JobReturn, JobStatus
from omegaconf import DictConfig, OmegaConf

GroupRunner = Callable[[Sequence[DictConfig]], list[JobReturn]]
WorkerRunner = Callable[..., list[JobReturn]]


def lost(configs: Sequence[DictConfig], error: BaseException) -> list[JobReturn]:
    """A group whose worker failed: each member's ``results.json`` says ``failed`` (unless an
    earlier launch finished it), as a group whose training raised, so the sweep goes on and a
    rerun trains them again."""
    from linlab import faults
    from linlab.folders import finished_before
    from linlab.sweeps.current_job import make_current, task_view
    from linlab.train import hyperparameters

    returns = []
    for cfg in configs:
        make_current(cfg)
        task_cfg = task_view(cfg)
        run_dir = Path(cfg.hydra.runtime.output_dir)
        if finished_before(run_dir) is None:
            hyper = hyperparameters(task_cfg, task_cfg.seed)
            faults.record_failure(task_cfg, run_dir, hyper, error, 0.0)
        job_return = JobReturn()
        job_return.status, job_return.return_value = JobStatus.COMPLETED, None
        job_return.cfg = task_cfg
        job_return.overrides = OmegaConf.to_container(cfg.hydra.overrides.task)
        job_return.task_name = cfg.hydra.job.name
        job_return.working_dir = os.getcwd()
        returns.append(job_return)
    return returns


def run_groups(
    executor: str,
    settings: Mapping[str, Any],
    groups: Sequence[Sequence[DictConfig]],
    run_local: GroupRunner,
    worker: WorkerRunner,
    worker_args: tuple[Any, ...],
) -> list[list[JobReturn]]:
    """Each group's returns, in the groups' order. ``worker(*worker_args, configs)`` runs one
    group in a fresh process; ``run_local(configs)`` runs it in this one."""
    if executor == "local" or len(groups) == 0:
        return [run_local(configs) for configs in groups]
    calls = [(*worker_args, list(configs)) for configs in groups]
    if executor == "joblib":
        return _joblib(settings, groups, worker, calls)
    if executor == "submitit":
        return _submitit(settings, groups, worker, calls)
    return _ray(settings, groups, worker, calls)


def _joblib(settings, groups, worker, calls) -> list[list[JobReturn]]:
    from joblib import Parallel, delayed

    outcomes = Parallel(n_jobs=settings.get("n_jobs", 1), backend="loky")(
        delayed(_guarded)(worker, call) for call in calls
    )
    return [
        lost(configs, outcome) if isinstance(outcome, BaseException) else outcome
        for configs, outcome in zip(groups, outcomes, strict=True)
    ]


def _guarded(worker: WorkerRunner, call: tuple[Any, ...]) -> list[JobReturn] | BaseException:
    try:
        return worker(*call)
    except Exception as error:  # the group's failure, not the sweep's
        return error


def _submitit(settings, groups, worker, calls) -> list[list[JobReturn]]:
    import submitit

    options = dict(settings.get("submitit") or {})
    cluster = options.pop("cluster", "slurm")
    folder = str(options.pop("folder"))
    executor = submitit.AutoExecutor(folder=folder, cluster=cluster)
    parameters = {"slurm_" + k if k in _SLURM_ONLY else k: v for k, v in options.items()}
    if cluster == "local":
        parameters = {k: v for k, v in parameters.items() if not k.startswith("slurm_")}
    executor.update_parameters(**{k: v for k, v in parameters.items() if v is not None})
    columns = list(zip(*calls, strict=True))
    jobs = executor.map_array(worker, *columns)
    returns = []
    for configs, job in zip(groups, jobs, strict=True):
        try:
            returns.append(job.result())
        except Exception as error:  # the task failed or its worker died
            returns.append(lost(configs, error))
    return returns


_SLURM_ONLY = ("partition", "account", "qos", "constraint", "array_parallelism", "setup")


def _ray(settings, groups, worker, calls) -> list[list[JobReturn]]:
    import ray

    started = not ray.is_initialized()
    if started:
        address = settings.get("address")
        options: dict[str, Any] = {"include_dashboard": False, "log_to_driver": False}
        if not address:
            options |= {"_node_ip_address": "127.0.0.1", "runtime_env": _local_env()}
        ray.init(address=address or "local", **options)  # never a `ray start` instance
    try:
        remote = ray.remote(max_retries=0)(worker)
        refs = [remote.remote(*call) for call in calls]
        returns = []
        for configs, ref in zip(groups, refs, strict=True):
            try:
                returns.append(ray.get(ref))
            except Exception as error:  # ray.exceptions.RayTaskError, WorkerCrashedError
                returns.append(lost(configs, error))
        return returns
    finally:
        if started:
            ray.shutdown()


def _local_env() -> dict[str, Any]:
    """A local Ray instance's workers import linlab as the sweep does, on as many threads."""
    keep = ("PYTHONPATH", "OMP_NUM_THREADS")
    return {"env_vars": {k: os.environ[k] for k in keep if k in os.environ}}
