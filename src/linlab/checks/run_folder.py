"""Refuse a run that would destroy or mix into another run's folder, before anything is written.

What the folder holds is read with ``linlab.run_state`` (its lock, a finished run, where a
run goes on from); here is what a command may do with it:

- ``ckpt_path=last`` on a folder that holds no run, or a finished run without ``last.ckpt``,
  is refused; a checkpoint file must be a Lightning checkpoint (read with
  ``torch.load(weights_only=True)``, which runs no code) whose parameters fit the configured
  model.
- A resume must use the config of the run that wrote the checkpoint (its
  ``.hydra/config.yaml``), up to the keys a resume may change (:data:`RESUMABLE_KEYS`);
  otherwise the finished ``results.json`` would be replaced by another experiment's.
- ``hydra.run.dir`` that already holds a finished run (``results.json`` with ``ok``,
  ``diverged`` or ``pruned``, or one that cannot be read) is refused unless the command resumes
  that run or says ``overwrite=true`` (which replaces the folder whole).
- A folder that another process is writing (holds its lock) is refused.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch
from hydra.types import RunMode
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

from linlab.checks.composed import output_dir
from linlab.checks.rules import refusal, show
from linlab.errors import ConfigError
from linlab.results import read_results_if_any, read_saved_config
from linlab.run_state import (
    LAST_CHECKPOINT,
    SAVED_CONFIG,
    check_not_locked,
    checkpoint_run_folder,
    holds_run,
    is_child_rank,
    load_checkpoint,
    resume_from,
    unfinished,
)

SWEEP_CONFIG = "multirun.yaml"  # what Hydra's sweepers write first in a sweep folder
RESUMABLE_KEYS = (
    "ckpt_path",
    "overwrite",
    "trainer.max_epochs",
    "trainer.max_steps",
    "trainer.enable_progress_bar",
    "callbacks",
)


def check(cfg: DictConfig) -> None:
    """Refuse ``cfg`` if its ckpt_path or its output folder would lose or mix results."""
    folder = output_dir(cfg)
    if folder is None or is_child_rank():
        return
    check_not_locked(folder)
    saved = OmegaConf.select(cfg, "hydra.output_subdir", default=None)
    if saved is not None and (os.path.isabs(saved) or os.path.normpath(saved).startswith("..")):
        raise refusal(
            "hydra.output_subdir",
            show(saved),
            "a folder inside it (the default .hydra), or null",
            why="not a folder inside the job's folder, so each job's saved config would land "
            "where another's replaces it",
        )
    sweep = OmegaConf.select(cfg, "hydra.mode") == RunMode.MULTIRUN
    holds_sweep = (folder / SWEEP_CONFIG).exists()
    if sweep != holds_sweep and (holds_sweep or holds_run(folder)):  # a run and a sweep mixed
        key, kind = ("hydra.sweep.dir", "sweep") if sweep else ("hydra.run.dir", "run")
        held = f"a sweep ({SWEEP_CONFIG})" if holds_sweep else "a single run"
        raise ConfigError(
            f"{key}={folder} holds {held}, whose files the {kind} would mix with its own; "
            f"allowed: another {key}"
        )
    if sweep:
        return  # the sweep folder: finished jobs are skipped (linlab.folders)
    ckpt_path = cfg.get("ckpt_path")
    overwrite = bool(cfg.get("overwrite"))
    if ckpt_path == "last" and overwrite:
        raise ConfigError(
            "ckpt_path=last with overwrite=true: overwrite deletes the checkpoint that "
            "ckpt_path=last would resume; allowed: one of them"
        )
    if ckpt_path == "last" and not folder.is_dir():
        raise ConfigError(
            f"ckpt_path=last: {folder} holds no run to resume; allowed: the hydra.run.dir of "
            "an earlier run, or no ckpt_path to start a new one"
        )
    if overwrite and ckpt_path is None:
        return
    checkpoint = resume_from(folder, ckpt_path, single_run=True)
    if checkpoint is not None:
        check_resume(cfg, checkpoint, "last" if ckpt_path is None else str(ckpt_path))
    if not overwrite:
        check_unused(folder, ckpt_path, checkpoint)


def check_unused(folder: Path, ckpt_path: Any, checkpoint: Path | None) -> None:
    """A finished run's folder is written only by a resume of that run (or ``overwrite=true``)."""
    if not holds_run(folder) or unfinished(folder):
        return
    if checkpoint is not None and checkpoint_run_folder(checkpoint) == folder.resolve():
        return
    status = read_results_if_any(folder).get("status", "no results.json")
    if ckpt_path == "last":
        raise ConfigError(
            f"ckpt_path=last: {folder} holds a finished run (status: {status}) but no "
            f"{LAST_CHECKPOINT} to go on from; allowed: another hydra.run.dir, or "
            "overwrite=true to replace it"
        )
    raise ConfigError(
        f"hydra.run.dir={folder} already holds a run (status: {status}); allowed: "
        "ckpt_path=last to resume it, another hydra.run.dir, or overwrite=true to replace it"
    )


