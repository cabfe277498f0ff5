"""The TensorBoard HParams dashboard: each run's settings beside its final metrics.

Hyper-parameters are named by their config path (``optimizer.lr``, ``data.batch_size``,
``model.bias`` vs ``data.bias``), so keys that two groups both carry never clash; the chosen
option of each group (``optimizer: sgd``) and every key the command line overrode (so every
swept key) are added. Final metrics are written as scalars ``final/*`` at the run's last step,
where the HParams plugin finds them: no ``hp_metric`` placeholder.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from hydra.core.hydra_config import HydraConfig
from lightning.pytorch.loggers import TensorBoardLogger
from omegaconf import DictConfig, ListConfig, OmegaConf
from torch.utils.tensorboard import SummaryWriter
from torch.utils.tensorboard.summary import hparams as hparams_summaries

from linlab.logger import events_file, remove_if_empty
from linlab.unwritten import not_written

CHOICE_GROUPS = ("data", "model", "loss", "optimizer", "scheduler")
CONFIG_KEYS = (
    "seed",
    "optimizer.lr",
    "data.batch_size",
    "trainer.precision",
    "trainer.accelerator",
    "trainer.max_epochs",
    "data.n_samples",
    "data.n_features",
    "data.noise",
    "model.bias",
    "module.gradient",
    "module.update",
)
# HParams metric name -> results.json key; always the same names, so every run declares the
# same columns whichever run TensorBoard reads the experiment from.
FINAL_METRICS = {
    "final/val_loss": "val_loss",
    "final/test_loss": "test_loss",
    "final/train_loss": "train_loss",
    "final/param_distance": "param_distance",
    "final/epochs": "epochs",
}
Scalar = int | float | str | bool


def param_distance(results: Mapping[str, Any]) -> float | None:
    """‖(w, b) − (w*, b*)‖₂ to the data's true parameters (a missing bias counts as 0).

    None when the data has no true parameters or the model is not weights-and-bias shaped.
    """
    true_w, w = results.get("true_weights"), results.get("weights")
    if true_w is None or w is None or len(true_w) != len(w):
        return None
    squares = sum((a - b) ** 2 for a, b in zip(w, true_w, strict=True))
    if results.get("true_bias") is not None:
        squares += ((results.get("bias") or 0.0) - results["true_bias"]) ** 2
    return math.sqrt(squares)


def overridden_keys(task_overrides: Iterable[str]) -> list[str]:
    """Config keys set on the command line (``optimizer.lr=0.1`` → ``optimizer.lr``).

    Group choices (``data=line_1d``) are left out: CHOICE_GROUPS already names them.
    """
    keys = []
    for override in task_overrides:
        key, sep, _ = override.partition("=")
        key = key.lstrip("+~")
        if sep and "." in key and not key.startswith("hydra."):
            keys.append(key)
    return keys


def hparams_of(cfg: DictConfig, status: str) -> dict[str, Scalar]:
    """The run's HParams: group choices, the usual keys, every overridden key, its status."""
    hydra_cfg = HydraConfig.get()
    choices = hydra_cfg.runtime.choices
    values: dict[str, Scalar] = {g: str(choices.get(g) or "none") for g in CHOICE_GROUPS}
    for key in (*CONFIG_KEYS, *overridden_keys(hydra_cfg.overrides.task)):
        values[key] = _scalar(OmegaConf.select(cfg, key, default=None))
    values["status"] = status
    return values


def final_metrics(results: Mapping[str, Any]) -> dict[str, float]:
    """The ``final/*`` values this run has (a run without a test split has no test loss)."""
    metrics = {}
    for name, key in FINAL_METRICS.items():
        value = results.get(key)
        if isinstance(value, int | float) and not isinstance(value, bool):
            metrics[name] = float(value)
    return metrics


def write_session(
    writer: SummaryWriter, hparams: dict[str, Scalar], metrics: dict[str, float], step: int
) -> None:
    """One HParams session (experiment, start and end records) plus its metric scalars."""
    declared = dict.fromkeys(FINAL_METRICS, 0.0)
    file_writer = writer._get_file_writer()
    for summary in hparams_summaries(hparams, declared):
        file_writer.add_summary(summary)
    for name, value in metrics.items():
        writer.add_scalar(name, value, step)
    writer.flush()


def log_hparams(loggers: Iterable[Any], cfg: DictConfig, results: Mapping[str, Any]) -> None:
    """Write the session beside each TensorBoard logger's events (same folder, same run).

    Lightning has closed its writer when fit ends, so a fresh writer adds one more event
    file to the folder; TensorBoard reads every file of a folder as that one run.
    """
    hparams, metrics = hparams_of(cfg, results["status"]), final_metrics(results)
    for logger in loggers:
        if isinstance(logger, TensorBoardLogger):
            writer = None
            try:
                writer = SummaryWriter(logger.log_dir)
                with writer:
                    write_session(writer, hparams, metrics, int(results.get("steps") or 0))
            except OSError as error:  # a full disk: a warning, the run's result stands
                remove_if_empty(events_file(writer))
                not_written(f"TensorBoard HParams session in {logger.log_dir}", error)


def log_failed_hparams(cfg: DictConfig, run_dir: Path) -> None:
    """A failed run still appears in HParams, with status ``failed`` and no metrics."""
    if "tensorboard" not in (cfg.get("logger") or {}):
        return
    with SummaryWriter(str(run_dir)) as writer:
        write_session(writer, hparams_of(cfg, "failed"), {}, 0)


def _scalar(value: Any) -> Scalar:
    """HParams holds numbers, strings and booleans: lists and mappings become their text."""
    if value is None:
        return "null"
    if isinstance(value, DictConfig | ListConfig):
        return str(OmegaConf.to_container(value, resolve=True))
    if isinstance(value, bool | int | float | str):
        return value
    return str(value)
