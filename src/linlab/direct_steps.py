"""Optimiser steps without Lightning's per-step wrappers, counted once per chunk.

``LightningOptimizer.step`` and ``manual_backward`` call about a dozen hooks per minibatch
(``on_before_backward``, ``on_after_backward``, ``on_before_optimizer_step``, profiler marks),
which costs more than a whole SGD step of a small linear model. Where those wrappers change no
number (one device, no loss scaler) the training step calls the bare ``torch.optim`` optimiser
and ``loss.backward()`` instead, and then tells Lightning how many optimiser steps it took, so
``trainer.global_step``, ``max_steps``, checkpoints and resumption count exactly as before.
Mixed fp16 (a ``GradScaler``) and multi-process strategies keep Lightning's full path.
"""

from __future__ import annotations

import lightning as L
from lightning.pytorch.strategies import SingleDeviceStrategy


def direct_steps_apply(trainer: L.Trainer) -> bool:
    """True when bare optimiser steps give the same numbers as Lightning's wrapped ones."""
    no_scaler = getattr(trainer.precision_plugin, "scaler", None) is None
    return no_scaler and isinstance(trainer.strategy, SingleDeviceStrategy)


def count_optimizer_steps(trainer: L.Trainer, steps: int) -> None:
    """Advance the manual-optimisation step counter behind ``trainer.global_step`` by ``steps``."""
    progress = trainer.fit_loop.epoch_loop.manual_optimization.optim_step_progress
    progress.total.increment_by(steps)
    progress.current.increment_by(steps)


def align_epoch_metric_steps(trainer: L.Trainer, steps: int) -> None:
    """Count a chunk of ``steps`` minibatches as ``steps`` batches, not one.

    Lightning logs epoch-level metrics (``loss/val``, ``loss/train_epoch``) at its count of
    training-step calls; advancing that count by the chunk's extra minibatches puts them on the
    same optimiser-step axis as ``loss/train`` (the epoch's last step).
    """
    trainer.fit_loop.epoch_loop._batches_that_stepped += steps - 1
