"""The tutorials' hand-written update as a ``torch.optim.Optimizer``.

Written as an optimiser so that Lightning counts its steps, checkpoints it and lets a
scheduler change its learning rate like any other.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

import torch
from torch import Tensor


class ManualGradientDescent(torch.optim.Optimizer):
    """``with torch.no_grad(): p -= lr * p.grad`` for every parameter, exactly as seeds 000-004."""

    def __init__(self, params: Iterable[Tensor], lr: float) -> None:
        super().__init__(params, {"lr": lr})

    @torch.no_grad()
    def step(self, closure: Callable[[], float] | None = None) -> float | None:
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is not None:
                    p -= group["lr"] * p.grad
        return loss
