"""Lightning callback: measure a run against the closed-form reference of ``linlab.theory``.

At fit start, on the training split: the least-squares optimum, its loss, the Hessian's
extreme eigenvalues, its condition number and the largest stable full-batch learning rate,
returned by ``results()`` (train.py merges that into ``results.json``; TensorBoard's text
tab shows them, not one-point charts), with a warning when plain gradient descent's
``optimizer.lr`` exceeds the bound. After every epoch (and at the start):
``theory/excess_loss`` = L(θ) − L(θ*) (quadratic losses only), ``theory/dist_w_opt`` =
‖w − w*‖ and ``theory/dist_w_true`` = ‖w − w_true‖, over the weights w (the bias is not
included).

For a Gaussian design (the data carry Σ and σ²), also every epoch:
``theory/population_risk`` and ``theory/excess_population_risk`` (``linlab.theory``), and at
fit start the population excess risk of the closed-form optimum, the Ma-Bassily-Belkin
constants (β, critical batch, the largest stable lr at this batch size) and, when SGD or Adam
has a ``weight_decay``, the ridge solution it converges to. ``target_val_loss`` makes
``steps_to_target`` (the first step whose val loss is below it) a result.

For plain SGD at a constant learning rate on a model without bias, also
``theory/expected_risk``, the exact expected population risk at that step from the parameters
where training starts (a resumed run: from its checkpoint; ``linlab.learning_curves``):
full-batch GD's closed form, or for streamed data
(one pass, a fresh batch every step) the SGD second-moment recursion, logged after every chunk
of steps (``data.chunk_batches`` sets how often) next to ``theory/population_risk``.

For a classification loss (``loss.classifier``) instead, at the start and after every epoch:
``<split>/accuracy`` and ``<split>/margin`` (the normalized margin, ``linlab.margins``) on each
split, and for a binary model on linearly separable training data ``theory/angle_to_max_margin``
and ``theory/normalized_margin`` against the hard-margin SVM solved at fit start; their final
values go to results.json (``val_accuracy``, ..., ``theory.max_margin``).
"""

from __future__ import annotations

import logging
from typing import Any

import lightning as L
import torch

from linlab import learning_curves, margins, tags, theory
from linlab.optim import ManualGradientDescent

log = logging.getLogger("linlab")