def check_resume(cfg: DictConfig, path: Path, ckpt_path: str) -> None:
    """``path`` (a file: ``rules`` checked it) must be a Lightning checkpoint of this run's
    config and model."""
    try:
        checkpoint = load_checkpoint(path)
    except ValueError as error:
        raise ConfigError(f"ckpt_path={ckpt_path}: {error}") from None
    if not isinstance(checkpoint, dict) or "state_dict" not in checkpoint:
        raise ConfigError(f"ckpt_path={ckpt_path}: {path} is not a Lightning checkpoint")
    saved = checkpoint_run_folder(path) / SAVED_CONFIG
    if saved.is_file():
        check_same_config(cfg, saved, ckpt_path)
    check_parameter_shapes(cfg, checkpoint["state_dict"], ckpt_path)


def check_same_config(cfg: DictConfig, saved: Path, ckpt_path: str) -> None:
    """The resumed run's settings must be the checkpoint's, but for :data:`RESUMABLE_KEYS`."""
    before = flatten(read_saved_config(saved))
    now = flatten(OmegaConf.to_container(cfg, resolve=False))
    missing = object()
    differ = [
        key
        for key in sorted(before.keys() | now.keys())
        if not any(key == r or key.startswith(f"{r}.") for r in ("hydra", *RESUMABLE_KEYS))
        and before.get(key, missing) != now.get(key, missing)
    ]
    if differ:
        shown = ", ".join(
            f"{k} ({before.get(k, '<unset>')} → {now.get(k, '<unset>')})" for k in differ[:6]
        )
        more = f" and {len(differ) - 6} more" if len(differ) > 6 else ""
        raise ConfigError(
            f"ckpt_path={ckpt_path} resumes a run made with another config ({saved}): {shown}"
            f"{more}; a resume may change only {', '.join(RESUMABLE_KEYS[2:])}"
        )


def check_parameter_shapes(cfg: DictConfig, state_dict: dict[str, Any], ckpt_path: str) -> None:
    """The checkpoint's ``model.*`` tensors must have the configured model's names and shapes
    (the model builds: the dry build built it)."""
    model = instantiate(cfg.model)
    expected = {f"model.{k}": tuple(v.shape) for k, v in model.state_dict().items()}
    found = {
        k: tuple(v.shape)
        for k, v in state_dict.items()
        if k.startswith("model.") and isinstance(v, torch.Tensor)
    }
    if found != expected:
        raise ConfigError(
            f"ckpt_path={ckpt_path} holds parameters {found}, but the configured model has "
            f"{expected}; allowed: a checkpoint of the same model"
        )


def flatten(values: Any, prefix: str = "") -> dict[str, Any]:
    """``{"a": {"b": 1}}`` → ``{"a.b": 1}``; lists stay whole values."""
    if not isinstance(values, dict) or not values:
        return {prefix: values} if prefix else {}
    flat: dict[str, Any] = {}
    for key, value in values.items():
        flat |= flatten(value, f"{prefix}.{key}" if prefix else str(key))
    return flat
