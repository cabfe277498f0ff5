"""Check a model/loss pair's gradient three ways, in float64.

    from linlab.gradcheck import check_gradients
    assert check_gradients(MyModel(3), MSELoss(), x, y).max_difference < 1e-8

The three ways: the closed form (``model.analytic_gradients(x, loss.grad_wrt_prediction(ŷ, y))``,
where the pair defines it), autograd, and central finite differences
∂L/∂θᵢ ≈ (L(θ + h·eᵢ) − L(θ − h·eᵢ)) / 2h, which needs nothing from the code under test.
"""

from __future__ import annotations

import copy
import itertools
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor, nn


@dataclass
class GradientCheck:
    """Each way's gradient by parameter name; ``analytic`` is None where the pair has none."""

    autograd: dict[str, Tensor]
    finite_difference: dict[str, Tensor]
    analytic: dict[str, Tensor] | None

    def ways(self) -> dict[str, dict[str, Tensor]]:
        ways = {"autograd": self.autograd, "finite_difference": self.finite_difference}
        if self.analytic is not None:
            ways["analytic"] = self.analytic
        return ways

    def differences(self) -> dict[tuple[str, str], float]:
        """Largest absolute difference over all parameters, for every pair of ways."""
        return {
            (a, b): max((ga[n] - gb[n]).abs().max().item() for n in ga)
            for (a, ga), (b, gb) in itertools.combinations(self.ways().items(), 2)
        }

    @property
    def max_difference(self) -> float:
        return max(self.differences().values())

    def __str__(self) -> str:
        pairs = ", ".join(f"{a} vs {b} {d:.2e}" for (a, b), d in self.differences().items())
        return f"gradient check: largest difference {self.max_difference:.2e} ({pairs})"


def finite_difference_gradient(
    function: Callable[[Tensor], Tensor], point: Tensor, step: float = 1e-6
) -> Tensor:
    """Central differences of a scalar ``function`` at ``point`` (any shape), in float64."""
    point = point.detach().to(torch.float64)
    grad = torch.empty_like(point)
    flat, flat_grad = point.reshape(-1), grad.reshape(-1)
    with torch.no_grad():
        for i in range(flat.numel()):
            shifted = flat.clone()
            shifted[i] += step
            above = function(shifted.view_as(point))
            shifted[i] -= 2 * step
            below = function(shifted.view_as(point))
            flat_grad[i] = (above - below) / (2 * step)
    return grad


def check_gradients(
    model: nn.Module, loss: nn.Module, x: Tensor, y: Tensor, step: float = 1e-6
) -> GradientCheck:
    """Gradients of ``loss(model(x), y)`` w.r.t. every parameter, by up to three ways.

    Works on float64 copies; the model and loss passed in are left untouched.
    """
    model = copy.deepcopy(model).double()
    x, y = torch.as_tensor(x, dtype=torch.float64), torch.as_tensor(y, dtype=torch.float64)
    params = dict(model.named_parameters())

    model.zero_grad(set_to_none=True)
    loss(model(x), y).backward()
    autograd = {name: p.grad.detach().clone() for name, p in params.items()}

    def loss_with(name: str) -> Callable[[Tensor], Tensor]:
        def evaluate(value: Tensor) -> Tensor:
            saved = params[name].detach().clone()
            params[name].copy_(value)
            result = loss(model(x), y)
            params[name].copy_(saved)
            return result

        return evaluate

    finite = {
        name: finite_difference_gradient(loss_with(name), p, step) for name, p in params.items()
    }

    analytic = None
    if hasattr(model, "analytic_gradients") and hasattr(loss, "grad_wrt_prediction"):
        with torch.no_grad():
            pred = model(x)
            analytic = model.analytic_gradients(x, loss.grad_wrt_prediction(pred, y))
        analytic = {name: analytic[name].reshape(p.shape) for name, p in params.items()}
    return GradientCheck(autograd, finite, analytic)
