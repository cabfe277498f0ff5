"""A job that raises is a recorded result: ``results.json`` with status ``failed``.

In a sweep the error is not re-raised, so the other jobs still run; the sweep callback
(``linlab.sweep_callbacks``) counts the failures at the end and exits non-zero.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from omegaconf import DictConfig

from linlab.hparams import log_failed_hparams
from linlab.results import RESULTS_FILE, write_json_atomic

log = logging.getLogger("linlab")


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
