"""Make a job's composed config Hydra's current one, as ``HydraConfig.set_config`` does, without
its copy of the ``hydra`` node.

``set_config`` makes ``HydraConfig.instance().cfg`` a config holding only ``hydra`` (so that
``${hydra:...}`` and ``HydraConfig.get()`` read it) whose ``hydra`` node's parent is the job's
config (so that the node's own interpolations resolve in it). It gets there by a deep copy of
the node (``OmegaConf.masked_copy``): 20-50 ms a job, paid per job by the up-front check and per
member by the stacked launcher, and a copy per member kept alive for the whole fit. Once
``set_config`` has made the node read-only it cannot change, so the same node, shared, gives
the same answers: :func:`make_current` builds that config around the node itself.
"""

from __future__ import annotations

from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, OmegaConf, flag_override


def current_view(cfg: DictConfig) -> DictConfig:
    """What ``set_config(cfg)`` stores: ``{hydra: cfg.hydra}``, the node read-only and its
    parent ``cfg``; the node shared, not copied."""
    node = cfg.hydra
    OmegaConf.set_readonly(node, True)
    view = DictConfig({})
    with flag_override(view, "no_deepcopy_set_nodes", True):
        view["hydra"] = node  # moves the node's parent to ``view`` ...
    node._set_parent(cfg)  # ... and back, as ``set_config`` does for its copy
    return view


def make_current(cfg: DictConfig) -> DictConfig:
    """``HydraConfig.instance().set_config(cfg)``, sharing the node; returns the stored view."""
    view = current_view(cfg)
    HydraConfig.instance().cfg = view
    return view
