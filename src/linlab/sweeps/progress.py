"""Hydra callback for sweeps: the sweep's console, and a non-zero exit if any job failed.

One header line, one line per finished job, one closing block::

    sweep multirun/2026-11-23_10-00-00_a1b2c3: 4 jobs, launcher basic
    [1/4] lr=0.01,batch_size=16  val_loss 2.072  ok  0.1 s
    ...
    done: 4 jobs (4 ok) in 3.2 s
    best: lr=0.1,batch_size=16 (val_loss 0.0144749)
    next: linlab-report multirun/2026-11-23_10-00-00_a1b2c3

Configured under ``hydra.callbacks`` in ``conf/train.yaml``, where Hydra's own launch lines
are kept off the console (``hydra.hydra_logging``). ``on_job_*`` run in the job's process (a
joblib worker, a SLURM task, whose output goes to its log file); ``on_multirun_*`` in the
launching process. A job's log messages go to its ``<job>.log`` only; its line on the
console names what went wrong.
"""

from __future__ import annotations

import logging
import math
import shlex
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.utils import JobReturn, JobStatus
from hydra.experimental.callback import Callback
from hydra.types import RunMode
from omegaconf import DictConfig

from linlab.choices import GRID_SWEEPERS, executor_of
from linlab.report import value as chosen
from linlab.report.jobs import best_line, load_jobs, status_counts
from linlab.results import RESULTS_FILE, read_results_if_any
from linlab.search.settings import is_search
from linlab.sweeps.live_line import LiveSweepLine

FINISHED = ("ok", "diverged", "pruned")  # what a rerun of the sweep does not train again
SHOWN_LOGS = 3  # failed jobs' logs named in the last line (a thousand would bury the rest)
LAUNCHED: dict[str, Any] = {}  # the sweep this process launches: folder, job count, live line


class SweepProgress(Callback):
    """``[k/N] lr=0.1,batch_size=8  val_loss 0.0123  ok  1.2 s`` as each job ends."""

    def __init__(self) -> None:
        self.total: int | None = None
        self.started = self.sweep_started = time.perf_counter()
        self.live: LiveSweepLine | None = None
        self.order: EndOrder | None = None  # jobs' places, kept by the launching process
        self.value = chosen.DEFAULT  # the sweep's report.value, read from its config

    def __getstate__(self) -> dict[str, Any]:
        """Sent to joblib workers without the live line (drawn by the launching process) and
        the end order (a worker does not see the other workers' jobs end)."""
        return {**self.__dict__, "live": None, "order": None}

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        self.total = grid_size(config)
        self.value = chosen.configured(config)
        self.sweep_started = time.perf_counter()
        folder = Path(config.hydra.sweep.dir).absolute()
        print(header_line(config, self.total), flush=True)
        self.order = EndOrder(folder)
        # submitit tasks and Ray workers print their job lines elsewhere: report them from here
        launcher = config.hydra.launcher
        elsewhere = "submitit" in str(launcher.get("_target_", ""))
        elsewhere |= launcher.get("executor") in ("submitit", "ray")
        self.live = LiveSweepLine(folder, self.total, self.line_of if elsewhere else None)
        self.live.start()
        LAUNCHED.update(folder=folder, total=self.total, live=self.live)

    def on_job_start(self, config: DictConfig, **kwargs: Any) -> None:
        self.started = time.perf_counter()
        self.value = chosen.configured(config)
        if config.hydra.mode == RunMode.MULTIRUN:
            keep_logs_off_the_console()

    def on_job_end(self, config: DictConfig, job_return: JobReturn, **kwargs: Any) -> None:
        if config.hydra.mode != RunMode.MULTIRUN:
            return
        run_dir = Path(config.hydra.runtime.output_dir)
        results = read_results_if_any(run_dir)
        if job_return.status == JobStatus.FAILED:
            results.setdefault("status", "failed")
        line = self.job_line(run_dir, results, time.perf_counter() - self.started)
        if self.live is not None:  # this process draws the live line: print above it
            self.live.above(line)
        else:
            print(line, flush=True)

    def job_line(self, run_dir: Path, results: dict[str, Any], seconds: float | None) -> str:
        done = finished_before(run_dir) if self.order is None else self.order.place(run_dir)
        took = "-" if seconds is None else f"{seconds:.1f}"
        value = chosen.shown(self.value, [results])
        return (
            f"[{done}/{self.total or '?'}] {run_dir.name}  "
            f"{value} {_fmt(chosen.number(results, value))}  {status_text(results)}  {took} s"
        )

    def line_of(self, run_dir: Path) -> str:
        """A job's line from its ``results.json`` (a job that ran in another process)."""
        results = read_results_if_any(run_dir)
        return self.job_line(run_dir, results, results.get("wall_time_s"))

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        if self.live is not None:
            self.live.stop()
        sweep_dir = Path(config.hydra.sweep.dir)
        jobs = load_jobs(sweep_dir) if job_dirs(sweep_dir) else []
        seconds = time.perf_counter() - self.sweep_started
        print(
            f"done: {len(jobs)} jobs ({status_counts(jobs) or 'none'}) in {seconds:.1f} s",
            best_line(jobs, chosen.shown(chosen.configured(config), [j.results for j in jobs])),
            f"next: linlab-report {sweep_dir}",
            sep="\n",
            flush=True,
        )
        failed = [j.folder for j in jobs if j.results.get("status", "failed") == "failed"]
        if failed:
            logs = [str(log) for d in failed for log in sorted(d.glob("*.log"))] or failed
            hidden = len(logs) - SHOWN_LOGS
            more = f" and {hidden} more in {sweep_dir}" if hidden > 0 else ""
            shown = ", ".join(map(str, logs[:SHOWN_LOGS]))
            print(f"{len(failed)} of {len(jobs)} jobs failed; logs: {shown}{more}", flush=True)
            raise SystemExit(1)


