"""Exact learning curves against independent computations: the full-batch closed form against
a plain gradient-descent loop, the one-pass SGD recursion against a Monte-Carlo average of
independent plain SGD runs, and what a run logs against its own measured risk."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from test_performance import scalars

from linlab import tags
from linlab.learning_curves import gd_risk_curve, sgd_expected_risk_curve

D, LR, STEPS, NOISE_VAR = 6, 0.1, 40, 0.25


@pytest.fixture(scope="module")
def design():
    gen = torch.Generator().manual_seed(0)
    lam = torch.arange(1, D + 1, dtype=torch.float64) ** -1.0  # power-law spectrum
    q, _ = torch.linalg.qr(torch.randn(D, D, generator=gen, dtype=torch.float64))
    beta = torch.randn(D, generator=gen, dtype=torch.float64)
    theta0 = torch.randn(D, generator=gen, dtype=torch.float64)
    return lam, q, q @ torch.diag(lam) @ q.T, beta, theta0


def population_risk(theta, beta, sigma, c):
    error = theta - beta
    return c / 2 * (np.einsum("...i,ij,...j->...", error, sigma, error) + NOISE_VAR)


@pytest.mark.parametrize("n", [30, 4])  # under- and over-parameterised (Σ̂ singular)
def test_full_batch_closed_form_equals_a_plain_loop(design, n):
    lam, q, sigma, beta, theta0 = design
    gen = torch.Generator().manual_seed(n)
    x = torch.randn(n, D, generator=gen, dtype=torch.float64) * lam.sqrt() @ q.T
    y = x @ beta + 0.5 * torch.randn(n, generator=gen, dtype=torch.float64)
    c = 1.0
    curve = gd_risk_curve(x, y, theta0, beta, sigma, NOISE_VAR, LR, STEPS, c)
    xs, ys, theta, risks = x.numpy(), y.numpy(), theta0.numpy(), []
    for _ in range(STEPS + 1):
        risks.append(population_risk(theta, beta.numpy(), sigma.numpy(), c))
        theta = theta - LR * c * xs.T @ (xs @ theta - ys) / n
    np.testing.assert_allclose(curve.numpy(), risks, rtol=1e-12)


@pytest.mark.parametrize("batch", [1, 4])
def test_sgd_recursion_is_the_monte_carlo_mean_of_plain_sgd_runs(design, batch):
    lam, q, sigma, beta, theta0 = design
    c, runs = 2.0, 4000
    predicted = sgd_expected_risk_curve(theta0, beta, sigma, NOISE_VAR, LR, batch, STEPS, c)
    rng = np.random.default_rng(batch)
    root = (q * lam.sqrt()).numpy()  # x = Q diag(√λ) z
    b, theta = beta.numpy(), np.tile(theta0.numpy(), (runs, 1))
    risks = []
    for _ in range(STEPS + 1):
        risks.append(population_risk(theta, b, sigma.numpy(), c))
        x = rng.standard_normal((runs, batch, D)) @ root.T
        y = x @ b + np.sqrt(NOISE_VAR) * rng.standard_normal((runs, batch))
        residual = np.einsum("rbd,rd->rb", x, theta) - y
        theta = theta - LR * c * np.einsum("rbd,rb->rd", x, residual) / batch
    risks = np.array(risks)[1:]  # step 0 is deterministic
    mean, error = risks.mean(1), risks.std(1, ddof=1) / np.sqrt(runs)
    z = (mean - predicted.numpy()[1:]) / error
    # steps of one path are correlated (a 2σ excursion lasts many steps): bound the worst one
    assert np.abs(z).max() < 4.0, z
    assert predicted[-1] < 0.5 * predicted[0]  # the curve falls: the check is not vacuous


def test_runs_log_the_expected_risk_beside_the_measured_one(train_in, tmp_path):
    tiny = ["model.bias=false", "data.val_fraction=0", "data.test_fraction=0", "logger=tensorboard"]
    full_batch = [*tiny, "data.batch_size=null"]
    train_in([*full_batch, "trainer.max_epochs=10"], name="gd")  # then resumed from step 10:
    train_in([*full_batch, "trainer.max_epochs=15", "ckpt_path=last"], name="gd")
    logged = scalars(tmp_path / "gd")
    measured = logged[tags.theory("population_risk")]
    expected = logged[tags.theory("expected_risk")]
    assert sorted({step for step, _ in expected}) == list(range(16))
    for (step, value), (same_step, risk) in zip(expected, measured, strict=True):
        assert step == same_step  # full batch: the closed form is the trajectory
        assert value == pytest.approx(risk, rel=1e-5)
    stream = ["data.streaming=true", "data.n_samples=400", "data.batch_size=4"]
    results = train_in([*tiny, *stream, "data.chunk_batches=10", "trainer.max_epochs=1"], "sgd")
    logged = scalars(tmp_path / "sgd")
    steps = [step for step, _ in logged[tags.theory("expected_risk")]]
    assert steps[:4] == [0, 10, 20, 30] and steps[-1] == 100
    first = logged[tags.theory("population_risk")][0][1]
    assert logged[tags.theory("expected_risk")][0][1] == pytest.approx(first, rel=1e-6)
    assert results["theory"]["expected_risk"] < first


def test_sgd_learning_curve_preset_lands_on_its_prediction(train_in, tmp_path):
    """The preset, shrunk to two seeds at one batch size: each run's final measured risk is
    within 15% of its predicted expectation, and both fell well below the start."""
    for seed in (0, 1):
        overrides = ["experiment=sgd_learning_curve", "data.batch_size=16", f"seed={seed}"]
        theory = train_in([*overrides, "data.n_samples=1024"], name=f"seed{seed}")["theory"]
        start = scalars(tmp_path / f"seed{seed}")[tags.theory("population_risk")][0][1]
        assert theory["population_risk"] == pytest.approx(theory["expected_risk"], rel=0.15)
        assert theory["expected_risk"] < 0.5 * start
