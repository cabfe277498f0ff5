"""Precisions on the CPU: each reaches the least-squares optimum to its own tolerance."""

from __future__ import annotations

import logging

import lightning as L
import pytest
import torch
from conftest import compose_config
from lightning.pytorch.plugins.precision import MixedPrecision

from linlab.data.datamodule import LinearDataModule
from linlab.losses import MSELoss
from linlab.train import build

GAUSSIAN = ["data=gaussian", "data.n_samples=400", "data.batch_size=null", "model.init=zeros"]


def fit_gaussian(
    tmp_path, gradient: str, max_epochs: int = 20, **trainer_kwargs
) -> tuple[L.Trainer, LinearDataModule, torch.Tensor]:
    """Full-batch GD on GAUSSIAN with a bare Trainer (no logger, checkpoint or progress bar);
    returns the trainer, the datamodule and the learned (w, b) on the CPU."""
    datamodule, module = build(compose_config([*GAUSSIAN, f"module.gradient={gradient}"], tmp_path))
    trainer = L.Trainer(
        max_epochs=max_epochs,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        **trainer_kwargs,
    )
    trainer.fit(module, datamodule=datamodule)
    return (
        trainer,
        datamodule,
        torch.cat([module.model.w.detach(), module.model.b.detach()[None]]).cpu(),
    )


def train_split_float64(overrides: list[str], tmp_path) -> tuple[torch.Tensor, torch.Tensor]:
    """The run's training split, rebuilt from the generator in float64 without Lightning."""
    datamodule, _ = build(compose_config(overrides, tmp_path))
    datamodule.setup()
    index = datamodule.split_indices(len(datamodule.data))["train"]
    return datamodule.data.x[index].double(), datamodule.data.y[index].double()


def least_squares(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """argmin ‖[x 1]·θ - y‖², θ = (w, b), by torch.linalg.lstsq in float64."""
    design = torch.cat([x, torch.ones(len(x), 1, dtype=x.dtype)], dim=1)
    return torch.linalg.lstsq(design, y[:, None]).solution[:, 0]


@pytest.mark.parametrize(
    ("precision", "tolerance"),
    [("32-true", 1e-5), ("bf16-mixed", 3e-2), ("64-true", 1e-12)],
)
def test_precision_reaches_least_squares_optimum(train_in, tmp_path, precision, tolerance):
    overrides = [*GAUSSIAN, "optimizer.lr=0.3", "trainer.max_epochs=150"]
    results = train_in([*overrides, f"trainer.precision={precision}"])
    optimum = least_squares(*train_split_float64(overrides, tmp_path / "data"))
    learned = torch.tensor([*results["weights"], results["bias"]], dtype=torch.float64)
    assert results["precision"] == results["precision_effective"] == precision
    assert results["accelerator_effective"] == "cpu" and results["device"] == "cpu"
    assert (learned - optimum).abs().max() < tolerance, (learned - optimum).abs().max()


def test_64_true_matches_a_float64_plain_loop(train_in, tmp_path):
    overrides = [*GAUSSIAN, "optimizer.lr=0.05", "trainer.max_epochs=30"]
    results = train_in([*overrides, "trainer.precision=64-true"])
    x, y = train_split_float64(overrides, tmp_path / "data")
    w = torch.zeros(x.shape[1], dtype=torch.float64, requires_grad=True)
    b = torch.zeros((), dtype=torch.float64, requires_grad=True)
    for _ in range(30):
        ((x @ w + b - y) ** 2).mean().backward()
        with torch.no_grad():
            for p in (w, b):
                p -= 0.05 * p.grad
                p.grad = None
    w, b = w.detach(), b.detach()
    assert torch.allclose(torch.tensor(results["weights"], dtype=torch.float64), w, atol=1e-10)
    assert abs(results["bias"] - b.item()) < 1e-10


class BatchProbe(L.Callback):
    """Records what every training chunk looks like once Lightning hands it to the module."""

    def __init__(self) -> None:
        self.seen: list[tuple[torch.dtype, torch.device, torch.dtype, bool]] = []

    def on_train_batch_start(self, trainer, module, batch, batch_idx) -> None:
        moved = trainer.precision_plugin.convert_input(trainer.strategy.batch_to_device(batch))
        untouched = all(a is b for a, b in zip(moved, batch, strict=True))
        self.seen.append((batch[0].dtype, batch[0].device, module.model.w.dtype, untouched))


def test_64_true_data_and_model_are_float64_and_never_copied(tmp_path):
    cfg = compose_config([*GAUSSIAN, "data.batch_size=50"], tmp_path)
    datamodule, module = build(cfg)
    probe = BatchProbe()
    trainer = L.Trainer(
        accelerator="cpu",
        precision="64-true",
        max_epochs=1,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        callbacks=[probe],
    )
    trainer.fit(module, datamodule=datamodule)
    assert datamodule.splits["train"][0].dtype == torch.float64
    assert probe.seen and set(probe.seen) == {
        (torch.float64, torch.device("cpu"), torch.float64, True)
    }


def test_16_mixed_on_cpu_records_bf16_and_warns_once(train_in, caplog, recwarn):
    with caplog.at_level(logging.WARNING, logger="linlab"):
        results = train_in([*GAUSSIAN, "trainer.max_epochs=2", "trainer.precision=16-mixed"])
    assert results["precision"] == "16-mixed"
    assert results["precision_effective"] == "bf16-mixed"
    notices = [r.getMessage() for r in caplog.records if "16-mixed" in r.getMessage()]
    lightning_notices = [w for w in recwarn if "16-mixed" in str(w.message)]
    assert len(notices) == 1 and "bf16-mixed" in notices[0] and not lightning_notices


def test_loss_is_float32_under_bf16_autocast():
    x = torch.randn(256, 8, generator=torch.Generator().manual_seed(0))
    y = torch.randn(256, generator=torch.Generator().manual_seed(1))
    layer = torch.nn.Linear(8, 1)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        pred = layer(x)[:, 0]
        loss = MSELoss()(pred, y)
    assert pred.dtype == torch.bfloat16 and loss.dtype == torch.float32
    exact = ((pred.detach().double() - y.double()) ** 2).mean()
    assert abs(loss.item() - exact.item()) < 1e-6 * exact.item()


@pytest.mark.parametrize("gradient", ["autograd", "analytic"])
def test_16_mixed_gradient_scaler_applies_to_both_gradient_modes(tmp_path, gradient):
    """With a float16 GradScaler (what 16-mixed uses on a GPU), both modes take the same steps."""

    def fit(precision) -> torch.Tensor:
        plugins = [precision] if precision else None
        return fit_gaussian(tmp_path, gradient, accelerator="cpu", plugins=plugins)[2]

    scaler = torch.amp.GradScaler("cpu", init_scale=16.0)  # small enough never to overflow
    scaled = fit(MixedPrecision("16-mixed", "cpu", scaler=scaler))
    assert scaler.get_scale() == 16.0  # no step was skipped, every gradient was scaled
    assert torch.allclose(scaled, fit(None), atol=1e-2)
