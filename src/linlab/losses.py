"""Losses, each the mean over the batch of a per-sample penalty.

Regression losses penalise the residual r = ŷ - y. Classification losses take class indices
y ∈ {0, …, K-1} as targets: the binary ones (``LogisticLoss``, ``HingeLoss``,
``SquaredHingeLoss``) penalise the margin m = s·ŷ of one score ŷ with the sign s = 2y - 1 ∈
{-1, +1}; ``CrossEntropyLoss`` takes K scores per sample. Every loss also gives its gradient
with respect to the predictions, ∂L/∂ŷ, in closed form: with a linear model that is all the
analytic gradient needs (see ``LinearRegression``).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

_WIDE = (torch.float32, torch.float64)


def _aligned(pred: Tensor, target: Tensor) -> tuple[Tensor, Tensor]:
    """Return pred and target as the same shape, in float32 or wider.

    A (N,) target against (N, 1) predictions would broadcast into an (N, N) loss (seed 004
    shows that trap); equal sizes are reshaped, anything else is refused.

    Under autocast (``16-mixed``, ``bf16-mixed``) predictions arrive in float16/bfloat16, and
    autocast does not promote a hand-written ``square().mean()``. In those formats r² overflows
    float16 beyond |r| ≈ 256, and bfloat16's 8-bit mantissa makes a mean over N terms lose
    about log2(N) of its bits; so the loss, and the ∂L/∂ŷ it sends back, are computed in
    float32 or wider (checked in tests/test_precision.py).
    """
    if pred.shape == target.shape and pred.dtype == target.dtype and pred.dtype in _WIDE:
        return pred, target  # the common case, on every training step: nothing to do
    if pred.shape != target.shape:
        if pred.numel() != target.numel():
            raise ValueError(
                f"loss got predictions of shape {tuple(pred.shape)} and targets of shape "
                f"{tuple(target.shape)}: they must hold the same number of values"
            )
        target = target.reshape(pred.shape)
    dtype = torch.promote_types(torch.promote_types(pred.dtype, target.dtype), torch.float32)
    return pred.to(dtype), target.to(dtype)


class RegressionLoss(nn.Module):
    """Base class: ``forward`` is the mean penalty, ``grad_wrt_prediction`` its ∂L/∂ŷ.

    ``curvature`` is the largest second derivative c of the per-sample penalty, so that for a
    linear model the Hessian of the loss is at most c/N·X̃ᵀX̃ (``linlab.theory`` uses it);
    None when the penalty has no useful curvature bound. ``quadratic`` says that c is exact
    everywhere, so the least-squares solution is the loss's minimiser.
    """

    curvature: float | None = None
    quadratic: bool = False

    def forward(self, pred: Tensor, target: Tensor) -> Tensor:
        pred, target = _aligned(pred, target)
        return self.per_sample(pred, target).mean()

    def per_sample(self, pred: Tensor, target: Tensor) -> Tensor:
        """The penalty of each sample (shapes broadcast: stacked members' (K, B) predictions)."""
        return self.penalty(pred - target)

    def grad_wrt_prediction(self, pred: Tensor, target: Tensor) -> Tensor:
        pred, target = _aligned(pred, target)
        return self.penalty_derivative(pred - target) / pred.numel()

    def penalty(self, residual: Tensor) -> Tensor:
        raise NotImplementedError

    def penalty_derivative(self, residual: Tensor) -> Tensor:
        raise NotImplementedError


class MSELoss(RegressionLoss):
    """L = 1/N Σ r²;  ∂L/∂ŷ = 2r/N."""

    curvature = 2.0
    quadratic = True

    def penalty(self, residual: Tensor) -> Tensor:
        return residual.square()

    def penalty_derivative(self, residual: Tensor) -> Tensor:
        return 2.0 * residual


class HalfSquaredLoss(RegressionLoss):
    """L = 1/N Σ r²/2 (seed 004's squared loss, averaged);  ∂L/∂ŷ = r/N."""

    curvature = 1.0
    quadratic = True

    def penalty(self, residual: Tensor) -> Tensor:
        return 0.5 * residual.square()

    def penalty_derivative(self, residual: Tensor) -> Tensor:
        return residual


class L1Loss(RegressionLoss):
    """L = 1/N Σ |r|;  ∂L/∂ŷ = sign(r)/N (0 at r = 0, as autograd takes it)."""

    def penalty(self, residual: Tensor) -> Tensor:
        return residual.abs()

    def penalty_derivative(self, residual: Tensor) -> Tensor:
        return residual.sign()


class HuberLoss(RegressionLoss):
    """L = 1/N Σ h(r), h(r) = r²/2 for |r| ≤ δ, δ(|r| - δ/2) beyond;  ∂L/∂ŷ = clamp(r, -δ, δ)/N."""

    curvature = 1.0

    def __init__(self, delta: float = 1.0) -> None:
        super().__init__()
        self.delta = delta

    def penalty(self, residual: Tensor) -> Tensor:
        return nn.functional.huber_loss(
            residual, torch.zeros_like(residual), reduction="none", delta=self.delta
        )

    def penalty_derivative(self, residual: Tensor) -> Tensor:
        return residual.clamp(-self.delta, self.delta)


class MarginLoss(RegressionLoss):
    """Binary classification: L = 1/N Σ φ(mᵢ), mᵢ = sᵢŷᵢ, sᵢ = 2yᵢ - 1 for labels yᵢ ∈ {0, 1};
    ∂L/∂ŷᵢ = sᵢφ'(mᵢ)/N. Subclasses give φ (``phi``) and φ' (``phi_derivative``)."""

    classifier = True

    def forward(self, pred: Tensor, target: Tensor) -> Tensor:
        if pred.dim() == 2 and pred.shape[1] > 1:
            raise ValueError(
                f"{type(self).__name__} needs one score per sample (model=logistic), got "
                f"predictions of shape {tuple(pred.shape)}: for K scores use loss=cross_entropy"
            )
        return super().forward(pred, target)

    def per_sample(self, pred: Tensor, target: Tensor) -> Tensor:
        return self.phi(pred * (2 * target - 1))

    def grad_wrt_prediction(self, pred: Tensor, target: Tensor) -> Tensor:
        pred, target = _aligned(pred, target)
        sign = 2 * target - 1
        return sign * self.phi_derivative(pred * sign) / pred.numel()

    def phi(self, margin: Tensor) -> Tensor:
        raise NotImplementedError

    def phi_derivative(self, margin: Tensor) -> Tensor:
        raise NotImplementedError


class LogisticLoss(MarginLoss):
    """L = 1/N Σ log(1 + e^(-m)) (the negative log-likelihood of P(y=1) = σ(ŷ));
    ∂L/∂ŷ = -s·σ(-m)/N."""

    curvature = 0.25  # φ'' = σ(m)σ(-m) ≤ 1/4

    def phi(self, margin: Tensor) -> Tensor:
        return nn.functional.softplus(-margin)

    def phi_derivative(self, margin: Tensor) -> Tensor:
        return -torch.sigmoid(-margin)


class HingeLoss(MarginLoss):
    """L = 1/N Σ max(0, 1 - m);  ∂L/∂ŷ = -s·1[m < 1]/N (0 at m = 1, as autograd takes it)."""

    def phi(self, margin: Tensor) -> Tensor:
        return (1 - margin).clamp_min(0)

    def phi_derivative(self, margin: Tensor) -> Tensor:
        return -(margin < 1).to(margin.dtype)


class SquaredHingeLoss(MarginLoss):
    """L = 1/N Σ max(0, 1 - m)²;  ∂L/∂ŷ = -2s·max(0, 1 - m)/N."""

    curvature = 2.0

    def phi(self, margin: Tensor) -> Tensor:
        return (1 - margin).clamp_min(0).square()

    def phi_derivative(self, margin: Tensor) -> Tensor:
        return -2 * (1 - margin).clamp_min(0)


class CrossEntropyLoss(nn.Module):
    """K classes, scores ŷ ∈ R^K per sample: L = 1/N Σ [log Σ_k e^(ŷ_k) - ŷ_y];
    ∂L/∂ŷ = (softmax(ŷ) - onehot(y))/N. Computed in float32 or wider, as ``RegressionLoss``."""

    classifier = True
    curvature: float | None = None
    quadratic = False

    def forward(self, pred: Tensor, target: Tensor) -> Tensor:
        if pred.dim() != 2:
            raise ValueError(
                "CrossEntropyLoss needs one score per class, predictions of shape (N, K) "
                f"(model=softmax), got shape {tuple(pred.shape)}: for one score use loss=logistic"
            )
        return self.per_sample(*_wide(pred, target)).mean()

    def per_sample(self, pred: Tensor, target: Tensor) -> Tensor:
        """(…, N) penalties of (…, N, K) scores; targets (N,) or (…, N) class indices."""
        index = target.long().expand(pred.shape[:-1]).unsqueeze(-1)
        return torch.logsumexp(pred, -1) - pred.gather(-1, index).squeeze(-1)

    def grad_wrt_prediction(self, pred: Tensor, target: Tensor) -> Tensor:
        pred, target = _wide(pred, target)
        onehot = nn.functional.one_hot(target.long(), pred.shape[-1]).to(pred.dtype)
        return (pred.softmax(-1) - onehot) / pred.shape[0]


def _wide(pred: Tensor, target: Tensor) -> tuple[Tensor, Tensor]:
    """Scores in float32 or wider (see ``_aligned``); targets as they are (class indices)."""
    return pred.to(torch.promote_types(pred.dtype, torch.float32)), target.reshape(-1)
