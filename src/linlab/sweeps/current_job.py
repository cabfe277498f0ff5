"""Make a job's composed config Hydra's current one, as ``HydraConfig.set_config`` does, without
its copy of the ``hydra`` node.

``set_config`` makes ``HydraConfig.instance().cfg`` a config holding only ``hydra`` (so that
``${hydra:...}`` and ``HydraConfig.get()`` read it) whose ``hydra`` node's parent is the job's
config (so that the node's own interpolations resolve in it). It gets there by a deep copy of
the node (``OmegaConf.masked_copy``): 20-50 ms a job, paid per job by the up-front check and per
member by the stacked launcher, and a copy per member kept alive for the whole fit. Once
``set_config`` has made the node read-only it cannot change, so the same node, shared, gives
the same answers: :func:`make_current` builds that config around the node itself.

The stacked launcher pays a second copy per member in ``run_job``'s place: the task's config,
every node but ``hydra`` (``OmegaConf.masked_copy``), alive through the whole fit.
:func:`task_view` holds the job's own nodes instead.
"""

from __future__ import annotations

import copy

from hydra.core.hydra_config import HydraConfig
from omegaconf import Container, DictConfig, OmegaConf


def current_view(cfg: DictConfig) -> DictConfig:
    """What ``set_config(cfg)`` stores: ``{hydra: cfg.hydra}``, the node read-only and its
    parent ``cfg``; the node shared, not copied."""
    node = cfg.hydra
    OmegaConf.set_readonly(node, True)
    view = DictConfig({})
    view.__dict__["_content"]["hydra"] = node  # its parent stays ``cfg``, as in ``set_config``
    return view


def make_current(cfg: DictConfig) -> DictConfig:
    """``HydraConfig.instance().set_config(cfg)``, sharing the node; returns the stored view."""
    view = current_view(cfg)
    HydraConfig.instance().cfg = view
    return view


def task_view(cfg: DictConfig) -> DictConfig:
    """What ``OmegaConf.masked_copy(cfg, <every key but hydra>)`` gives the task, the job's
    nodes held, not copied: each node keeps ``cfg`` as its parent (interpolations resolve as
    in the job's config); top-level values are copied, so the task setting one (a drawn
    ``seed``) leaves the job's config as it was. Put straight into the view's content: what
    ``view[key] = node`` checks (a plain mapping's key and value types) holds for a node of a
    composed config, and its cost (~0.5 ms a job) was most of the view's."""
    view = DictConfig({})
    content = view.__dict__["_content"]
    for key, node in cfg.__dict__["_content"].items():
        if key == "hydra":
            continue
        if not isinstance(node, Container):
            node = copy.deepcopy(node)  # a copy, as the assignment makes one
            node._set_parent(view)
        content[key] = node
    return view
