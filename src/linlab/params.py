"""Names and values of a model's parameters as flat scalars, for logging and results."""

from __future__ import annotations

import torch
from torch import Tensor, nn


def scalar_names(model: nn.Module) -> list[str]:
    """``w0, w1, ..., b`` for LinearRegression: ``<name><i>`` per vector entry, else ``<name>``."""
    names = []
    for name, p in model.named_parameters():
        label = name.replace(".", "_")
        names += [label] if p.dim() == 0 else [f"{label}{i}" for i in range(p.numel())]
    return names


def flat_values(model: nn.Module) -> Tensor:
    """All parameters as one detached 1-D tensor, in ``scalar_names`` order."""
    return torch.cat([p.detach().reshape(-1) for p in model.parameters()])


@torch.no_grad()
def load_flat_values(model: nn.Module, flat: Tensor) -> None:
    """Set the parameters from one 1-D tensor in ``flat_values`` order (the inverse)."""
    offset = 0
    for p in model.parameters():
        p.copy_(flat[offset : offset + p.numel()].view_as(p))
        offset += p.numel()
