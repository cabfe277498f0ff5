"""A callback that fails on purpose, for tests of what a failing run leaves behind."""

from __future__ import annotations

import lightning as L
from lightning.pytorch.callbacks import Callback


class FailAtEpoch(Callback):
    """Raise ``RuntimeError`` at the start of epoch ``epoch``."""

    def __init__(self, epoch: int) -> None:
        self.epoch = epoch

    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.current_epoch == self.epoch:
            raise RuntimeError(f"failing on purpose at epoch {self.epoch}")
