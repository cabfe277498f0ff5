"""Hydra callback: one writer per folder, ``overwrite=true``, and sweeps that resume.

- A run locks its folder (``<run>/.lock``, see ``linlab.run_state``) before Hydra
  writes into it; with ``overwrite=true``, or when it starts an unfinished run again from the
  start (no ``last.ckpt`` to go on from), it then empties the folder, so nothing of the old
  run mixes into the new one.
- A sweep locks its sweep folder and writes ``sweep.json``: every planned job's folder and
  overrides, and whether that folder already holds a finished result (``ok``, ``diverged`` or
  ``pruned``) of the same overrides from an earlier launch. ``linlab.train.task`` returns such a
  result without training (:func:`finished_before`); every other planned folder that exists
  (failed, interrupted, killed) is emptied, so a re-run leaves one set of TensorBoard events.
  ``linlab-report`` lists planned jobs that have no folder yet as ``pending``.
- A worker process of a sweep (joblib, submitit) watches the sweep's process and ends with it
  (``linlab.parent_watch``); a job it runs then stops as after Ctrl-C.
"""

from __future__ import annotations

import copy
import json
import logging
import shutil
import sys
from pathlib import Path
from typing import IO, Any

from hydra.core.hydra_config import HydraConfig
from hydra.experimental.callback import Callback
from hydra.types import RunMode
from omegaconf import DictConfig, OmegaConf, open_dict, read_write

from linlab import parent_watch
from linlab.checks.preflight import EXIT_CONFIG_ERROR, _grid
from linlab.choices import GRID_SWEEPERS
from linlab.errors import ConfigError
from linlab.results import FINISHED, read_results_if_any, read_saved_config, write_json_atomic
from linlab.run_state import (
    LOCK_FILE,
    FolderBusy,
    hold_lock,
    is_child_rank,
    restarts_from_scratch,
)

log = logging.getLogger("linlab")

PLAN_FILE = "sweep.json"


class FolderGuard(Callback):
    """Locks, ``overwrite=true`` and the sweep plan; configured in ``conf/train.yaml``."""

    def __init__(self) -> None:
        self._lock: IO[str] | None = None

    def on_run_start(self, config: DictConfig, **kwargs: Any) -> None:
        if is_child_rank():
            return
        folder = Path(config.hydra.run.dir)
        self._lock = _lock_or_exit(folder)
        overwrite = bool(config.get("overwrite"))
        if restarts_from_scratch(folder, config.get("ckpt_path"), overwrite):
            empty(folder)
            if overwrite:
                print(f"overwrite=true: removed the run that was in {folder}", flush=True)
            else:
                print(f"{folder}: the unfinished run there had no last.ckpt; starting again")

    def on_run_end(self, config: DictConfig, **kwargs: Any) -> None:
        self._release(Path(config.hydra.run.dir))

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        sweep_dir = Path(config.hydra.sweep.dir)
        self._lock = _lock_or_exit(sweep_dir)
        parent_watch.mark_sweep_parent()
        if "joblib" in str(config.hydra.launcher.get("_target_")):
            parent_watch.joblib_workers_watch_parent()
        jobs = planned_jobs(config)
        if jobs is None:
            return
        resuming = config.get("ckpt_path") == "last"  # unfinished jobs go on from last.ckpt
        for job in jobs:
            folder = sweep_dir / job["folder"]
            if job["finished_before"] is None and folder.exists() and not resuming:
                empty(folder)
        write_plan(sweep_dir, jobs)
        skipped = sum(job["finished_before"] is not None for job in jobs)
        if skipped:
            print(f"{skipped} of {len(jobs)} jobs finished in an earlier launch; not retrained")

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        self._release(Path(config.hydra.sweep.dir))

    def on_job_start(self, config: DictConfig, **kwargs: Any) -> None:
        if config.hydra.mode == RunMode.MULTIRUN:
            parent_watch.job_started(Path(config.hydra.runtime.output_dir))

    def on_job_end(self, config: DictConfig, **kwargs: Any) -> None:
        parent_watch.job_ended()

    def _release(self, folder: Path) -> None:
        if self._lock is not None:
            (folder / LOCK_FILE).unlink(missing_ok=True)
            self._lock.close()
            self._lock = None


def _lock_or_exit(folder: Path) -> IO[str]:
    try:
        return hold_lock(folder)
    except FolderBusy as error:
        print(f"linlab-train: error: {error}", file=sys.stderr)
        raise SystemExit(EXIT_CONFIG_ERROR) from None


