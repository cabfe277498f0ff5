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


def write_json_atomic(path: Path, data: dict[str, Any]) -> None:
    """Write to a temporary file beside ``path`` and rename it: readers never see half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w") as f:
            json.dump(data, f, indent=2, allow_nan=True)
            f.write("\n")
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise


def read_results(run_dir: Path | str) -> dict[str, Any]:
    return json.loads((Path(run_dir) / RESULTS_FILE).read_text())


def read_results_if_any(run_dir: Path | str) -> dict[str, Any]:
    """``results.json`` of a job that may still be running (or never started): ``{}`` then."""
    try:
        return read_results(run_dir)
    except (OSError, ValueError):
        return {}


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
