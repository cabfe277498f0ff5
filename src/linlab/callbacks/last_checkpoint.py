"""Lightning callback: ``last.ckpt`` after an epoch, at most every ``min_interval_s`` seconds.

Saving a checkpoint (state dicts of loops, optimiser and callbacks, ``torch.save``, rename)
costs about 1.5 ms on a CI-class CPU: more than a tenth of an epoch of a small problem, whose
epochs take milliseconds. ``LastCheckpoint`` saves at an epoch end only when ``min_interval_s``
seconds have passed since its previous save (or the start of training), and always saves the
state at the end of training. A killed run therefore loses at most ``min_interval_s`` seconds
plus one epoch; ``min_interval_s=0`` saves after every epoch, as ``ModelCheckpoint`` does.
"""

from __future__ import annotations

import time

import lightning as L
from lightning.pytorch.callbacks import ModelCheckpoint


class SaveClock:
    """Decides whether an epoch end saves: ``min_interval_s`` since the last save, and never
    more than a tenth of the time spent saving (the next save waits 9x the last one's length).

    The members of a stacked group share one clock (``linlab.stacking.members``): it decides
    once per hook and step for all of them, since their checkpoints must hold the same step,
    and the length of a save is the whole group's.
    """

    def __init__(self, min_interval_s: float) -> None:
        self.min_interval_s = min_interval_s
        self.start()

    def start(self) -> None:
        self.saved_at, self.save_s, self.decision = time.monotonic(), 0.0, ((), False)
        self.event_start = self.saved_at

    def due(self, event: tuple) -> bool:
        if self.decision[0] != event:
            interval = max(self.min_interval_s, 9 * self.save_s)
            now = time.monotonic()
            self.decision, self.event_start = (event, now - self.saved_at >= interval), now
        return self.decision[1]

    def saved(self) -> None:
        self.saved_at = time.monotonic()
        self.save_s = self.saved_at - self.event_start


class LastCheckpoint(ModelCheckpoint):
    """``ModelCheckpoint`` whose epoch-end saves are spaced at least ``min_interval_s`` apart.

    Args:
        min_interval_s: seconds between two saves at epoch ends; the end of training is
            always saved.
        **kwargs: ``ModelCheckpoint``'s arguments (``dirpath``, ``filename``, ...).
    """

    def __init__(self, min_interval_s: float = 0.0, **kwargs) -> None:
        super().__init__(**kwargs)
        self.min_interval_s = min_interval_s
        self.clock = SaveClock(min_interval_s)

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        super().on_train_start(trainer, pl_module)
        self.clock.start()

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if self.clock.due(("epoch", trainer.global_step)):
            self._saving(super().on_train_epoch_end, trainer, pl_module)

    def on_validation_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if self.clock.due(("validation", trainer.global_step)):
            self._saving(super().on_validation_end, trainer, pl_module)

    def on_train_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        """Save the final state unless the last epoch end already did."""
        if not self._should_skip_saving_checkpoint(trainer):
            self._save_topk_checkpoint(trainer, self._monitor_candidates(trainer))

    def _saving(self, hook, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        step = self._last_global_step_saved
        hook(trainer, pl_module)
        if self._last_global_step_saved != step:
            self.clock.saved()
