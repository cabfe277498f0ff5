"""A learning-rate sweep trained in one job: K stacked linear models, one forward/backward per step.

    linlab-train 'lr_sweep=[0.001,0.003,0.01,0.03,0.1]'

Every member starts from the same seeded initial parameters and sees the same minibatches in the
same order, so member k follows exactly the trajectory of ``linlab-train optimizer.lr=<lr_k>``:
predictions for all members are one ``(B, d) @ (d, K)`` product, the K losses are summed for one
backward pass (member k's gradient only depends on its own loss), and the SGD update uses a
per-member learning rate. Each member writes ``lr=<value>/results.json`` and its TensorBoard
scalars (``train/loss``, ``params/*``, ``train/epoch_loss``, ``val/loss``) as a separate run would.

It applies when only the learning rate varies: same data, batch size, seed, model
(``LinearRegression``), a ``RegressionLoss`` and ``optimizer=sgd`` (momentum, dampening,
weight decay and Nesterov included). No checkpoints or callbacks (so no ``theory/*`` metrics
and no figures); a diverging member is frozen
at its last finite parameters and marked ``diverged`` while the others go on.
"""

from __future__ import annotations

import math
import time
from functools import partial
from pathlib import Path
from typing import Any

import lightning as L
import torch
from omegaconf import DictConfig
from torch import Tensor
from torch.utils.tensorboard import SummaryWriter

from linlab.logger import write_tensorboard_rows
from linlab.losses import RegressionLoss
from linlab.models import LinearRegression
from linlab.results import RESULTS_FILE, learned_parameters, split_losses, write_json_atomic
from linlab.sweeps.hparams import final_metrics, hparams_of, param_distance, write_session


def member_dir(run_dir: Path, lr: float) -> Path:
    return run_dir / f"lr={lr:g}"


class StackedSGD:
    """``torch.optim.SGD``'s update for K stacked members, each with its own learning rate.

    g = ∇ + λθ;  b = μb + (1-τ)g (b = g at the first step);  g = g + μb (Nesterov) or b;
    θ = θ - lr_k·g.
    """

    def __init__(self, params: list[Tensor], lrs: Tensor, optimizer: partial) -> None:
        allowed = {"lr", "momentum", "dampening", "weight_decay", "nesterov"}
        settings = dict(optimizer.keywords)
        extra = {k: v for k, v in settings.items() if k not in allowed and v not in (False, None)}
        if optimizer.func is not torch.optim.SGD or extra:
            raise ValueError(
                "lr_sweep trains stacked models with SGD only; got optimizer "
                f"{optimizer.func.__name__}{' with ' + str(extra) if extra else ''} "
                "(use optimizer=sgd)"
            )
        self.params, self.lrs = params, lrs
        self.momentum = float(settings.get("momentum", 0.0))
        self.dampening = float(settings.get("dampening", 0.0))
        self.weight_decay = float(settings.get("weight_decay", 0.0))
        self.nesterov = bool(settings.get("nesterov", False))
        self.buffers: list[Tensor | None] = [None] * len(params)

    @torch.no_grad()
    def step(self, grads: list[Tensor], active: Tensor) -> None:
        for i, (p, g) in enumerate(zip(self.params, grads, strict=True)):
            if self.weight_decay:
                g = g.add(p, alpha=self.weight_decay)
            if self.momentum:
                buf = self.buffers[i]
                if buf is None:
                    buf = self.buffers[i] = g.clone()
                else:
                    buf.mul_(self.momentum).add_(g, alpha=1 - self.dampening)
                g = g.add(buf, alpha=self.momentum) if self.nesterov else buf
            lr = (self.lrs * active).view(-1, *([1] * (p.dim() - 1)))
            p.sub_(lr * g)


