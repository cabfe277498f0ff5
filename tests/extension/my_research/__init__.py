"""A researcher's own package, outside linlab: a model and a loss selected by ``_target_``."""

import torch
from torch import nn

from linlab.module import RegressionModule


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


class FragileModule(RegressionModule):
    """Raises on its first step for one (lr, batch size): a job that fails inside a sweep."""

    def __init__(self, *args, fail_at_lr: float, fail_at_batch_size: int, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.fail_at = (fail_at_lr, fail_at_batch_size)

    def training_step(self, chunk, chunk_idx):
        lr, batch_size = self.hparams.optimizer.keywords["lr"], chunk[0].shape[1]
        if (lr, batch_size) == self.fail_at:
            raise RuntimeError(f"FragileModule fails at lr={lr}, batch_size={batch_size}")
        return super().training_step(chunk, chunk_idx)
