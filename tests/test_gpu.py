"""On a CUDA GPU: data and model on the device, 16-mixed scales gradients, bf16-mixed does not."""

from __future__ import annotations

import json
import math

import lightning as L
import pytest
import torch
from conftest import run_cli
from test_precision import GAUSSIAN, fit_gaussian, least_squares, train_split_float64

from linlab.data.batches import TensorBatches

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device"),
]


@pytest.mark.parametrize(
    ("precision", "tolerance"),
    [("32-true", 1e-4), ("16-mixed", 3e-2), ("bf16-mixed", 3e-2), ("64-true", 1e-12)],
)
def test_gpu_precision_reaches_least_squares_optimum(train_in, tmp_path, precision, tolerance):
    overrides = [*GAUSSIAN, "optimizer.lr=0.3", "trainer.max_epochs=150"]
    results = train_in([*overrides, "trainer=gpu", f"trainer.precision={precision}"])
    optimum = least_squares(*train_split_float64(overrides, tmp_path / "data"))
    learned = torch.tensor([*results["weights"], results["bias"]], dtype=torch.float64)
    assert results["precision_effective"] == precision
    assert results["accelerator_effective"] == "gpu" and results["device"].startswith("cuda")
    assert (learned - optimum).abs().max() < tolerance


def fit_on_gpu(
    tmp_path, precision: str, gradient: str, epochs: int = 20
) -> tuple[L.Trainer, torch.Tensor]:
    trainer, datamodule, learned = fit_gaussian(
        tmp_path, gradient, epochs, accelerator="gpu", devices=1, precision=precision
    )
    assert datamodule.splits["train"][0].device.type == "cuda"
    return trainer, learned


@pytest.mark.parametrize(("precision", "scaled"), [("16-mixed", True), ("bf16-mixed", False)])
@pytest.mark.parametrize("gradient", ["autograd", "analytic"])
def test_gpu_gradient_scaler_only_for_16_mixed(tmp_path, precision, scaled, gradient):
    trainer, learned = fit_on_gpu(tmp_path, precision, gradient)  # 20 full-batch steps
    scaler = getattr(trainer.precision_plugin, "scaler", None)
    assert isinstance(scaler, torch.amp.GradScaler) == scaled
    # The scaler skips every step whose float16 gradient overflowed and halves its scale
    # (from 2**16; 20 steps are too few to grow it): the run is 32-true minus those steps.
    skipped = round(math.log2(2**16 / scaler.get_scale())) if scaled else 0
    assert skipped < 20
    _, full_precision = fit_on_gpu(tmp_path, "32-true", gradient, epochs=20 - skipped)
    assert torch.allclose(learned.float(), full_precision, atol=2e-2)


@pytest.mark.skipif(torch.cuda.device_count() < 2, reason="needs 2 CUDA devices")
def test_ddp_on_two_gpus_equals_one(tmp_path, train_in):
    overrides = ["data.n_samples=200", "data.batch_size=null", "trainer.max_epochs=8"]
    run_cli([*overrides, "trainer=ddp", f"hydra.run.dir={tmp_path}/ddp"], cwd=tmp_path)
    single = train_in([*overrides, "trainer=gpu"], name="single")
    results = json.loads((tmp_path / "ddp" / "results.json").read_text())
    assert results["world_size"] == 2
    ddp_weights, single_weights = torch.tensor(results["weights"]), torch.tensor(single["weights"])
    assert torch.allclose(ddp_weights, single_weights, atol=1e-5)


def test_gpu_epoch_order_is_drawn_on_the_device_every_sample_once_and_repeats():
    x = torch.arange(1000.0, device="cuda").unsqueeze(1)
    batches = TensorBatches(x, x[:, 0].clone(), 100, shuffle=True, seed=3)
    assert batches.sampler.indices(x.device).device.type == "cuda"
    orders = []
    for _ in range(2):
        batches.sampler.set_epoch(1)
        orders.append(torch.cat([xs[..., 0].flatten() for xs, _ in batches]).long().cpu())
    assert torch.equal(orders[0], orders[1])
    assert sorted(orders[0].tolist()) == list(range(1000))
    assert not torch.equal(orders[0], torch.arange(1000))
