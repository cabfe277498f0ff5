"""The TensorBoard HParams dashboard: each run's settings beside its final metrics.

Hyper-parameters are named by their config path (``optimizer.lr``, ``data.batch_size``,
``model.bias`` vs ``data.bias``), so keys that two groups both carry never clash; the chosen
option of each group (``optimizer: sgd``) and every key the command line overrode (so every
swept key) are added.

What the dashboard opens on follows TensorBoard's hparams plugin (``backend_context.py`` and
the dashboard's script in TensorBoard 2.21):

- A sweep writes an experiment summary when it ends (``SweepExperiment``, a Hydra callback,
  into ``<sweep folder>/*.sweep_experiment``). The plugin serves a stored summary as written,
  so it names the metrics, the ``final/*`` values only (the sweep's ``report.value`` first),
  not every scalar tag; it marks each key whose values differ between the jobs
  (``differs``), which the dashboard lists first and ticks among the first five. The run's
  status is named ``Status`` so that, sorting before the lower-case config paths, it is
  among those five. A single run writes the summary of itself beside its session (metrics
  ``final/*`` only; the keys set on its command line marked as differing). While a sweep
  runs the plugin infers the experiment from the sessions. The plugin serves the first
  summary it finds, so a folder of several single runs shows the first run's columns.
- Numbers are written as numbers (batch sizes sort 8 < 64 < 512; the dashboard prints them
  with ``toPrecision(5)``); ``null`` (full batch) is text.
- The final values are scalars at the run's last step, tagged ``value/<key>`` and shown in
  the HParams dashboard as ``final/<key>`` (``MetricInfo.display_name``); no ``hp_metric``
  placeholder. The Scalars and Time Series tabs order chart groups by tag name
  (``linlab.tags``): ``value/*`` sorts after every curve, whereas ``final/*`` put one-point
  charts, their axes set by the diverged runs, before them. Other one-off values (epochs,
  steps, the theory reference) go to the text tab as ``results``, not into one-point charts.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from hydra.core.hydra_config import HydraConfig
from hydra.experimental.callback import Callback
from hydra.types import RunMode
from lightning.pytorch.loggers import TensorBoardLogger
from omegaconf import DictConfig, ListConfig, OmegaConf
from tensorboard.compat.proto.summary_pb2 import Summary
from tensorboard.compat.proto.tensor_pb2 import TensorProto
from tensorboard.compat.proto.types_pb2 import DT_FLOAT
from tensorboard.plugins.hparams import api_pb2, metadata, plugin_data_pb2
from torch.utils.tensorboard import SummaryWriter

from linlab import tags
from linlab.config_values import selected
from linlab.logger import events_file, remove_if_empty
from linlab.report import value as chosen
from linlab.results import read_results_if_any, read_saved_config
from linlab.stacking.event_writer import DirectWriter, ThreadlessSummaryWriter
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
EXPERIMENT_SUFFIX = ".sweep_experiment"  # the sweep's experiment summary's event file
ONE_OFF_KEYS = ("status", "epochs", "steps", "wall_time_s", "diverged_at_step", "last_finite_loss")
Scalar = float | str | bool


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
    return hparams_from(cfg, hydra_cfg.runtime.choices, hydra_cfg.overrides.task, status)


def hparams_from(
    cfg: Any, choices: Mapping[str, Any], task: Iterable[str], status: str
) -> dict[str, Scalar]:
    """HParams of a run from its config, its group choices and its command-line overrides."""
    values: dict[str, Scalar] = {g: str(choices.get(g) or "none") for g in CHOICE_GROUPS}
    for key in (*CONFIG_KEYS, *overridden_keys(task)):
        values[key] = _scalar(selected(cfg, key))
    values[STATUS] = status
    return values


def metric_names(value: str) -> dict[str, str]:
    """HParams metric name -> results.json key: the sweep's value first, then the others."""
    first = {f"final/{value}": value}
    return first | {n: k for n, k in FINAL_METRICS.items() if k != value}


def scalar_tag(name: str) -> str:
    """The scalar tag of an HParams metric: ``final/val_loss`` → ``value/val_loss``."""
    return tags.value(name.removeprefix("final/"))


def metric_info(name: str) -> api_pb2.MetricInfo:
    """An HParams metric read from its ``value/*`` scalar and shown as ``final/*``."""
    return api_pb2.MetricInfo(name=api_pb2.MetricName(tag=scalar_tag(name)), display_name=name)


