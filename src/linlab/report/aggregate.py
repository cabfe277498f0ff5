"""Seeds aggregated: one row, cell and curve per setting, as mean ± 95% confidence interval.

A setting is a job's overrides without ``seed``. Over its n seeds the interval is
mean ± t₀.₉₇₅,ₙ₋₁ · s/√n (s the sample standard deviation, t the Student-t quantile with
n − 1 degrees of freedom), the usual interval for the mean of a few noisy runs.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from linlab.report.jobs import setting_order
from linlab.report.kinds import SEED_KEY
from linlab.report.value import number

if TYPE_CHECKING:
    from linlab.report.jobs import Job

STATUS_ORDER = ("diverged", "failed", "running")


@dataclass
class Interval:
    mean: float
    half_width: float  # nan for a single value
    n: int

    def __str__(self) -> str:
        if self.n < 2:
            return f"{self.mean:.4g}"
        return f"{self.mean:.4g} ± {self.half_width:.2g}"


def t_pdf(x: float, dof: int) -> float:
    log_c = math.lgamma((dof + 1) / 2) - math.lgamma(dof / 2) - 0.5 * math.log(dof * math.pi)
    return math.exp(log_c - (dof + 1) / 2 * math.log1p(x * x / dof))


def t_cdf(x: float, dof: int, steps: int = 2000) -> float:
    """P(T ≤ x) for x ≥ 0: ½ + ∫₀ˣ pdf, by Simpson's rule in u = atan(t) (a finite interval,
    smooth integrand even for heavy tails)."""
    upper = math.atan(x)
    h = upper / steps
    total = 0.0
    for i in range(steps + 1):
        u = i * h
        weight = 1 if i in (0, steps) else (4 if i % 2 else 2)
        total += weight * t_pdf(math.tan(u), dof) / math.cos(u) ** 2
    return 0.5 + total * h / 3


@functools.cache
def t_quantile(p: float, dof: int) -> float:
    """The p-quantile (p > ½) of Student's t with ``dof`` degrees of freedom, by bisection."""
    lo, hi = 0.0, 1.0
    while t_cdf(hi, dof) < p:
        lo, hi = hi, 2 * hi
    for _ in range(60):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if t_cdf(mid, dof) < p else (lo, mid)
    return (lo + hi) / 2


def interval(values: Sequence[float], level: float = 0.95) -> Interval:
    n = len(values)
    mean = sum(values) / n
    if n < 2:
        return Interval(mean, math.nan, n)
    s = math.sqrt(sum((v - mean) ** 2 for v in values) / (n - 1))
    return Interval(mean, t_quantile((1 + level) / 2, n - 1) * s / math.sqrt(n), n)


def metric(job: Job, name: str) -> float | None:
    """A finite number from the job's results.json (top level or its ``theory``), else None."""
    return number(job.results, name)


def setting(job: Job) -> tuple:
    return tuple((k, repr(v)) for k, v in job.overrides.items() if k != SEED_KEY)


def by_setting(jobs: list[Job]) -> dict[tuple, list[Job]]:
    groups: dict[tuple, list[Job]] = {}
    for job in jobs:
        groups.setdefault(setting(job), []).append(job)
    return groups


def cell(members: list[Job], value: str) -> tuple[Interval | None, str]:
    """A setting's interval over its ``ok`` seeds and its status: ``ok`` when every seed is,
    else the first other status (``diverged`` before ``failed`` before ``running``)."""
    others = {job.status for job in members} - {"ok"}
    ranked = [s for s in STATUS_ORDER if s in others] + sorted(others - set(STATUS_ORDER))
    status = ranked[0] if ranked else "ok"
    values = [v for job in members if job.status == "ok" and (v := metric(job, value)) is not None]
    return (interval(values) if values else None), status


def table_rows(jobs: list[Job], keys: list[str], value: str) -> list[dict[str, Any]]:
    """One row per setting: the varied keys, the number of seeds, mean ± interval, statuses;
    by the mean, then by the keys' values (numbers in numeric order)."""

    rows = []
    for members in by_setting(jobs).values():
        summary, status = cell(members, value)
        row: dict[str, Any] = {k: members[0].overrides.get(k) for k in keys if k != SEED_KEY}
        ok = sum(job.status == "ok" for job in members)
        row |= {"seeds": len(members), "ok": ok, f"{value} (95% CI)": str(summary or "-")}
        row["status"] = status
        rows.append(((summary.mean if summary else math.inf, setting_order(members[0], keys)), row))
    return [row for _, row in sorted(rows, key=lambda pair: pair[0])]


def mean_band(curves: list[list[float]]) -> tuple[list[float], list[float], list[float]]:
    """Mean and 95% interval per epoch over curves (cut to the shortest)."""
    length = min(len(c) for c in curves)
    summaries = [interval([c[i] for c in curves]) for i in range(length)]
    means = [s.mean for s in summaries]
    widths = [0.0 if math.isnan(s.half_width) else s.half_width for s in summaries]
    low = [m - w for m, w in zip(means, widths, strict=True)]
    high = [m + w for m, w in zip(means, widths, strict=True)]
    return means, low, high
