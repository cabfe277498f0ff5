"""Runs that stop early leave usable files: atomic checkpoints, and a clean Ctrl-C.

Ctrl-C ends a run cleanly: status ``interrupted``, a checkpoint, flushed logs, results.json.

Lightning answers a KeyboardInterrupt by calling every callback's ``on_exception``, finalising
the loggers (which flushes TensorBoard) and raising ``SystemExit(1)``. ``InterruptCheckpoint``
marks the module and saves ``interrupted.ckpt`` (the parameters at the interrupt);
``last.ckpt`` stays the last whole epoch, which ``ckpt_path=last`` resumes exactly.
:func:`fit` lets the caller record the interrupted run and then exits with code 130.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import lightning as L
from lightning.fabric.plugins import TorchCheckpointIO
from lightning.pytorch.callbacks import Callback

INTERRUPTED = "interrupted"
EXIT_INTERRUPTED = 130  # 128 + SIGINT, what a shell reports for Ctrl-C


class InterruptCheckpoint(Callback):
    """On Ctrl-C: set ``status = "interrupted"`` on the module and save ``<dirpath>/<filename>``."""

    def __init__(self, dirpath: str, filename: str = "interrupted.ckpt") -> None:
        self.path = Path(dirpath) / filename

    def on_exception(
        self, trainer: L.Trainer, pl_module: L.LightningModule, exception: BaseException
    ) -> None:
        if isinstance(exception, KeyboardInterrupt):
            pl_module.status = INTERRUPTED
            trainer.save_checkpoint(self.path)


def fit(trainer: L.Trainer, module: L.LightningModule, **fit_kwargs) -> None:
    """``trainer.fit`` that returns normally after a Ctrl-C (see ``module.status``)."""
    try:
        trainer.fit(module, **fit_kwargs)
    except SystemExit:
        if not trainer.interrupted:
            raise
        module.status = INTERRUPTED  # also without the callback (callbacks=none)


def exit_if_interrupted(module: L.LightningModule) -> None:
    """Stop the process (and a sweep) after an interrupted run has been recorded."""
    if getattr(module, "status", None) == INTERRUPTED:
        raise SystemExit(EXIT_INTERRUPTED)


class AtomicCheckpointIO(TorchCheckpointIO):
    """Write a checkpoint beside its target and rename it: a kill never leaves half a file."""

    def save_checkpoint(
        self, checkpoint: dict[str, Any], path: str | Path, storage_options: Any = None
    ) -> None:
        partial = Path(f"{path}.partial")
        super().save_checkpoint(checkpoint, partial, storage_options)
        os.replace(partial, path)
