"""Refuse a run that would destroy or mix into another run's folder, before anything is written.

- Where a run goes on from (:func:`resume_from`): ``ckpt_path=last`` and a plain re-run into a
  folder whose run did not finish (killed, interrupted, failed) continue from
  ``<run>/checkpoints/last.ckpt``, the last whole epoch, which resumes bit for bit; without one
  they start again from the start, in the emptied folder (:func:`restarts_from_scratch`).
  ``interrupted.ckpt`` holds the parameters at a Ctrl-C, mid-epoch, for inspection: a resume
  from it would replay its epoch's first minibatches and so not be exact.
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
- A folder that another process is writing is refused: every run (and sweep) holds an
  advisory ``fcntl.flock`` on ``<folder>/.lock`` for its lifetime (:func:`hold_lock`).
"""

from __future__ import annotations

import fcntl
import os
import re
import warnings
from pathlib import Path
from typing import IO, Any

import torch
from hydra.types import RunMode
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

from linlab.checks.composed import output_dir
from linlab.errors import ConfigError
from linlab.results import RESULTS_FILE, read_results_if_any

LOCK_FILE = ".lock"
LAST_CHECKPOINT = Path("checkpoints") / "last.ckpt"
SAVED_CONFIG = Path(".hydra") / "config.yaml"
RESUMABLE_KEYS = (
    "ckpt_path",
    "overwrite",
    "trainer.max_epochs",
    "trainer.max_steps",
    "trainer.enable_progress_bar",
    "callbacks",
)


class FolderBusy(ConfigError):
    """Another process holds the folder's lock."""


def check(cfg: DictConfig) -> None:
    """Refuse ``cfg`` if its ckpt_path or its output folder would lose or mix results."""
    folder = output_dir(cfg)
    if folder is None or is_child_rank():
        return
    check_not_locked(folder)
    if OmegaConf.select(cfg, "hydra.mode") == RunMode.MULTIRUN:
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
        check_resume(cfg, folder, checkpoint, "last" if ckpt_path is None else str(ckpt_path))
    if not overwrite:
        check_unused(folder, ckpt_path, checkpoint)


def is_child_rank() -> bool:
    """A DDP process started by rank 0 (``linlab.ddp``): it writes nothing and checks nothing."""
    return int(os.environ.get("LOCAL_RANK", "0") or 0) > 0


def holds_run(folder: Path) -> bool:
    return (folder / RESULTS_FILE).exists() or (folder / ".hydra").exists()


def unfinished(folder: Path) -> bool:
    """The folder's run stopped before its end: no ``results.json``, or ``interrupted``/``failed``.

    A ``results.json`` that cannot be read may hold a finished result: it is not unfinished.
    """
    status = read_results_if_any(folder).get("status")
    return status is None or status in ("interrupted", "failed")


def resume_from(folder: Path, ckpt_path: Any, single_run: bool) -> Path | None:
    """The checkpoint a run in ``folder`` goes on from; None: from the start.

    ``ckpt_path=last``, and in a single run also a plain re-run into an unfinished run's
    folder, take ``checkpoints/last.ckpt`` if the folder has one. (A sweep's job folders are
    named by their overrides and emptied when not resumed, see ``linlab.folders``.)
    """
    if ckpt_path is not None and ckpt_path != "last":
        return Path(str(ckpt_path))
    if ckpt_path is None and not (single_run and holds_run(folder) and unfinished(folder)):
        return None
    last = folder / LAST_CHECKPOINT
    return last if last.is_file() else None


def restarts_from_scratch(folder: Path, ckpt_path: Any, overwrite: bool) -> bool:
    """Whether a single run empties ``folder`` first: ``overwrite=true``, or an unfinished run
    that has no ``last.ckpt`` to go on from (one set of TensorBoard events, no stale files)."""
    if not holds_run(folder):
        return False
    if overwrite:
        return True
    if ckpt_path not in (None, "last") or not unfinished(folder):
        return False
    return resume_from(folder, ckpt_path, single_run=True) is None


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


def checkpoint_run_folder(checkpoint: Path) -> Path:
    """The run folder that wrote a checkpoint: ``<run>/checkpoints/<name>.ckpt`` → ``<run>``."""
    return checkpoint.resolve().parent.parent


