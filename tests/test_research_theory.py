"""Population risk, ridge and min-norm fixed points, steps-to-target, and the minibatch
stability constants, each against an independent computation (Monte Carlo, NumPy, events)."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from linlab import tags, theory
from linlab.data.synthetic import gaussian

NO_FIGURES = "callbacks.figures.enabled=false"
WHOLE = ["data.val_fraction=0", "data.test_fraction=0", "data.batch_size=null", NO_FIGURES]
DESIGN = {"covariance": "condition", "condition_number": 8.0, "rotate": True, "bias": 0.3}
DESIGN |= {"noise_kind": "student_t", "noise_df": 6.0, "noise": 0.4}


@pytest.mark.parametrize("curvature", [2.0, 1.0])  # MSE, half-squared
def test_population_risk_matches_a_monte_carlo_estimate(curvature):
    fresh = gaussian(n_samples=400_000, n_features=4, seed=11, **DESIGN)
    w = torch.tensor([0.5, -1.0, 0.2, 0.0], dtype=torch.float64)
    b = -0.2
    beta = torch.tensor(fresh.true_weights, dtype=torch.float64)
    exact = theory.population_risk(
        w, b, beta, fresh.true_bias, fresh.covariance, fresh.noise_variance, curvature
    )
    monte_carlo = float((curvature / 2 * (fresh.x @ w + b - fresh.y) ** 2).mean())
    assert exact == pytest.approx(monte_carlo, rel=0.01)
    excess = theory.excess_population_risk(w, b, beta, fresh.true_bias, fresh.covariance, curvature)
    assert excess == pytest.approx(exact - curvature / 2 * 0.16, rel=1e-12)


def test_run_logs_exact_population_risk_every_epoch(train_in, tmp_path):
    args = ["data.covariance=spiked", "data.spike=3.0", "data.n_samples=200", "data.n_features=3"]
    results = train_in([*args, *WHOLE, "trainer.max_epochs=4", "optimizer.lr=0.05"])
    sigma = np.diag([4.0, 1.0, 1.0])  # spiked: 1 + 3 on the first axis
    delta = np.array(results["weights"]) - np.array(results["true_weights"])
    bias_error = results["bias"] - results["true_bias"]
    expected = delta @ sigma @ delta + bias_error**2 + 0.1**2
    t = results["theory"]
    assert t["population_risk"] == pytest.approx(expected, rel=1e-9)
    assert t["excess_population_risk"] == pytest.approx(expected - 0.01, rel=1e-9)
    events = EventAccumulator(str(tmp_path / "run"))
    events.Reload()
    risks = events.Scalars(tags.theory("population_risk"))
    assert [e.step for e in risks] == list(range(5))  # at the start and after each epoch
    assert risks[-1].value == pytest.approx(expected, rel=1e-5)
    assert all(a.value > b.value for a, b in itertools.pairwise(risks))
    # the minibatch stability constants, from the training data (all of it here) by NumPy
    data = gaussian(n_samples=200, n_features=3, covariance="spiked", spike=3.0, seed=0)
    x = np.column_stack([data.x.float().double().numpy(), np.ones(200)])
    eigenvalues = np.linalg.eigvalsh(x.T @ x / 200)
    assert t["second_moment_eig_max"] == pytest.approx(eigenvalues[-1], rel=1e-6)
    assert t["fourth_moment_beta"] == pytest.approx(eigenvalues.sum() + 2 * eigenvalues[-1])
    full = theory.minibatch_max_lr(200, eigenvalues[-1], t["fourth_moment_beta"], 2.0)
    assert t["minibatch_max_lr"] == pytest.approx(full, rel=1e-6)
    assert t["critical_batch"] == pytest.approx(t["fourth_moment_beta"] / eigenvalues[-1])


def test_gradient_descent_from_zero_converges_to_the_min_norm_solution(train_in):
    """d = 2n: the least-squares problem has many solutions; GD from zero stays in the row
    space of X and ends at the one of least norm (NumPy's lstsq)."""
    args = ["experiment=double_descent", "data.n_samples=20", "data.n_features=40"]
    results = train_in([*args, "trainer.max_epochs=400"])
    data = gaussian(n_samples=20, n_features=40, signal_norm=1.0, noise=0.5, seed=0)
    x, y = (t.float().double().numpy() for t in (data.x, data.y))
    min_norm = np.linalg.lstsq(x, y, rcond=None)[0]
    np.testing.assert_allclose(results["weights"], min_norm, atol=2e-4)
    assert np.abs(x @ min_norm - y).max() < 1e-9  # it interpolates
    t = results["theory"]
    beta = np.array(data.true_weights)
    assert t["w_opt_excess_population_risk"] == pytest.approx(
        np.sum((min_norm - beta) ** 2), rel=1e-6
    )  # Σ = I
    assert t["excess_population_risk"] == pytest.approx(t["w_opt_excess_population_risk"], 1e-3)


def test_weight_decay_converges_to_the_ridge_solution(train_in):
    """torch adds λθ to the MSE gradient 2/N·X̃ᵀ(X̃θ − y): θ = (X̃ᵀX̃ + λN/2·I)⁻¹X̃ᵀy."""
    args = ["data.n_samples=50", "data.n_features=3", "data.bias=1.0", "optimizer.weight_decay=0.5"]
    results = train_in([*args, *WHOLE, "trainer.max_epochs=200", "optimizer.lr=0.2"])
    data = gaussian(n_samples=50, n_features=3, bias=1.0, seed=0)
    x = np.column_stack([data.x.float().double().numpy(), np.ones(50)])
    y = data.y.float().double().numpy()
    ridge = np.linalg.solve(x.T @ x + 0.5 * 50 / 2 * np.eye(4), x.T @ y)
    learned = [*results["weights"], results["bias"]]
    np.testing.assert_allclose(learned, ridge, atol=1e-5)
    t = results["theory"]
    np.testing.assert_allclose([*t["w_ridge"], t["b_ridge"]], ridge, rtol=1e-9)


def test_steps_to_target_is_the_first_validation_below_it(train_in, tmp_path):
    target = 0.5
    results = train_in([f"callbacks.theory.target_val_loss={target}", NO_FIGURES])
    events = EventAccumulator(str(tmp_path / "run"))
    events.Reload()
    epochs = [i + 1 for i, e in enumerate(events.Scalars(tags.VAL_LOSS)) if e.value < target]
    steps_per_epoch = -(-700 // 32)  # default data: 700 training samples, batches of 32
    assert results["steps_to_target"] == epochs[0] * steps_per_epoch  # steps taken by then
    assert epochs[0] > 1 and results["target_val_loss"] == target
    assert events.Scalars(tags.value("steps_to_target"))[-1].value == results["steps_to_target"]
    assert theory.steps_to_target([(5, 1.0), (10, 0.7)], target) is None
    assert theory.steps_to_target([(5, 1.0)], None) is None


def test_streamed_run_on_a_rotated_spectrum_logs_its_population_risk(train_in):
    args = ["data.streaming=true", "data.val_fraction=0", "data.test_fraction=0"]
    args += ["data.covariance=condition", "data.condition_number=20", "data.rotate=true"]
    args += ["data.n_samples=2000", "data.batch_size=50", "trainer.max_epochs=2", NO_FIGURES]
    results = train_in(args)
    design = gaussian(n_samples=1, n_features=5, covariance="condition", condition_number=20.0,
                      rotate=True, seed=0)  # fmt: skip
    sigma = design.covariance.numpy()
    assert np.linalg.cond(sigma) == pytest.approx(20.0)
    delta = np.array(results["weights"]) - np.array(design.true_weights)
    expected = delta @ sigma @ delta + results["bias"] ** 2 + 0.1**2
    assert results["theory"]["population_risk"] == pytest.approx(expected, rel=1e-9)
    assert results["true_weights"] == design.true_weights
