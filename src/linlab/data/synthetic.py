"""Synthetic datasets, each drawn from its own seeded ``torch.Generator``: regression
(``line_1d``, ``gaussian``, ``fixed``) and classification (``gaussian_mixture``, ``separable``,
whose targets are class indices 0 … K-1).

Every generator returns a ``SyntheticData`` that remembers the parameters it was made
with (``true_weights``, ``true_bias``), so runs can report how far they landed from them; a
Gaussian design also carries its population covariance Σ and noise variance σ², so that the
population risk is known exactly (``linlab.theory.population_risk``).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import Tensor

from linlab.choices import COVARIANCES, GENERATOR_NAMES, NOISE_KINDS, WEIGHT_KINDS


@dataclass
class SyntheticData:
    x: Tensor  # (n, d)
    y: Tensor  # (n,)
    true_weights: list[float] | None = None
    true_bias: float | None = None
    covariance: Tensor | None = None  # Σ = E[xxᵀ] (d, d), float64, for Gaussian designs
    noise_variance: float | None = None  # σ² = Var ε

    def __len__(self) -> int:
        return self.y.numel()


def _true_weights(weights: Sequence[float] | None, n_features: int, gen: torch.Generator) -> Tensor:
    if weights is None:
        return torch.randn(n_features, generator=gen, dtype=torch.float64)
    w = torch.as_tensor(list(weights), dtype=torch.float64).reshape(-1)
    if w.numel() != n_features:
        raise ValueError(f"data.weights has {w.numel()} values but data.n_features={n_features}")
    return w


def _finish(x: Tensor, w: Tensor, bias: float, noise: float, gen: torch.Generator) -> SyntheticData:
    y = x @ w + bias + noise * torch.randn(x.shape[0], generator=gen, dtype=torch.float64)
    return SyntheticData(x, y, w.tolist(), float(bias))


def line_1d(
    n_samples: int = 61,
    x_range: Sequence[float] = (-3.0, 3.0),
    spacing: str = "linspace",
    weights: Sequence[float] | None = (1.0,),
    bias: float = 0.0,
    noise: float = 0.1,
    seed: int = 0,
) -> SyntheticData:
    """y = w·x + b + noise·ε with x on ``linspace(lo, hi, n)`` or drawn ``uniform`` in [lo, hi]."""
    gen = torch.Generator().manual_seed(seed)
    lo, hi = (float(v) for v in x_range)
    if spacing == "linspace":
        x = torch.linspace(lo, hi, n_samples, dtype=torch.float64)
    elif spacing == "uniform":
        x = lo + (hi - lo) * torch.rand(n_samples, generator=gen, dtype=torch.float64)
    else:
        raise ValueError(f"data.spacing={spacing!r} is not one of linspace, uniform")
    return _finish(x.unsqueeze(1), _true_weights(weights, 1, gen), bias, noise, gen)


def spectrum(
    kind: str, n_features: int, decay: float, condition_number: float, spike: float, n_spikes: int
) -> Tensor:
    """Eigenvalues λ₁ ≥ … ≥ λ_d of Σ, largest 1 (``spiked``: 1 + spike):

    identity λ_i = 1; power_law λ_i = i^(−a); condition λ_i = κ^(−(i−1)/(d−1)) (log-uniform
    from 1 to 1/κ); spiked λ_i = 1 + spike for i ≤ n_spikes, else 1.
    """
    i = torch.arange(1, n_features + 1, dtype=torch.float64)
    if kind == "identity":
        return torch.ones(n_features, dtype=torch.float64)
    if kind == "power_law":
        return i.pow(-float(decay))
    if kind == "condition":
        return float(condition_number) ** (-(i - 1) / max(n_features - 1, 1))
    if kind == "spiked":
        return torch.where(i <= n_spikes, 1.0 + float(spike), 1.0).to(torch.float64)
    raise ValueError(f"data.covariance={kind!r} is not one of {', '.join(COVARIANCES)}")


def random_rotation(n_features: int, seed: int) -> Tensor:
    """A Haar-random orthogonal matrix Q (QR of a Gaussian matrix, signs fixed), seeded apart
    from the samples so that rotating does not change which samples are drawn."""
    gen = torch.Generator().manual_seed(seed + 2**33)
    q, r = torch.linalg.qr(torch.randn(n_features, n_features, generator=gen, dtype=torch.float64))
    return q * torch.sign(torch.diagonal(r))


@dataclass
class GaussianDesign:
    """x = Q·diag(√λ)·z with z ~ N(0, I), so Σ = Q diag(λ) Qᵀ; y = xᵀβ + b + ε.

    ``basis`` None means Q = I (no rotation). ε is ``noise``·N(0,1), or ``noise``·t_df·√((df−2)/df)
    (Student-t rescaled so that ``noise`` is its standard deviation: Var ε = noise²), or 0.
    """

    eigenvalues: Tensor
    basis: Tensor | None
    true_w: Tensor
    bias: float
    noise: float
    noise_kind: str = "gaussian"
    noise_df: float = 5.0

    @property
    def covariance(self) -> Tensor:
        if self.basis is None:
            return torch.diag(self.eigenvalues)
        return self.basis @ torch.diag(self.eigenvalues) @ self.basis.T

    @property
    def noise_variance(self) -> float:
        return 0.0 if self.noise_kind == "none" else self.noise**2

    def features(self, n: int, gen: torch.Generator) -> Tensor:
        z = torch.randn(n, self.eigenvalues.numel(), generator=gen, dtype=torch.float64)
        if torch.all(self.eigenvalues == 1) and self.basis is None:
            return z  # the plain N(0, I) draw, bit for bit
        x = z * self.eigenvalues.sqrt()
        return x if self.basis is None else x @ self.basis.T

    def noise_draw(self, n: int, gen: torch.Generator) -> Tensor:
        if self.noise_kind == "none":
            return torch.zeros(n, dtype=torch.float64)
        if self.noise_kind == "gaussian":
            return self.noise * torch.randn(n, generator=gen, dtype=torch.float64)
        if self.noise_kind == "student_t":
            df = float(self.noise_df)
            seed = int(torch.randint(2**62, (1,), generator=gen))
            t = np.random.default_rng(seed).standard_t(df, n)
            return self.noise * math.sqrt((df - 2) / df) * torch.from_numpy(t)
        raise ValueError(
            f"data.noise_kind={self.noise_kind!r} is not one of {', '.join(NOISE_KINDS)}"
        )

    def sample(self, n: int, gen: torch.Generator) -> tuple[Tensor, Tensor]:
        """n samples (x, y): the features first, then the noise, from one generator."""
        x = self.features(n, gen)
        return x, x @ self.true_w + self.bias + self.noise_draw(n, gen)

    def description(self, x: Tensor, y: Tensor) -> SyntheticData:
        return SyntheticData(
            x, y, self.true_w.tolist(), self.bias, self.covariance, self.noise_variance
        )


def gaussian_design(
    n_features: int,
    weights: Sequence[float] | None,
    bias: float,
    noise: float,
    seed: int,
    covariance: str = "identity",
    covariance_decay: float = 1.0,
    condition_number: float = 10.0,
    spike: float = 10.0,
    n_spikes: int = 1,
    rotate: bool = False,
    weights_kind: str = "normal",
    weights_decay: float = 1.0,
    n_nonzero: int = 1,
    signal_norm: float | None = None,
    noise_kind: str = "gaussian",
    noise_df: float = 5.0,
) -> tuple[GaussianDesign, torch.Generator]:
    """The design and the generator left where the samples start (after β, as before)."""
    gen = torch.Generator().manual_seed(seed)
    eigenvalues = spectrum(
        covariance, n_features, covariance_decay, condition_number, spike, n_spikes
    )
    basis = random_rotation(n_features, seed) if rotate else None
    if weights is not None or weights_kind == "normal":
        w = _true_weights(weights, n_features, gen)
    elif weights_kind == "power_law":  # β_i ∝ i^(−b) along the i-th eigenvector
        w = torch.arange(1, n_features + 1, dtype=torch.float64).pow(-float(weights_decay))
        w = w if basis is None else basis @ w
    elif weights_kind == "sparse":  # s non-zeros N(0, 1) at random coordinates
        w = torch.zeros(n_features, dtype=torch.float64)
        where = torch.randperm(n_features, generator=gen)[:n_nonzero]
        w[where] = torch.randn(n_nonzero, generator=gen, dtype=torch.float64)
    else:
        raise ValueError(
            f"data.weights_kind={weights_kind!r} is not one of {', '.join(WEIGHT_KINDS)}"
        )
    if signal_norm is not None:
        w = w * (float(signal_norm) / torch.linalg.vector_norm(w))
    design = GaussianDesign(eigenvalues, basis, w, float(bias), float(noise), noise_kind, noise_df)
    return design, gen


def gaussian(
    n_samples: int = 1000,
    n_features: int = 5,
    weights: Sequence[float] | None = None,
    bias: float = 0.0,
    noise: float = 0.1,
    seed: int = 0,
    covariance: str = "identity",
    covariance_decay: float = 1.0,
    condition_number: float = 10.0,
    spike: float = 10.0,
    n_spikes: int = 1,
    rotate: bool = False,
    weights_kind: str = "normal",
    weights_decay: float = 1.0,
    n_nonzero: int = 1,
    signal_norm: float | None = None,
    noise_kind: str = "gaussian",
    noise_df: float = 5.0,
) -> SyntheticData:
    """x ~ N(0, Σ), y = xᵀβ + b + ε (see ``GaussianDesign``); defaults: Σ = I, β ~ N(0, I)
    unless ``weights`` gives it, ε ~ noise·N(0, 1)."""
    settings = {key: value for key, value in locals().items() if key != "n_samples"}
    design, gen = gaussian_design(**settings)
    return design.description(*design.sample(n_samples, gen))


def fixed(x: Sequence, y: Sequence[float], seed: int = 0) -> SyntheticData:
    """Data written out in the config, e.g. x = [1, 2, 3, 4], y = [2, 4, 6, 8]; no true parameters.

    ``x`` may be a flat list (one feature) or a list of rows.
    """
    del seed  # nothing random here; accepted so that every generator takes the run's seed
    xs = torch.as_tensor(list(x), dtype=torch.float64)
    ys = torch.as_tensor(list(y), dtype=torch.float64).reshape(-1)
    if xs.dim() == 1:
        xs = xs.unsqueeze(1)
    if xs.shape[0] != ys.numel():
        raise ValueError(f"data.x has {xs.shape[0]} rows but data.y has {ys.numel()} values")
    return SyntheticData(xs, ys)


def _design(
    n_features: int, seed: int, **covariance: Any
) -> tuple[GaussianDesign, torch.Generator]:
    """A noiseless zero-mean Gaussian design with ``gaussian``'s covariance choices."""
    return gaussian_design(n_features, None, 0.0, 0.0, seed, noise_kind="none", **covariance)


