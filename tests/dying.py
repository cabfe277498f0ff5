"""A callback that kills its worker process once: a stacked group lost on its executor."""

from __future__ import annotations

import os
from pathlib import Path

import lightning as L
from lightning.pytorch.callbacks import Callback


class DieOnceIn(Callback):
    """``os._exit(3)`` at the first epoch of a run whose folder name contains ``part``, the
    first time only (it leaves ``marker`` behind): the process dies with its whole group."""

    def __init__(self, part: str, marker: str) -> None:
        self.part, self.marker = part, Path(marker)

    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if self.part in Path(trainer.default_root_dir).name and not self.marker.exists():
            self.marker.touch()
            os._exit(3)
