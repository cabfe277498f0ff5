"""The closed-form reference a gradient-descent run is measured against.

For a linear model ŷ = X̃θ (X̃ = [X, 1] when the model has a bias) and a loss whose per-sample
penalty has second derivative at most c, the Hessian of the mean loss is at most
H = c/N·X̃ᵀX̃: exactly 2/N·X̃ᵀX̃ for MSE and 1/N·X̃ᵀX̃ for the half-squared loss, everywhere; an
upper bound for Huber (exact while every |r| ≤ δ); nothing for L1, whose penalty is piecewise
linear (H = 0 almost everywhere, so no step size is "stable" in this sense).

Full-batch gradient descent θ ← θ − η∇L on a quadratic contracts along each eigenvector of H
by |1 − ηλ|, so it converges iff η < 2/λmax: that is the largest stable learning rate.
The least-squares solution θ* = argmin ‖X̃θ − y‖² (minimum-norm when X̃ is rank-deficient) is
the minimiser of MSE and of the half-squared loss.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import torch
from torch import Tensor


@dataclass
class Reference:
    """What the training data alone says about the problem (floats and lists, JSON-ready)."""

    w_opt: list[float]
    b_opt: float | None
    optimum_loss: float | None  # loss at θ*, when θ* minimises the loss
    hessian_eig_max: float | None
    hessian_eig_min: float | None
    condition_number: float | None  # None when H is singular
    max_stable_lr: float | None  # 2/λmax for full-batch gradient descent
    hessian: Tensor | None = field(default=None, repr=False)  # H (float64, CPU), not in JSON

    def as_dict(self) -> dict:
        return {key: value for key, value in asdict(self).items() if key != "hessian"}

    def excess_loss(self, w: Tensor, b: Tensor | None) -> float:
        """L(θ) − L(θ*) = ½ (θ − θ*)ᵀ H (θ − θ*), exact for a quadratic loss (∇L(θ*) = 0).

        O(d²) from the Hessian alone: no pass over the training data each epoch.
        """
        theta = torch.cat([w.reshape(-1), b.reshape(-1)]) if b is not None else w.reshape(-1)
        optimum = self.w_opt + ([self.b_opt] if self.b_opt is not None else [])
        delta = theta.detach().cpu().to(torch.float64) - torch.tensor(optimum, dtype=torch.float64)
        return float(0.5 * delta @ self.hessian @ delta)


def design_matrix(x: Tensor, bias: bool) -> Tensor:
    """X̃ = [X, 1] with a bias, else X; float64, on x's device."""
    x = x.to(torch.float64)
    ones = torch.ones(x.shape[0], 1, dtype=x.dtype, device=x.device)
    return torch.cat([x, ones], dim=1) if bias else x


def normal_equations(x: Tensor, y: Tensor, bias: bool) -> tuple[Tensor, Tensor]:
    """X̃ᵀX̃ and X̃ᵀy, computed where the data lives and returned on the CPU (small: d+1)."""
    design = design_matrix(x, bias)
    return (design.T @ design).cpu(), (design.T @ y.to(design).reshape(-1)).cpu()


def least_squares(x: Tensor, y: Tensor, bias: bool) -> tuple[Tensor, Tensor | None]:
    """θ* = (X̃ᵀX̃)⁺X̃ᵀy = X̃⁺y: the weights and (with a bias) the intercept minimising
    ‖X̃θ − y‖², the minimum-norm one when X̃ is rank-deficient."""
    return _solve(*normal_equations(x, y, bias), bias)


def _solve(gram: Tensor, moment: Tensor, bias: bool) -> tuple[Tensor, Tensor | None]:
    theta = torch.linalg.pinv(gram, hermitian=True) @ moment
    return (theta[:-1], theta[-1]) if bias else (theta, None)


def quadratic_loss(x: Tensor, y: Tensor, w: Tensor, b: Tensor | float | None, c: float) -> float:
    """L(w, b) = c/2 · 1/N Σ (x·w + b − y)², in float64 on x's device (MSE: c = 2, half: c = 1)."""
    x = x.to(torch.float64)
    pred = x @ torch.as_tensor(w, dtype=torch.float64).to(x.device)
    if b is not None:
        pred = pred + torch.as_tensor(b, dtype=torch.float64).to(x.device)
    return float(c / 2 * (pred - y.to(x).reshape(-1)).square().mean())


def reference(
    x: Tensor,
    y: Tensor,
    bias: bool,
    curvature: float | None,
    quadratic: bool,
    singular_tol: float = 1e-12,
) -> Reference:
    """The least-squares optimum, its loss and the curvature figures for this data and loss."""
    gram, moment = normal_equations(x, y, bias)
    w_opt, b_opt = _solve(gram, moment, bias)
    eig_max = eig_min = condition = stable_lr = optimum_loss = hessian = None
    if curvature is not None:
        hessian = curvature / x.shape[0] * gram
        eigenvalues = torch.linalg.eigvalsh(hessian)
        eig_min, eig_max = max(float(eigenvalues[0]), 0.0), float(eigenvalues[-1])
        if eig_max > 0:
            stable_lr = 2.0 / eig_max
            if eig_min > singular_tol * eig_max:
                condition = eig_max / eig_min
        if quadratic:
            optimum_loss = quadratic_loss(x, y, w_opt, b_opt, curvature)
    return Reference(
        w_opt=w_opt.tolist(),
        b_opt=None if b_opt is None else float(b_opt),
        optimum_loss=optimum_loss,
        hessian_eig_max=eig_max,
        hessian_eig_min=eig_min,
        condition_number=condition,
        max_stable_lr=stable_lr,
        hessian=hessian,
    )
