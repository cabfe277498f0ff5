"""The LightningModule: K members (K = 1 for a single run), each a model trained on one loss
with its own optimiser settings, by exact minibatch steps.

Each ``training_step`` receives a chunk of minibatches (see ``linlab.data.batches``) and takes
one optimiser step per minibatch, so the trajectory is the plain loop's while Lightning's fixed
per-call cost is paid once per chunk. Losses and parameters are collected as tensors and read
back once per chunk: no ``.item()`` or device sync per step.

A stacked group (``hydra/launcher=stacked``) trains K jobs of a sweep at once: one forward of
all members (``linlab.stacking.StackedModels``), the sum of their losses for one backward pass
(member k's gradient depends on its own loss only), and one ``torch.optim`` optimiser whose
param group k holds member k's parameters and settings, so member k follows the trajectory of
its separate run. Statuses, divergence and logging are per member.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from typing import Any

import lightning as L
import torch
from lightning.pytorch.core.optimizer import LightningOptimizer
from torch import Tensor, nn

from linlab import interrupts, tags
from linlab.choices import GRADIENT_MODES, UPDATE_MODES
from linlab.ddp import average_gradients, mean_over_ranks
from linlab.devices import gradient_scaler
from linlab.direct_steps import (
    align_epoch_metric_steps,
    count_optimizer_steps,
    direct_steps_apply,
)
from linlab.logger import log_rows
from linlab.optim import ManualGradientDescent
from linlab.params import flat_values, load_flat_values, scalar_names
from linlab.stacking import plain_sgd

STOPPED = ("diverged", "interrupted", "pruned", "failed")


@dataclass
class MemberState:
    """What one member's run records: its status and where it stopped."""

    status: str = "ok"
    message: str = ""
    first_loss: float | None = None
    diverged_at_step: int | None = None
    last_finite_loss: float | None = None
    stopped_epoch: int | None = None
    stopped_step: int | None = None
    val_loss: float | None = None
    trajectory: list[tuple[int, float, list[float]]] = field(default_factory=list)

    def plain(self) -> dict[str, Any]:
        """The checkpointed part (plain values, for ``torch.load(weights_only=True)``)."""
        keys = ("status", "message", "first_loss", "diverged_at_step", "last_finite_loss")
        keys += ("stopped_epoch", "stopped_step")
        return {k: getattr(self, k) for k in keys}


