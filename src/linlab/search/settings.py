"""The names a study's settings may take, and the one-line check of ``hydra.sweeper``.

Samplers and pruners are chosen by short names (``sampler: tpe``, ``pruner: median``); their
keyword arguments go in ``sampler_options`` / ``pruner_options``. Checked before anything runs
(``linlab.checks.search_space``); Optuna is imported only to check given options against
the signature of the class they go to.
"""

from __future__ import annotations

import inspect
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from linlab.machine import installed

SWEEPER_TARGET = "hydra_plugins.linlab_optuna.optuna_sweeper.OptunaSweeper"
TRIAL_KEY = "optuna_trial"  # the job override ``+optuna_trial=<number>`` that names its trial
STUDY_FILE = "optuna.db"

# name -> class in optuna.samplers
SAMPLERS = {
    "tpe": "TPESampler",
    "random": "RandomSampler",
    "grid": "GridSampler",
    "cmaes": "CmaEsSampler",
    "gp": "GPSampler",
}
# samplers that need a package besides Optuna: cmaes comes with the "search" extra; scipy does
# not (installed, it is imported by every `import lightning`, through torchmetrics: +1 s a start)
SAMPLER_NEEDS = {"cmaes": "cmaes", "gp": "scipy"}
PRUNERS = {
    "none": "NopPruner",
    "median": "MedianPruner",
    "successive_halving": "SuccessiveHalvingPruner",
    "hyperband": "HyperbandPruner",
}
DIRECTIONS = ("minimize", "maximize")


def is_search(sweeper: Mapping[str, Any] | None) -> bool:
    """Whether ``hydra.sweeper`` is linlab's Optuna sweeper."""
    return bool(sweeper) and sweeper.get("_target_") == SWEEPER_TARGET


def storage_url(storage: str | None, sweep_dir: str | Path) -> str:
    """The study's storage: the URL given, else an SQLite file in the sweep folder."""
    if storage:
        return storage
    return f"sqlite:///{Path(sweep_dir).resolve() / STUDY_FILE}"


def check(sweeper: Mapping[str, Any]) -> None:
    """Raise ``ValueError`` (one line) for settings no study can run with."""
    if not installed("optuna"):
        raise ValueError(
            'hydra/sweeper=optuna needs Optuna, which is not installed: pip install -e ".[search]"'
        )
    _one_of("sampler", sweeper.get("sampler"), SAMPLERS)
    needs = SAMPLER_NEEDS.get(sweeper.get("sampler"))
    if needs and not installed(needs):
        here = [name for name in SAMPLERS if installed(SAMPLER_NEEDS.get(name, "optuna"))]
        raise ValueError(
            f"hydra.sweeper.sampler={sweeper.get('sampler')} needs {needs} (pip install {needs}); "
            f"allowed here: {', '.join(here)}"
        )
    _one_of("pruner", sweeper.get("pruner"), PRUNERS)
    _check_options("sampler", SAMPLERS[sweeper["sampler"]], sweeper.get("sampler_options"))
    _check_options("pruner", PRUNERS[sweeper["pruner"]], sweeper.get("pruner_options"))
    for key in ("n_trials", "n_jobs"):
        value = sweeper.get(key)
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"hydra.sweeper.{key}={value} is not allowed; allowed: an integer ≥ 1")
    rate = sweeper.get("max_failure_rate", 1.0)
    if isinstance(rate, bool) or not isinstance(rate, int | float) or not 0 <= rate <= 1:
        raise ValueError(
            f"hydra.sweeper.max_failure_rate={rate} is not allowed; allowed: a number in [0, 1]"
        )
    objectives, directions = list(sweeper.get("objectives")), list(sweeper.get("directions"))
    if not objectives:
        raise ValueError("hydra.sweeper.objectives=[] is not allowed; name a results.json key")
    for direction in directions:
        _one_of("directions", direction, DIRECTIONS)
    if len(directions) != len(objectives):
        raise ValueError(
            f"hydra.sweeper.directions has {len(directions)} entries for {len(objectives)} "
            f"objectives ({', '.join(objectives)}); give one direction per objective"
        )
    if len(objectives) > 1 and sweeper.get("pruner") != "none":
        raise ValueError(
            f"hydra.sweeper.pruner={sweeper.get('pruner')} is not allowed with several objectives "
            "(Optuna prunes single-objective studies only); allowed: none"
        )


def _check_options(kind: str, class_name: str, options: Mapping[str, Any] | None) -> None:
    """Each option must be a keyword argument of the sampler's or pruner's class."""
    if not options:
        return
    import optuna

    cls = getattr(getattr(optuna, f"{kind}s"), class_name)
    allowed = [p for p in inspect.signature(cls).parameters if p not in ("self", "search_space")]
    for key in options:
        if key not in allowed:
            raise ValueError(
                f"hydra.sweeper.{kind}_options.{key} is not an argument of {class_name}; "
                f"allowed: {', '.join(allowed)}"
            )


def _one_of(key: str, value: Any, allowed: Mapping[str, str] | tuple[str, ...]) -> None:
    if value not in allowed:
        raise ValueError(
            f"hydra.sweeper.{key}={value} is not allowed; allowed: {', '.join(allowed)}"
        )
