"""Refuse a bad hyper-parameter search before anything runs.

A search (``hydra/sweeper=optuna``, ``hparams_search=...``) is checked as a whole here: an
empty choice, ``interval(low, high)`` with ``low >= high``, a log interval reaching 0, an
interval under ``sampler=grid``, an unknown sampler or pruner and ``n_trials < 1`` are each
refused in one line. Its jobs are then composed at the space's edges
(:func:`linlab.search.space.sample_jobs`) and checked like a grid's. An interval under the grid
sweeper, which runs lists only, is refused too.
"""

from __future__ import annotations

from collections.abc import Sequence

from hydra.core.override_parser.types import Override
from omegaconf import DictConfig, OmegaConf

from linlab.choices import GRID_SWEEPERS
from linlab.errors import ConfigError
from linlab.search import settings
from linlab.search.space import parse_space


def check(sweeper: DictConfig, arguments: Sequence[str]) -> None:
    """Refuse a search whose settings or space (``arguments``) cannot be searched."""
    try:
        settings.check(OmegaConf.to_container(sweeper, resolve=True))
        _, dimensions = parse_space(arguments)
        if sweeper.sampler == "grid":
            for dimension in dimensions:
                dimension.grid_values()
    except ValueError as error:  # SearchSpaceError included
        raise ConfigError(str(error)) from None


def searched_elsewhere(sweeper: DictConfig | None, overrides: Sequence[Override]) -> bool:
    """Whether ``overrides`` search an interval, for an optimising sweeper other than linlab's;
    refused under the grid sweeper, which runs lists only."""
    for override in overrides:
        if not override.is_sweep_override() or override.is_discrete_sweep():
            continue
        if sweeper is not None and sweeper.get("_target_") in GRID_SWEEPERS:
            raise ConfigError(
                f"{override.input_line} is a search space: run it with hydra/sweeper=optuna or an "
                "hparams_search preset (the grid sweeper runs lists a,b,c and range(...) only)"
            )
        return True
    return False
