"""The LightningModule: a model, a loss and an optimiser, trained by exact minibatch steps.

Each ``training_step`` receives a chunk of minibatches (see ``linlab.data.batches``) and takes
one optimiser step per minibatch, so the trajectory is the plain loop's while Lightning's fixed
per-call cost is paid once per chunk. Losses and parameters are collected as tensors and read
back once per chunk: no ``.item()`` or device sync per step.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from functools import partial
from typing import Any

import lightning as L
import torch
from lightning.pytorch.core.optimizer import LightningOptimizer
from torch import Tensor, nn
from torch.nn.utils import vector_to_parameters

from linlab import interrupts
from linlab.ddp import average_gradients, mean_over_ranks
from linlab.devices import gradient_scaler
from linlab.direct_steps import (
    align_epoch_metric_steps,
    count_optimizer_steps,
    direct_steps_apply,
)
from linlab.logger import log_rows
from linlab.optim import ManualGradientDescent
from linlab.params import flat_values, scalar_names

GRADIENT_MODES = ("autograd", "analytic")
UPDATE_MODES = ("optimizer", "manual")


class RegressionModule(L.LightningModule):
    """Trains ``model`` on ``loss`` with ``optimizer`` (a partial taking the parameters).

    Args:
        gradient: ``autograd`` (backward pass) or ``analytic`` (the closed form from
            ``model.analytic_gradients`` and ``loss.grad_wrt_prediction``, no autograd).
        update: ``optimizer`` (the configured ``torch.optim`` class) or ``manual`` (the
            tutorials' ``p -= lr * p.grad``; needs plain SGD settings).
        scheduler: optional partial building an LR scheduler, stepped once per epoch.
        divergence_factor: a loss above this multiple of the first loss (or non-finite)
            stops the run with status ``diverged``.
        log_params_limit: log ``params/*`` and keep the trajectory for models with at
            most this many scalars.
    """

    def __init__(
        self,
        model: nn.Module,
        loss: nn.Module,
        optimizer: Callable[..., torch.optim.Optimizer],
        scheduler: Callable[..., Any] | None = None,
        gradient: str = "autograd",
        update: str = "optimizer",
        divergence_factor: float = 1e6,
        log_params_limit: int = 16,
    ) -> None:
        super().__init__()
        check_modes(model, loss, gradient, update)
        self.save_hyperparameters(ignore=["model", "loss"], logger=False)
        self.automatic_optimization = False
        self.model, self.loss_fn = model, loss
        self.gradient, self.update = gradient, update
        self.divergence_factor = divergence_factor
        self.param_names = scalar_names(model)
        self.param_keys = [f"params/{name}" for name in self.param_names]
        self.track_params = len(self.param_names) <= log_params_limit
        self.status = "ok"
        self.first_loss: float | None = None
        self.trajectory: list[tuple[int, float, list[float]]] = []

    def forward(self, x: Tensor) -> Tensor:
        return self.model(x)

    def configure_optimizers(self) -> Any:
        if self.update == "manual":
            optimizer = ManualGradientDescent(
                self.model.parameters(), lr=_sgd_lr(self.hparams.optimizer)
            )
        else:
            optimizer = self.hparams.optimizer(self.model.parameters())
        if self.hparams.scheduler is None:
            return optimizer
        return {"optimizer": optimizer, "lr_scheduler": self.hparams.scheduler(optimizer)}

    def batch_loss(self, x: Tensor, y: Tensor) -> Tensor:
        """Loss of one minibatch; override to change what is minimised."""
        return self.loss_fn(self.model(x), y)

    def descent_step(self, optimizer: Any, x: Tensor, y: Tensor) -> Tensor:
        """One exact optimiser step on one minibatch; returns its loss before the step.

        ``optimizer`` is Lightning's wrapper or, where that changes nothing, the bare torch
        optimiser (see ``linlab.direct_steps``).
        """
        optimizer.zero_grad()
        if self.gradient == "analytic":
            with torch.no_grad():
                pred = self.model(x)
                loss = self.loss_fn(pred, y)
                grads = self.model.analytic_gradients(x, self.loss_fn.grad_wrt_prediction(pred, y))
                scaler = gradient_scaler(self.trainer)  # 16-mixed: scaled as a backward pass is
                for name, p in self.model.named_parameters():
                    grad = grads[name].to(p.dtype)
                    p.grad = grad if scaler is None else scaler.scale(grad)
        else:
            loss = self.batch_loss(x, y)
            if isinstance(optimizer, LightningOptimizer):
                self.manual_backward(loss)
            else:
                loss.backward()
        average_gradients(self.model.parameters())
        optimizer.step()
        return loss.detach()

    def training_step(self, chunk: tuple[Tensor, Tensor], chunk_idx: int) -> None:
        direct = direct_steps_apply(self.trainer)
        optimizer = self.optimizers(use_pl_optimizer=not direct)
        start, every = self.global_step, self.trainer.log_every_n_steps
        before = flat_values(self.model)
        losses, snapshots = [], {}
        for i, (x, y) in enumerate(zip(*chunk, strict=True)):
            if interrupts.STATE.stop:  # Ctrl-C or SIGTERM: stop between two minibatches
                interrupts.stop_chunk(self.trainer, i if direct else 0)
            if self.track_params and (start + i) % every == 0:
                snapshots[start + i] = flat_values(self.model)
            losses.append(self.descent_step(optimizer, x, y))
        if direct:
            count_optimizer_steps(self.trainer, len(losses))
        align_epoch_metric_steps(self.trainer, len(losses))
        losses = mean_over_ranks(torch.stack(losses).float())  # one all-reduce per chunk
        self.epoch_loss_sum = self.epoch_loss_sum + losses.sum()
        self.epoch_steps += len(losses)
        values = losses.tolist()  # the chunk's one read-back from the device
        if self.first_loss is None:
            self.first_loss = values[0]
        self._log_steps(start, values, snapshots)
        if self._diverged(values):
            self._stop_diverged(before)

    def _log_steps(self, start: int, values: list[float], snapshots: dict[int, Tensor]) -> None:
        """``train/loss`` and ``params/*`` every k steps; step s holds θ_s and the loss at θ_s."""
        every = self.trainer.log_every_n_steps
        params = {}
        if snapshots:
            params = dict(
                zip(snapshots, torch.stack(list(snapshots.values())).tolist(), strict=True)
            )
        rows = []
        for step in range(start + (-start) % every, start + len(values), every):
            metrics = {"train/loss": values[step - start]}
            if step in params:
                metrics |= dict(zip(self.param_keys, params[step], strict=True))
                self.trajectory.append((step, values[step - start], params[step]))
            rows.append((step, metrics))
        log_rows(self.loggers, rows)

    def _diverged(self, values: list[float]) -> bool:
        limit = self.divergence_factor * max(abs(self.first_loss), 1e-12)
        return any(not math.isfinite(v) or v > limit for v in values)

    def _stop_diverged(self, before: Tensor) -> None:
        """Keep the last parameters known finite and stop; divergence is a result, not an error."""
        self.status = "diverged"
        vector_to_parameters(before, self.model.parameters())
        self.trainer.should_stop = True

    def on_train_epoch_start(self) -> None:
        self.epoch_loss_sum, self.epoch_steps = torch.zeros((), device=self.device), 0

    def on_train_epoch_end(self) -> None:
        if self.epoch_steps:  # one self.log per epoch: it costs about 1 ms a call
            self.log("train/epoch_loss", self.epoch_loss_sum / self.epoch_steps, on_epoch=True)
        scheduler = self.lr_schedulers()
        if scheduler is not None:
            scheduler.step()

    def on_train_end(self) -> None:
        if self.track_params:
            final = flat_values(self.model).tolist()
            log_rows(
                self.loggers, [(self.global_step, dict(zip(self.param_keys, final, strict=True)))]
            )
            self.trajectory.append((self.global_step, float("nan"), final))

    def _eval_step(self, chunk: tuple[Tensor, Tensor], name: str) -> Tensor:
        x, y = (t.flatten(0, 1) for t in chunk)
        loss = self.loss_fn(self.model(x), y)
        self.log(f"{name}/loss", loss, on_step=False, on_epoch=True, batch_size=y.numel())
        return loss

    def validation_step(self, chunk: tuple[Tensor, Tensor], chunk_idx: int) -> Tensor:
        return self._eval_step(chunk, "val")

    def test_step(self, chunk: tuple[Tensor, Tensor], chunk_idx: int) -> Tensor:
        return self._eval_step(chunk, "test")

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        """Keep only plain hyper-parameters, so that ``torch.load(weights_only=True)`` reads it."""
        checkpoint["linlab"] = {"status": self.status, "first_loss": self.first_loss}
        hparams = checkpoint.get("hyper_parameters", {})
        checkpoint["hyper_parameters"] = {
            k: v for k, v in hparams.items() if isinstance(v, (bool, int, float, str, type(None)))
        }

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        state = checkpoint.get("linlab", {})
        self.status = state.get("status", "ok")
        self.first_loss = state.get("first_loss")


def check_modes(model: nn.Module, loss: nn.Module, gradient: str, update: str) -> None:
    """Refuse unknown modes, and ``gradient=analytic`` for a pair that has no closed form."""
    if gradient not in GRADIENT_MODES:
        raise ValueError(f"module.gradient={gradient!r} is not one of {', '.join(GRADIENT_MODES)}")
    if update not in UPDATE_MODES:
        raise ValueError(f"module.update={update!r} is not one of {', '.join(UPDATE_MODES)}")
    if gradient == "analytic" and not (
        hasattr(model, "analytic_gradients") and hasattr(loss, "grad_wrt_prediction")
    ):
        raise ValueError(
            f"module.gradient=analytic needs a model with analytic_gradients() and a loss with "
            f"grad_wrt_prediction(); {type(model).__name__} with {type(loss).__name__} lacks "
            "one: use module.gradient=autograd"
        )


def _sgd_lr(optimizer: Callable[..., torch.optim.Optimizer]) -> float:
    """The learning rate of a plain-SGD partial; refuse settings a manual update would ignore."""
    keywords = optimizer.keywords if isinstance(optimizer, partial) else {}
    extras = {
        k: v for k, v in keywords.items() if k not in ("lr",) and v not in (0, 0.0, False, None)
    }
    if getattr(optimizer, "func", None) is not torch.optim.SGD or extras:
        raise ValueError(
            "module.update=manual is plain gradient descent: it needs optimizer=sgd without "
            f"momentum, weight decay or other extras (got {optimizer})"
        )
    return float(keywords["lr"])
