"""Names of run folders: unique per sweep, and each job named by what the sweep varied.

Registered as OmegaConf resolvers (``linlab.unique_id``, ``linlab.run_name``) used by
``conf/train.yaml``'s ``hydra.run.dir``, ``hydra.sweep.dir`` and ``hydra.sweep.subdir``, and
``linlab.single_run``, which turns per-job figures off in sweeps by default.
"""

from __future__ import annotations

import os
import re
import secrets
from collections.abc import Sequence

from omegaconf import OmegaConf

_ID_VAR = "LINLAB_RUN_ID"
_SWEPT_VAR = "LINLAB_SWEPT_KEYS"
_TRIAL_KEY = "optuna_trial"  # linlab.search.settings.TRIAL_KEY: a search trial's number
_SWEEP_SYNTAX = re.compile(r"(?<!\\),|^\s*(range|choice|interval|glob|shuffle|sort|tag)\(")


def unique_id() -> str:
    """A short random id shared by a launch and the job processes it starts.

    Two sweeps started in the same second get different folders; every job of one sweep
    (also in joblib or submitit workers, which inherit the environment) agrees on it.
    """
    return os.environ.setdefault(_ID_VAR, secrets.token_hex(3))


def start_launch(argv: Sequence[str]) -> None:
    """Called once per command line: a fresh id and the list of keys it sweeps."""
    os.environ[_ID_VAR] = secrets.token_hex(3)
    os.environ[_SWEPT_VAR] = ",".join(swept_keys(argv))


def swept_keys(argv: Sequence[str]) -> list[str]:
    """Keys that a command line sweeps (``key=a,b`` or ``key=range(...)``), in their order."""
    keys = []
    for arg in argv:
        key, sep, value = arg.partition("=")
        if sep and not key.startswith("hydra") and _SWEEP_SYNTAX.search(value):
            keys.append(key.lstrip("+~"))
    return keys


def run_name(job_num: int, task_overrides: Sequence[str], sweeper_params: object = None) -> str:
    """``lr=0.01,batch_size=64``: the job's values of the swept keys, by their last component.

    A search trial's name starts with its number, which keeps it unique, so its sampled
    floats are shortened to 4 significant digits: ``trial=3,lr=0.01235,batch_size=64``.
    """
    varied = [k for k in os.environ.get(_SWEPT_VAR, "").split(",") if k]
    if sweeper_params:
        varied += [str(k) for k in dict(sweeper_params) if k not in varied]
    overrides = dict(o.lstrip("+~").partition("=")[::2] for o in task_overrides)
    trial = overrides.get(_TRIAL_KEY)
    parts = [f"trial={trial}"] if trial is not None else []
    for key, value in overrides.items():
        if key in varied:
            shown = _short_float(value) if trial is not None else value
            parts.append(f"{key.split('.')[-1]}={shown}".replace("/", "_"))
    return ",".join(parts) or f"job{job_num}"


def _short_float(value: str) -> str:
    try:
        return value if float(value).is_integer() else f"{float(value):.4g}"
    except ValueError:
        return value


def single_run() -> bool:
    """True unless this job is part of a multirun: per-job extras (figures) default to it."""
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode

    return not (HydraConfig.initialized() and HydraConfig.get().mode == RunMode.MULTIRUN)


def register_resolvers() -> None:
    resolvers = (
        ("linlab.unique_id", unique_id),
        ("linlab.run_name", run_name),
        ("linlab.single_run", single_run),
    )
    for name, fn in resolvers:
        if not OmegaConf.has_resolver(name):
            OmegaConf.register_new_resolver(name, fn)