def interrupted_sweep_message(argv: Sequence[str]) -> str | None:
    """After Ctrl-C in a sweep this process launched (None outside one): what stopped, how
    many jobs finished, and the command that finishes the sweep (it retrains only the rest)."""
    if not LAUNCHED:
        return None
    folder, total = LAUNCHED["folder"], LAUNCHED["total"]
    LAUNCHED["live"].stop()
    statuses = [
        read_results_if_any(f.parent).get("status") for f in folder.glob(f"*/{RESULTS_FILE}")
    ]
    finished = sum(status in FINISHED for status in statuses)
    kept = [a for a in argv if not a.startswith("hydra.sweep.dir=")]
    command = shlex.join(["linlab-train", *kept, f"hydra.sweep.dir={folder}"])
    return (
        f"linlab-train: interrupted; sweep {folder}: {finished} of {total or '?'} jobs finished\n"
        f"resume with: {command}"
    )


class EndOrder:
    """Each job's place in the order the sweep's jobs end (``[k/N]``), without reading the
    sweep folder per job (``finished_before`` does: O(N) a job, O(N²) a sweep).

    The launching process sees its jobs end one at a time: its own jobs' ``on_job_end``, a
    stacked group's members in order, the live line's ``line_of`` for jobs that ran
    elsewhere. The jobs an earlier launch finished (a re-run sweep keeps them) come first,
    in the order they were written; each job this launch ends comes after them and after
    the jobs that ended before it. So a whole sweep's lines count 1..N, also when a group
    writes its members' files within one tick of the file system's clock.
    """

    def __init__(self, sweep_dir: Path) -> None:
        kept = []
        for results_file in sweep_dir.glob(f"*/{RESULTS_FILE}"):
            if read_results_if_any(results_file.parent).get("status") in FINISHED:
                kept.append((_written(results_file), results_file.parent.name))
        self.kept = {name: (k, when) for k, (when, name) in enumerate(sorted(kept), start=1)}
        self.ended: set[str] = set()  # jobs this launch ended that no earlier launch finished
        self.lock = threading.Lock()  # the live line's thread asks too

    def place(self, run_dir: Path) -> int:
        name = run_dir.name
        with self.lock:
            place, when = self.kept.get(name, (None, None))
            if place is not None and when == _written(run_dir / RESULTS_FILE):
                return place  # finished by an earlier launch, not trained again
            if name not in self.kept:
                self.ended.add(name)
            return len(self.kept) + len(self.ended)


def _written(results_file: Path) -> int | None:
    try:
        return results_file.stat().st_mtime_ns
    except OSError:
        return None


def finished_before(run_dir: Path) -> int:
    """How many jobs of the sweep wrote ``results.json`` no later than this one: its place
    in the order jobs end, also when a stacked group writes its members' files at once.
    Reads the whole sweep folder: for a process that does not see the others' jobs end
    (a joblib worker); the launching process keeps the order (``EndOrder``)."""
    files = list(run_dir.parent.glob(f"*/{RESULTS_FILE}"))
    mine = run_dir / RESULTS_FILE
    if not mine.is_file():
        return len(files)
    written = mine.stat().st_mtime_ns
    return sum(1 for f in files if f.stat().st_mtime_ns <= written)


def header_line(config: DictConfig, total: int | None) -> str:
    """``sweep <folder>: N jobs, launcher joblib (n_jobs=2)``; the stacked launcher's
    executor: ``launcher stacked (executor ray)``, ``(executor joblib, n_jobs=2)``."""
    launcher = config.hydra.runtime.choices.get("hydra/launcher") or "basic"
    n_jobs = config.hydra.launcher.get("n_jobs")
    workers = [f"n_jobs={n_jobs}"] if n_jobs is not None else []
    if (executor := config.hydra.launcher.get("executor")) is not None:
        executor = executor_of(executor, n_jobs)
        workers = [f"executor {executor}", *(workers if executor == "joblib" else [])]
    where = f" ({', '.join(workers)})" if workers else ""
    return f"sweep {config.hydra.sweep.dir}: {total or '?'} jobs, launcher {launcher}{where}"


def status_text(results: dict[str, Any]) -> str:
    """``ok``, ``diverged at step 87``, ``failed: RuntimeError: ...`` (one line)."""
    status = results.get("status", "no result")
    if results.get("diverged_at_step") is not None:
        return f"{status} at step {results['diverged_at_step']}"
    if status == "failed" and results.get("message"):
        return f"failed: {results['message'].splitlines()[0]}"
    return status


def keep_logs_off_the_console() -> None:
    """In a sweep a job logs to its ``<job>.log`` only (Hydra's job logging adds both)."""
    for handler in logging.getLogger().handlers:
        if type(handler) is logging.StreamHandler:
            handler.setLevel(logging.CRITICAL + 1)


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
