"""Refuse a bad hyper-parameter search before anything runs, and compose its sample jobs.

A search (``hydra/sweeper=optuna``, ``hparams_search=...``) launches jobs whose values are only
known as trials are asked, so :func:`sample_jobs` gives the config checks jobs at the edges
of the space instead: each choice of every listed key, and both ends of every range or
interval (the other keys at their first value). A key a job cannot take, an empty choice,
``interval(low, high)`` with ``low >= high``, a log interval reaching 0, an unknown sampler or
pruner, ``n_trials < 1`` and a ``hydra.sweep.subdir`` two trials would share are each refused
in one line.
"""

from __future__ import annotations

import copy
import os
from collections.abc import Sequence

from hydra.core.hydra_config import HydraConfig
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.errors import HydraException
from omegaconf import DictConfig, OmegaConf, open_dict, read_write
from omegaconf.errors import OmegaConfBaseException

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
    _check_trial_folders(master)
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


def _check_trial_folders(master: DictConfig) -> None:
    """Two trials may draw the same values (a categorical space, a repeated suggestion): only
    their number tells them apart, so ``hydra.sweep.subdir`` must change with it. Resolved as
    the launcher resolves it for trials 0 and 1 with the same values (a constant subdir,
    ``${hydra.job.override_dirname}`` or ``${now:...}`` do not change); the folder rules every
    job's subdir must also pass are ``preflight``'s."""
    names = []
    for number in (0, 1):
        trial = copy.deepcopy(master)
        with read_write(trial), open_dict(trial):
            trial.hydra.job.num = trial.hydra.job.id = number
            trial.hydra.overrides.task.append(f"+{settings.TRIAL_KEY}={number}")
        HydraConfig.instance().set_config(trial)  # what ${hydra:job.num} reads
        try:
            names.append(
                OmegaConf.select(trial, "hydra.sweep.subdir", throw_on_resolution_failure=True)
            )
        except OmegaConfBaseException:
            return  # said as a job's folder is checked
    name = str(names[0])
    top = os.path.normpath(name).split(os.sep)[0] if name.strip() else ""
    if names[0] != names[1] or top in ("", ".", "..") or os.path.isabs(name):
        return  # no folder inside the sweep folder: preflight says so, for every job
    raise ConfigError(
        f"hydra.sweep.subdir={names[0]!r} is not allowed: trials of the search would share "
        "that folder (it does not change with the trial's number, hydra.job.num, and trials "
        "may draw the same values); allowed: a folder per job inside hydra.sweep.dir (the "
        "default, or e.g. job${hydra.job.num})"
    )
