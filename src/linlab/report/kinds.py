"""Which figure a sweep gets, chosen from what it varied.

- ``heatmap``: lr and batch size both varied, on a grid: the value over lr × batch size
  (other varied keys split it into panels).
- ``line``: a grid over one numeric key (or several, the one with most values on the x axis and
  one line per combination of the others): the value over it, mean and 95% band over seeds.
- ``scatter``: a search (an Optuna study, or numeric values that do not fill a grid): the value
  over each searched key, coloured by another.

``seed`` is always aggregated and a study's ``optuna_trial`` number is never an axis.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from linlab.report.value import is_number, order

if TYPE_CHECKING:
    from linlab.report.jobs import Job

LR_KEY = "optimizer.lr"
BATCH_KEY = "data.batch_size"
SEED_KEY = "seed"
TRIAL_KEY = "optuna_trial"  # linlab.search.settings.TRIAL_KEY


@dataclass
class Kind:
    name: str  # heatmap, line or scatter
    axes: list[str]  # the keys drawn as axes (x first)
    others: list[str]  # the remaining varied keys: panels (heatmap) or lines (line)


def numeric(jobs: list[Job], key: str) -> bool:
    """Every job has a number for ``key``."""
    return all(is_number(job.overrides.get(key)) for job in jobs)


def swept(varied: Sequence[str]) -> list[str]:
    return [k for k in varied if k not in (SEED_KEY, TRIAL_KEY)]


def distinct(jobs: list[Job], key: str) -> list[Any]:
    """The values of ``key`` over the jobs: numbers ascending, then full batch (None), text."""
    return sorted({job.overrides.get(key) for job in jobs}, key=order)


def fills_grid(jobs: list[Job], keys: list[str]) -> bool:
    """The settings are every combination of the keys' values (a grid sweep)."""
    settings = {tuple(repr(job.overrides.get(k)) for k in keys) for job in jobs}
    return len(settings) == math.prod(len(distinct(jobs, k)) for k in keys)


def kind_of(jobs: list[Job], varied: Sequence[str]) -> Kind:
    keys = swept(varied)
    numbers = [k for k in keys if numeric(jobs, k)]
    searched = TRIAL_KEY in varied or not fills_grid(jobs, keys)
    if searched and numbers:
        return Kind("scatter", numbers, [k for k in keys if k not in numbers])
    if (LR_KEY in keys and BATCH_KEY in keys) or not numbers:
        axes = [LR_KEY, BATCH_KEY]
        return Kind("heatmap", axes, [k for k in keys if k not in axes])
    x = max(numbers, key=lambda k: len(distinct(jobs, k)))
    return Kind("line", [x], [k for k in keys if k != x])


def spans_decades(values: Sequence[float]) -> bool:
    """Positive values whose largest is at least 30 times the smallest: a log axis."""
    return bool(values) and min(values) > 0 and max(values) >= 30 * min(values)
