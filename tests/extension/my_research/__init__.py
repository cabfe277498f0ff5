"""A researcher's own package, outside linlab: a model and a loss selected by ``_target_``."""

import torch
from torch import nn


class ThroughOrigin(nn.Module):
    """ŷ = x·slope: a line forced through the origin, with its own parameter name."""

    def __init__(self, n_features: int, start: float = 0.0) -> None:
        super().__init__()
        self.slope = nn.Parameter(torch.full((n_features,), start))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x @ self.slope


class LogCosh(nn.Module):
    """L = mean(log cosh(ŷ - y))."""

    def forward(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return torch.log(torch.cosh(pred - target.reshape(pred.shape))).mean()