class TheoryMetrics(L.Callback):
    """Closed-form reference and distance-to-optimum metrics for linear models.

    Args:
        enabled: False skips everything (no metrics, nothing in results.json).
        target_val_loss: ``steps_to_target`` is the first step at which the val loss (checked
            after each validation) is below this; None: not measured.
    """

    def __init__(self, enabled: bool = True, target_val_loss: float | None = None) -> None:
        self.enabled = enabled
        self.target_val_loss = target_val_loss
        self.val_history: list[tuple[int, float]] = []
        self.population: dict[str, Any] | None = None
        self.extra: dict[str, Any] = {}
        self.reference: theory.Reference | None = None
        self.true_weights: list[float] | None = None
        self.lr_exceeds_bound: bool | None = None
        self.latest: dict[str, float] = {}
        self.classifier = False
        self.splits: dict[str, tuple[torch.Tensor, torch.Tensor]] = {}
        self.max_margin: margins.MaxMargin | None = None
        self.expected: list[float] | None = None
        self.expected_start = 0  # the step of expected[0]
        self.streaming = False
        self._target_tensors: (
            tuple[torch.device, torch.Tensor | None, torch.Tensor | None] | None
        ) = None

    def on_fit_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        splits = getattr(trainer.datamodule, "splits", {})
        model, loss = pl_module.model, pl_module.loss_fn
        self._target_tensors = None
        self.classifier = self.enabled and getattr(loss, "classifier", False)
        if self.classifier:
            self._start_classifier(splits, model)
            return
        if not self.enabled or not hasattr(model, "w"):
            return
        curvature = getattr(loss, "curvature", None)
        quadratic = getattr(loss, "quadratic", False) and curvature is not None
        data = getattr(trainer.datamodule, "data", None)
        self.population = _population(data, curvature if quadratic else None)
        if "train" in splits:  # streamed data has no split: population metrics only
            if data is not None and data.true_weights is not None:
                self.true_weights = list(data.true_weights)
            self.reference = theory.reference(
                *splits["train"], getattr(model, "b", None) is not None, curvature, quadratic
            )
            self.extra = self._closed_forms(trainer, splits["train"], curvature)
            self._check_lr(trainer)

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        """The metrics where training starts: only now are a resumed run's step and parameters
        restored. The expected curve starts here."""
        if self.classifier:
            self._log(trainer, self._classification(pl_module))
        elif self.reference is not None or self.population is not None:
            splits = getattr(trainer.datamodule, "splits", {})
            self.expected_start = trainer.global_step
            self.expected = self._expected_curve(trainer, pl_module.model, splits)
            self._log(trainer, self._distances(pl_module))

    def _expected_curve(self, trainer: L.Trainer, model: Any, splits: dict) -> list[float] | None:
        """E R(θ_t) from the parameters now, for plain constant-lr SGD without a bias:
        full batch (GD's closed form) or streamed data (one-pass SGD); None otherwise."""
        optimizer = trainer.optimizers[0] if trainer.optimizers else None
        p = self.population
        if p is None or getattr(model, "b", None) is not None or trainer.lr_scheduler_configs:
            return None
        group = optimizer.param_groups[0] if optimizer is not None else {}
        if not _plain_gradient_descent(optimizer) or group.get("weight_decay"):
            return None
        datamodule = trainer.datamodule
        batch, theta0 = datamodule.batch_size, model.w.detach().cpu().to(torch.float64)
        risk = (theta0, p["beta"], p["covariance"], p["noise_variance"], group["lr"])
        self.streaming = bool(getattr(datamodule, "streaming", False))
        if self.streaming:
            steps = datamodule.stream.n // batch
            curve = learning_curves.sgd_expected_risk_curve(*risk, batch, steps, p["curvature"])
        elif batch is None and "train" in splits and trainer.max_epochs and trainer.max_epochs > 0:
            x, y = (t.cpu() for t in splits["train"])
            steps = trainer.max_epochs - trainer.current_epoch
            curve = learning_curves.gd_risk_curve(x, y, *risk, steps, p["curvature"])
        else:
            return None
        return curve.tolist()

    def on_train_batch_end(self, trainer: L.Trainer, pl_module: L.LightningModule, *_: Any) -> None:
        """Streamed data: the measured and the expected risk after every chunk of steps."""
        if self.streaming and self.expected is not None:
            self._log(trainer, self._distances(pl_module))

    def _start_classifier(self, splits: dict, model: torch.nn.Module) -> None:
        """The splits to score, and the max-margin direction of a binary model's training data."""
        self.splits = {name: split for name, split in splits.items() if len(split[1])}
        if hasattr(model, "w") and "train" in self.splits:
            x, y = self.splits["train"]
            self.max_margin = margins.max_margin(x.cpu(), y.cpu(), model.b is not None)

    @torch.no_grad()
    def _classification(self, pl_module: L.LightningModule) -> dict[str, float]:
        """Accuracy and normalized margin per split; angle and margin against the SVM."""
        model = pl_module.model
        theta = torch.cat([p.detach().reshape(-1) for p in model.parameters()])
        norm = float(torch.linalg.vector_norm(theta.double()))
        metrics = {}
        for name, (x, y) in self.splits.items():
            scores = model(x.to(device=theta.device, dtype=theta.dtype)).double()
            metrics[tags.split_metric(name, "accuracy")] = margins.accuracy(
                scores, y.to(scores.device)
            )
            metrics[tags.split_metric(name, "margin")] = margins.normalized_margin(
                scores, y.to(scores.device), norm
            )
        if self.max_margin is not None:
            metrics[tags.theory("angle_to_max_margin")] = margins.angle(
                theta.double().cpu(), self.max_margin.direction
            )
            metrics[tags.theory("normalized_margin")] = metrics[
                tags.split_metric("train", "margin")
            ]
        self.latest = metrics
        return metrics

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if self.classifier:
            self._log(trainer, self._classification(pl_module))
        elif self.reference is not None or self.population is not None:
            self._log(trainer, self._distances(pl_module))

    def on_validation_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        loss = trainer.callback_metrics.get(tags.VAL_LOSS)
        if self.enabled and not trainer.sanity_checking and loss is not None:
            self.val_history.append((trainer.global_step, float(loss)))

    def state_dict(self) -> dict[str, Any]:
        """The val losses seen so far: a resumed run still finds its first step below target."""
        return {"val_history": [list(pair) for pair in self.val_history]}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.val_history = [(int(step), float(loss)) for step, loss in state_dict["val_history"]]

    def _closed_forms(self, trainer: L.Trainer, train: tuple, curvature: float | None) -> dict:
        """Population risk of θ*, the minibatch stability constants, the ridge fixed point."""
        extra: dict[str, Any] = {"n_train": len(train[1])}
        ref = self.reference
        if self.population is not None:
            extra["noise_variance"] = self.population["noise_variance"]
            extra["signal_norm_sq"] = float(self.population["beta"].square().sum())
            b_opt = ref.b_opt
            w_opt = torch.tensor(ref.w_opt, dtype=torch.float64)
            extra["w_opt_excess_population_risk"] = self._excess(w_opt, b_opt)
        if ref.hessian is not None and ref.hessian_eig_max:
            second_moment = ref.hessian / curvature
            lambda_max = ref.hessian_eig_max / curvature
            beta = theory.fourth_moment_constant(second_moment)
            batch = getattr(trainer.datamodule, "batch_size", None) or len(train[1])
            extra |= {
                "second_moment_eig_max": lambda_max,
                "fourth_moment_beta": beta,
                "critical_batch": theory.critical_batch(lambda_max, beta),
                "minibatch_max_lr": theory.minibatch_max_lr(batch, lambda_max, beta, curvature),
            }
        decay = _weight_decay(trainer)
        if decay and curvature and ref.optimum_loss is not None:
            has_bias = ref.b_opt is not None
            w_ridge, b_ridge = theory.ridge(*train, has_bias, decay, curvature)
            extra |= {
                "w_ridge": w_ridge.tolist(),
                "b_ridge": None if b_ridge is None else float(b_ridge),
            }
            if self.population is not None:
                extra["w_ridge_excess_population_risk"] = self._excess(w_ridge, b_ridge)
        return extra

    def _excess(self, w: torch.Tensor, b: Any) -> float:
        p = self.population
        return theory.excess_population_risk(
            w, b, p["beta"], p["b_true"], p["covariance"], p["curvature"]
        )

    def _check_lr(self, trainer: L.Trainer) -> None:
        """Warn when plain gradient descent runs above 2/λmax; other optimisers have no bound."""
        bound = self.reference.max_stable_lr
        optimizer = trainer.optimizers[0] if trainer.optimizers else None
        if bound is None or not _plain_gradient_descent(optimizer):
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
        w_opt, w_true = self._targets(w.device)
        metrics = {}
        if self.reference is not None:
            metrics[tags.theory("dist_w_opt")] = _distance(w, w_opt)
            if self.reference.optimum_loss is not None:
                metrics[tags.theory("excess_loss")] = self.reference.excess_loss(w, b)
        if w_true is not None:
            metrics[tags.theory("dist_w_true")] = _distance(w, w_true)
        if self.population is not None:
            p = self.population
            risk, excess = theory.population_risks(
                w, b, p["beta"], p["b_true"], p["covariance"], p["noise_variance"], p["curvature"]
            )
            metrics[tags.theory("population_risk")] = risk
            metrics[tags.theory("excess_population_risk")] = excess
            index = pl_module.global_step - self.expected_start
            if self.expected is not None and 0 <= index < len(self.expected):
                metrics[tags.theory("expected_risk")] = self.expected[index]
        self.latest = metrics
        return metrics

    def _targets(self, device: torch.device) -> tuple[torch.Tensor | None, torch.Tensor | None]:
        """w* and w_true as float64 tensors on ``device``, made once (every member measures
        against them every epoch)."""
        if self._target_tensors is None or self._target_tensors[0] != device:
            w_opt = None if self.reference is None else self.reference.w_opt
            tensors = (_on(w_opt, device), _on(self.true_weights, device))
            self._target_tensors = (device, *tensors)
        return self._target_tensors[1], self._target_tensors[2]

    @staticmethod
    def _log(trainer: L.Trainer, metrics: dict[str, float]) -> None:
        for logger in trainer.loggers:
            logger.log_metrics(metrics, step=trainer.global_step)

    def on_train_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if self.classifier:
            self._classification(pl_module)
        elif self.reference is not None or self.population is not None:
            self._distances(pl_module)

    def results(self) -> dict[str, Any]:
        """``theory`` in results.json (the reference, the final distances and risks), and
        ``steps_to_target``."""
        if not self.enabled:
            return {}
        if self.classifier:
            return self._classification_results()
        target = {
            "target_val_loss": self.target_val_loss,
            "steps_to_target": theory.steps_to_target(self.val_history, self.target_val_loss),
        }
        final = {key.removeprefix(tags.THEORY_PREFIX): value for key, value in self.latest.items()}
        if self.reference is None and not final:
            return target
        return {
            "theory": {
                **(self.reference.as_dict() if self.reference is not None else {}),
                **self.extra,
                "lr_exceeds_stable_lr": self.lr_exceeds_bound,
                **final,
            },
            **target,
        }

    def _classification_results(self) -> dict[str, Any]:
        """``<split>_accuracy``, ``<split>_margin`` and ``theory`` (the max-margin solution)."""
        results: dict[str, Any] = {
            key.replace("/", "_"): value
            for key, value in self.latest.items()
            if not key.startswith(tags.THEORY_PREFIX)
        }
        if self.max_margin is not None:
            results["theory"] = {
                "max_margin": self.max_margin.margin,
                "max_margin_direction": self.max_margin.direction.tolist(),
                "support_vectors": self.max_margin.support,
                **{
                    k.removeprefix(tags.THEORY_PREFIX): v
                    for k, v in self.latest.items()
                    if k.startswith(tags.THEORY_PREFIX)
                },
            }
        return results


