"""Exact expected learning curves of least squares on a Gaussian design (no bias).

The loss is c/2·mean r², r = xᵀθ - y, y = xᵀβ + ε, x ~ N(0, Σ), Var ε = σ²; the population
risk of θ is R(θ) = c/2·[(θ - β)ᵀΣ(θ - β) + σ²] (``linlab.theory.population_risk``).

Full-batch gradient descent on a training set X (N × d) with Σ̂ = XᵀX/N = V diag(μ) Vᵀ and
g = VᵀXᵀy/N moves each coordinate a = Vᵀθ on its own:
a_t = a₀ + (1 - (1 - ηcμ)^t)/μ · (g - μa₀) (→ t·ηc·(g - μa₀) at μ = 0), so R(θ_t) follows in
closed form from the spectrum and the start point.

One-pass SGD with batch B draws a fresh batch every step. The error e = θ - β moves as
e' = e - ηc/B·Σᵢ xᵢ(xᵢᵀe - εᵢ); with the Gaussian fourth moment E[xxᵀAxxᵀ] = 2ΣAΣ + tr(AΣ)Σ
its second moment M = E[eeᵀ] follows the exact linear recursion
M' = M - ηc(ΣM + MΣ) + η²c²[(1 + 1/B)ΣMΣ + (tr(MΣ) + σ²)Σ/B].
In Σ's eigenbasis (Σ = Q diag(λ) Qᵀ) the diagonal m = diag(QᵀMQ) is closed under it:
m' = (1 - 2ηcλ + η²c²(1 + 1/B)λ²)·m + η²c²(λᵀm + σ²)·λ/B, and E R(θ_t) = c/2·(λᵀm_t + σ²).
"""

from __future__ import annotations

import torch
from torch import Tensor


def gd_risk_curve(
    x: Tensor,
    y: Tensor,
    theta0: Tensor,
    beta: Tensor,
    covariance: Tensor,
    noise_variance: float,
    lr: float,
    steps: int,
    curvature: float = 2.0,
) -> Tensor:
    """R(θ_t) for t = 0 … steps of full-batch GD from θ₀ (closed form, module docstring)."""
    x, y = x.to(torch.float64), y.to(torch.float64).reshape(-1)
    mu, v = torch.linalg.eigh(x.T @ x / len(y))
    mu = mu.clamp_min(0)
    g = v.T @ (x.T @ y) / len(y)
    a0 = v.T @ theta0.to(torch.float64)
    t = torch.arange(steps + 1, dtype=torch.float64).unsqueeze(1)
    rate = lr * curvature
    shrink = 1 - rate * mu
    safe = torch.where(mu > 0, mu, 1.0)
    gain = torch.where(mu > 0, (1 - shrink**t) / safe, t * rate)  # (steps + 1, d)
    a = a0 + gain * (g - mu * a0)
    error = a @ v.T - beta.to(torch.float64)
    quadratic = ((error @ covariance.to(torch.float64)) * error).sum(1)
    return curvature / 2 * (quadratic + noise_variance)


def sgd_expected_risk_curve(
    theta0: Tensor,
    beta: Tensor,
    covariance: Tensor,
    noise_variance: float,
    lr: float,
    batch_size: int,
    steps: int,
    curvature: float = 2.0,
) -> Tensor:
    """E R(θ_t) for t = 0 … steps of one-pass minibatch SGD from θ₀ (recursion above)."""
    lam, q = torch.linalg.eigh(covariance.to(torch.float64))
    m = (q.T @ (theta0.to(torch.float64) - beta.to(torch.float64))) ** 2
    rate = lr * curvature
    keep = 1 - 2 * rate * lam + rate**2 * (1 + 1 / batch_size) * lam**2
    spread = rate**2 * lam / batch_size
    risks = [float(lam @ m)]
    for _ in range(steps):
        m = keep * m + spread * (float(lam @ m) + noise_variance)
        risks.append(float(lam @ m))
    return curvature / 2 * (torch.tensor(risks, dtype=torch.float64) + noise_variance)
