"""``results.json``: the machine-readable record of one run, written atomically."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.func import functional_call

RESULTS_FILE = "results.json"
TIMING_KEYS = ("wall_time_s",)
UNREADABLE = "unreadable"
FINISHED = ("ok", "diverged", "pruned")  # a run that ended by itself: a result to keep


def write_json_atomic(path: Path, data: dict[str, Any]) -> None:
    """Write to a temporary file beside ``path`` and rename it: readers never see half a file.

    ``mkstemp`` makes the file 0600; it gets the mode a plain ``open`` would give (0666 less
    the umask), so a colleague who can read the folder can read the results too.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        os.fchmod(fd, 0o666 & ~current_umask())
        with os.fdopen(fd, "w") as f:
            json.dump(data, f, indent=2, allow_nan=True)
            f.write("\n")
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise


def current_umask() -> int:
    """The process's umask, from ``/proc`` where there is one (``os.umask`` can only swap it)."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except OSError:
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def read_results(run_dir: Path | str) -> dict[str, Any]:
    return json.loads((Path(run_dir) / RESULTS_FILE).read_text())


def read_results_if_any(run_dir: Path | str) -> dict[str, Any]:
    """``results.json`` of a job that may still be running (or never started): ``{}`` then.

    A file that exists but cannot be used (no permission, broken JSON, not a JSON object)
    reads as ``{"status": "unreadable", "message": <why>}``: it is neither running nor a result.
    """
    path = Path(run_dir) / RESULTS_FILE
    if not path.exists():
        return {}
    try:
        results = read_results(run_dir)
    except (OSError, ValueError) as error:
        return {"status": UNREADABLE, "message": f"{path}: {type(error).__name__}: {error}"}
    if not isinstance(results, dict):
        kind = "null" if results is None else type(results).__name__
        return {"status": UNREADABLE, "message": f"{path}: holds a {kind}, not a JSON object"}
    return results


@torch.no_grad()
def split_losses(model: nn.Module, loss_fn: nn.Module, datamodule: Any) -> dict[str, float | None]:
    """Exact loss of the final parameters on each whole split (None for an empty split).

    Evaluated where the data lie: after fit Lightning has moved the model back to the CPU,
    and copying the parameters is cheaper than copying a GPU-resident dataset.
    """
    losses: dict[str, float | None] = {}
    for name in ("train", "val", "test"):
        if not datamodule.split_size(name):
            losses[f"{name}_loss"] = None
            continue
        x, y = datamodule.splits[name]
        state = {k: v.to(x.device) for k, v in model.state_dict().items()}
        x = x.to(next(model.parameters()).dtype)
        prediction = functional_call(model, state, (x,))
        losses[f"{name}_loss"] = float(loss_fn(prediction, y.to(x)))
    return losses


def learned_parameters(model: nn.Module) -> dict[str, Any]:
    """``weights`` and ``bias`` of a LinearRegression-like model (``w`` and optional ``b``)."""
    params = dict(model.named_parameters())
    if "w" in params:
        bias = params.get("b")
        return {
            "weights": params["w"].detach().double().reshape(-1).tolist(),
            "bias": None if bias is None else float(bias.detach()),
        }
    return {"parameters": {n: p.detach().double().reshape(-1).tolist() for n, p in params.items()}}