def gaussian_mixture(
    n_samples: int = 1000,
    n_features: int = 5,
    n_classes: int = 2,
    separation: float = 2.0,
    label_noise: float = 0.0,
    class_balance: Sequence[float] | None = None,
    seed: int = 0,
    covariance: str = "identity",
    covariance_decay: float = 1.0,
    condition_number: float = 10.0,
    spike: float = 10.0,
    n_spikes: int = 1,
    rotate: bool = False,
) -> SyntheticData:
    """K Gaussian classes x | y=k ~ N(μ_k, Σ), y ~ ``class_balance`` (null: equal shares).

    The means are ``separation`` apart: μ₀,₁ = ∓separation/2·e₁ for two classes, μ_k =
    separation/√2·e_(k+1) for more (needs d ≥ K). Σ is ``gaussian``'s (``covariance``, ...).
    ``label_noise`` ρ replaces each label, with probability ρ, by one of the other classes.
    For two classes the data record the Bayes classifier of the clean labels, the log-odds
    w = Σ⁻¹(μ₁ - μ₀), b = -½(μ₁ + μ₀)ᵀw + log(π₁/π₀), as ``true_weights``/``true_bias``.
    """
    if n_classes < 2 or (n_classes > 2 and n_features < n_classes):
        raise ValueError(
            f"data.n_classes={n_classes} is not allowed; allowed: an integer from 2 to "
            f"data.n_features={n_features} (2 for any data.n_features)"
        )
    if not 0 <= label_noise < 1:
        raise ValueError(
            f"data.label_noise={label_noise} is not allowed; allowed: a number in [0, 1)"
        )
    shares = torch.full((n_classes,), 1.0 / n_classes, dtype=torch.float64)
    if class_balance is not None:
        shares = torch.as_tensor(list(class_balance), dtype=torch.float64)
        if shares.numel() != n_classes or (shares < 0).any() or shares.sum() <= 0:
            raise ValueError(
                f"data.class_balance={list(class_balance)} is not allowed; allowed: null or "
                f"data.n_classes={n_classes} non-negative shares, not all 0"
            )
        shares = shares / shares.sum()
    design, gen = _design(
        n_features,
        seed,
        covariance=covariance,
        covariance_decay=covariance_decay,
        condition_number=condition_number,
        spike=spike,
        n_spikes=n_spikes,
        rotate=rotate,
    )
    means = torch.zeros(n_classes, n_features, dtype=torch.float64)
    if n_classes == 2:
        means[:, 0] = torch.tensor([-0.5, 0.5], dtype=torch.float64) * separation
    else:
        means[:, :n_classes] = torch.eye(n_classes, dtype=torch.float64) * separation / math.sqrt(2)
    labels = torch.multinomial(shares, n_samples, replacement=True, generator=gen)
    x = means[labels] + design.features(n_samples, gen)
    flip = torch.rand(n_samples, generator=gen, dtype=torch.float64) < label_noise
    other = torch.randint(1, n_classes, (n_samples,), generator=gen)
    labels = torch.where(flip, (labels + other) % n_classes, labels)
    data = SyntheticData(x, labels.to(torch.float64))
    if n_classes == 2:
        w = torch.linalg.solve(design.covariance, means[1] - means[0])
        log_odds = math.log(shares[1] / shares[0]) if shares.min() > 0 else 0.0
        data.true_weights = w.tolist()
        data.true_bias = float(-0.5 * (means[1] + means[0]) @ w + log_odds)
    return data