def _plain_gradient_descent(optimizer: Any) -> bool:
    """linlab's manual update, or torch's SGD without momentum."""
    return isinstance(optimizer, ManualGradientDescent) or (
        type(optimizer) is torch.optim.SGD and optimizer.defaults.get("momentum", 0) == 0
    )


def _population(data: Any, curvature: float | None) -> dict[str, Any] | None:
    """What ``theory.population_risk`` needs: a Gaussian design with known Σ, a quadratic loss."""
    if data is None or getattr(data, "covariance", None) is None or not curvature:
        return None
    return {
        "beta": torch.tensor(data.true_weights, dtype=torch.float64),
        "b_true": data.true_bias,
        "covariance": data.covariance,
        "noise_variance": data.noise_variance,
        "curvature": curvature,
    }


def _weight_decay(trainer: L.Trainer) -> float:
    """λ of SGD or Adam (added to the gradient, so the fixed point is ridge); 0 otherwise."""
    optimizer = trainer.optimizers[0] if trainer.optimizers else None
    if type(optimizer) not in (torch.optim.SGD, torch.optim.Adam):
        return 0.0
    return float(optimizer.param_groups[0].get("weight_decay") or 0.0)


def _on(values: list[float] | None, device: torch.device) -> torch.Tensor | None:
    return None if values is None else torch.tensor(values, dtype=torch.float64, device=device)


def _distance(w: torch.Tensor, other: torch.Tensor) -> float:
    """‖w − other‖₂ (one device-to-host read)."""
    return float(torch.linalg.vector_norm(w - other))
