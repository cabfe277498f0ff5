"""Linear models as plain ``nn.Module``s.

``LinearRegression`` keeps its parameters as a weight vector ``w`` (shape ``(d,)``) and a
scalar bias ``b`` so that their names read like the maths (``params/w0``, ``params/b``) and a
tutorial's starting point can be written down directly. It is also binary logistic
regression (``model=logistic``): with the logistic loss its score ŷ is the log-odds of class 1.
``SoftmaxRegression`` (``model=softmax``) has K scores per sample, for K classes.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import torch
from torch import Tensor, nn

from linlab.choices import INIT_MODES


@torch.no_grad()
def initialize(model: nn.Module, init: str, init_std: float, alternatives: str = "") -> None:
    """``default`` (nn.Linear's uniform ±1/√d), ``zeros`` or ``normal(0, init_std)`` for every
    parameter of a linear model with ``model.n_features`` inputs."""
    if init == "default":
        bound = 1.0 / math.sqrt(model.n_features)
        for p in model.parameters():
            p.uniform_(-bound, bound)
    elif init == "zeros":
        for p in model.parameters():
            p.zero_()
    elif init == "normal":
        for p in model.parameters():
            p.normal_(0.0, init_std)
    else:
        raise ValueError(f"model.init={init!r} is not one of {', '.join(INIT_MODES)}{alternatives}")


class LinearRegression(nn.Module):
    """ŷ = x·w + b.

    Args:
        n_features: input dimension d.
        bias: learn the intercept b (False: b is absent and ŷ = x·w).
        init: ``default`` (U(-1/√d, 1/√d) for w and b, like ``nn.Linear``), ``zeros``,
            ``normal`` (N(0, init_std²)), or explicit values ``{weight: [...], bias: ...}``.
        init_std: standard deviation for ``init=normal``.
    """

    def __init__(
        self,
        n_features: int,
        bias: bool = True,
        init: str | Mapping[str, float | Sequence[float]] = "default",
        init_std: float = 0.01,
    ) -> None:
        super().__init__()
        self.n_features = n_features
        self.w = nn.Parameter(torch.empty(n_features))
        self.b = nn.Parameter(torch.empty(())) if bias else None
        self.reset_parameters(init, init_std)

    @torch.no_grad()
    def reset_parameters(self, init: str | Mapping, init_std: float = 0.01) -> None:
        if isinstance(init, Mapping):
            self._set_explicit(init)
        else:
            initialize(self, init, init_std, " or explicit values {weight: [...], bias: ...}")

    def _set_explicit(self, init: Mapping) -> None:
        unknown = set(init) - {"weight", "bias"}
        if unknown:
            raise ValueError(
                f"model.init has unknown keys {sorted(unknown)}; allowed: weight, bias"
            )
        weight = torch.as_tensor(init.get("weight", [0.0] * self.n_features), dtype=self.w.dtype)
        weight = weight.reshape(-1)
        if weight.numel() != self.n_features:
            raise ValueError(
                f"model.init.weight has {weight.numel()} values but n_features={self.n_features}"
            )
        self.w.copy_(weight)
        if self.b is not None:
            self.b.fill_(float(init.get("bias", 0.0)))
        elif init.get("bias") is not None:
            raise ValueError("model.init.bias is set but model.bias=false")

    def forward(self, x: Tensor) -> Tensor:
        y = x @ self.w
        return y if self.b is None else y + self.b

    def analytic_gradients(self, x: Tensor, dloss_dpred: Tensor) -> dict[str, Tensor]:
        """∂L/∂w = xᵀ·g and ∂L/∂b = Σ g, where g = ∂L/∂ŷ comes from the loss."""
        grads = {"w": x.transpose(-1, -2) @ dloss_dpred}
        if self.b is not None:
            grads["b"] = dloss_dpred.sum(-1)
        return grads


class SoftmaxRegression(nn.Module):
    """ŷ = W·x + b ∈ R^K: one score per class (softmax(ŷ) are the class probabilities).

    Args:
        n_features: input dimension d.
        n_classes: K, the number of scores.
        bias: learn the intercepts b ∈ R^K.
        init: ``default`` (U(-1/√d, 1/√d), like ``nn.Linear``), ``zeros`` or ``normal``.
        init_std: standard deviation for ``init=normal``.
    """

    def __init__(
        self,
        n_features: int,
        n_classes: int = 2,
        bias: bool = True,
        init: str = "default",
        init_std: float = 0.01,
    ) -> None:
        super().__init__()
        if n_classes < 2:
            raise ValueError(f"model.n_classes={n_classes} must be at least 2")
        self.n_features, self.n_classes = n_features, n_classes
        self.W = nn.Parameter(torch.empty(n_classes, n_features))
        self.b = nn.Parameter(torch.empty(n_classes)) if bias else None
        self.reset_parameters(init, init_std)

    def reset_parameters(self, init: str, init_std: float = 0.01) -> None:
        initialize(self, init, init_std)

    def forward(self, x: Tensor) -> Tensor:
        y = x @ self.W.transpose(-1, -2)
        return y if self.b is None else y + self.b

    def analytic_gradients(self, x: Tensor, dloss_dpred: Tensor) -> dict[str, Tensor]:
        """∂L/∂W = Gᵀ·x and ∂L/∂b = Σ_samples G, where G = ∂L/∂ŷ (N, K) comes from the loss."""
        grads = {"W": dloss_dpred.transpose(-1, -2) @ x}
        if self.b is not None:
            grads["b"] = dloss_dpred.sum(-2)
        return grads
