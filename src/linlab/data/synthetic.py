"""Synthetic regression datasets, each drawn from its own seeded ``torch.Generator``.

Every generator returns a ``SyntheticData`` that remembers the parameters it was made
with (``true_weights``, ``true_bias``), so runs can report how far they landed from them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import Tensor


@dataclass
class SyntheticData:
    x: Tensor  # (n, d)
    y: Tensor  # (n,)
    true_weights: list[float] | None = None
    true_bias: float | None = None

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


def gaussian(
    n_samples: int = 1000,
    n_features: int = 5,
    weights: Sequence[float] | None = None,
    bias: float = 0.0,
    noise: float = 0.1,
    seed: int = 0,
) -> SyntheticData:
    """X ~ N(0, I), y = Xβ + b + noise·ε; β drawn from N(0, I) unless ``weights`` gives it."""
    gen = torch.Generator().manual_seed(seed)
    w = _true_weights(weights, n_features, gen)
    x = torch.randn(n_samples, n_features, generator=gen, dtype=torch.float64)
    return _finish(x, w, bias, noise, gen)


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


GENERATORS = {"line_1d": line_1d, "gaussian": gaussian, "fixed": fixed}
