"""The TensorBoard HParams dashboard: each run's settings beside its final metrics.

Hyper-parameters are named by their config path (``optimizer.lr``, ``data.batch_size``,
``model.bias`` vs ``data.bias``), so keys that two groups both carry never clash; the chosen
option of each group (``optimizer: sgd``) and every key the command line overrode (so every
swept key) are added.

What the dashboard opens on follows TensorBoard's hparams plugin (``backend_context.py`` and
the dashboard's script in TensorBoard 2.21):

- No experiment summary is written: the plugin then infers the experiment from every run's
  session, takes the union of their keys, and marks each key whose values differ
  (``differs``). It lists those first, then the rest by name, and the dashboard ticks the
  first five. The run's status is named ``Status`` so that, sorting before the lower-case
  config paths, it is among those five.
- The dashboard prints every number with ``toPrecision(5)`` (512 reads ``512.00``), so
  integer settings are written as text.
- Metric columns are scalar tags (the plugin finds nowhere else); the dashboard ticks the
  first five by name, so the final values are ``final/*`` at the run's last step, and no
  ``hp_metric`` placeholder. Other one-off values (epochs, steps, the theory reference) go
  to the text tab as ``results``, not into one-point charts.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from hydra.core.hydra_config import HydraConfig
from lightning.pytorch.loggers import TensorBoardLogger
from omegaconf import DictConfig, ListConfig, OmegaConf
from tensorboard.compat.proto.summary_pb2 import Summary
from tensorboard.compat.proto.tensor_pb2 import TensorProto
from tensorboard.compat.proto.types_pb2 import DT_FLOAT
from tensorboard.plugins.hparams import api_pb2, metadata, plugin_data_pb2
from torch.utils.tensorboard import SummaryWriter

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
SPLITS = ("train", "val", "test")
# HParams metric name -> results.json key
FINAL_METRICS = {
    "final/val_loss": "val_loss",
    "final/test_loss": "test_loss",
    "final/train_loss": "train_loss",
    "final/param_distance": "param_distance",
    "final/steps_to_target": "steps_to_target",
    **{f"final/{split}_{m}": f"{split}_{m}" for m in ("accuracy", "margin") for split in SPLITS},
}
STATUS = "Status"  # the HParams key of the run's status (see the module docstring)
# ok is a success; a run stopped by divergence, an error or a search is a failure to the
# dashboard's status filter; an interrupted run may go on, so its end is unknown
SESSION_STATUS = {"ok": "STATUS_SUCCESS", "interrupted": "STATUS_UNKNOWN"}
ONE_OFF_KEYS = ("status", "epochs", "steps", "wall_time_s", "diverged_at_step", "last_finite_loss")
Scalar = float | str | bool


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
    values[STATUS] = status
    return values


def final_metrics(results: Mapping[str, Any]) -> dict[str, float]:
    """The ``final/*`` values this run has (a run without a test split has no test loss)."""
    metrics = {}
    for name, key in FINAL_METRICS.items():
        value = results.get(key)
        if isinstance(value, int | float) and not isinstance(value, bool):
            metrics[name] = float(value)
    return metrics


def one_off_text(results: Mapping[str, Any]) -> str:
    """The run's one-off values as a Markdown table for TensorBoard's text tab."""
    rows = {key: results[key] for key in ONE_OFF_KEYS if results.get(key) is not None}
    rows |= {f"theory/{k}": v for k, v in (results.get("theory") or {}).items() if v is not None}
    lines = ["| key | value |", "|---|---|"]
    lines += [f"| {key} | {_text(value)} |" for key, value in rows.items()]
    return "\n".join(lines)


def write_session(
    writer: SummaryWriter,
    hparams: dict[str, Scalar],
    metrics: dict[str, float],
    step: int,
    text: str = "",
) -> None:
    """One HParams session (start and end records, no experiment) plus its metric scalars."""
    status = SESSION_STATUS.get(str(hparams.get(STATUS)), "STATUS_FAILURE")
    start = plugin_data_pb2.SessionStartInfo()
    for key, value in hparams.items():
        kind = {bool: "bool_value", str: "string_value"}.get(type(value), "number_value")
        setattr(start.hparams[key], kind, value)
    end = plugin_data_pb2.SessionEndInfo(status=api_pb2.Status.Value(status))
    file_writer = writer._get_file_writer()
    file_writer.add_summary(
        _plugin_summary(metadata.SESSION_START_INFO_TAG, session_start_info=start)
    )
    file_writer.add_summary(_plugin_summary(metadata.SESSION_END_INFO_TAG, session_end_info=end))
    for name, value in metrics.items():
        writer.add_scalar(name, value, step)
    if text:
        writer.add_text("results", text, step)
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
                    steps = int(results.get("steps") or 0)
                    write_session(writer, hparams, metrics, steps, one_off_text(results))
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
    """HParams holds numbers, strings and booleans: lists and mappings become their text, and
    integers too (the dashboard would print 512 as ``512.00``)."""
    if value is None:
        return "null"
    if isinstance(value, DictConfig | ListConfig):
        return str(OmegaConf.to_container(value, resolve=True))
    if isinstance(value, bool | float | str):
        return value
    return str(value)


def _plugin_summary(tag: str, **data: Any) -> Summary:
    """A summary the hparams plugin reads: its data in the metadata, an empty tensor."""
    info = metadata.create_summary_metadata(plugin_data_pb2.HParamsPluginData(**data))
    return Summary(
        value=[Summary.Value(tag=tag, metadata=info, tensor=TensorProto(dtype=DT_FLOAT))]
    )


def _text(value: Any) -> str:
    return f"{value:.6g}" if isinstance(value, float) else str(value)
