"""Callbacks for tests of what a run leaves behind: one fails on purpose, one looks at files."""

from __future__ import annotations

from pathlib import Path

import lightning as L
from lightning.pytorch.callbacks import Callback


class FailAtEpoch(Callback):
    """Raise ``RuntimeError`` at the start of epoch ``epoch``."""

    def __init__(self, epoch: int) -> None:
        self.epoch = epoch

    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.current_epoch == self.epoch:
            raise RuntimeError(f"failing on purpose at epoch {self.epoch}")


SEEN: dict[str, list[bool]] = {}  # path -> FileAtEpochEnds' observations, read by tests


class FileAtEpochEnds(Callback):
    """Record in ``SEEN[path]``, after each training epoch, whether ``path`` exists.

    Hydra's ``callbacks`` dict keeps its order and this key comes last, so it runs after the
    checkpoint callbacks of the same hook.
    """

    def __init__(self, path: str) -> None:
        self.path = path
        SEEN[path] = []

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        SEEN[self.path].append(Path(self.path).exists())


class FailForLr(Callback):
    """Raise ``RuntimeError`` at the first epoch of the run whose learning rate is ``lr``:
    one failing member of a stacked group (each member's callbacks see its own optimiser)."""

    def __init__(self, lr: float) -> None:
        self.lr = lr

    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.optimizers[0].param_groups[0]["lr"] == self.lr:
            raise RuntimeError(f"failing on purpose at lr={self.lr}")


class FailOnceForLr(FailForLr):
    """``FailForLr`` the first time only: it leaves ``marker`` behind, and a rerun of the same
    command (the same overrides) then trains."""

    def __init__(self, lr: float, marker: str) -> None:
        super().__init__(lr)
        self.marker = Path(marker)

    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if not self.marker.exists():
            try:
                super().on_train_epoch_start(trainer, pl_module)
            except RuntimeError:
                self.marker.touch()
                raise


class HookLog(Callback):
    """Append each hook it overrides, with the epoch and step its run is at, to
    ``<run folder>/hooks.txt``: a stacked member's calls, compared with its single run's."""

    def _log(self, trainer: L.Trainer, hook: str) -> None:
        line = f"{hook} {trainer.current_epoch} {trainer.global_step}\n"
        with open(Path(trainer.default_root_dir) / "hooks.txt", "a") as file:
            file.write(line)

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._log(trainer, "on_train_start")

    def on_train_batch_end(self, trainer: L.Trainer, pl_module: L.LightningModule, *_) -> None:
        self._log(trainer, "on_train_batch_end")

    def on_validation_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._log(trainer, "on_validation_end")

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._log(trainer, "on_train_epoch_end")

    def on_train_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._log(trainer, "on_train_end")
