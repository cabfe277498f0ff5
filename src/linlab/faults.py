"""Runs that stop early leave usable files: atomic checkpoints, a clean Ctrl-C, failed jobs.

Ctrl-C ends a run cleanly: status ``interrupted``, a checkpoint, flushed logs, results.json.
A job that raises is a recorded result too: ``results.json`` with status ``failed`` and the
message (:func:`record_failure`). In a sweep the error is not re-raised, so the other jobs still
run; the sweep callback (``linlab.sweeps.progress``) counts the failures at the end and exits
non-zero.

Ctrl-C and SIGTERM (what SLURM and other schedulers send before a kill) are one thing: during
``fit`` they stop training at the next minibatch boundary (``linlab.interrupts``), which raises
a KeyboardInterrupt there. Lightning answers it by calling every callback's ``on_exception``,
finalising the loggers (which flushes TensorBoard) and raising ``SystemExit(1)``.
``InterruptCheckpoint`` marks the module and saves ``interrupted.ckpt`` (the parameters at the
interrupt); ``last.ckpt`` stays the last whole epoch, which ``ckpt_path=last`` resumes exactly.
:func:`fit` lets the caller record the interrupted run and then exits with code 130.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import signal
import sys
import threading
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any, TextIO

import lightning as L
import torch
from lightning.fabric.plugins import TorchCheckpointIO
from lightning.pytorch.callbacks import Callback
from omegaconf import DictConfig

from linlab import interrupts
from linlab.parent_watch import EXIT_INTERRUPTED
from linlab.results import RESULTS_FILE, write_json_atomic
from linlab.sweeps.hparams import log_failed_hparams
from linlab.unwritten import not_written

log = logging.getLogger("linlab")

INTERRUPTED = "interrupted"


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
    """``trainer.fit`` that returns normally after Ctrl-C or SIGTERM (see ``module.status``).

    Lightning's own SIGTERM handler is left out: under DDP it broadcasts from inside the
    handler, a collective the other ranks never join.
    """
    trainer._signal_connector.register_signal_handlers = lambda: None
    try:
        with interrupts.stop_at_minibatch_boundary():
            trainer.fit(module, **fit_kwargs)
    except SystemExit:
        if not trainer.interrupted:
            raise
        for state in module.states:  # also without the callback (callbacks=none)
            if state.status == "ok":
                state.status = INTERRUPTED


def exit_if_interrupted(module: L.LightningModule) -> None:
    """Stop the process (and a sweep) after an interrupted run has been recorded.

    Also after a signal that came too late to stop training (the run is recorded as finished).
    """
    if getattr(module, "status", None) == INTERRUPTED or interrupts.STATE.received:
        raise SystemExit(EXIT_INTERRUPTED)


def exit_130_on_interrupt(main: Callable[[], Any]) -> None:
    """Run the command line; a Ctrl-C outside a fit (start-up) is one line, and a Ctrl-C in a
    sweep (an interrupted job exits 130) says how far it got and the command that resumes it."""
    from linlab.sweeps.progress import interrupted_sweep_message

    interrupts.STATE.asked = False
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGINT, interrupts.on_ctrl_c)
    try:
        main()
        if interrupts.STATE.asked:  # pressed while the last job was being torn down
            raise KeyboardInterrupt
    except KeyboardInterrupt:
        print(
            interrupted_sweep_message(sys.argv[1:]) or "linlab-train: interrupted",
            file=sys.stderr,
        )
        raise SystemExit(EXIT_INTERRUPTED) from None
    except SystemExit as stop:
        if stop.code == EXIT_INTERRUPTED and (message := interrupted_sweep_message(sys.argv[1:])):
            print(message, file=sys.stderr)
        raise


class AtomicCheckpointIO(TorchCheckpointIO):
    """Write a checkpoint beside its target and rename it: a kill never leaves half a file.

    ``torch.save`` writes the file itself: Lightning's own save passes over a
    ``PermissionError`` in silence, and the rename then failed with a misleading
    ``FileNotFoundError``.
    """

    def save_checkpoint(
        self, checkpoint: dict[str, Any], path: str | Path, storage_options: Any = None
    ) -> None:
        partial = Path(f"{path}.partial")
        try:
            partial.parent.mkdir(parents=True, exist_ok=True)
            torch.save(checkpoint, partial)
            os.replace(partial, path)
        except OSError as error:  # a full disk: a warning, the previous checkpoint stays
            with contextlib.suppress(OSError):  # a read-only folder cannot lose it either
                partial.unlink(missing_ok=True)
            not_written(str(path), error)


def record_failure(
    cfg: DictConfig,
    run_dir: Path,
    hyperparameters: dict[str, Any],
    error: BaseException,
    seconds: float,
) -> dict[str, Any]:
    """Log one line (the traceback to the job's log file only); write failed ``results.json``.

    A folder where that cannot be written either (read-only or full) ends the process with one
    line on stderr and exit code 1 (:func:`unwritable_folder`).
    """
    log.error("job failed: %s: %s", type(error).__name__, error)
    write_traceback_to_log_files(error)
    results = {
        **hyperparameters,
        "status": "failed",
        "message": f"{type(error).__name__}: {error}",
        "epochs": None,
        "steps": None,
        "wall_time_s": seconds,
    }
    try:
        write_json_atomic(run_dir / RESULTS_FILE, results)
    except OSError as write_error:
        raise SystemExit(unwritable_folder(run_dir, write_error)) from None
    try:
        log_failed_hparams(cfg, run_dir)
    except Exception as hparams_error:  # the failure record must not fail in turn
        log.warning("could not write HParams of the failed job: %s", hparams_error)
    return results


# Library warnings that tell a user nothing to act on where linlab uses the library: written
# to the job's log file (``train.log``), kept off the console.
LOG_FILE_ONLY = (
    # every resume writes into the run's own checkpoints/ folder
    r"Checkpoint directory .* exists and is not empty",
    # a ckpt_path=last with nothing to load starts from the start on purpose (run_folder)
    r"ckpt_path=\"last\"\) is set, but there is no last checkpoint",
    # torch.load(weights_only=True) of a file it then refuses: the refusal says why
    r"Detected pickle protocol",
)


def warnings_to_log_files() -> None:
    """Route the warnings of :data:`LOG_FILE_ONLY` to the log files (once per process).

    A log file that cannot be written (a read-only or full run folder) is no traceback on the
    console either: the run says in one line what could not be written.
    """
    logging.raiseExceptions = False
    if getattr(warnings.showwarning, "linlab_log_file_only", False):
        return
    show_on_console = warnings.showwarning

    def show(
        message: Warning | str,
        category: type[Warning],
        filename: str,
        lineno: int,
        file: TextIO | None = None,
        line: str | None = None,
    ) -> None:
        text = str(message)
        if not any(re.search(pattern, text) for pattern in LOG_FILE_ONLY):
            show_on_console(message, category, filename, lineno, file, line)
            return
        record = log.makeRecord(log.name, logging.WARNING, filename, lineno, text, (), None)
        for handler in logging.getLogger().handlers:
            if isinstance(handler, logging.FileHandler):
                handler.handle(record)

    show.linlab_log_file_only = True  # type: ignore[attr-defined]
    warnings.showwarning = show


def unwritable_folder(run_dir: Path, error: OSError) -> str:
    """One line: the run folder, the file that could not be written and why, and the last
    checkpoint written before it, which still loads."""
    reason = error.strerror or type(error).__name__
    last = run_dir / "checkpoints" / "last.ckpt"
    try:
        step = torch.load(last, map_location="cpu", weights_only=True)["global_step"]
        kept = f"the last checkpoint written before, {last} (step {step}), still loads"
    except Exception:
        kept = "no checkpoint was written before"
    return (
        f"linlab-train: error: the run folder {run_dir} can no longer be written (read-only or "
        f"full): could not write {run_dir / RESULTS_FILE}: {reason}; {kept}"
    )


def write_traceback_to_log_files(error: BaseException) -> None:
    """The traceback goes into the job's log files (Hydra's ``<job>.log``), not the console."""
    record = log.makeRecord(
        log.name,
        logging.ERROR,
        __file__,
        0,
        "traceback of the failure:",
        (),
        (type(error), error, error.__traceback__),
    )
    for handler in logging.getLogger().handlers:
        if isinstance(handler, logging.FileHandler):
            handler.handle(record)
