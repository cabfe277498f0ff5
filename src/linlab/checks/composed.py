"""A composed config as the checks read it: plain values, the nodes that name a ``_target_``,
the job's output folder. Hydra and OmegaConf only."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf, open_dict
from omegaconf.errors import OmegaConfBaseException

from linlab import config_values
from linlab.errors import ConfigError, first_line


def resolved(cfg: DictConfig) -> dict[str, Any]:
    """The config as plain values, with interpolations resolved (the ``hydra`` node left out).

    ``seed: null`` draws a seed when the run starts (``linlab.train.resolve_seed``); here it
    stands as 0, so that what interpolates it (``data.seed: ${seed}``) is checked as an int.
    """
    if "seed" in cfg and cfg.seed is None:
        cfg = copy.deepcopy(cfg)
        with open_dict(cfg):
            cfg.seed = 0
    values = {}
    for key in cfg:
        if key == "hydra":
            continue
        try:
            node = cfg[key]
            values[key] = config_values.resolved(node) if OmegaConf.is_config(node) else node
        except OmegaConfBaseException as error:
            raise ConfigError(f"{key}: cannot resolve ({first_line(error)})") from None
    return values


def unresolved(cfg: DictConfig) -> Any:
    """The whole config, ``hydra`` node included, without resolving anything."""
    return config_values.unresolved(cfg)


def output_dir(cfg: DictConfig) -> Path | None:
    folder = OmegaConf.select(cfg, "hydra.runtime.output_dir", default=None)
    return None if folder in (None, "???") else Path(folder)


def target_nodes(values: Any, path: str = "") -> list[tuple[str, dict[str, Any]]]:
    """Every ``(dotted path, node)`` whose node names a ``_target_``."""
    found = []
    if isinstance(values, dict):
        if "_target_" in values:
            found.append((path, values))
        for key, value in values.items():
            found += target_nodes(value, f"{path}.{key}" if path else str(key))
    elif isinstance(values, list):
        for index, value in enumerate(values):
            found += target_nodes(value, f"{path}[{index}]")
    return found
