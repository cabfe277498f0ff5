"""``hydra/launcher=stacked``: a sweep's jobs trained as stacked members, a group per process.

    linlab-train -m hydra/launcher=stacked optimizer.lr=1e-3,1e-2,1e-1 seed=0,1,2,3

A Hydra launcher first: it runs the task function Hydra hands it. Only a task that says how to
train a group (linlab's ``task``, whose ``group_task`` attribute is ``linlab.train.task_group``)
is stacked; any other task (a user's own ``@hydra.main``, another Hydra app) runs one job at a
time exactly as Hydra's basic launcher runs it. For linlab's task the jobs are grouped
(``linlab.stacking.groups``); a group of one runs through Hydra's ``run_job`` like any job, a
larger group is started job by job as ``run_job`` starts a job (its folder, ``.hydra/``,
``env_set``, the job callbacks' ``on_job_start``/``on_job_end``, so the sweep's progress line)
and trained at once by ``task_group``: one process, one Trainer, one forward and backward per
step for all of them. Groups run one after another in this process, or in worker processes,
on a SLURM cluster or on Ray (``hydra.launcher.executor``, ``linlab.stacking.executors``).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from hydra._internal.core_plugins.basic_launcher import BasicLauncher
from hydra.core.hydra_config import HydraConfig
from hydra.core.singleton import Singleton
from hydra.core.utils import (
    JobReturn,
    JobStatus,
    configure_log,
    env_override,
    run_job,
    setup_globals,
)
from hydra.types import HydraContext, TaskFunction
from omegaconf import DictConfig, OmegaConf, open_dict, read_write

from linlab.config_values import selected, unresolved
from linlab.heap import few_full_collections
from linlab.results import GroupConfigs
from linlab.stacking.executors import run_groups
from linlab.stacking.groups import make_groups
from linlab.sweeps.compose import JobComposer
from linlab.sweeps.current_job import make_current, task_view
from linlab.sweeps.hparams import remember_saved_job

log = logging.getLogger(__name__)

GroupTask = Callable[..., list[Any]]


def launch(
    hydra_context: HydraContext,
    config: DictConfig,
    task_function: TaskFunction,
    job_overrides: Sequence[Sequence[str]],
    initial_job_idx: int,
    max_members: int,
    executor: str,
    settings: Mapping[str, Any],
) -> list[JobReturn]:
    """Run the jobs, stacked where the task allows it, each group where ``executor`` says
    (``linlab.stacking.executors``, with its ``settings``); returns in the jobs' order."""
    group_task: GroupTask | None = getattr(task_function, "group_task", None)
    if group_task is None:  # not linlab's task: nothing to stack
        basic = BasicLauncher()
        basic.setup(hydra_context=hydra_context, task_function=task_function, config=config)
        return list(basic.launch(job_overrides, initial_job_idx))
    setup_globals()
    configure_log(config.hydra.hydra_logging, config.hydra.verbose)
    Path(str(config.hydra.sweep.dir)).mkdir(parents=True, exist_ok=True)
    composer = JobComposer(hydra_context.config_loader, config)
    configs = [
        job_config(composer, overrides, initial_job_idx + i)
        for i, overrides in enumerate(job_overrides)
    ]
    groups = make_groups(configs, max_members)
    log.info("stacked launcher: %d jobs in %d groups", len(configs), len(groups))

    def run_local(group_configs: Sequence[DictConfig]) -> list[JobReturn]:
        job_returns = run_group(hydra_context, task_function, group_configs)
        configure_log(config.hydra.hydra_logging, config.hydra.verbose)
        return job_returns

    worker_state = None if executor == "local" else Singleton.get_state()  # a deep copy
    done = run_groups(
        executor,
        settings,
        [[configs[i] for i in g] for g in groups],
        run_local,
        run_group_in_worker,
        (hydra_context, task_function, worker_state),
    )
    returns: list[JobReturn] = [JobReturn()] * len(configs)
    for group, group_returns in zip(groups, done, strict=True):
        for index, job_return in zip(group, group_returns, strict=True):
            returns[index] = job_return
    return returns


def job_config(composer: JobComposer, overrides: Sequence[str], idx: int) -> DictConfig:
    """The job's composed config with its folder set, as Hydra's ``run_job`` makes it."""
    cfg = composer.compose(overrides)
    with open_dict(cfg.hydra.job):
        cfg.hydra.job.id = idx
        cfg.hydra.job.num = idx
    sweep = cfg.hydra.sweep
    folder = Path(str(sweep.dir)) / str(sweep.subdir)
    with read_write(cfg.hydra.runtime), open_dict(cfg.hydra.runtime):
        cfg.hydra.runtime.output_dir = str(folder.absolute())
    return cfg


def run_group_in_worker(
    hydra_context: HydraContext,
    task_function: TaskFunction,
    singleton_state: dict[Any, Any],
    configs: Sequence[DictConfig],
) -> list[JobReturn]:
    """A group in a fresh worker process (joblib, submitit, Ray): Hydra's state first."""
    setup_globals()
    Singleton.set_state(singleton_state)
    return run_group(hydra_context, task_function, configs)


