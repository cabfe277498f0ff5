"""TensorBoard logging at a small fixed cost: one event per logged step, no flush per call.

Lightning's ``TensorBoardLogger.log_metrics`` writes each scalar as its own event through a
bounded queue, and after every call the trainer calls ``logger.save()``, which flushes the
writer and so waits for its thread. That thread serialises each event and checksums it with
TensorBoard's pure-Python CRC32C (about 25 µs for a 200-byte event) while holding the GIL.
For a small model that is more than the epoch's optimiser steps cost.

Here a step's scalars go into one ``Summary`` with several values (the same tags, steps and
values when TensorBoard reads them back), and events reach the disk every ``flush_secs``
seconds and when the run ends (``finalize``), not at every call.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from lightning.fabric.loggers.logger import rank_zero_experiment
from lightning.fabric.utilities.logger import _add_prefix
from lightning.pytorch.loggers import Logger
from lightning.pytorch.loggers import TensorBoardLogger as LightningTensorBoardLogger
from lightning.pytorch.utilities import rank_zero_only
from tensorboard.compat.proto.summary_pb2 import Summary
from torch.utils.tensorboard import SummaryWriter

from linlab.unwritten import not_written

Rows = Sequence[tuple[int | None, Mapping[str, float]]]
SHARED_BINS: list[float] = []  # every writer's default histogram bins (``experiment``)


class TensorBoardLogger(LightningTensorBoardLogger):
    """Lightning's ``TensorBoardLogger`` with one event per ``log_metrics`` call.

    Args:
        flush_secs: events are written to disk at least this often (and at the end of fit).
        **kwargs: Lightning's ``TensorBoardLogger`` arguments.
    """

    def __init__(self, *args: Any, flush_secs: float = 2.0, **kwargs: Any) -> None:
        super().__init__(*args, flush_secs=flush_secs, **kwargs)
        self._hparams_saved = False
        self._write_failed = False
        _quiet_writer_thread_errors()

    @property
    @rank_zero_experiment
    def experiment(self) -> SummaryWriter:
        """Lightning's ``SummaryWriter``, its default histogram bins (a list of 1,500 numbers,
        ~47 KiB, read only by ``add_histogram``) one list for every writer of the process: a
        stacked group of 1024 members holds 1024 writers."""
        writer = super().experiment
        if writer.default_bins is not SHARED_BINS:  # a fresh writer (or bins of its own)
            if not SHARED_BINS:
                SHARED_BINS.extend(writer.default_bins)
            if writer.default_bins == SHARED_BINS:
                writer.default_bins = SHARED_BINS
        return writer

    def _writing(self, what: str, write: Callable[[], Any]) -> None:
        """Run ``write``; one that fails (a full disk) is one warning, and the logger stops
        writing: events are part of a run's record, not of its result."""
        if self._write_failed:
            return
        try:
            write()
        except OSError as error:
            self._write_failed = True
            not_written(f"TensorBoard {what} in {self.log_dir}", error)

    @rank_zero_only
    def log_metrics(self, metrics: Mapping[str, Any], step: int | None = None) -> None:
        if any(isinstance(v, Mapping) for v in metrics.values()):  # Lightning's add_scalars
            self._writing(
                "events", lambda: super(TensorBoardLogger, self).log_metrics(metrics, step)
            )
            return
        scalars = {k: float(v) for k, v in metrics.items()}
        row = _add_prefix(scalars, self._prefix, self.LOGGER_JOIN_CHAR)
        self._writing("events", lambda: write_tensorboard_rows(self.experiment, [(step, row)]))

    @rank_zero_only
    def log_hyperparams(self, *args: Any, **kwargs: Any) -> None:
        self._writing(
            "hyper-parameters",
            lambda: super(TensorBoardLogger, self).log_hyperparams(*args, **kwargs),
        )

    @rank_zero_only
    def save(self) -> None:
        """Write ``hparams.yaml`` once; no flush here (see the module docstring)."""
        if not self._hparams_saved:
            self._writing("hparams.yaml", super().save)  # once the log folder exists
            self._hparams_saved = self._write_failed or self._fs.isdir(self.log_dir)

    @rank_zero_only
    def finalize(self, status: str) -> None:
        """Flush and close the events file; after a failed write, only close it."""
        if not self._write_failed:
            self._writing("events", lambda: super(TensorBoardLogger, self).finalize(status))
        if self._write_failed and self._experiment is not None:
            events = events_file(self._experiment)
            with contextlib.suppress(OSError):
                self._experiment.close()
            remove_if_empty(events)


def events_file(writer: SummaryWriter | None) -> Path | None:
    """The events file a ``SummaryWriter`` writes (None before it opened one)."""
    file_writer = getattr(writer, "file_writer", None)
    name = getattr(getattr(file_writer, "event_writer", None), "_file_name", None)
    return Path(name) if name else None


def remove_if_empty(path: Path | None) -> None:
    """Delete a file that a failed write left empty: a full disk leaves no 0-byte files."""
    if path is not None and path.is_file() and path.stat().st_size == 0:
        path.unlink()


def _quiet_writer_thread_errors() -> None:
    """TensorBoard's writer thread re-raises a failed write (printing a traceback) and hands it
    to the next write or flush, which ``TensorBoardLogger._writing`` reports in one line."""
    previous = threading.excepthook
    if getattr(previous, "linlab_quiet", False):
        return

    def hook(args: threading.ExceptHookArgs) -> None:
        writer_thread = type(args.thread).__module__.startswith("tensorboard.")
        if not (writer_thread and issubclass(args.exc_type, OSError)):
            previous(args)

    hook.linlab_quiet = True
    threading.excepthook = hook


def log_rows(loggers: Iterable[Logger], rows: Rows) -> None:
    """Log ``metrics`` at ``step`` for each ``(step, metrics)`` row, on global rank 0 only.

    With linlab's ``TensorBoardLogger`` each row is one event; other loggers log as they do.
    """
    if rank_zero_only.rank != 0 or not rows:
        return
    for logger in loggers:
        for step, metrics in rows:
            logger.log_metrics(dict(metrics), step=step)


def write_tensorboard_rows(writer: SummaryWriter, rows: Rows) -> None:
    """One event per row, holding all of the row's scalars."""
    file_writer = writer._get_file_writer()  # reopened after a close, as add_scalar does
    for step, metrics in rows:
        values = [Summary.Value(tag=tag, simple_value=value) for tag, value in metrics.items()]
        file_writer.add_summary(Summary(value=values), step)
