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

import math
from dataclasses import asdict, dataclass, field
from functools import cached_property

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
        delta = theta.detach().cpu().to(torch.float64) - self._theta_opt
        return float(0.5 * delta @ self.hessian @ delta)

    @cached_property
    def _theta_opt(self) -> Tensor:
        """θ* as a tensor, made once: ``excess_loss`` runs every epoch for every member."""
        optimum = self.w_opt + ([self.b_opt] if self.b_opt is not None else [])
        return torch.tensor(optimum, dtype=torch.float64)


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


def population_risk(
    w: Tensor,
    b: Tensor | float | None,
    beta: Tensor,
    b_true: float | None,
    covariance: Tensor,
    noise_variance: float,
    curvature: float = 2.0,
) -> float:
    """Expected loss on a fresh sample of a Gaussian design, exactly (no test set, no sampling).

    For x ~ N(0, Σ) and y = xᵀβ + b_true + ε (E ε = 0, Var ε = σ², independent of x), the
    prediction error is xᵀ(w − β) + (b − b_true) − ε, whose three terms are uncorrelated, so
    E (ŷ − y)² = (w − β)ᵀ Σ (w − β) + (b − b_true)² + σ². The loss c/2·(ŷ − y)² takes c/2 of it:
    MSE (c = 2) the sum itself, the half-squared loss (c = 1) half of it.
    """
    risks = population_risks(w, b, beta, b_true, covariance, noise_variance, curvature)
    return risks[0]


def excess_population_risk(
    w: Tensor,
    b: Tensor | float | None,
    beta: Tensor,
    b_true: float | None,
    covariance: Tensor,
    curvature: float = 2.0,
) -> float:
    """``population_risk`` less the irreducible c/2·σ²: c/2·[(w − β)ᵀΣ(w − β) + (b − b_true)²]."""
    return population_risk(w, b, beta, b_true, covariance, 0.0, curvature)


def population_risks(
    w: Tensor,
    b: Tensor | float | None,
    beta: Tensor,
    b_true: float | None,
    covariance: Tensor,
    noise_variance: float,
    curvature: float = 2.0,
) -> tuple[float, float]:
    """``(population_risk, excess_population_risk)`` from one evaluation of (w − β)ᵀΣ(w − β)."""
    delta = w.detach().reshape(-1).cpu().to(torch.float64) - beta.to(torch.float64).reshape(-1)
    offset = float(b) if b is not None else 0.0
    offset -= float(b_true or 0.0)
    error = float(delta @ covariance @ delta) + offset**2
    return curvature / 2 * (error + noise_variance), curvature / 2 * error


def ridge(
    x: Tensor, y: Tensor, bias: bool, weight_decay: float, curvature: float
) -> tuple[Tensor, Tensor | None]:
    """The fixed point of gradient descent with torch's ``weight_decay`` λ on the loss c/2·mean r².

    torch adds λθ to the gradient (the bias included), so a fixed point solves
    c/N·X̃ᵀ(X̃θ − y) + λθ = 0, i.e. θ = (X̃ᵀX̃ + λN/c·I)⁻¹X̃ᵀy: the minimiser of
    L(θ) + λ/2·‖θ‖². For MSE (c = 2) that is ridge regression ‖X̃θ − y‖² + (λN/2)‖θ‖².
    """
    gram, moment = normal_equations(x, y, bias)
    shift = weight_decay * x.shape[0] / curvature
    theta = torch.linalg.solve(gram + shift * torch.eye(gram.shape[0], dtype=gram.dtype), moment)
    return (theta[:-1], theta[-1]) if bias else (theta, None)


def steps_to_target(history: list[tuple[int, float]], target: float | None) -> int | None:
    """The first step whose (step, val loss) pair is below ``target``; None if none is."""
    if target is None:
        return None
    return next((step for step, loss in history if loss < target), None)


def min_norm_excess_risk_isotropic(gamma: float, signal: float, noise_variance: float) -> float:
    """Limit risk of min-norm least squares, isotropic features, γ = d/n → const
    (Hastie, Montanari, Rosset & Tibshirani 2019, arXiv 1903.08560, the isotropic case):
    σ²γ/(1 − γ) below the interpolation threshold, r²(1 − 1/γ) + σ²/(γ − 1) above it, r² = ‖β‖².
    This is E[(xᵀ(w − β))²], the MSE excess risk (c = 2)."""
    if gamma < 1:
        return noise_variance * gamma / (1 - gamma)
    if gamma > 1:
        return signal * (1 - 1 / gamma) + noise_variance / (gamma - 1)
    return math.inf


def fourth_moment_constant(second_moment: Tensor) -> float:
    """β of Ma, Bassily & Belkin for Gaussian features, from their second moment S = E[xxᵀ].

    Their analysis needs E[‖x‖² xxᵀ] ⪯ β·S. For x ~ N(0, Σ), Isserlis' theorem gives
    E[‖x‖² xxᵀ] = tr(Σ)·Σ + 2Σ² ⪯ (tr Σ + 2λ₁)·Σ, so β = tr S + 2λ₁(S) (exact when Σ ∝ I);
    the paper's sample version max‖xᵢ‖² is larger and the bound more conservative.
    """
    eigenvalues = torch.linalg.eigvalsh(second_moment.to(torch.float64))
    return float(eigenvalues.sum() + 2 * eigenvalues[-1])


def minibatch_max_lr(batch: int, lambda_max: float, beta: float, curvature: float = 2.0) -> float:
    """Largest learning rate for which minibatch SGD with batch m contracts, loss c/2·r².

    On linear least squares (interpolation: y = xᵀθ*), with δ = θ − θ* and S = E[xxᵀ], the
    minibatch gradient is g = c·(1/m)Σ xᵢxᵢᵀδ, E g = c·Sδ, and
    E‖g‖² = c²·δᵀ[(m−1)/m·S² + 1/m·E‖x‖²xxᵀ]δ ≤ c²·(β + (m−1)λ₁)/m · δᵀSδ.
    So E‖δ − ηg‖² ≤ ‖δ‖² − 2cη·δᵀSδ + η²c²(β + (m−1)λ₁)/m·δᵀSδ decreases iff
    η < 2m / (c(β + (m−1)λ₁)) = 2η*(m)/c, with η*(m) = m/(β + (m−1)λ₁) the optimal step of
    Ma, Bassily & Belkin 2018 (arXiv 1712.06559) for the half-squared loss (c = 1). For MSE
    (c = 2) the bound is m/(β + (m−1)λ₁), and 1/λ₁ = 2/λmax(H) at full batch (m → ∞), the
    bound ``reference`` reports; at m = 1 it is 2/(cβ).
    """
    return 2 * batch / (curvature * (beta + (batch - 1) * lambda_max))


def critical_batch(lambda_max: float, beta: float) -> float:
    """m* = β/λ₁: below it the largest (and the best) step grows linearly with the batch,
    above it saturates at the full-batch value (Ma, Bassily & Belkin 2018); c cancels."""
    return beta / lambda_max
