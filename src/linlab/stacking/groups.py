"""Which jobs of a sweep can train as members of one group.

Members may differ in what leaves every tensor shape and step count alone: ``seed`` (their
own data draw, initial values and shuffle order), ``data.noise``, the optimiser's settings
(``optimizer.lr``, momentum, weight decay, betas, ...) and an Optuna search's ``optuna_trial``
(each member reports to, and is pruned by, its own trial). Everything else (batch size, sample
and feature counts, model, loss, precision, epochs, the optimiser's class) must be equal, so
``-m optimizer.lr=<16 values> data.batch_size=8,64,512 seed=0,1,2,3`` makes 3 groups of 64.
Members also share the process's environment (``hydra.job.env_set`` equal). Jobs that cannot
share a process at all (DDP, float16 loss scaling, analytic gradients, a module that overrides
its loss, streamed data, ``hydra.job.chdir=true``) each form a group of one.
"""

from __future__ import annotations

import json
from collections.abc import Sequence

from omegaconf import DictConfig

from linlab.config_values import selected, unresolved

MEMBER_KEYS = ("seed", "data.seed", "data.noise", "optuna_trial")
OPTIMIZER_FIXED = ("_target_", "_partial_")
BUILT_IN_MODULE = "linlab.module.RegressionModule"


def group_key(cfg: DictConfig) -> str:
    """Equal for jobs that can be members of one group (interpolations compared unresolved).
    Of ``hydra``, the largest node, only ``env_set`` is converted."""
    values = {key: unresolved(cfg._get_node(key)) for key in cfg if key != "hydra"}
    env_set = selected(cfg, "hydra.job.env_set")  # one environment per process
    values["hydra.job.env_set"] = None if env_set is None else unresolved(env_set)
    for key in MEMBER_KEYS:
        parent, _, name = key.rpartition(".")
        node = values.get(parent, {}) if parent else values
        if isinstance(node, dict):
            node.pop(name, None)
    optimizer = values.get("optimizer") or {}
    values["optimizer"] = {k: v for k, v in optimizer.items() if k in OPTIMIZER_FIXED}
    return json.dumps(values, sort_keys=True, default=str)


def stackable(cfg: DictConfig) -> bool:
    """Whether this job may share a process with others at all (see the module docstring)."""
    if selected(cfg, "hydra.job.chdir"):  # members share one working directory
        return False
    trainer, module, data = cfg.trainer, cfg.module, cfg.data
    single_device = trainer.get("strategy", "auto") == "auto" and trainer.get("devices") in (1, "1")
    return (
        single_device
        and str(trainer.get("precision")) not in ("16-mixed", "16")
        and module.get("_target_") == BUILT_IN_MODULE
        and module.get("gradient", "autograd") == "autograd"
        and not data.get("streaming", False)
        and cfg.loss.get("_target_", "").startswith("linlab.losses.")
    )


def make_groups(cfgs: Sequence[DictConfig], max_members: int) -> list[list[int]]:
    """Job indices by group, in the order of their first job; at most ``max_members`` each."""
    by_key: dict[str, list[int]] = {}
    groups: list[list[int]] = []
    for index, cfg in enumerate(cfgs):
        if not stackable(cfg):
            groups.append([index])
            continue
        members = by_key.setdefault(group_key(cfg), [])
        if not members:
            groups.append(members)
        members.append(index)
    return [g[i : i + max_members] for g in groups for i in range(0, len(g), max_members)]
