"""Where and in what precision a run actually trained, as opposed to what it asked for.

Lightning quietly adjusts some requests: ``16-mixed`` on a CPU becomes ``bf16-mixed`` (CPU
autocast has no float16 GradScaler path), ``accelerator=auto`` becomes a concrete device.
linlab records both the requested and the effective values in ``results.json`` and says so
in one warning when they differ.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import lightning as L
import torch
from lightning.fabric.connector import _convert_precision_to_unified_args
from omegaconf import DictConfig

log = logging.getLogger("linlab")


@contextmanager
def lightning_precision_notice_silenced() -> Iterator[None]:
    """Around building the Trainer: linlab's one warning replaces Lightning's 16-mixed notice."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=r"You passed `Trainer\(accelerator='cpu'")
        yield


def gradient_scaler(trainer: L.Trainer) -> torch.amp.GradScaler | None:
    """The loss scaler of ``16-mixed`` (None otherwise): gradients set by hand must be scaled too.

    ``optimizer.step()`` unscales every gradient by the scaler's factor, so gradients that do
    not come from ``manual_backward`` (``gradient=analytic``) are multiplied by it first.
    """
    return getattr(trainer.precision_plugin, "scaler", None)


def effective_placement(trainer: L.Trainer) -> dict[str, Any]:
    """The precision, accelerator, device and number of processes the trainer runs with."""
    accelerator = type(trainer.accelerator).__name__.removesuffix("Accelerator").lower()
    return {
        "precision_effective": str(trainer.precision),
        "accelerator_effective": {"cuda": "gpu"}.get(accelerator, accelerator),
        "device": str(trainer.strategy.root_device),
        "world_size": trainer.world_size,
    }


def record_placement(cfg: DictConfig, trainer: L.Trainer) -> dict[str, Any]:
    """``effective_placement``, warning once (on rank 0) if the precision is not the one asked."""
    placement = effective_placement(trainer)
    requested = str(cfg.trainer.precision)
    unified = str(_convert_precision_to_unified_args(requested))
    if unified != placement["precision_effective"] and trainer.is_global_zero:
        log.warning(
            "trainer.precision=%s is not available on %s: Lightning trains in %s instead "
            "(results.json records precision=%s, precision_effective=%s)",
            requested,
            placement["device"],
            placement["precision_effective"],
            requested,
            placement["precision_effective"],
        )
    return placement