def check_resume(cfg: DictConfig, folder: Path, path: Path, ckpt_path: str) -> None:
    """``path`` must be a Lightning checkpoint of this run's config and model."""
    if not path.is_file():
        raise ConfigError(
            f"ckpt_path={ckpt_path}: no such file; allowed: a checkpoint file, or last in a "
            "run folder"
        )
    try:
        with warnings.catch_warnings():  # torch's pickle-protocol notice: the refusal says it
            warnings.simplefilter("ignore")
            checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:
        raise ConfigError(f"ckpt_path={ckpt_path}: {not_loadable(path, error)}") from None
    if not isinstance(checkpoint, dict) or "state_dict" not in checkpoint:
        raise ConfigError(f"ckpt_path={ckpt_path}: {path} is not a Lightning checkpoint")
    saved = checkpoint_run_folder(path) / SAVED_CONFIG
    if saved.is_file():
        check_same_config(cfg, saved, ckpt_path)
    check_parameter_shapes(cfg, checkpoint["state_dict"], ckpt_path)


def not_loadable(path: Path, error: BaseException) -> str:
    """Why ``torch.load(weights_only=True)`` refused ``path``, in one line that keeps its sense.

    torch's message runs to many lines and says that ``weights_only=False`` would likely load
    the file but could execute code; the line keeps torch's own reason and that warning.
    """
    text = " ".join(str(error).split())
    if "weights_only" not in text:
        first = str(error).strip().splitlines()[0] if str(error).strip() else ""
        return f"{path} is not a checkpoint ({type(error).__name__}: {first})"
    found = re.search(r"WeightsUnpickler error: (.*?)(?: Check the documentation|$)", text)
    reason = found.group(1).split(". ")[0].rstrip(".") if found else type(error).__name__
    return (
        f"{path} is not a checkpoint linlab loads: torch.load(weights_only=True) refused it "
        f"({reason}); loading it without that guard could execute code stored in the file, "
        "so linlab does not"
    )


def check_same_config(cfg: DictConfig, saved: Path, ckpt_path: str) -> None:
    """The resumed run's settings must be the checkpoint's, but for :data:`RESUMABLE_KEYS`."""
    before = flatten(OmegaConf.to_container(OmegaConf.load(saved), resolve=False))
    now = flatten({k: v for k, v in OmegaConf.to_container(cfg, resolve=False).items()})
    now.pop("hydra", None)
    missing = object()
    differ = [
        key
        for key in sorted(before.keys() | now.keys())
        if not key.startswith("hydra.")
        and not any(key == r or key.startswith(f"{r}.") for r in RESUMABLE_KEYS)
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
    """The checkpoint's ``model.*`` tensors must have the configured model's names and shapes."""
    try:
        model = instantiate(cfg.model)
    except Exception:
        return  # the config checks name a model that cannot be built
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


def check_not_locked(folder: Path) -> None:
    pid = lock_holder(folder)
    if pid is not None:
        raise FolderBusy(
            f"{folder} is being written by another process (pid {pid or '?'}, lock "
            f"{folder / LOCK_FILE}); allowed: wait for it to end, or choose another folder"
        )


def lock_holder(folder: Path) -> int | None:
    """The pid holding ``<folder>/.lock`` (0 if unknown), or None when nobody holds it."""
    try:
        fd = os.open(folder / LOCK_FILE, os.O_RDONLY)
    except OSError:
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        text = os.read(fd, 32).decode(errors="replace").strip()
        return int(text) if text.isdigit() else 0
    finally:
        os.close(fd)
    return None


def hold_lock(folder: Path) -> IO[str]:
    """Take ``<folder>/.lock`` for this process's lifetime (keep the returned file open).

    Raises ``FolderBusy`` if another process holds it; the kernel releases the lock when the
    process ends, however it ends, so a killed run leaves no stale lock.
    """
    folder.mkdir(parents=True, exist_ok=True)
    handle = open(folder / LOCK_FILE, "a+")  # noqa: SIM115 - held open for the run's lifetime
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.close()
        check_not_locked(folder)
        raise FolderBusy(f"{folder} is being written by another process") from None
    handle.truncate(0)
    handle.write(f"{os.getpid()}\n")
    handle.flush()
    return handle