def final_metrics(results: Mapping[str, Any], value: str = chosen.DEFAULT) -> dict[str, float]:
    """The ``final/*`` values this run has (a run without a test split has no test loss), the
    sweep's value (a results.json number, or one of its ``theory``) first."""
    metrics = {}
    for name, key in metric_names(value).items():
        number = results.get(key, (results.get("theory") or {}).get(key))
        if isinstance(number, int | float) and not isinstance(number, bool):
            metrics[name] = float(number)  # a diverged run's inf too
    return metrics


def one_off_text(results: Mapping[str, Any]) -> str:
    """The run's one-off values as a Markdown table for TensorBoard's text tab."""
    rows = {key: results[key] for key in ONE_OFF_KEYS if results.get(key) is not None}
    rows |= {tags.theory(k): v for k, v in (results.get("theory") or {}).items() if v is not None}
    lines = ["| key | value |", "|---|---|"]
    lines += [f"| {key} | {_text(value)} |" for key, value in rows.items()]
    return "\n".join(lines)


def write_session(
    writer: SummaryWriter,
    hparams: dict[str, Scalar],
    metrics: dict[str, float],
    step: int,
    text: str = "",
    chosen_keys: Iterable[str] | None = None,
) -> None:
    """One HParams session (start and end records) plus its metric scalars; with
    ``chosen_keys``, also the experiment summary of this one run (a single run): its metrics
    the ``final/*`` values, not every scalar tag, and the keys set on its command line marked
    as differing, which the dashboard lists and ticks first."""
    status = SESSION_STATUS.get(str(hparams.get(STATUS)), "STATUS_FAILURE")
    start = plugin_data_pb2.SessionStartInfo()
    for key, value in hparams.items():
        kind = {bool: "bool_value", str: "string_value"}.get(type(value), "number_value")
        setattr(start.hparams[key], kind, value)
    end = plugin_data_pb2.SessionEndInfo(status=api_pb2.Status.Value(status))
    file_writer = writer._get_file_writer()
    if chosen_keys is not None:
        infos = [_hparam_info(name, [value]) for name, value in hparams.items()]
        for info in infos:
            info.differs = info.name in set(chosen_keys)
        summary = api_pb2.Experiment(
            hparam_infos=infos, metric_infos=[metric_info(name) for name in metrics]
        )
        file_writer.add_summary(_plugin_summary(metadata.EXPERIMENT_TAG, experiment=summary))
    file_writer.add_summary(
        _plugin_summary(metadata.SESSION_START_INFO_TAG, session_start_info=start)
    )
    file_writer.add_summary(_plugin_summary(metadata.SESSION_END_INFO_TAG, session_end_info=end))
    for name, value in metrics.items():
        writer.add_scalar(scalar_tag(name), value, step)
    if text:
        writer.add_text("results", text, step)
    writer.flush()


def log_hparams(loggers: Iterable[Any], cfg: DictConfig, results: Mapping[str, Any]) -> None:
    """Write the session beside each TensorBoard logger's events (same folder, same run).

    Lightning has closed its writer when fit ends, so a fresh writer adds one more event
    file to the folder; TensorBoard reads every file of a folder as that one run. A single
    run (not a sweep's job) also writes its experiment summary; a sweep's is written when the
    sweep ends (``SweepExperiment``), knowing what varied.
    """
    value = chosen.configured(cfg)
    hparams, metrics = hparams_of(cfg, results["status"]), final_metrics(results, value)
    hydra_cfg = HydraConfig.get()
    single_run = hydra_cfg.mode != RunMode.MULTIRUN
    chosen_keys = overridden_keys(hydra_cfg.overrides.task) if single_run else None
    for logger in loggers:
        if isinstance(logger, TensorBoardLogger):
            writer = None
            try:
                writer = ThreadlessSummaryWriter(DirectWriter, log_dir=logger.log_dir)
                with writer:
                    steps = int(results.get("steps") or 0)
                    text = one_off_text(results)
                    write_session(writer, hparams, metrics, steps, text, chosen_keys)
            except OSError as error:  # a full disk: a warning, the run's result stands
                remove_if_empty(events_file(writer))
                not_written(f"TensorBoard HParams session in {logger.log_dir}", error)


def log_failed_hparams(cfg: DictConfig, run_dir: Path) -> None:
    """A failed run still appears in HParams, with status ``failed`` and no metrics."""
    if "tensorboard" not in (cfg.get("logger") or {}):
        return
    with ThreadlessSummaryWriter(DirectWriter, log_dir=str(run_dir)) as writer:
        write_session(writer, hparams_of(cfg, "failed"), {}, 0)


