"""linlab inside a Jupyter kernel: a progress line redrawn in the cell, figures shown inline.

Rich's ``Live`` (``linlab.progress.LiveProgress``) needs a terminal, or ipywidgets in a
notebook. :class:`NotebookProgress` draws the same line as a plain-text display that it
replaces in place (``IPython.display`` with a ``display_id``) at most four times a second,
from the training thread's hooks: no widgets, and nbclient records the last state.
"""

from __future__ import annotations

import io
import sys
import time
from typing import Any

import lightning as L
from rich.console import Console

from linlab.progress import LiveProgress

REDRAW_S = 0.25


def in_kernel() -> bool:
    """True in a Jupyter (ipykernel) kernel's process."""
    if "ipykernel" not in sys.modules:
        return False
    from IPython import get_ipython

    shell = get_ipython()
    return shell is not None and getattr(shell, "kernel", None) is not None


def live_progress() -> LiveProgress:
    """The progress callback for where this process draws: a notebook cell or a terminal."""
    return NotebookProgress() if in_kernel() else LiveProgress()


class NotebookProgress(LiveProgress):
    """``LiveProgress``'s line, as a display in the running cell that is redrawn in place."""

    def __init__(self) -> None:
        super().__init__(
            console=Console(file=io.StringIO(), width=160, color_system=None, force_jupyter=False)
        )
        self.handle: Any = None
        self.drawn_at = 0.0

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        super().on_train_start(trainer, pl_module)
        if self.live is not None:  # the terminal's drawing thread is not needed here
            self.live.stop()
            self.live = None
            self.handle = None
            self.redraw(force=True)

    def on_train_batch_start(self, trainer: L.Trainer, *args: Any) -> None:
        super().on_train_batch_start(trainer, *args)
        self.redraw()

    def on_validation_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        super().on_validation_end(trainer, pl_module)
        self.redraw()

    def stop(self) -> None:
        super().stop()
        if self.handle is not None:
            self.redraw(force=True)
            self.handle = None

    def redraw(self, force: bool = False) -> None:
        """Replace the cell's progress line with the current one (throttled)."""
        if self.trainer_ref is None or (not force and time.monotonic() - self.drawn_at < REDRAW_S):
            return
        from IPython.display import Pretty, display

        text = text_of(self.render())
        if self.handle is None:
            self.handle = display(Pretty(text), display_id=True)
        else:
            self.handle.update(Pretty(text))
        self.drawn_at = time.monotonic()


def text_of(renderable: Any) -> str:
    """A rich renderable as plain text, one line per row."""
    console = Console(file=io.StringIO(), width=160, color_system=None, force_jupyter=False)
    console.print(renderable)
    return console.file.getvalue().rstrip()


def show_figures_inline() -> None:
    """Let a returned ``matplotlib.figure.Figure`` show as a PNG in the cell's output.

    linlab draws on ``Figure`` objects, not pyplot, so the inline backend never sees them;
    this registers the PNG formatter for the class (a no-op outside a kernel)."""
    if not in_kernel():
        return
    from IPython import get_ipython
    from IPython.core.pylabtools import print_figure
    from matplotlib.figure import Figure

    formatter = get_ipython().display_formatter.formatters["image/png"]
    formatter.for_type(Figure, lambda figure: print_figure(figure, "png", bbox_inches="tight"))
