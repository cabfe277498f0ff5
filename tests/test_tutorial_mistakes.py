"""The notebooks' mistakes, reproduced, and linlab's right values next to them."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from linlab import tags
from linlab.gradcheck import finite_difference_gradient
from linlab.losses import MSELoss
from linlab.models import LinearRegression

X = np.array([1, 2, 3, 4], dtype=np.float32)
Y = np.array([2, 4, 6, 8], dtype=np.float32)


def test_001_numpy_gradient_misses_its_1_over_n():
    """Seed 001: ``np.dot(2*x, y_pred - y).mean()`` — np.dot is already a scalar, so the
    .mean() divides by nothing: the gradient is N = 4 times too large (its first step prints
    w = 1.200 where the autograd version of the same notebook prints 0.300)."""
    w = 0.0
    seed_gradient = np.dot(2 * X, w * X - Y).mean()
    right = float(np.mean(2 * X * (w * X - Y)))  # dJ/dw = 1/N Σ 2x(wx - y)
    assert seed_gradient == pytest.approx(-120.0) and right == pytest.approx(-30.0)
    assert w - 0.01 * seed_gradient == pytest.approx(1.2)

    model = LinearRegression(1, bias=False, init="zeros")
    x, y = torch.from_numpy(X).unsqueeze(1), torch.from_numpy(Y)
    loss = MSELoss()
    analytic = model.analytic_gradients(x, loss.grad_wrt_prediction(model(x), y))["w"]
    loss(model(x), y).backward()
    assert analytic.item() == pytest.approx(right) and model.w.grad.item() == pytest.approx(right)
    assert w - 0.01 * analytic.item() == pytest.approx(0.3)


def test_002_typo_w_for_W_freezes_the_weight(train_in, tmp_path):
    """Seed 002: ``W -= lr * w.grad`` updates W with the gradient of a stale ``w`` (zeroed in an
    earlier cell), so W never moves and the loss prints 30.0 every epoch."""
    stale_w = torch.tensor(1.5, requires_grad=True)
    ((stale_w * 1.0 - 2.0) ** 2).backward()
    stale_w.grad.zero_()
    x, y = torch.from_numpy(X), torch.from_numpy(Y)
    weight = torch.tensor([0.0], requires_grad=True)
    seed_losses = []
    for _ in range(3):
        loss = ((y - weight * x) ** 2).mean()
        loss.backward()
        with torch.no_grad():
            weight -= 0.01 * stale_w.grad  # the typo
        stale_w.grad.zero_()
        seed_losses.append(loss.item())
    assert seed_losses == [30.0, 30.0, 30.0] and weight.item() == 0.0

    # linlab's manual update, on the same problem: the losses seed 002's torch.optim cell prints
    train_in(
        [
            "experiment=two_x",
            "module.update=manual",
            "trainer.max_epochs=4",
            "callbacks.figures.enabled=false",
        ]
    )
    events = EventAccumulator(str(tmp_path / "run"))
    events.Reload()
    losses = [e.value for e in events.Scalars(tags.TRAIN_LOSS)]
    weights = [e.value for e in events.Scalars(tags.param("w0"))]
    printed = [30.0, 21.67499924, 15.66018772, 11.31448650]
    assert losses == pytest.approx(printed, rel=1e-6)
    assert [round(v, 3) for v in weights[1:]] == [0.300, 0.555, 0.772, 0.956]


def test_003_claimed_gradient_of_g_at_pi_1_is_wrong():
    """Seed 003 asks to verify ∇g([π, 1]) = [2, π − 1] for g(w) = 2·w1·w2 + w2·cos(w1).
    The closed form is ∇g = [2·w2 − w2·sin(w1), 2·w1 + cos(w1)], so ∇g([π, 1]) = [2, 2π − 1];
    the notebook's own autograd output [2.0000, 5.2832] agrees with that, not with its claim."""

    def g(w):
        return 2 * w[0] * w[1] + w[1] * torch.cos(w[0])

    point = torch.tensor([math.pi, 1.0], dtype=torch.float64, requires_grad=True)
    g(point).backward()
    w1, w2 = math.pi, 1.0
    closed_form = torch.tensor([2 * w2 - w2 * math.sin(w1), 2 * w1 + math.cos(w1)])
    finite = finite_difference_gradient(g, point)
    right = torch.tensor([2.0, 2 * math.pi - 1], dtype=torch.float64)
    claimed = torch.tensor([2.0, math.pi - 1], dtype=torch.float64)
    for value in (point.grad, closed_form.double(), finite):
        assert torch.allclose(value, right, atol=1e-8)
        assert not torch.allclose(value, claimed, atol=1e-3)
    assert round(point.grad[1].item(), 4) == 5.2832
