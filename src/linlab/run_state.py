"""A run folder's state at run time: who writes it (its lock), whether its run finished, and
where a run in it goes on from.

- Every run (and sweep) holds an advisory ``fcntl.flock`` on ``<folder>/.lock`` for its
  lifetime (:func:`hold_lock`); the kernel drops it when the process ends, however it ends.
- ``ckpt_path=last`` and a plain re-run into a folder whose run did not finish (killed,
  interrupted, failed) continue from ``<run>/checkpoints/last.ckpt``, the last whole epoch,
  which resumes bit for bit (:func:`resume_from`); without one they start again from the
  start, in the emptied folder (:func:`restarts_from_scratch`). ``interrupted.ckpt`` holds
  the parameters at a Ctrl-C, mid-epoch, for inspection: a resume from it would replay its
  epoch's first minibatches and so not be exact.
- A checkpoint is read with ``torch.load(weights_only=True)`` only (:func:`load_checkpoint`):
  one that needs unpickling could run code stored in it, and is refused.

What a command may do with a folder in this state is checked before it runs
(``linlab.checks.run_folder``).
"""

from __future__ import annotations

import fcntl
import os
import re
import warnings
from pathlib import Path
from typing import IO, Any

from linlab.errors import ConfigError
from linlab.results import RESULTS_FILE, read_results_if_any

LOCK_FILE = ".lock"
LAST_CHECKPOINT = Path("checkpoints") / "last.ckpt"
SAVED_CONFIG = Path(".hydra") / "config.yaml"


class FolderBusy(ConfigError):
    """Another process holds the folder's lock."""


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


def checkpoint_run_folder(checkpoint: Path) -> Path:
    """The run folder that wrote a checkpoint: ``<run>/checkpoints/<name>.ckpt`` → ``<run>``."""
    return checkpoint.resolve().parent.parent


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


def load_checkpoint(path: Path) -> Any:
    """A checkpoint's tensors and plain values, read with ``torch.load(weights_only=True)``,
    which runs no code; ``ValueError`` (one line) for a file that is no checkpoint or that only
    unpickling could load."""
    import torch

    try:
        with warnings.catch_warnings():  # torch's pickle-protocol notice: the refusal says it
            warnings.simplefilter("ignore")
            return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:
        raise ValueError(not_loadable(path, error)) from None


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
