"""What an interactive single run shows while it trains, and what Ctrl-C tells.

``LiveProgress`` is one line on the terminal, redrawn by rich's ``Live`` from its own thread
four times a second::

    epoch 3/200 ━━━━━━━━━━━━━╸━━━━━━━━  1% step 1,234/82,000 train 0.0123 val 0.0234 0:00:02<0:02:11

(elapsed<left). It fits the terminal's width on one line: the bar takes the columns the
numbers leave, up to 30, and is left out below 6 (a 80-column terminal keeps it).

A chunk is often a whole epoch (see ``linlab.data.batches``), so Lightning's own bar would
stand still for the whole of it. Here the training step only writes an integer per minibatch
into a one-item list (``module.steps_done_in_chunk[0]``, ~30 ns; an attribute set on the
module would go through ``nn.Module.__setattr__``, ~1 µs) and the drawing thread reads it:
no read-back from the device, no call into Lightning per step. Losses are the latest
whole-epoch train loss and validation loss, read once per chunk in the training thread.
``linlab.train`` adds it to an interactive single run (stderr a terminal, not a sweep) and
nowhere else.
"""

from __future__ import annotations

import shlex
import time
from collections.abc import Iterable
from datetime import timedelta
from pathlib import Path
from typing import Any

import lightning as L
from lightning.pytorch.callbacks.progress import ProgressBar
from rich.console import Console, RenderableType
from rich.live import Live
from rich.progress_bar import ProgressBar as Bar
from rich.table import Table
from rich.text import Text

from linlab import tags

LOSS_LABELS = ("train", "val")
BAR_MIN, BAR_MAX = 6, 30  # columns of the progress bar


class LiveProgress(ProgressBar):
    """Epoch k/N (1-based), steps, latest train and val loss, elapsed and remaining time.

    Args:
        console: where to draw; rich's console on stderr by default.
        refresh_per_second: redraws a second, however long a chunk lasts.
    """

    def __init__(self, console: Console | None = None, refresh_per_second: float = 4.0) -> None:
        super().__init__()
        self.console = console or Console(stderr=True)
        self.refresh_per_second = refresh_per_second
        self.enabled = True
        self.live: Live | None = None
        self.trainer_ref: L.Trainer | None = None
        self.module: L.LightningModule | None = None
        self.started = 0.0
        self.first_step = self.chunk_start = 0
        self.first_epoch = 0
        self.steps_per_epoch: int | None = None
        self.losses: dict[str, float] = {}

    def disable(self) -> None:
        self.enabled = False

    def enable(self) -> None:
        self.enabled = True

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if not (self.enabled and trainer.is_global_zero):
            return
        self.trainer_ref, self.module = trainer, pl_module
        self.first_step = self.chunk_start = trainer.global_step
        self.first_epoch = trainer.current_epoch
        self.started = time.perf_counter()
        self.live = Live(
            console=self.console,
            get_renderable=self.render,
            refresh_per_second=self.refresh_per_second,
            redirect_stdout=False,
            redirect_stderr=False,
        )
        self.live.start()

    def on_train_batch_start(
        self, trainer: L.Trainer, pl_module: L.LightningModule, batch: Any, batch_idx: int
    ) -> None:
        getattr(pl_module, "steps_done_in_chunk", [0])[0] = 0  # the last chunk's count
        self.chunk_start = trainer.global_step
        if self.steps_per_epoch is None and batch_idx == 0:  # an estimate until an epoch ends
            self.steps_per_epoch = len(batch[0]) * int(trainer.num_training_batches)
        self._read_losses(trainer)

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        epochs = trainer.current_epoch + 1 - self.first_epoch
        self.steps_per_epoch = max(1, (trainer.global_step - self.first_step) // epochs)
        total = getattr(pl_module, "epoch_loss_sum", None)
        steps = getattr(pl_module, "epoch_steps", 0)
        if total is not None and steps:  # the module's running sum, complete at this hook
            self.losses["train"] = float(total.reshape(-1)[0]) / steps

    def on_validation_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._read_losses(trainer)

    def on_train_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._read_losses(trainer)
        self.stop()

    def on_exception(
        self, trainer: L.Trainer, pl_module: L.LightningModule, exception: BaseException
    ) -> None:
        self.stop()

    def teardown(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        self.stop()

    def stop(self) -> None:
        """Draw the last state and leave it on the screen."""
        if self.live is not None:
            self.live.stop()
            self.live = None

    def _read_losses(self, trainer: L.Trainer) -> None:
        value = trainer.callback_metrics.get(tags.VAL_LOSS)
        if value is not None:
            self.losses["val"] = float(value)

    def steps_done(self) -> int:
        """Optimiser steps so far, inside the running chunk too."""
        inside = getattr(self.module, "steps_done_in_chunk", [0])[0]
        return max(self.trainer_ref.global_step, self.chunk_start + inside)

    def render(self) -> RenderableType:
        trainer = self.trainer_ref
        if trainer is None:
            return Text("")
        max_epochs = trainer.max_epochs if (trainer.max_epochs or -1) > 0 else None
        epoch = trainer.current_epoch + 1
        if max_epochs is not None:
            epoch = min(epoch, max_epochs)
        done = self.steps_done()
        total = None
        if max_epochs is not None and self.steps_per_epoch:
            total = max(done, self.steps_per_epoch * max_epochs)
        elapsed = time.perf_counter() - self.started
        ran, to_run = done - self.first_step, None if total is None else total - self.first_step
        left = elapsed * (to_run - ran) / ran if ran and to_run is not None else None
        head = f"epoch {epoch}/{max_epochs or '?'}"
        losses = " ".join(f"{label} {_loss(self.losses.get(label))}" for label in LOSS_LABELS)
        steps = f"step {done:,}/{total:,}" if total is not None else f"step {done:,}"
        fraction = f"{ran / to_run:4.0%}" if to_run else ""
        tail = f"{steps} {losses} {_clock(elapsed)}<{_clock(left)}"
        # the bar takes what the terminal's width leaves (one line: no wrapping), up to 30
        width = min(BAR_MAX, self.console.width - len(f"{head} {fraction} {tail}") - 2)
        row = Table.grid(padding=(0, 1))
        if width < BAR_MIN:
            row.add_row(head, fraction, tail)
        else:
            row.add_row(head, Bar(total=to_run or None, completed=ran, width=width), fraction, tail)
        return row


def resume_command(run_dir: Path, task_overrides: Iterable[str]) -> str:
    """The command that resumes this run from its ``last.ckpt``, with the same overrides."""
    kept = [o for o in task_overrides if not o.startswith(("ckpt_path=", "hydra.run.dir="))]
    words = ["linlab-train", *kept, f"hydra.run.dir={run_dir}", "ckpt_path=last"]
    return shlex.join(words)


def interrupted_message(results: dict[str, Any], run_dir: Path, overrides: Iterable[str]) -> str:
    """Two lines after Ctrl-C: where it stopped (1-based epoch), the folder, how to go on."""
    epoch = (results.get("epochs") or 0) + 1
    of = f"/{results['max_epochs']}" if results.get("max_epochs") else ""
    return (
        f"interrupted in epoch {epoch}{of} at step {results.get('steps')}; run folder: {run_dir}\n"
        f"resume with: {resume_command(run_dir, overrides)}"
    )


def _loss(value: float | None) -> str:
    return "-" if value is None else f"{value:.4g}"


def _clock(seconds: float | None) -> str:
    return "-:--:--" if seconds is None else str(timedelta(seconds=round(seconds)))
