"""Refuse a bad hyper-parameter search before anything runs, and compose its sample jobs.

A search (``hydra/sweeper=optuna``, ``hparams_search=...``) launches jobs whose values are only
known as trials are asked, so :func:`sample_jobs` gives the config checks jobs at the edges
of the space instead: each choice of every listed key, and both ends of every range or
interval (the other keys at their first value). A key a job cannot take, an empty choice,
``interval(low, high)`` with ``low >= high``, a log interval reaching 0, an unknown sampler or
pruner and ``n_trials < 1`` are each refused in one line.
"""

from __future__ import annotations

from collections.abc import Sequence

from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.errors import HydraException
from omegaconf import DictConfig, OmegaConf

from linlab.choices import GRID_SWEEPERS
from linlab.errors import ConfigError
from linlab.search import settings
from linlab.search.space import parse_space


def sample_jobs(master: DictConfig, arguments: Sequence[str]) -> list[list[str]] | None:
    """The jobs to check for a search; None when ``master`` does not run one."""

    sweeper = OmegaConf.select(master, "hydra.sweeper")
    if not settings.is_search(sweeper):
        _refuse_search_without_sweeper(sweeper, arguments)
        return None
    try:
        settings.check(OmegaConf.to_container(sweeper, resolve=True))
        fixed, dimensions = parse_space(arguments)
        if sweeper.sampler == "grid":
            for dimension in dimensions:
                dimension.grid_values()
    except ValueError as error:  # SearchSpaceError included
        raise ConfigError(str(error)) from None
    corners = [d.corners() for d in dimensions]
    count = max((len(values) for values in corners), default=1)
    return [
        [
            *fixed,
            *(d.override(v[min(i, len(v) - 1)]) for d, v in zip(dimensions, corners, strict=True)),
        ]
        for i in range(count)
    ]


def _refuse_search_without_sweeper(sweeper: DictConfig | None, arguments: Sequence[str]) -> None:
    """``interval(...)`` needs a searching sweeper: the grid sweeper runs lists only."""
    for argument in arguments:
        try:
            override = OverridesParser.create().parse_overrides([argument])[0]
        except HydraException:
            continue  # the grid's own parse reports it
        if not override.is_sweep_override() or override.is_discrete_sweep():
            continue
        if sweeper is not None and sweeper.get("_target_") in GRID_SWEEPERS:
            raise ConfigError(
                f"{argument} is a search space: run it with hydra/sweeper=optuna or an "
                "hparams_search preset (the grid sweeper runs lists a,b,c and range(...) only)"
            )
