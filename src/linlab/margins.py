"""Classification metrics and the hard-margin SVM that gradient descent converges to.

Labels are class indices. A binary classifier scores ŷ = θ̃ᵀx̃ with x̃ = (x, 1) when it has a
bias (θ̃ = (w, b)) and x̃ = x otherwise; with s = 2y - 1 its normalized margin on a split is
min_i sᵢθ̃ᵀx̃ᵢ/‖θ̃‖. For K scores it is min_i (ŷ_(i,yᵢ) - max_(k≠yᵢ) ŷ_(i,k))/‖(W, b)‖_F.

On separable data, gradient descent on the logistic loss converges in direction to the
max-margin direction û = argmax_(‖θ̃‖=1) min_i sᵢθ̃ᵀx̃ᵢ, with the angle to it shrinking like
1/log t (Soudry, Hoffer, Nacson, Gunasekar & Srebro 2018, "The implicit bias of gradient
descent on separable data"). A bias is one more weight on a constant feature, so with a bias
û is the max-margin direction of the augmented x̃.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor


def accuracy(scores: Tensor, labels: Tensor) -> float:
    """Share of samples classified right: sign(ŷ) for one score (ŷ = 0 counts as class 1),
    argmax for K scores."""
    predicted = scores.argmax(-1) if scores.dim() == 2 else (scores >= 0).long()
    return float((predicted == labels.long()).double().mean())


def normalized_margin(scores: Tensor, labels: Tensor, parameter_norm: float) -> float:
    """min_i of each sample's margin over the parameters' norm (see the module docstring);
    nan at θ = 0, where no direction is chosen yet."""
    labels = labels.long()
    if scores.dim() == 2:
        own = scores.gather(1, labels.unsqueeze(1)).squeeze(1)
        others = scores.scatter(1, labels.unsqueeze(1), -math.inf).amax(1)
        margins = own - others
    else:
        margins = (2 * labels - 1) * scores
    return float(margins.min()) / parameter_norm if parameter_norm > 0 else math.nan


def augmented(x: Tensor, bias: bool) -> Tensor:
    """x̃ = (x, 1) when the model has a bias, x otherwise (float64)."""
    x = x.to(torch.float64)
    return torch.cat([x, torch.ones(len(x), 1, dtype=x.dtype)], 1) if bias else x


@dataclass
class MaxMargin:
    """The hard-margin SVM of the (augmented) samples: unit direction û and margin γ."""

    direction: Tensor
    margin: float
    support: list[int]


def max_margin(x: Tensor, labels: Tensor, bias: bool) -> MaxMargin | None:
    """The hard-margin SVM min ½‖θ‖² s.t. sᵢθᵀx̃ᵢ ≥ 1, solved exactly as a least-distance
    program (Lawson & Hanson 1974, ch. 23): with E = [Aᵀ; 1ᵀ], Aᵢ = sᵢx̃ᵢ, f = (0, …, 0, 1),
    the non-negative least squares u = argmin_(u ≥ 0) ‖Eu - f‖ gives r = Eu - f and
    θ = -r₁..d / r_(d+1).
    γ = 1/‖θ‖, û = θ/‖θ‖; the support vectors are the samples with uᵢ > 0. None when the samples
    are not linearly separable (then r = 0)."""
    a = augmented(x, bias) * (2 * labels.to(torch.float64) - 1).unsqueeze(1)
    e = torch.cat([a.T, torch.ones(1, len(a), dtype=a.dtype)])
    f = torch.zeros(len(e), dtype=a.dtype)
    f[-1] = 1.0
    u = nnls(e, f)
    r = e @ u - f
    if float(r[-1]) > -1e-9:
        return None
    theta = -r[:-1] / r[-1]
    norm = float(torch.linalg.vector_norm(theta))
    return MaxMargin(theta / norm, 1.0 / norm, (u > 0).nonzero().squeeze(1).tolist())


def nnls(e: Tensor, f: Tensor, max_iter: int = 10_000) -> Tensor:
    """argmin_(u ≥ 0) ‖eu - f‖ by Lawson and Hanson's active-set algorithm (exact, finite):
    free the column of largest gradient eᵀ(f - eu), solve the free columns by least squares,
    step back to the boundary while a free coefficient would turn negative."""
    n = e.shape[1]
    tol = 10 * torch.finfo(e.dtype).eps * float(torch.linalg.matrix_norm(e, 1)) * max(e.shape)
    u = torch.zeros(n, dtype=e.dtype)
    free = torch.zeros(n, dtype=torch.bool)
    for _ in range(max_iter):
        gradient = torch.where(free, -torch.inf, e.T @ (f - e @ u))
        if bool(free.all()) or float(gradient.max()) <= tol:
            return u
        free[int(gradient.argmax())] = True
        while True:
            index = free.nonzero().squeeze(1)
            z = torch.zeros(n, dtype=e.dtype)
            z[index] = torch.linalg.lstsq(e[:, index], f.unsqueeze(1)).solution.squeeze(1)
            if bool((z[index] > tol).all()):
                u = z
                break
            blocked = index[z[index] <= tol]
            step = float((u[blocked] / (u[blocked] - z[blocked])).min())
            u = u + step * (z - u)
            free &= u > tol
            u = torch.where(free, u, 0.0)
    raise RuntimeError(f"nnls did not converge in {max_iter} iterations")


def angle(theta: Tensor, direction: Tensor) -> float:
    """The angle (radians) between θ and the unit vector û: arccos(θᵀû/‖θ‖); nan at θ = 0."""
    theta = theta.to(torch.float64)
    norm = float(torch.linalg.vector_norm(theta))
    if norm == 0:
        return math.nan
    return math.acos(min(1.0, max(-1.0, float(theta @ direction) / norm)))