class StackedLinear:
    """K copies of a LinearRegression's parameters, ``w`` as (K, d) and ``b`` as (K,)."""

    def __init__(self, model: LinearRegression, k: int) -> None:
        self.w = model.w.detach().expand(k, -1).clone().requires_grad_()
        self.b = None if model.b is None else model.b.detach().expand(k).clone().requires_grad_()
        self.params = [self.w] if self.b is None else [self.w, self.b]

    def __call__(self, x: Tensor) -> Tensor:
        pred = x @ self.w.T
        return pred if self.b is None else pred + self.b

    def flat(self) -> Tensor:
        """(K, P) parameter values in ``scalar_names`` order (w0..w_{d-1}, b)."""
        cols = [self.w.detach()] + ([] if self.b is None else [self.b.detach().unsqueeze(1)])
        return torch.cat(cols, dim=1)

    def load_member(self, model: LinearRegression, k: int) -> None:
        with torch.no_grad():
            model.w.copy_(self.w[k])
            if self.b is not None:
                model.b.copy_(self.b[k])


def member_losses(loss: RegressionLoss, pred: Tensor, y: Tensor) -> Tensor:
    """(K,) losses: the loss's mean penalty over the batch, per member column of ``pred``."""
    return loss.penalty(pred - y.unsqueeze(1)).mean(0)


def check_applies(cfg: DictConfig, module: Any) -> None:
    if not isinstance(module.model, LinearRegression):
        raise ValueError(f"lr_sweep needs model=linear (LinearRegression); got {module.model}")
    if not isinstance(module.loss_fn, RegressionLoss):
        raise ValueError(f"lr_sweep needs a linlab RegressionLoss; got {module.loss_fn}")
    if cfg.get("scheduler"):
        raise ValueError("lr_sweep does not support a scheduler; set scheduler=null")


def train_lr_sweep(cfg: DictConfig, run_dir: Path) -> list[dict[str, Any]]:
    """Train one stacked member per ``cfg.lr_sweep`` value; return their ``results.json``s."""
    from linlab.train import build, hyperparameters, resolve_seed  # train.py dispatches here

    lrs = [float(v) for v in cfg.lr_sweep]
    seed = resolve_seed(cfg)
    L.seed_everything(seed, workers=True, verbose=False)
    datamodule, module = build(cfg)
    check_applies(cfg, module)
    started = time.perf_counter()
    datamodule.setup("fit")
    k = len(lrs)
    stacked = StackedLinear(module.model, k)
    optimizer = StackedSGD(stacked.params, torch.tensor(lrs), module.hparams.optimizer)
    writers = [SummaryWriter(log_dir=str(member_dir(run_dir, lr))) for lr in lrs]
    run = _Run(stacked, optimizer, module, datamodule, writers, int(cfg.trainer.log_every_n_steps))
    run.fit(int(cfg.trainer.max_epochs))
    wall = time.perf_counter() - started
    results = []
    for i, lr in enumerate(lrs):
        stacked.load_member(module.model, i)
        with_lr = {**hyperparameters(cfg, seed), "lr": lr}
        member = {
            **with_lr,
            **split_losses(module, datamodule),
            **learned_parameters(module),
            "true_weights": datamodule.data.true_weights,
            "true_bias": datamodule.data.true_bias,
            "status": run.status[i],
            "message": "",
            "epochs": run.epochs[i],
            "steps": run.steps[i],
            "wall_time_s": wall,
            "lr_sweep": lrs,
        }
        member["param_distance"] = param_distance(member)
        hparams = {**hparams_of(cfg, member["status"]), "optimizer.lr": lr}
        write_session(writers[i], hparams, final_metrics(member), member["steps"])
        writers[i].close()
        write_json_atomic(member_dir(run_dir, lr) / RESULTS_FILE, member)
        results.append(member)
    return results


