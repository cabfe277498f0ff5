"""Lightning callback: measure a run against the closed-form reference of ``linlab.theory``.

At fit start, on the training split: the least-squares optimum, its loss, the Hessian's
extreme eigenvalues, its condition number and the largest stable full-batch learning rate,
returned by ``results()`` (train.py merges that into ``results.json``; TensorBoard's text
tab shows them, not one-point charts), with a warning when plain gradient descent's
``optimizer.lr`` exceeds the bound. After every epoch (and at the start):
``theory/excess_loss`` = L(θ) − L(θ*) (quadratic losses only), ``theory/dist_w_opt`` =
‖w − w*‖ and ``theory/dist_w_true`` = ‖w − w_true‖, over the weights w (the bias is not included).
"""

from __future__ import annotations

import logging
from typing import Any

import lightning as L
import torch

from linlab import theory
from linlab.optim import ManualGradientDescent

log = logging.getLogger("linlab")


class TheoryMetrics(L.Callback):
    """Closed-form reference and distance-to-optimum metrics for linear models.

    Args:
        enabled: False skips everything (no metrics, nothing in results.json).
    """

    def __init__(self, enabled: bool = True) -> None:
        self.enabled = enabled
        self.reference: theory.Reference | None = None
        self.true_weights: list[float] | None = None
        self.lr_exceeds_bound: bool | None = None
        self.latest: dict[str, float] = {}

    def on_fit_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        splits = getattr(trainer.datamodule, "splits", {})
        model, loss = pl_module.model, pl_module.loss_fn
        if not self.enabled or "train" not in splits or not hasattr(model, "w"):
            return
        curvature = getattr(loss, "curvature", None)
        quadratic = getattr(loss, "quadratic", False) and curvature is not None
        self.reference = theory.reference(
            *splits["train"], getattr(model, "b", None) is not None, curvature, quadratic
        )
        data = getattr(trainer.datamodule, "data", None)
        if data is not None and data.true_weights is not None:
            self.true_weights = list(data.true_weights)
        self._check_lr(trainer)
        self._log(trainer, self._distances(pl_module))

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if self.reference is not None:
            self._log(trainer, self._distances(pl_module))

    def _check_lr(self, trainer: L.Trainer) -> None:
        """Warn when plain gradient descent runs above 2/λmax; other optimisers have no bound."""
        bound = self.reference.max_stable_lr
        optimizer = trainer.optimizers[0] if trainer.optimizers else None
        plain = isinstance(optimizer, ManualGradientDescent) or (
            type(optimizer) is torch.optim.SGD and optimizer.defaults.get("momentum", 0) == 0
        )
        if bound is None or not plain:
            return
        lr = optimizer.param_groups[0]["lr"]
        self.lr_exceeds_bound = lr > bound
        if self.lr_exceeds_bound:
            log.warning(
                f"optimizer.lr={lr:g} exceeds the largest stable full-batch learning rate "
                f"2/λmax = {bound:.6g} for this data and loss: full-batch gradient descent diverges"
            )

    @torch.no_grad()
    def _distances(self, pl_module: L.LightningModule) -> dict[str, float]:
        model = pl_module.model
        w = model.w.detach().to(torch.float64).reshape(-1)
        b = getattr(model, "b", None)
        metrics = {"theory/dist_w_opt": _distance(w, self.reference.w_opt)}
        if self.true_weights is not None:
            metrics["theory/dist_w_true"] = _distance(w, self.true_weights)
        if self.reference.optimum_loss is not None:
            metrics["theory/excess_loss"] = self.reference.excess_loss(w, b)
        self.latest = metrics
        return metrics

    @staticmethod
    def _log(trainer: L.Trainer, metrics: dict[str, float]) -> None:
        for logger in trainer.loggers:
            logger.log_metrics(metrics, step=trainer.global_step)

    def on_train_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if self.reference is not None:
            self._distances(pl_module)

    def results(self) -> dict[str, Any]:
        """``theory`` in results.json: the reference and the final distances."""
        if self.reference is None:
            return {}
        final = {key.removeprefix("theory/"): value for key, value in self.latest.items()}
        return {
            "theory": {
                **self.reference.as_dict(),
                "lr_exceeds_stable_lr": self.lr_exceeds_bound,
                **final,
            }
        }


def _distance(w: torch.Tensor, other: list[float]) -> float:
    """‖w − other‖₂ (one device-to-host read)."""
    return float(torch.linalg.vector_norm(w - torch.tensor(other, dtype=w.dtype, device=w.device)))
