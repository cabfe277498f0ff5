"""``hydra/sweeper=optuna``: an Optuna study on the ask/tell interface, trials as Hydra jobs.

    linlab-train -m hparams_search=lr_batch_tpe
    linlab-train -m hydra/sweeper=optuna 'optimizer.lr=tag(log,interval(1e-4,1))' \
        'data.batch_size=choice(8,64,512)' hydra.sweeper.n_trials=20 hydra.sweeper.n_jobs=4

Each round asks the study for ``n_jobs`` trials and hands them to the configured launcher as one
batch (basic, joblib, submitit, stacked: whatever runs a batch runs a round), then tells the
study each job's outcome from its ``results.json`` -- or, for a task that writes none (any
Hydra app, as with the official hydra-optuna-sweeper), from the task's return value: a number,
or one number per objective. A job that raised is a failed trial: its exception goes to its
folder's ``results.json`` and to one console line. Every job gets ``+optuna_trial=<number>``
(kept out of ``hydra.job.override_dirname``; linlab names the folder ``trial=<number>,...``)
and the study's storage URL, which its pruning callback (``linlab.callbacks.pruning``)
reports to. Before each round, ``sweep.json`` lists the trials asked so far, so
``linlab-report`` shows those not started as ``pending``. The study lives in
``<sweep dir>/optuna.db`` unless ``storage`` names another URL; the same command (same sweep
folder) continues it up to ``n_trials`` finished trials.

Annotations are evaluated (no ``from __future__ import annotations``): Hydra's plugin scan runs
this module before registering it in ``sys.modules``, where a dataclass looks string
annotations up.
"""

import logging
import warnings
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

from hydra.core.config_store import ConfigStore
from hydra.core.plugins import Plugins
from hydra.core.utils import JobReturn, JobStatus
from hydra.plugins.sweeper import Sweeper
from hydra.types import HydraContext, TaskFunction
from hydra.utils import get_method
from omegaconf import DictConfig, OmegaConf

from linlab.search import settings, study
from linlab.search.space import Dimension, format_value, parse_space

log = logging.getLogger("linlab")


@dataclass
class OptunaSweeperConf:
    """``hydra.sweeper`` of a search (see README, "Hyper-parameter search")."""

    _target_: str = settings.SWEEPER_TARGET
    # key -> search space in the override grammar, e.g. optimizer.lr: tag(log,interval(1e-4,1))
    params: dict[str, str] | None = None
    objectives: list[str] = field(default_factory=lambda: ["val_loss"])  # results.json keys
    directions: list[str] = field(default_factory=lambda: ["minimize"])  # one per objective
    sampler: str = "tpe"  # tpe, random, grid, cmaes, gp
    seed: int | None = 0  # the sampler's seed; null: a fresh one each run
    sampler_options: dict[str, Any] = field(default_factory=dict)  # keyword arguments
    pruner: str = "none"  # none, median, successive_halving, hyperband
    pruner_options: dict[str, Any] = field(default_factory=dict)
    n_trials: int = 16  # finished trials the study reaches, counting those of earlier runs
    n_jobs: int = 1  # trials asked at once and launched as one batch
    storage: str | None = None  # an Optuna storage URL; null: sqlite:///<sweep dir>/optuna.db
    study_name: str = "linlab"
    # "module.function"(cfg, trial) suggesting more parameters, as in the official plugin
    custom_search_space: str | None = None
    # stop the study when more than this share of a round's trials fail (1.0: never)
    max_failure_rate: float = 1.0


ConfigStore.instance().store(
    group="hydra/sweeper", name="optuna", node=OptunaSweeperConf, provider="linlab"
)