class _Run:
    """The training loop of the stacked members, mirroring RegressionModule's logging."""

    def __init__(self, stacked, optimizer, module, datamodule, writers, every: int) -> None:
        self.stacked, self.optimizer, self.loss = stacked, optimizer, module.loss_fn
        self.datamodule, self.writers, self.every = datamodule, writers, every
        self.param_keys = module.param_keys if module.track_params else []
        self.divergence_factor = module.divergence_factor
        k = len(writers)
        self.active = torch.ones(k)
        self.status, self.epochs, self.steps = ["ok"] * k, [0] * k, [0] * k
        self.first: list[float] | None = None
        self.step = 0

    def fit(self, max_epochs: int) -> None:
        batches = self.datamodule.loader("train", training=True)
        for epoch in range(max_epochs):
            batches.sampler.set_epoch(epoch)
            epoch_sum, epoch_steps = torch.zeros(len(self.writers)), 0
            for xs, ys in batches:
                chunk_losses = self.chunk(xs, ys)
                epoch_sum += chunk_losses.sum(0)
                epoch_steps += len(chunk_losses)
                if not bool(self.active.any()):
                    return
            self.end_epoch(epoch, epoch_sum / epoch_steps)
        self.end_training()

    def chunk(self, xs: Tensor, ys: Tensor) -> Tensor:
        start, before, snapshots, losses = self.step, self.stacked.flat().clone(), {}, []
        for x, y in zip(xs, ys, strict=True):
            if self.param_keys and self.step % self.every == 0:
                snapshots[self.step] = self.stacked.flat().clone()
            losses_k = member_losses(self.loss, self.stacked(x), y)
            grads = torch.autograd.grad(losses_k.sum(), self.stacked.params)
            self.optimizer.step(list(grads), self.active)
            losses.append(losses_k.detach())
            self.step += 1
        losses = torch.stack(losses).float()
        values = losses.T.tolist()
        if self.first is None:
            self.first = values and [v[0] for v in values]
        for i in self.active.nonzero().flatten().tolist():
            self.log_member(i, start, values[i], snapshots)
            if self.diverged(i, values[i]):
                self.freeze(i, before)
        return losses

    def log_member(self, i: int, start: int, values: list[float], snapshots: dict) -> None:
        rows = []
        for step in range(start + (-start) % self.every, start + len(values), self.every):
            metrics = {"train/loss": values[step - start]}
            if step in snapshots:
                metrics |= dict(zip(self.param_keys, snapshots[step][i].tolist(), strict=True))
            rows.append((step, metrics))
        write_tensorboard_rows(self.writers[i], rows)

    def diverged(self, i: int, values: list[float]) -> bool:
        limit = self.divergence_factor * max(abs(self.first[i]), 1e-12)
        return any(not math.isfinite(v) or v > limit for v in values)

    def freeze(self, i: int, before: Tensor) -> None:
        """Member i keeps its parameters from before the chunk and takes no further steps."""
        with torch.no_grad():
            d = self.stacked.w.shape[1]
            self.stacked.w[i] = before[i, :d]
            if self.stacked.b is not None:
                self.stacked.b[i] = before[i, d]
        self.active[i] = 0.0
        self.status[i], self.steps[i] = "diverged", self.step

    @torch.no_grad()
    def end_epoch(self, epoch: int, epoch_loss: Tensor) -> None:
        val = self.val_losses()
        for i in self.active.nonzero().flatten().tolist():
            metrics = {"train/epoch_loss": float(epoch_loss[i])}
            if val is not None:
                metrics["val/loss"] = float(val[i])
            write_tensorboard_rows(self.writers[i], [(self.step - 1, metrics)])
            self.epochs[i], self.steps[i] = epoch + 1, self.step

    def val_losses(self) -> Tensor | None:
        if not self.datamodule.split_size("val"):
            return None
        x, y = self.datamodule.splits["val"]
        return member_losses(self.loss, self.stacked(x), y)

    def end_training(self) -> None:
        final = self.stacked.flat()
        if not self.param_keys:
            return
        for i in range(len(self.writers)):
            metrics = dict(zip(self.param_keys, final[i].tolist(), strict=True))
            write_tensorboard_rows(self.writers[i], [(self.steps[i], metrics)])


def report_lr_sweep(results: list[dict[str, Any]], run_dir: Path) -> float | None:
    """Print one line per member; return the best validation loss (what a sweeper minimises)."""
    for member in results:
        print(
            f"lr {member['lr']:g}: {member['status']}, train {member['train_loss']:.6g}, "
            f"val {member['val_loss'] if member['val_loss'] is not None else '-'}"
        )
    print(f"run folder: {run_dir}")
    losses = [m["val_loss"] for m in results if m["val_loss"] is not None and m["status"] == "ok"]
    return min(losses, default=None)