def run_group(
    hydra_context: HydraContext, task_function: TaskFunction, configs: Sequence[DictConfig]
) -> list[JobReturn]:
    """A group of one as Hydra runs any job; a larger group stacked (``run_stacked``)."""
    if len(configs) == 1:
        job = run_job(
            hydra_context=hydra_context,
            task_function=task_function,
            config=configs[0],
            job_dir_key="hydra.sweep.dir",
            job_subdir_key="hydra.sweep.subdir",
        )
        return [job]
    with few_full_collections():  # the members' configs and objects live to the group's end
        return run_stacked(hydra_context, task_function, configs)


def member_scope(configs: Sequence[DictConfig]) -> Callable[[int], None]:
    """``as_member(k)``: make job k's Hydra config current (``HydraConfig.get()``,
    ``${hydra:...}``); each member's view made once, its ``hydra`` node shared, not copied
    (``linlab.sweeps.current_job``)."""
    instance = HydraConfig.instance()
    snapshots = [make_current(cfg) for cfg in configs]

    def as_member(k: int) -> None:
        instance.cfg = snapshots[k]

    return as_member


def log_to_every_member(configs: Sequence[DictConfig]) -> None:
    """The group's log lines go to every member's log file too (Hydra configured the first's):
    a file handler per member, formatted like the first member's. Each file is made now, as
    Hydra makes a job's, and opened at its first line (``delay``): most groups log nothing
    during the fit, and a thousand open files hold ~10 MiB of buffers."""
    root = logging.getLogger()
    first = next((h for h in root.handlers if isinstance(h, logging.FileHandler)), None)
    if first is None:
        return
    for cfg in configs:
        handler = selected(cfg, "hydra.job_logging.handlers.file")
        keys = handler.keys() if isinstance(handler, DictConfig) else ()  # ``in`` resolves
        named = "filename" in keys and not OmegaConf.is_missing(handler, "filename")
        path = handler.filename if named else None
        if path:
            open(path, "a").close()  # the file exists from the start, as without delay
            handler = logging.FileHandler(path, delay=True)
            handler.setFormatter(first.formatter)
            handler.setLevel(first.level)
            root.addHandler(handler)


def start_job(
    cfg: DictConfig,
    task_function: TaskFunction,
    hydra_context: HydraContext,
    saved: GroupConfigs,
):
    """What ``run_job`` does before it calls the task (folder, ``.hydra/`` written through the
    group's ``saved``, ``on_job_start``); the group's members share the working directory
    (stackable jobs do not ``chdir``)."""
    hydra_node = cfg.hydra
    run_dir = Path(hydra_node.runtime.output_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    task_cfg = task_view(cfg)  # ``run_job``'s masked copy, the job's nodes held, not copied
    hydra_cfg = HydraConfig.instance().cfg  # the member's own copy (``member_scope``)
    overrides = hydra_node.overrides.task
    if (output_subdir := hydra_node.output_subdir) is not None:
        hydra_output = run_dir / str(output_subdir)
        config_written = saved.save(task_cfg, "config.yaml", hydra_output)
        hydra_written = saved.save(hydra_cfg, "hydra.yaml", hydra_output)
        saved.save(overrides, "overrides.yaml", hydra_output)
        remember_saved_job(hydra_output, hydra_written, config_written)  # the sweep's summary
    hydra_context.callbacks.on_job_start(config=cfg, task_function=task_function)
    job_return = JobReturn()
    job_return.cfg, job_return.hydra_cfg = task_cfg, hydra_cfg
    job_return.overrides = unresolved(overrides)  # ``OmegaConf.to_container``'s
    job_return.working_dir = str(Path.cwd())
    job_return.task_name = hydra_node.job.name
    return job_return, task_cfg, run_dir


def run_stacked(
    hydra_context: HydraContext, task_function: TaskFunction, configs: Sequence[DictConfig]
) -> list[JobReturn]:
    """Start each job as Hydra does, train the group, and end each job as Hydra does; if the
    group's training raises, every member's ``JobReturn`` is ``FAILED`` with the exception."""
    group_task: GroupTask = task_function.group_task  # type: ignore[attr-defined]
    as_member = member_scope(configs)
    task_cfgs, run_dirs, returns, saved = [], [], [], GroupConfigs()
    with env_override(configs[0].hydra.job.env_set):  # equal in a group (groups.group_key)
        for k, cfg in enumerate(configs):
            as_member(k)
            job_return, task_cfg, run_dir = start_job(cfg, task_function, hydra_context, saved)
            task_cfgs.append(task_cfg)
            run_dirs.append(run_dir)
            returns.append(job_return)
        configure_log(configs[0].hydra.job_logging, configs[0].hydra.verbose)
        log_to_every_member(configs[1:])
        try:
            outcomes: list[Any] = group_task(task_cfgs, run_dirs, as_member)
            status = JobStatus.COMPLETED
        except Exception as error:
            outcomes, status = [error] * len(configs), JobStatus.FAILED
    for k, (cfg, job_return, outcome) in enumerate(zip(configs, returns, outcomes, strict=True)):
        as_member(k)
        job_return.return_value, job_return.status = outcome, status
        hydra_context.callbacks.on_job_end(config=cfg, job_return=job_return)
    return returns