def _scalar(value: Any) -> Scalar:
    """HParams holds numbers, strings and booleans: lists and mappings become their text,
    integers numbers (so that they sort as numbers), None ``null``."""
    if value is None:
        return "null"
    if isinstance(value, DictConfig | ListConfig):
        return str(OmegaConf.to_container(value, resolve=True))
    if isinstance(value, bool | float | str):
        return value
    return float(value) if isinstance(value, int) else str(value)


class SweepExperiment(Callback):
    """Writes the sweep's experiment summary when the sweep ends (``conf/train.yaml``)."""

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        write_experiment(Path(config.hydra.sweep.dir), chosen.configured(config))


def write_experiment(sweep_dir: Path, value: str) -> None:
    """The experiment summary of the sweep's jobs, replacing an earlier one (a resumed sweep);
    nothing when no job wrote a config."""
    sessions = [_job_session(folder.parent) for folder in sorted(sweep_dir.glob("*/.hydra"))]
    if not sessions:
        return
    for old in sweep_dir.glob(f"*{EXPERIMENT_SUFFIX}"):
        old.unlink()
    names = list(dict.fromkeys(name for hparams, _ in sessions for name in hparams))
    infos = [_hparam_info(name, [h[name] for h, _ in sessions if name in h]) for name in names]
    metrics = list(dict.fromkeys(n for _, m in sessions for n in m))
    first = f"final/{value}"
    metrics.sort(key=lambda name: name != first)
    metric_infos = [metric_info(name) for name in metrics]
    try:
        directory, suffix = str(sweep_dir), EXPERIMENT_SUFFIX
        with ThreadlessSummaryWriter(
            DirectWriter, log_dir=directory, filename_suffix=suffix
        ) as writer:
            experiment = api_pb2.Experiment(hparam_infos=infos, metric_infos=metric_infos)
            summary = _plugin_summary(metadata.EXPERIMENT_TAG, experiment=experiment)
            writer._get_file_writer().add_summary(summary)
    except OSError as error:
        not_written(f"TensorBoard HParams experiment in {sweep_dir}", error)


_KEPT: dict[Path, tuple[int, int, Any]] = {}  # see ``remember_saved_job``
_SHARED: dict[tuple[Any, ...], tuple[Any, ...]] = {}  # one tuple for the jobs' equal ones


def remember_saved_job(hydra_dir: Path, hydra_written: Any, config_written: Any) -> None:
    """Keep what the sweep's summary reads of the ``hydra.yaml`` and ``config.yaml`` this
    process just wrote into ``hydra_dir`` (the stacked launcher; ``*_written`` their plain
    values), with each file's modification time and size: the summary reads a file only if it
    changed since. Parsing the two files was most of the summary's cost (~3 ms a job). Kept
    as tuples, the jobs' equal ones shared: a thousand members' peak memory stays as it was."""
    hydra = hydra_written.get("hydra") or {}
    choices = (hydra.get("runtime") or {}).get("choices")
    task = (hydra.get("overrides") or {}).get("task")
    shared_choices = None if choices is None else _shared(tuple(choices.items()))
    _keep(hydra_dir / "hydra.yaml", (shared_choices, None if task is None else tuple(task)))
    keys = _session_keys(task or [])
    pairs = _picked(config_written, keys)
    if pairs is not None:  # the few values read, not the whole config
        names = _shared(tuple(key for key, _ in pairs))
        _keep(hydra_dir / "config.yaml", (keys, names, tuple(value for _, value in pairs)))


def _shared(items: tuple[Any, ...]) -> tuple[Any, ...]:
    return _SHARED.setdefault(items, items)


def _keep(path: Path, value: Any) -> None:
    stat = path.stat()
    _KEPT[path.absolute()] = (stat.st_mtime_ns, stat.st_size, value)


def _kept(path: Path) -> Any:
    """What ``remember_saved_job`` kept of the file, if it is unchanged since; else None."""
    kept = _KEPT.pop(path.absolute(), None)
    if kept is None or not path.is_file():
        return None
    stat = path.stat()
    return kept[2] if kept[:2] == (stat.st_mtime_ns, stat.st_size) else None


def _session_keys(task: Iterable[str]) -> tuple[str, ...]:
    """The config keys a job's HParams and the sweep's value read."""
    return (*CONFIG_KEYS, *overridden_keys(task), chosen.KEY)