def planned_jobs(config: DictConfig) -> list[dict[str, Any]] | None:
    """Each job of the basic sweeper's grid: folder, overrides, an earlier finished status."""
    if config.hydra.sweeper.get("_target_") not in GRID_SWEEPERS:
        return None  # an optimising sweeper decides its jobs as it goes
    try:
        grid = _grid(config)
    except ConfigError:
        return None
    sweep_dir = Path(config.hydra.sweep.dir)
    scratch = copy.deepcopy(config)  # one copy, each job's number and overrides set in turn
    jobs = [planned_job(scratch, num, overrides) for num, overrides in enumerate(grid)]
    for job in jobs:
        job["finished_before"] = finished_status(sweep_dir / job["folder"], job["overrides"])
    return jobs


def planned_job(scratch: DictConfig, num: int, overrides: list[str]) -> dict[str, Any]:
    """One job of ``sweep.json``: its folder, its task overrides, nothing finished before
    (``scratch``: a copy of the sweep's config, see ``job_folder``)."""
    return {
        "folder": job_folder(scratch, num, overrides),
        "overrides": overrides,
        "finished_before": None,
    }


def write_plan(sweep_dir: Path, jobs: list[dict[str, Any]]) -> None:
    """``sweep.json``: the sweep's planned jobs (an optimising sweeper rewrites it per round)."""
    write_json_atomic(Path(sweep_dir) / PLAN_FILE, {"jobs": jobs})


def job_folder(scratch: DictConfig, num: int, overrides: list[str]) -> str:
    """``hydra.sweep.subdir`` as Hydra resolves it for job ``num`` with these overrides
    (set in ``scratch``, a copy of the sweep's config)."""
    with read_write(scratch), open_dict(scratch):
        scratch.hydra.job.num = scratch.hydra.job.id = num  # as the launcher numbers jobs
        scratch.hydra.overrides.task = list(overrides)
    return str(OmegaConf.select(scratch, "hydra.sweep.subdir"))


def finished_status(folder: Path, overrides: list[str]) -> str | None:
    """The status of a finished job in ``folder`` made with the same overrides, else None."""
    status = read_results_if_any(folder).get("status")
    if status not in FINISHED:
        return None
    try:
        before = read_saved_config(folder / ".hydra" / "overrides.yaml")
    except Exception:
        return None
    return status if sorted(map(str, before)) == sorted(overrides) else None


def finished_before(run_dir: Path) -> dict[str, Any] | None:
    """The results of this sweep job if an earlier launch finished it (see ``sweep.json``)."""
    hydra = HydraConfig.get()
    if hydra.mode != RunMode.MULTIRUN:
        return None
    sweep_dir = Path(hydra.sweep.dir).absolute()
    if not run_dir.absolute().is_relative_to(sweep_dir):
        return None
    name = str(run_dir.absolute().relative_to(sweep_dir))
    status = finished_folders(sweep_dir).get(name)
    if status:
        log.info("finished in an earlier launch (%s): not retrained", status)
        return read_results_if_any(run_dir)
    return None


_finished: dict[tuple, dict[str, Any]] = {}  # one sweep.json's version -> its finished folders


def finished_folders(sweep_dir: Path) -> dict[str, Any]:
    """``{folder: status}`` of ``sweep.json``'s jobs an earlier launch finished, read once per
    version of the file: every job asks, and reading the whole plan per job is quadratic."""
    try:
        stat = (sweep_dir / PLAN_FILE).stat()
    except OSError:
        return {}
    version = (str(sweep_dir), stat.st_ino, stat.st_mtime_ns, stat.st_size)
    if version not in _finished:
        _finished.clear()
        plan = read_plan(sweep_dir)
        _finished[version] = {j.get("folder"): j.get("finished_before") for j in plan}
    return _finished[version]


def read_plan(sweep_dir: Path) -> list[dict[str, Any]]:
    """The planned jobs of ``sweep.json`` (none if the file is missing or broken)."""
    try:
        plan = json.loads((sweep_dir / PLAN_FILE).read_text())
    except (OSError, ValueError):
        return []
    jobs = plan.get("jobs") if isinstance(plan, dict) else None
    return [j for j in jobs if isinstance(j, dict)] if isinstance(jobs, list) else []


def empty(folder: Path) -> None:
    """Remove everything in ``folder`` but its lock file."""
    for entry in folder.iterdir():
        if entry.name == LOCK_FILE:
            continue
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry)
        else:
            entry.unlink()