def separable(
    n_samples: int = 200,
    n_features: int = 2,
    margin: float = 0.5,
    seed: int = 0,
    covariance: str = "identity",
    covariance_decay: float = 1.0,
    condition_number: float = 10.0,
    spike: float = 10.0,
    n_spikes: int = 1,
    rotate: bool = False,
) -> SyntheticData:
    """Two linearly separable classes whose max-margin direction u is known by construction.

    u is a random unit vector. Each z ~ N(0, Σ) gets the label s = sign(uᵀz) and is pushed
    ``margin`` further from the hyperplane: x = z + s·margin·u, so s·uᵀx ≥ margin. The first two
    samples are a pair x = ±margin·u + v (v ⟂ u, labels ±1) at exactly that margin. Since
    s₀x₀ + s₁x₁ = 2·margin·u, u satisfies the KKT conditions of the hard-margin SVM (with α₀ = α₁
    and α = 0 elsewhere; with or without a bias, and Σα·s = 0): it is the max-margin direction,
    recorded as ``true_weights`` (bias 0).
    """
    if n_samples < 2:
        raise ValueError(f"data.n_samples={n_samples} is not allowed; allowed: an integer >= 2")
    if margin <= 0:
        raise ValueError(f"data.margin={margin} is not allowed; allowed: a number > 0")
    design, gen = _design(
        n_features,
        seed,
        covariance=covariance,
        covariance_decay=covariance_decay,
        condition_number=condition_number,
        spike=spike,
        n_spikes=n_spikes,
        rotate=rotate,
    )
    u = torch.randn(n_features, generator=gen, dtype=torch.float64)
    u = u / torch.linalg.vector_norm(u)
    z = design.features(n_samples, gen)
    sign = torch.where(z @ u >= 0, 1.0, -1.0).to(torch.float64)
    x = z + (sign * margin).unsqueeze(1) * u
    v = z[0] - (z[0] @ u) * u
    x[0], x[1] = margin * u + v, -margin * u + v
    sign[0], sign[1] = 1.0, -1.0
    return SyntheticData(x, (sign + 1) / 2, u.tolist(), 0.0)


GENERATORS = {name: globals()[name] for name in GENERATOR_NAMES}  # the names the checks allow