def _job_session(folder: Path) -> tuple[dict[str, Scalar], dict[str, float]]:
    """A job's HParams and final metrics, as its run wrote them, from ``.hydra/`` and
    results.json."""
    hydra_dir = folder / ".hydra"
    saved, kept = hydra_dir / "hydra.yaml", _kept(hydra_dir / "hydra.yaml")
    if kept is not None:
        choices, task = dict(kept[0] or ()), list(kept[1] or ())
    else:
        hydra = (read_saved_config(saved) if saved.is_file() else {}).get("hydra") or {}
        choices = (hydra.get("runtime") or {}).get("choices") or {}
        task = (hydra.get("overrides") or {}).get("task") or []
    saved, keys = hydra_dir / "config.yaml", _session_keys(task)
    kept = _kept(saved)
    if kept is not None and kept[0] == keys:
        cfg = OmegaConf.create(_nested(zip(kept[1], kept[2], strict=True)))
    else:
        cfg = (
            OmegaConf.create(_read_keys(read_saved_config(saved), keys)) if saved.is_file() else {}
        )
    results = read_results_if_any(folder)
    value = chosen.configured(cfg)
    hparams = hparams_from(cfg, choices, task, str(results.get("status", "running")))
    return hparams, final_metrics(results, value)


def _read_keys(plain: Any, keys: Iterable[str]) -> Any:
    """A saved config's values (``plain``) at ``keys`` (nested as in the config), where none
    of them interpolates (so each reads alone as in the whole config); else the whole config.
    A job's config is large and ``OmegaConf.create`` of it costs ~8 ms (its data and model
    nodes hold interpolations, so their top-level nodes alone are not enough): a summary pays
    it per job."""
    pairs = _picked(plain, keys)
    return plain if pairs is None else _nested(pairs)


def _picked(plain: Any, keys: Iterable[str]) -> list[tuple[str, Any]] | None:
    """``(key, value)`` for each of ``keys`` that ``plain`` holds; None where one goes through
    a list, a value or an interpolation (then the whole config is read)."""
    if not isinstance(plain, dict):
        return None
    pairs = []
    for key in keys:
        node = plain
        for part in key.split("."):
            if not isinstance(node, dict) or "[" in part:
                return None
            if part not in node:
                break  # selects None, as in the whole config
            node = node[part]
        else:
            if _interpolates(node):
                return None
            pairs.append((key, node))
    return pairs


def _nested(pairs: Iterable[tuple[str, Any]]) -> dict[str, Any]:
    """``{"a.b": 1}`` pairs as ``{"a": {"b": 1}}``."""
    picked: dict[str, Any] = {}
    for key, value in pairs:
        *parents, name = key.split(".")
        into = picked
        for parent in parents:
            into = into.setdefault(parent, {})
        into[name] = value
    return picked


def _interpolates(value: Any) -> bool:
    if isinstance(value, str):
        return "${" in value
    if isinstance(value, dict):
        return any(_interpolates(v) for v in value.values())
    if isinstance(value, list):
        return any(_interpolates(v) for v in value)
    return False


def _hparam_info(name: str, values: list[Scalar]) -> api_pb2.HParamInfo:
    """The key's type (numbers, text or booleans; unset if mixed), domain and whether it
    differs between the jobs."""
    info = api_pb2.HParamInfo(name=name, differs=len(set(values)) > 1)
    kinds = {type(v) for v in values}
    if kinds == {float}:
        info.type = api_pb2.DATA_TYPE_FLOAT64
        info.domain_interval.min_value, info.domain_interval.max_value = min(values), max(values)
    elif kinds == {str}:
        info.type = api_pb2.DATA_TYPE_STRING
        info.domain_discrete.extend(sorted(set(values)))
    elif kinds == {bool}:
        info.type = api_pb2.DATA_TYPE_BOOL
        info.domain_discrete.extend(sorted(set(values)))
    return info


def _plugin_summary(tag: str, **data: Any) -> Summary:
    """A summary the hparams plugin reads: its data in the metadata, an empty tensor."""
    info = metadata.create_summary_metadata(plugin_data_pb2.HParamsPluginData(**data))
    return Summary(
        value=[Summary.Value(tag=tag, metadata=info, tensor=TensorProto(dtype=DT_FLOAT))]
    )


def _text(value: Any) -> str:
    return f"{value:.6g}" if isinstance(value, float) else str(value)
