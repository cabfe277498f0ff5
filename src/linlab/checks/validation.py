"""Refuse a bad composed config before anything is built, cheapest check first.

The command line's syntax and group names were checked when Hydra composed it
(``preflight``). Then, each layer loading no more than it needs:

1. the config's shape and values, plain Python (no torch): the nodes every run needs, each
   ``_target_`` against the targets policy, the value rules (``rules``), every node of
   linlab's own classes against their signatures read from source (``signatures``);
2. the dry build (``dry_build``, torch; Lightning only where the config names a Lightning
   class): what the config builds, built on something tiny;
3. the machine (``environment``): Lightning's names, the accelerator, the precision, memory
   and the output folder; and last the run folder (``run_folder``: resume, a used folder, a
   lock).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from hydra.types import RunMode
from omegaconf import DictConfig, OmegaConf

from linlab.checks import rules, signatures, targets
from linlab.checks.composed import output_dir, resolved, target_nodes, unresolved
from linlab.errors import ConfigError

# nodes every run builds (``linlab.train.build``): deleting one (``~trainer``) cannot run
REQUIRED_NODES = ("data", "model", "loss", "optimizer", "module", "trainer")


def validate(
    cfg: DictConfig, values_passed: Callable[[dict], None] | None = None, built: dict | None = None
) -> None:
    """Raise ``ConfigError`` for the first problem of a composed config (Hydra node optional);
    ``values_passed(values)`` is called once the values passed, before torch is imported;
    ``built``: what the dry build of a sweep's earlier jobs built (``dry_build.check``)."""
    values = check_values(cfg)
    if values_passed is not None:
        values_passed(values)
    from linlab.checks import dry_build

    dry_build.check(values, {} if built is None else built)
    from linlab.checks import environment, run_folder

    multirun = OmegaConf.select(cfg, "hydra.mode", default=None) == RunMode.MULTIRUN
    environment.check(values, output_dir(cfg), multirun)
    run_folder.check(cfg)


def check_values(cfg: DictConfig) -> dict[str, Any]:
    """Layer 1: what can be judged without importing any class the config names; returns
    the config's resolved values."""
    written = unresolved(cfg)
    check_required(written)
    for path, node in target_nodes(written):
        targets.check_target_path(path, node["_target_"])
    values = resolved(cfg)
    rules.check(values)
    for path, node in target_nodes(values):
        signatures.check_node(path, node, signatures.from_source(node))
    return values


def check_required(values: dict[str, Any]) -> None:
    for key in REQUIRED_NODES:
        node = values.get(key)
        if not isinstance(node, dict) or "_target_" not in node:
            raise ConfigError(
                f"{key} is missing or builds nothing (no {key}._target_), and every run builds "
                f"one; allowed: a {key} node with a _target_, e.g. {key}=<option> of "
                f"conf/{key}/ (not ~{key})"
            )
