"""A sweep folder read as jobs: each job's overrides and results, the sweep's plan, ranking.

Any folder reads without a traceback. A job's status is its ``results.json``'s, checked by
``linlab.results.read_results_if_any`` (a value of the wrong type makes it ``unreadable``,
with the reason); without one it is ``running`` only while a live process holds the lock of
the job's folder or of its sweep folder, and else ``interrupted`` (killed, or stopped before
it wrote its record); a job the plan (``sweep.json``) lists without a folder is ``pending``. A
job whose own ``.hydra/overrides.yaml`` is missing or broken takes its overrides from the plan,
so the "varied" keys stay those the sweep varied.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hydra.core.override_parser.overrides_parser import OverridesParser

from linlab.report import value as values
from linlab.results import (
    RESULTS_FILE,
    UNREADABLE,
    param_distance,
    read_results_if_any,
    read_saved_config,
)
from linlab.run_state import lock_holder

AXIS_KEYS = ("optimizer.lr", "data.batch_size")


class ReportError(Exception):
    """Input the report cannot work from; the message is the one line the user sees."""


@dataclass
class Job:
    """One job folder of a sweep: its overrides and its results (empty while running)."""

    folder: Path
    overrides: dict[str, Any]
    results: dict[str, Any] = field(default_factory=dict)
    problem: str | None = None  # why part of the job's record could not be read
    running: bool = False  # no results.json yet and a live process holds its lock

    @property
    def name(self) -> str:
        return self.folder.name

    @property
    def status(self) -> str:
        if "status" in self.results:
            return self.results["status"]
        return "running" if self.running else "interrupted"

    def value(self, key: str) -> Any:
        """A table cell: a results.json entry (or one of its ``theory``), a varied override,
        or None."""
        if key == "status":
            return self.status
        if key in self.results:
            return self.results[key]
        if key == "param_distance":
            return param_distance(self.results)
        if key in (theory := self.results.get("theory") or {}):
            return theory[key]
        return self.overrides.get(key)


def load_jobs(sweep_dir: Path) -> list[Job]:
    """Every job folder (one holding Hydra's ``.hydra/`` or a ``results.json``), and the jobs
    that the sweep planned (``sweep.json``) but has not started, as ``pending``."""
    from linlab.folders import read_plan

    if not sweep_dir.is_dir():
        raise ReportError(f"no such sweep folder: {sweep_dir}")
    folders = {p.parent for p in sweep_dir.glob("*/.hydra")}
    folders |= {p.parent for p in sweep_dir.glob(f"*/{RESULTS_FILE}")}
    planned = {
        sweep_dir / str(job.get("folder")): job.get("overrides") for job in read_plan(sweep_dir)
    }
    sweep_live = lock_holder(sweep_dir) is not None
    jobs = [_job(f, planned.get(f), sweep_live) for f in sorted(folders)]
    for folder, overrides in planned.items():
        if folder not in folders:
            parsed, problem = _parsed(overrides)
            jobs.append(Job(folder, parsed, {"status": "pending"}, problem))
    if not jobs:
        raise ReportError(
            f"no jobs in {sweep_dir}: expected job folders holding {RESULTS_FILE} "
            "(pass the folder that `linlab-train -m` printed)"
        )
    return jobs


def _job(folder: Path, planned: Any, sweep_live: bool) -> Job:
    results = read_results_if_any(folder)
    problems = [results["message"]] if results.get("status") == UNREADABLE else []
    try:
        overrides = _overrides(folder)
    except Exception as error:
        overrides = None
        reason = str(error).strip().splitlines()[0] if str(error).strip() else ""
        problems.append(f"{folder / '.hydra' / 'overrides.yaml'}: {type(error).__name__}: {reason}")
    if overrides is None and planned is not None:
        overrides, problem = _parsed(planned)
        problems += [problem] if problem else []
    running = not results and (sweep_live or lock_holder(folder) is not None)
    if not results and not running:
        problems.append(f"no {RESULTS_FILE} and no live process: stopped before writing it")
    return Job(folder, overrides or {}, results, "; ".join(problems) or None, running)


def setting_order(job: Job, keys: Sequence[str]) -> tuple:
    """A sort key: the job's values of ``keys``, numbers in numeric order."""
    return tuple(values.order(job.overrides.get(k)) for k in keys)


def varied_keys(jobs: list[Job]) -> list[str]:
    """Override keys whose value differs between jobs, in command-line order (jobs whose
    overrides could be read by no means do not count)."""
    known = [job for job in jobs if job.overrides]
    keys = list(dict.fromkeys(k for job in known for k in job.overrides))
    return [k for k in keys if len({repr(job.overrides.get(k, ...)) for job in known}) > 1]


def ranked(jobs: list[Job], value: str = "val_loss", keys: Sequence[str] = ()) -> list[Job]:
    """``ok`` jobs by ``value`` (the sweep's ``report.value``) first, then pruned, diverged,
    failed, ... pending ones; ties and jobs without the value by ``keys``' values, numbers in
    numeric order."""
    order = {
        "ok": 0,
        "pruned": 1,
        "diverged": 2,
        "failed": 3,
        "interrupted": 4,
        UNREADABLE: 5,
        "running": 6,
        "pending": 7,
    }

    def key(job: Job) -> tuple:
        found = values.number(job.results, value)
        rank = order.get(job.status, len(order))
        return (rank, found is None, found or 0.0, setting_order(job, keys), job.name)

    return sorted(jobs, key=key)


def best_line(jobs: list[Job], value: str = "val_loss") -> str:
    """``best: <job> (<value> 0.0123)``, or why there is none."""
    ok = [
        j
        for j in ranked(jobs, value)
        if j.status == "ok" and values.number(j.results, value) is not None
    ]
    if not ok:
        return f"best: none (no job finished with status ok and a {value})"
    return f"best: {ok[0].name} ({value} {values.number(ok[0].results, value):.6g})"


def status_counts(jobs: list[Job]) -> str:
    counts: dict[str, int] = {}
    for job in jobs:
        counts[job.status] = counts.get(job.status, 0) + 1
    return ", ".join(f"{n} {status}" for status, n in sorted(counts.items()))


def _overrides(folder: Path) -> dict[str, Any] | None:
    """A job's task overrides, with values typed as Hydra read them (``1e-3`` → 0.001);
    None without the file."""
    path = folder / ".hydra" / "overrides.yaml"
    if not path.is_file():
        return None
    listed = read_saved_config(path)
    if not isinstance(listed, list):
        raise ValueError("not a list of overrides")
    return dict(map(parsed_override, map(str, listed)))


@functools.cache
def parsed_override(text: str) -> tuple[str, Any]:
    """``optimizer.lr=1e-3`` as Hydra's parser reads it: ``("optimizer.lr", 0.001)``. Parsed
    once per distinct text: the jobs of a sweep share most of theirs (every lr's ``seed=0``),
    and Hydra's grammar costs about half a millisecond an override."""
    (override,) = OverridesParser.create().parse_overrides([text])
    return override.key_or_group, override.value()


def _parsed(planned: Any) -> tuple[dict[str, Any], str | None]:
    """The overrides ``sweep.json`` planned for a job (a list of strings)."""
    if not isinstance(planned, list):
        return {}, f"planned overrides unreadable: {str(planned)[:40]!r} is not a list"
    try:
        return dict(map(parsed_override, map(str, planned))), None
    except Exception as error:
        reason = str(error).strip().splitlines()[0] if str(error).strip() else ""
        return {}, f"planned overrides unreadable: {reason}"