class RegressionModule(L.LightningModule):
    """Trains ``model`` on ``loss`` with ``optimizer`` (a partial taking the parameters).

    Args:
        gradient: ``autograd`` (backward pass) or ``analytic`` (the closed form from
            ``model.analytic_gradients`` and ``loss.grad_wrt_prediction``, no autograd).
        update: ``optimizer`` (the configured ``torch.optim`` class) or ``manual`` (the
            tutorials' ``p -= lr * p.grad``; needs plain SGD settings).
        scheduler: optional partial building an LR scheduler, stepped once per epoch.
        divergence_factor: a loss above this multiple of the first loss (or non-finite)
            stops the member with status ``diverged``, keeping the last parameters whose loss
            was below it.
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
        self.param_keys = [tags.param(name) for name in self.param_names]
        self.track_params = len(self.param_names) <= log_params_limit
        self.optimizer_partials = [optimizer]
        self.states = [MemberState()]
        self.member_loggers: list[list[Any]] | None = None  # None: all of trainer.loggers
        self._penultimate: Tensor | None = None
        self._penultimate_loss: list[float] | None = None

    # -- members ---------------------------------------------------------------------------

    @property
    def n_members(self) -> int:
        return len(self.states)

    @property
    def stacked(self) -> bool:
        return self.n_members > 1

    def member_model(self, k: int) -> nn.Module:
        return self.model.members[k] if self.stacked else self.model

    def loggers_of(self, k: int) -> list[Any]:
        return list(self.loggers) if self.member_loggers is None else self.member_loggers[k]

    @property
    def status(self) -> str:
        return self.states[0].status

    @status.setter
    def status(self, value: str) -> None:
        self.states[0].status = value

    @property
    def first_loss(self) -> float | None:
        return self.states[0].first_loss

    @property
    def trajectory(self) -> list[tuple[int, float, list[float]]]:
        return self.states[0].trajectory

    def _member_flats(self) -> Tensor:
        """(K, P) parameters of every member, in ``param_names`` order."""
        if self.stacked:
            return self.model.flat_values()
        return flat_values(self.model).unsqueeze(0)

    def _active(self) -> list[int]:
        return [k for k, s in enumerate(self.states) if s.status not in STOPPED]

    # -- optimisation ----------------------------------------------------------------------

    def forward(self, x: Tensor) -> Tensor:
        return self.model(x)

    def _member_optimizer(self, k: int) -> torch.optim.Optimizer:
        params = self.member_model(k).parameters()
        if self.update == "manual":
            return ManualGradientDescent(params, lr=_sgd_lr(self.optimizer_partials[k]))
        return self.optimizer_partials[k](params)

    def configure_optimizers(self) -> Any:
        members = [self._member_optimizer(k) for k in range(self.n_members)]
        optimizer = members[0]
        if self.stacked:  # one optimiser, param group k = member k's parameters and settings
            optimizer.param_groups = [g for o in members for g in o.param_groups]
        if self.hparams.scheduler is None:
            return optimizer
        return {"optimizer": optimizer, "lr_scheduler": self.hparams.scheduler(optimizer)}

    def batch_loss(self, x: Tensor, y: Tensor) -> Tensor:
        """Loss of one minibatch; override to change what is minimised."""
        return self.loss_fn(self.model(x), y)

    def member_losses(self, x: Tensor, y: Tensor) -> Tensor:
        """(K,) losses of the stacked members on their minibatches (see ``StackedModels``):
        the mean of the loss's ``per_sample`` penalties, in float32 or wider as the loss does."""
        pred = self.model(x)
        if pred.dtype not in (torch.float32, torch.float64):
            pred = pred.float()
        return self.loss_fn.per_sample(pred, y.to(pred.dtype)).mean(-1)

    def descent_step(self, optimizer: Any, x: Tensor, y: Tensor) -> Tensor:
        """One exact optimiser step on one minibatch; returns its loss (K losses) before it.

        ``optimizer`` is Lightning's wrapper or, where that changes nothing, the bare torch
        optimiser (see ``linlab.direct_steps``).
        """
        optimizer.zero_grad()
        if self.stacked:  # the members' gradients as one tensor per parameter name
            loss = self.member_losses(x, y)
            loss.sum().backward()
            grads = self.model.take_gradients()
            if plain_sgd.step(optimizer, self.model.columns(), grads):
                return loss.detach()
            self.model.give_gradients(grads)
        elif self.gradient == "analytic":
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
        before = self._member_flats()
        saved_state = copy.deepcopy(self._bare(optimizer).state_dict())
        xs, ys = chunk
        last = len(ys) - 1
        losses, snapshots = [], {}
        progress = self.steps_done_in_chunk = [0]  # read by linlab.progress's drawing thread
        penultimate = None
        for i, (x, y) in enumerate(zip(xs, ys, strict=True)):
            if interrupts.STATE.stop and i:  # Ctrl-C or SIGTERM: end the chunk here
                break
            if self.track_params and (start + i) % every == 0:
                snapshots[start + i] = self._member_flats()
            if i == last:
                penultimate = self._member_flats()
            losses.append(self.descent_step(optimizer, x, y))
            progress[0] = i + 1
        if direct:
            count_optimizer_steps(self.trainer, len(losses))
        align_epoch_metric_steps(self.trainer, len(losses))
        losses = mean_over_ranks(torch.stack(losses).float().reshape(len(losses), -1))
        self.epoch_loss_sum = self.epoch_loss_sum + losses.sum(0)
        self.epoch_steps += len(losses)
        values = losses.T.tolist()  # the chunk's one read-back from the device: [member][step]
        params = _per_member(snapshots, self.n_members)
        active = self._active()
        for k in active:
            if self.states[k].first_loss is None:
                self.states[k].first_loss = values[k][0]
            self._log_steps(k, start, values[k], params[k])
        bad = {k: s for k in active if (s := self._first_bad_step(k, values[k])) is not None}
        if bad:
            self._stop_diverged(bad, start, values, before, saved_state, chunk, optimizer)
        self._penultimate, self._penultimate_loss = penultimate, [v[-1] for v in values]
        interrupts.raise_if_stopping()  # after the steps taken are counted and logged

    def _log_steps(
        self, k: int, start: int, values: list[float], params: dict[int, list[float]]
    ) -> None:
        """``loss/train`` and ``params/*`` every k steps; step s holds θ_s and the loss at θ_s
        (``params``: member k's parameters at the chunk's snapshot steps)."""
        every = self.trainer.log_every_n_steps
        rows = []
        for step in range(start + (-start) % every, start + len(values), every):
            metrics = {tags.TRAIN_LOSS: values[step - start]}
            if step in params:
                metrics |= dict(zip(self.param_keys, params[step], strict=True))
                self.states[k].trajectory.append((step, values[step - start], params[step]))
            rows.append((step, metrics))
        log_rows(self.loggers_of(k), rows)

    def _first_bad_step(self, k: int, values: list[float]) -> int | None:
        """Index of the first loss that is non-finite or above the divergence limit."""
        limit = self.divergence_factor * max(abs(self.states[k].first_loss), 1e-12)
        if not math.isfinite(limit):
            limit = math.inf
        return next((i for i, v in enumerate(values) if not math.isfinite(v) or v > limit), None)

    def _stop_diverged(
        self,
        bad: dict[int, int],
        start: int,
        values: list[list[float]],
        before: Tensor,
        saved_state: dict[str, Any],
        chunk: tuple[Tensor, Tensor],
        optimizer: Any,
    ) -> None:
        """Freeze each diverged member at the last parameters whose loss was below the limit.

        Member k first failed at step ``start + i``: it gets θ at step ``start + i - 1``,
        recomputed by replaying the chunk from its start (the steps are deterministic), or
        the parameters before the previous chunk's last step when ``i = 0``.
        """
        end = self._member_flats()
        end_state = copy.deepcopy(self._bare(optimizer).state_dict())
        kept = end.clone()
        replay = max(bad.values()) - 1
        if replay > 0:
            self._load_flats(before)
            self._bare(optimizer).load_state_dict(saved_state)
            xs, ys = chunk
            for i in range(replay):
                self.descent_step(optimizer, xs[i], ys[i])
                for k, first in bad.items():
                    if first - 1 == i + 1:
                        kept[k] = self._member_flats()[k]
        for k, first in bad.items():
            state = self.states[k]
            if first == 1:
                kept[k] = before[k]
            elif first == 0:
                has_previous = self._penultimate is not None
                kept[k] = self._penultimate[k] if has_previous else before[k]
                state.last_finite_loss = self._penultimate_loss[k] if has_previous else None
            if first > 0:
                state.last_finite_loss = values[k][first - 1]
            state.status = "diverged"
            state.diverged_at_step = start + first
        self._load_flats(torch.where(_mask(bad, end), kept, end))
        self._bare(optimizer).load_state_dict(end_state)
        for k in bad:
            self.stop_member(k)

    def stop_member(self, k: int) -> None:
        """Member k takes no further steps (its status says why); all stopped: stop the fit."""
        state = self.states[k]
        state.stopped_epoch = self.current_epoch + 1
        state.stopped_step = self.global_step
        for p in self.member_model(k).parameters():
            p.requires_grad_(False)
            p.grad = None
        if not self._active():
            self.trainer.should_stop = True

    def _load_flats(self, flats: Tensor) -> None:
        for k in range(self.n_members):
            load_flat_values(self.member_model(k), flats[k])

    @staticmethod
    def _bare(optimizer: Any) -> torch.optim.Optimizer:
        return optimizer.optimizer if isinstance(optimizer, LightningOptimizer) else optimizer

    # -- epochs and evaluation -------------------------------------------------------------

    def on_train_epoch_start(self) -> None:
        self.epoch_loss_sum = torch.zeros(self.n_members, device=self.device)
        self.epoch_steps = 0

    def on_train_epoch_end(self) -> None:
        step = self.global_step - 1
        if self.epoch_steps:
            epoch_losses = (self.epoch_loss_sum / self.epoch_steps).tolist()
            for k in self._active():
                log_rows(self.loggers_of(k), [(step, {tags.TRAIN_EPOCH_LOSS: epoch_losses[k]})])
        scheduler = self.lr_schedulers()
        if scheduler is not None:
            scheduler.step()

    def on_train_end(self) -> None:
        if not self.track_params:
            return
        for k in range(self.n_members):
            final = flat_values(self.member_model(k)).tolist()
            state = self.states[k]
            step = self.global_step if state.stopped_step is None else state.stopped_step
            log_rows(self.loggers_of(k), [(step, dict(zip(self.param_keys, final, strict=True)))])
            state.trajectory.append((step, float("nan"), final))

    def evaluation_losses(self, x: Tensor, y: Tensor) -> Tensor:
        """(K,) losses of every member on one whole split."""
        if self.stacked:
            return self.member_losses(x, y)
        return self.loss_fn(self.model(x), y).reshape(1)

    def _eval_step(self, chunk: tuple[Tensor, Tensor], name: str) -> Tensor:
        x, y = (t[0] for t in chunk)  # evaluation: one chunk holding the whole split
        losses = mean_over_ranks(self.evaluation_losses(x, y).float())
        if name == "val":
            values = losses.tolist()
            step = self.global_step - 1
            for k in self._active():
                self.states[k].val_loss = values[k]
                log_rows(self.loggers_of(k), [(step, {tags.VAL_LOSS: values[k]})])
            # for callbacks (figures, pruning): no TensorBoard event, no `epoch` scalar
            self.log(tags.VAL_LOSS, losses[0], logger=False, batch_size=y.shape[-1])
        return losses

    def validation_step(self, chunk: tuple[Tensor, Tensor], chunk_idx: int) -> Tensor:
        return self._eval_step(chunk, "val")

    def test_step(self, chunk: tuple[Tensor, Tensor], chunk_idx: int) -> Tensor:
        return self._eval_step(chunk, "test")

    # -- checkpoints -----------------------------------------------------------------------

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        """Keep only plain hyper-parameters, so that ``torch.load(weights_only=True)`` reads it."""
        checkpoint["linlab"] = self.states[0].plain()
        if self.stacked:
            checkpoint["linlab_members"] = [s.plain() for s in self.states]
        hparams = checkpoint.get("hyper_parameters", {})
        checkpoint["hyper_parameters"] = {
            k: v for k, v in hparams.items() if isinstance(v, (bool, int, float, str, type(None)))
        }

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        saved = checkpoint.get("linlab_members") or [checkpoint.get("linlab", {})]
        for state, plain in zip(self.states, saved, strict=True):
            for key, value in plain.items():
                setattr(state, key, value)
        for k, state in enumerate(self.states):
            if state.status in STOPPED:
                for p in self.member_model(k).parameters():
                    p.requires_grad_(False)


def _per_member(snapshots: dict[int, Tensor], n_members: int) -> list[dict[int, list[float]]]:
    """``{step: (K, P) parameters}`` as each member's ``{step: its P values}``, read back in
    one piece."""
    if not snapshots:
        return [{} for _ in range(n_members)]
    rows = torch.stack(list(snapshots.values()), dim=1).tolist()  # [member][snapshot][param]
    return [dict(zip(snapshots, member, strict=True)) for member in rows]


def _mask(bad: dict[int, int], like: Tensor) -> Tensor:
    mask = torch.zeros(like.shape[0], 1, dtype=torch.bool, device=like.device)
    mask[list(bad)] = True
    return mask


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
