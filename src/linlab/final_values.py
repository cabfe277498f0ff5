"""What ``results.json`` records of a trained model: the exact loss of each whole split and the
learned parameters (torch; ``linlab.results`` itself stays torch-free for the readers)."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn
from torch.func import functional_call


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
