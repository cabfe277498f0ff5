"""Hydra callback for sweeps: a line per finished job, and a non-zero exit if any failed.

Configured under ``hydra.callbacks`` in ``conf/train.yaml``. ``on_job_*`` run in the job's
process (a joblib worker, a SLURM task); ``on_multirun_*`` in the launching process.
"""

from __future__ import annotations

import math
import time
from pathlib import Path
from typing import Any

from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.utils import JobReturn, JobStatus
from hydra.experimental.callback import Callback
from hydra.types import RunMode
from omegaconf import DictConfig

from linlab.results import RESULTS_FILE, read_results_if_any
from linlab.search.settings import is_search

GRID_SWEEPERS = (
    "hydra._internal.core_plugins.basic_sweeper.BasicSweeper",
    "hydra_plugins.linlab_sweeps.grid_sweeper.GridSweeper",
)


class SweepProgress(Callback):
    """``[k/N] lr=0.1,batch_size=8  val_loss 0.0123  ok  1.2 s`` as each job ends."""

    def __init__(self) -> None:
        self.total: int | None = None
        self.started = time.perf_counter()

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        self.total = grid_size(config)

    def on_job_start(self, config: DictConfig, **kwargs: Any) -> None:
        self.started = time.perf_counter()

    def on_job_end(self, config: DictConfig, job_return: JobReturn, **kwargs: Any) -> None:
        if config.hydra.mode != RunMode.MULTIRUN:
            return
        run_dir = Path(config.hydra.runtime.output_dir)
        results = read_results_if_any(run_dir)
        if job_return.status == JobStatus.FAILED:
            results.setdefault("status", "failed")
        done = sum(1 for _ in run_dir.parent.glob(f"*/{RESULTS_FILE}"))
        print(
            f"[{done}/{self.total or '?'}] {run_dir.name}  "
            f"val_loss {_fmt(results.get('val_loss'))}  {results.get('status', 'no result')}  "
            f"{time.perf_counter() - self.started:.1f} s",
            flush=True,
        )

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        sweep_dir = Path(config.hydra.sweep.dir)
        jobs = job_dirs(sweep_dir)
        failed = [d for d in jobs if read_results_if_any(d).get("status", "failed") == "failed"]
        if failed:
            logs = [str(log) for d in failed for log in sorted(d.glob("*.log"))] or failed
            print(
                f"{len(failed)} of {len(jobs)} jobs failed; logs: {', '.join(map(str, logs))}",
                flush=True,
            )
            raise SystemExit(1)


def grid_size(config: DictConfig) -> int | None:
    """Jobs of the sweep: the product of each swept key's values for a grid sweeper,
    ``n_trials`` (earlier runs' trials included) for an Optuna study."""
    if is_search(config.hydra.sweeper):
        return config.hydra.sweeper.n_trials
    if config.hydra.sweeper.get("_target_") not in GRID_SWEEPERS:
        return None
    params = config.hydra.sweeper.get("params") or {}
    arguments = [f"{key}={value}" for key, value in params.items()]
    try:
        overrides = OverridesParser.create().parse_overrides(
            [*arguments, *config.hydra.overrides.task]
        )
        sizes = {
            o.key_or_group: len(list(o.sweep_iterator())) if o.is_sweep_override() else 1
            for o in overrides
        }
    except Exception:  # e.g. glob(), which needs the config repository: count unknown
        return None
    return math.prod(sizes.values())


def job_dirs(sweep_dir: Path) -> list[Path]:
    """The job folders of a sweep: those Hydra wrote a ``.hydra/`` config into."""
    return sorted(p.parent for p in sweep_dir.glob("*/.hydra"))


def _fmt(value: Any) -> str:
    return "-" if value is None else f"{value:.4g}"
