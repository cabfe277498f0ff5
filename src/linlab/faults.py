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

import logging
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import lightning as L
from lightning.fabric.plugins import TorchCheckpointIO
from lightning.pytorch.callbacks import Callback
from omegaconf import DictConfig

from linlab import interrupts
from linlab.results import RESULTS_FILE, write_json_atomic
from linlab.sweeps.hparams import log_failed_hparams
from linlab.unwritten import not_written

log = logging.getLogger("linlab")

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

    try:
        main()
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
    """Write a checkpoint beside its target and rename it: a kill never leaves half a file."""

    def save_checkpoint(
        self, checkpoint: dict[str, Any], path: str | Path, storage_options: Any = None
    ) -> None:
        partial = Path(f"{path}.partial")
        try:
            super().save_checkpoint(checkpoint, partial, storage_options)
            os.replace(partial, path)
        except OSError as error:  # a full disk: a warning, the previous checkpoint stays
            partial.unlink(missing_ok=True)
            not_written(str(path), error)


def record_failure(
    cfg: DictConfig,
    run_dir: Path,
    hyperparameters: dict[str, Any],
    error: BaseException,
    seconds: float,
) -> dict[str, Any]:
    """Log one line (the traceback to the job's log file only); write failed ``results.json``."""
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
    write_json_atomic(run_dir / RESULTS_FILE, results)
    try:
        log_failed_hparams(cfg, run_dir)
    except Exception as hparams_error:  # the failure record must not fail in turn
        log.warning("could not write HParams of the failed job: %s", hparams_error)
    return results


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
