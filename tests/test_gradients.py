"""Analytic gradients equal autograd and finite differences; the gradient/update modes train
exactly as a plain PyTorch loop does."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from linlab.data.synthetic import gaussian
from linlab.gradcheck import check_gradients, finite_difference_gradient
from linlab.losses import HalfSquaredLoss, HuberLoss, L1Loss, MSELoss
from linlab.models import LinearRegression
from linlab.module import RegressionModule

LOSSES = {
    "mse": MSELoss,
    "half_squared": HalfSquaredLoss,
    "l1": L1Loss,
    "huber": lambda: HuberLoss(delta=0.7),
}
# What each loss is, written out independently of linlab.losses: penalty of r = ŷ - y.
PENALTIES = {
    "mse": lambda r: r**2,
    "half_squared": lambda r: r**2 / 2,
    "l1": lambda r: r.abs(),
    "huber": lambda r: torch.where(r.abs() <= 0.7, r**2 / 2, 0.7 * (r.abs() - 0.35)),
}


@settings(max_examples=30, deadline=None)
@given(
    loss_name=st.sampled_from(sorted(LOSSES)),
    n_samples=st.integers(1, 40),
    n_features=st.integers(1, 6),
    bias=st.booleans(),
    seed=st.integers(0, 2**31 - 1),
)
def test_analytic_gradient_equals_autograd_and_finite_differences(
    loss_name, n_samples, n_features, bias, seed
):
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(n_samples, n_features, generator=gen, dtype=torch.float64)
    y = torch.randn(n_samples, generator=gen, dtype=torch.float64)
    model = LinearRegression(n_features, bias=bias).double()
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(torch.randn(p.shape, generator=gen, dtype=torch.float64))

    check = check_gradients(model, LOSSES[loss_name](), x, y)

    assert check.analytic is not None
    for name in check.autograd:
        assert torch.allclose(check.analytic[name], check.autograd[name], rtol=0, atol=1e-10)
    assert check.differences()[("autograd", "finite_difference")] < 1e-6, str(check)
    # and autograd itself differentiates the loss as written down here
    w, b = model.w.detach().clone().requires_grad_(), None
    pred = x @ w
    if bias:
        b = model.b.detach().clone().requires_grad_()
        pred = pred + b
    PENALTIES[loss_name](pred - y).mean().backward()
    assert torch.allclose(check.autograd["w"], w.grad, rtol=0, atol=1e-10)
    if bias:
        assert torch.allclose(check.autograd["b"], b.grad, rtol=0, atol=1e-10)


def test_gradcheck_finds_a_wrong_closed_form():
    class WrongGradient(LinearRegression):
        def analytic_gradients(self, x, dloss_dpred):
            grads = super().analytic_gradients(x, dloss_dpred)
            return {**grads, "w": grads["w"] * x.shape[0]}  # seed 001's missing 1/N, reversed

    x, y = torch.randn(8, 2, dtype=torch.float64), torch.randn(8, dtype=torch.float64)
    good = check_gradients(LinearRegression(2), MSELoss(), x, y)
    bad = check_gradients(WrongGradient(2), MSELoss(), x, y)
    assert good.max_difference < 1e-8
    assert bad.max_difference > 1e-3
    assert bad.differences()[("autograd", "finite_difference")] < 1e-8
    assert "largest difference" in str(bad)


def test_gradcheck_of_a_model_without_closed_form_uses_two_ways():
    model = nn.Sequential(nn.Linear(3, 4), nn.Tanh(), nn.Linear(4, 1), nn.Flatten(0))
    check = check_gradients(model, MSELoss(), torch.randn(5, 3), torch.randn(5))
    assert check.analytic is None
    assert set(check.ways()) == {"autograd", "finite_difference"}
    assert check.max_difference < 1e-7


def test_finite_difference_of_a_known_function():
    grad = finite_difference_gradient(lambda v: (v**3).sum(), torch.tensor([1.0, -2.0]))
    assert torch.allclose(grad, torch.tensor([3.0, 12.0], dtype=torch.float64), atol=1e-8)


def test_bad_modes_are_refused_in_one_line():
    model, loss = LinearRegression(1), MSELoss()
    with pytest.raises(ValueError, match=r"module\.gradient='exact' is not one of autograd"):
        RegressionModule(model, loss, optimizer=torch.optim.SGD, gradient="exact")
    with pytest.raises(ValueError, match=r"module\.update='adam' is not one of optimizer"):
        RegressionModule(model, loss, optimizer=torch.optim.SGD, update="adam")
    with pytest.raises(ValueError, match=r"module\.gradient=analytic needs .* Linear with MSELoss"):
        RegressionModule(nn.Linear(1, 1), loss, optimizer=torch.optim.SGD, gradient="analytic")


def plain_minibatch_sgd(x, y, w, b, penalty, lr, batch_size, epochs):
    """Textbook minibatch SGD in order: per batch, autograd of the mean penalty, p -= lr·grad."""
    w, b = w.clone().requires_grad_(), b.clone().requires_grad_()
    for _ in range(epochs):
        for start in range(0, len(y), batch_size):
            xb, yb = x[start : start + batch_size], y[start : start + batch_size]
            penalty(xb @ w + b - yb).mean().backward()
            with torch.no_grad():
                for p in (w, b):
                    p -= lr * p.grad
                    p.grad.zero_()
    return w.detach(), b.detach()


@pytest.mark.parametrize("loss_name", sorted(LOSSES))
def test_modes_give_the_plain_loops_parameters(train_in, loss_name):
    init = [0.5, -0.5, 0.25]
    common = [
        "data=gaussian",
        "data.n_samples=96",
        "data.n_features=3",
        "data.val_fraction=0",
        "data.test_fraction=0",
        "data.batch_size=16",
        "data.shuffle=false",
        f"loss={loss_name}",
        *(["loss.delta=0.7"] if loss_name == "huber" else []),
        "optimizer.lr=0.05",
        "trainer.max_epochs=3",
        f"model.init={{weight:{init},bias:0.1}}",
        "callbacks.figures.enabled=false",
        "seed=5",
    ]
    runs = {
        (gradient, update): train_in(
            [*common, f"module.gradient={gradient}", f"module.update={update}"],
            name=f"{gradient}-{update}",
        )
        for gradient in ("autograd", "analytic")
        for update in ("optimizer", "manual")
    }
    data = gaussian(n_samples=96, n_features=3, seed=5)
    w, b = plain_minibatch_sgd(
        data.x.float(),
        data.y.float(),
        torch.tensor(init),
        torch.tensor(0.1),
        PENALTIES[loss_name],
        lr=0.05,
        batch_size=16,
        epochs=3,
    )
    default = runs[("autograd", "optimizer")]
    for results in runs.values():
        assert results["steps"] == 18
        assert (
            max(abs(a - b) for a, b in zip(results["weights"], default["weights"], strict=True))
            < 1e-6
        )
        assert torch.allclose(
            torch.tensor(results["weights"], dtype=torch.float64), w.double(), atol=1e-6
        )
        assert abs(results["bias"] - b.item()) < 1e-6
