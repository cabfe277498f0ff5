"""Each tutorial preset (`experiment=<name>`) reproduces its notebook's numbers."""

from __future__ import annotations

import math
import re

import pytest
import torch
from conftest import run_cli
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

import linlab
from linlab import tags
from linlab.data.synthetic import gaussian, line_1d

NO_FIGURES = ["callbacks.figures.enabled=false"]


def plain_full_batch_gd(x, y, w, b, lr, epochs):
    """The notebooks' loop: MSE on the whole batch, backward, p -= lr * p.grad; b=None: no bias."""
    params = [w.clone().requires_grad_()] + ([] if b is None else [b.clone().requires_grad_()])
    for _ in range(epochs):
        pred = x @ params[0] + (params[1] if b is not None else 0.0)
        ((pred - y) ** 2).mean().backward()
        with torch.no_grad():
            for p in params:
                p -= lr * p.grad
                p.grad.zero_()
    return [p.detach() for p in params]


PRESETS = {
    # name: (data the notebook draws, initial w, initial b or None, lr, epochs)
    "line_1d": (lambda: line_1d(weights=[-3.0], noise=0.1, seed=0), [-10.0], None, 0.1, 4),
    "cost_surface": (
        lambda: line_1d(weights=[1.0], bias=-1.0, noise=0.1, seed=0),
        [-15.0],
        -10.0,
        0.1,
        15,
    ),
    "multi_feature": (
        lambda: gaussian(n_samples=50, n_features=2, weights=[-1.0, 2.0], noise=0.1, seed=0),
        [1.0, 0.0],
        None,
        0.1,
        20,
    ),
}


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_full_batch_preset_equals_the_notebook_loop(train_in, name):
    make, w0, b0, lr, epochs = PRESETS[name]
    results = train_in([f"experiment={name}", *NO_FIGURES])
    data = make()
    params = plain_full_batch_gd(
        data.x.float(),
        data.y.float(),
        torch.tensor(w0),
        None if b0 is None else torch.tensor(b0),
        lr,
        epochs,
    )
    assert results["status"] == "ok" and results["steps"] == epochs
    assert torch.allclose(
        torch.tensor(results["weights"], dtype=torch.float64), params[0].double(), atol=1e-5
    )
    if b0 is None:
        assert results["bias"] is None
    else:
        assert abs(results["bias"] - params[1].item()) < 1e-5


def seed_004_minibatch_sgd(steps):
    """Seed 004 verbatim: summed squared loss / 2, then param -= lr * grad / batch_size."""
    x, y = torch.eye(3), torch.tensor([1.0, 2, 3])
    w = torch.tensor([1.0, 1, 1], requires_grad=True)
    b = torch.zeros(1, requires_grad=True)
    for _ in range(steps):
        y_hat = x @ w + b
        ((y_hat - y.reshape(y_hat.shape)) ** 2 / 2).sum().backward()
        with torch.no_grad():
            for param in (w, b):
                param -= 1 * param.grad / 3
                param.grad.zero_()
    return w.detach(), b.detach()


def test_minibatch_eye3_ends_where_seed_004_prints(train_in):
    results = train_in(["experiment=minibatch_eye3", *NO_FIGURES])
    assert results["steps"] == 4
    assert [round(v, 4) for v in results["weights"]] == [0.4444, 1.2469, 2.0494]
    assert round(results["bias"], 4) == 0.7407
    w, b = seed_004_minibatch_sgd(4)
    assert torch.allclose(torch.tensor(results["weights"]), w, atol=1e-6)
    assert abs(results["bias"] - b.item()) < 1e-6


def test_two_x_from_the_cli_prints_f5_and_loads_back(tmp_path):
    run_dir = tmp_path / "two_x"
    proc = run_cli(
        ["experiment=two_x", "callbacks.figures.enabled=false", f"hydra.run.dir={run_dir}"],
        cwd=tmp_path,
    )
    assert "prediction after training: f(5.0) = 10.000" in proc.stdout
    events = EventAccumulator(str(run_dir))
    events.Reload()
    loss = {e.step: e.value for e in events.Scalars(tags.TRAIN_LOSS)}
    w = {e.step: e.value for e in events.Scalars(tags.param("w0"))}
    # seed 001 (autograd): "epoch 1: w = 0.300, loss = 30.00000000": loss at w=0, w after step 1
    assert loss[0] == pytest.approx(30.0, abs=1e-5)
    assert w[0] == 0.0 and w[1] == pytest.approx(0.300, abs=1e-6)
    model = linlab.load_run(run_dir).model
    prediction = model(torch.tensor([[5.0]])).item()
    assert math.isclose(prediction, 10.0, abs_tol=0.01)
    # the independent value: 100 steps of w -= 0.01 · 2/N Σ x(wx - y) from w = 0
    x = torch.tensor([1.0, 2.0, 3.0, 4.0], dtype=torch.float64)
    w_loop = 0.0
    for _ in range(100):
        w_loop -= 0.01 * (2 * x * (w_loop * x - 2 * x)).mean().item()
    assert prediction == pytest.approx(5 * w_loop, abs=1e-5)
    assert re.search(r"learned w = \[2\.0000\]", proc.stdout)