class OptunaSweeper(Sweeper):
    def __init__(self, **conf: Any) -> None:
        self.conf = OmegaConf.structured(OptunaSweeperConf(**conf))
        self.hydra_context: HydraContext | None = None
        self.config: DictConfig | None = None
        self.launcher = None

    def setup(
        self, *, hydra_context: HydraContext, task_function: TaskFunction, config: DictConfig
    ) -> None:
        self.hydra_context, self.config = hydra_context, config
        self.launcher = Plugins.instance().instantiate_launcher(
            hydra_context=hydra_context, task_function=task_function, config=config
        )

    def sweep(self, arguments: list[str]) -> list[JobReturn]:
        import optuna

        from linlab import folders  # here: it imports Lightning, and Hydra imports every plugin

        conf = self.conf
        settings.check(conf)
        params = [f"{key}={value}" for key, value in (conf.params or {}).items()]
        fixed, dimensions = parse_space([*params, *arguments])
        sweep_dir = Path(str(self.config.hydra.sweep.dir))
        sweep_dir.mkdir(parents=True, exist_ok=True)
        OmegaConf.save(self.config, sweep_dir / "multirun.yaml")  # as Hydra's own sweepers do
        storage = settings.storage_url(conf.storage, sweep_dir)
        the_study = study.open_study(
            storage,
            conf.study_name,
            conf.directions,
            study.make_sampler(conf.sampler, conf.seed, conf.sampler_options, dimensions),
            study.make_pruner(conf.pruner, conf.pruner_options),
        )
        with warnings.catch_warnings():  # "experimental" since Optuna 3.2, stable in use
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            the_study.set_metric_names(list(conf.objectives))  # optuna-dashboard's labels
        lost = study.recover_running_trials(the_study, sweep_dir, conf.objectives)
        if lost:
            log.info("trials %s were lost with a stopped sweep: marked failed", lost)
        total = self._total(dimensions)
        distributions = {d.name: d.distribution() for d in dimensions}
        study.check_continues(the_study, distributions)
        extend = get_method(conf.custom_search_space) if conf.custom_search_space else None
        returns: list[JobReturn] = []
        planned: list[dict[str, Any]] = []
        while (left := total - len(study.finished(the_study))) > 0:
            trials = [the_study.ask(distributions) for _ in range(min(conf.n_jobs, left))]
            if extend is not None:
                for trial in trials:
                    extend(self.config, trial)
            tasks = [self._task_overrides(t.params, t.number, fixed, dimensions) for t in trials]
            planned += map(partial(folders.planned_job, self.config), numbers(trials), tasks)
            folders.write_plan(sweep_dir, planned)
            batch = [[*job, *self._hydra_overrides(storage)] for job in tasks]
            launched = self.launcher.launch(batch, initial_job_idx=trials[0].number)
            failed = 0
            for trial, job in zip(trials, launched, strict=True):
                outcome = _outcome(job, conf.objectives)
                if study.tell(the_study, trial, outcome, conf.objectives) == "failed":
                    log.warning("trial %d failed: %s", trial.number, outcome.get("message"))
                    failed += 1
            if failed / len(launched) > conf.max_failure_rate:
                log.error(
                    "%d of %d trials failed, more than hydra.sweeper.max_failure_rate=%g",
                    *(failed, len(launched), conf.max_failure_rate),
                )
                for job in launched:
                    job.return_value  # noqa: B018 -- raises a failed job's exception, as Hydra does
                raise RuntimeError(f"{failed} of {len(launched)} trials failed")
            returns += launched
        log.info(study.describe(the_study, conf.objectives, sweep_dir))
        if study.best_known(the_study):
            results = OmegaConf.create(optimization_results(the_study))
            OmegaConf.save(results, sweep_dir / "optimization_results.yaml")
        return returns

    def _total(self, dimensions: list[Dimension]) -> int:
        """``n_trials``; at most the number of grid points for the grid sampler."""
        if self.conf.sampler != "grid":
            return self.conf.n_trials
        points = 1
        for dimension in dimensions:
            points *= len(dimension.grid_values())
        return min(self.conf.n_trials, points)

    @staticmethod
    def _task_overrides(
        values: dict[str, Any], number: int, fixed: list[str], dimensions: list[Dimension]
    ) -> list[str]:
        searched = {d.name for d in dimensions}
        return [
            *fixed,
            *(d.override(values[d.name]) for d in dimensions),
            *(f"{k}={format_value(v)}" for k, v in values.items() if k not in searched),
            f"+{settings.TRIAL_KEY}={number}",
        ]

    def _hydra_overrides(self, storage: str) -> list[str]:
        """The study's storage, and ``optuna_trial`` kept out of ``override_dirname``."""
        naming = self.config.hydra.job.config.override_dirname
        excluded = [*naming.exclude_keys, settings.TRIAL_KEY]
        return [
            f"hydra.sweeper.storage={format_value(storage)}",
            "hydra.job.config.override_dirname.exclude_keys="
            f"[{','.join(map(format_value, excluded))}]",
        ]


def _outcome(job: JobReturn, objectives: list[str]) -> dict[str, Any]:
    """The job's results.json; for a task that wrote none, its return value or exception
    (recorded in its folder's results.json)."""
    from linlab.results import RESULTS_FILE, read_results_if_any, write_json_atomic

    folder = OmegaConf.select(job.hydra_cfg or {}, "hydra.runtime.output_dir", default=None)
    results = read_results_if_any(folder) if folder else {}
    if results:
        return results
    if job.status == JobStatus.FAILED:
        error = job._return_value
        first_line = (str(error).strip().splitlines() or [""])[0]
        results = {"status": "failed", "message": f"{type(error).__name__}: {first_line}"}
        if folder:
            write_json_atomic(Path(folder) / RESULTS_FILE, results)
        return results
    returned = job.return_value
    try:  # the official plugin's reading: float-castable, one per objective
        values = [float(v) for v in (returned if len(objectives) > 1 else [returned])]
    except (TypeError, ValueError):
        values = []
    if len(values) != len(objectives):
        return {
            "status": "failed",
            "message": f"the task wrote no results.json and returned {returned!r}, not "
            f"{len(objectives)} number(s) for {', '.join(objectives)}",
        }
    return {"status": "ok", **dict(zip(objectives, values, strict=True))}


def optimization_results(the_study: Any) -> dict[str, Any]:
    """``optimization_results.yaml``, as the official plugin writes it: the best trial's
    params and value, or the Pareto front's."""
    if len(the_study.directions) > 1:
        front = [{"params": t.params, "values": t.values} for t in the_study.best_trials]
        return {"name": "optuna", "solutions": front}
    best = the_study.best_trial
    return {"name": "optuna", "best_params": best.params, "best_value": best.value}


def numbers(trials: list[Any]) -> list[int]:
    return [trial.number for trial in trials]
