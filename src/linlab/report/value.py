"""The value a sweep is about: ``report.value`` of its config (``conf/train.yaml``: val_loss;
a preset names its own, e.g. double_descent's ``excess_population_risk``).

Any number of ``results.json`` (top level or ``theory``) may be named. A job trained without a
validation split has no val_loss: where the value is the default val_loss, such a job is shown
by its ``train_loss`` instead of as missing a result.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from omegaconf import OmegaConf

DEFAULT = "val_loss"
WITHOUT_VALIDATION = "train_loss"
KEY = "report.value"


def configured(config: Any) -> str:
    """``report.value`` of a composed config (a sweep folder's ``multirun.yaml``), else val_loss."""
    value = OmegaConf.select(config, KEY, default=None) if config is not None else None
    return str(value) if value else DEFAULT


def of_sweep(sweep_dir: Path) -> str:
    """The value the sweep in ``sweep_dir`` was launched with."""
    path = sweep_dir / "multirun.yaml"
    return configured(OmegaConf.load(path) if path.is_file() else None)


def shown(value: str, results: Iterable[dict[str, Any]]) -> str:
    """``value``, or train_loss for the default val_loss when no job has a val_loss but some
    have a train_loss (the jobs were trained without a validation split)."""
    listed = list(results)
    if value != DEFAULT or any(r.get(DEFAULT) is not None for r in listed):
        return value
    has_train = any(r.get(WITHOUT_VALIDATION) is not None for r in listed)
    return WITHOUT_VALIDATION if has_train else value


def number(results: Mapping[str, Any], name: str) -> float | None:
    """A finite number ``name`` of results.json (top level or its ``theory``), else None."""
    value = results.get(name, (results.get("theory") or {}).get(name))
    ok = isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
    return float(value) if ok else None


def is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def order(value: Any) -> tuple:
    """How override values sort: numbers ascending, then None (full batch), then text."""
    if is_number(value):
        return (0, value, "")
    return (1 if value is None else 2, 0, str(value))
