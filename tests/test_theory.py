"""The closed-form reference is right, and so is the stable learning-rate bound."""

from __future__ import annotations

import itertools
import logging

import numpy as np
import pytest
import torch
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from linlab import tags, theory
from linlab.data.synthetic import line_1d

NO_FIGURES = "callbacks.figures.enabled=false"


def numpy_reference(data, curvature):
    """Least squares with a bias column and the Hessian c/N·X̃ᵀX̃, by NumPy, on the data as
    the run trains on it (float32 values)."""
    x, y = (t.float().double().numpy() for t in (data.x, data.y))
    design = np.column_stack([x, np.ones(len(y))])
    theta = np.linalg.lstsq(design, y, rcond=None)[0]
    eigenvalues = np.linalg.eigvalsh(curvature / len(y) * design.T @ design)
    optimum_loss = curvature / 2 * np.mean((design @ theta - y) ** 2)
    return theta, eigenvalues, optimum_loss


def test_reference_and_per_epoch_metrics_of_cost_surface(train_in, tmp_path):
    results = train_in(["experiment=cost_surface", NO_FIGURES])
    theory = results["theory"]
    data = line_1d(weights=[1.0], bias=-1.0, noise=0.1, seed=0)
    theta, eigenvalues, optimum_loss = numpy_reference(data, 2.0)

    assert theory["w_opt"] == pytest.approx(theta[:1], abs=1e-9)
    assert theory["b_opt"] == pytest.approx(theta[1], abs=1e-9)
    assert theory["optimum_loss"] == pytest.approx(optimum_loss, rel=1e-9)
    assert theory["hessian_eig_max"] == pytest.approx(eigenvalues[-1], rel=1e-9)
    assert theory["hessian_eig_min"] == pytest.approx(eigenvalues[0], rel=1e-9)
    assert theory["condition_number"] == pytest.approx(eigenvalues[-1] / eigenvalues[0])
    assert theory["max_stable_lr"] == pytest.approx(2 / eigenvalues[-1], rel=1e-9)
    assert theory["lr_exceeds_stable_lr"] is False
    # final metrics against the run's own final parameters and the data's truth
    assert theory["excess_loss"] == pytest.approx(results["train_loss"] - optimum_loss, rel=1e-4)
    assert theory["dist_w_opt"] == pytest.approx(abs(results["weights"][0] - theta[0]), abs=1e-7)
    assert theory["dist_w_true"] == pytest.approx(abs(results["weights"][0] - 1.0), abs=1e-7)

    events = EventAccumulator(str(tmp_path / "run"))
    events.Reload()
    for tag in (tags.theory("excess_loss"), tags.theory("dist_w_opt"), tags.theory("dist_w_true")):
        assert [e.step for e in events.Scalars(tag)] == list(range(16)), tag
    excess = [e.value for e in events.Scalars(tags.theory("excess_loss"))]
    assert all(later < earlier for earlier, later in itertools.pairwise(excess))
    # one-off values are no one-point charts; the text tab shows them
    assert tags.theory("max_stable_lr") not in events.Tags()["scalars"]
    text = events.Tensors("results/text_summary")[-1].tensor_proto.string_val[0].decode()
    assert f"| theory/max_stable_lr | {2 / eigenvalues[-1]:.6g} |" in text


@pytest.mark.parametrize(("loss", "curvature"), [("mse", 2.0), ("half_squared", 1.0)])
def test_full_batch_gd_converges_just_below_the_bound_and_diverges_just_above(
    train_in, caplog, loss, curvature
):
    data = line_1d(weights=[-3.0], bias=0.5, noise=0.1, seed=0)
    _, eigenvalues, optimum_loss = numpy_reference(data, curvature)
    bound = float(2 / eigenvalues[-1])
    common = [
        "data=line_1d",
        "data.bias=0.5",
        f"loss={loss}",
        "model.init=zeros",
        "trainer.max_epochs=250",
        NO_FIGURES,
    ]
    with caplog.at_level(logging.WARNING, logger="linlab"):
        below = train_in([*common, f"optimizer.lr={0.95 * bound!r}"], name="below")
    assert "exceeds the largest stable" not in caplog.text
    with caplog.at_level(logging.WARNING, logger="linlab"):
        above = train_in([*common, f"optimizer.lr={1.05 * bound!r}"], name="above")

    assert below["theory"]["max_stable_lr"] == pytest.approx(bound, rel=1e-9)
    assert below["status"] == "ok" and below["steps"] == 250
    assert below["theory"]["excess_loss"] < 1e-6 * optimum_loss
    assert above["status"] == "diverged" and above["steps"] < 250
    assert above["theory"]["lr_exceeds_stable_lr"] is True
    assert f"optimizer.lr={1.05 * bound:g} exceeds the largest stable" in caplog.text


def test_l1_has_no_curvature_bound_but_keeps_the_least_squares_distance(train_in):
    theory = train_in(["experiment=cost_surface", "loss=l1", NO_FIGURES])["theory"]
    assert theory["max_stable_lr"] is None and theory["hessian_eig_max"] is None
    assert theory["optimum_loss"] is None and "excess_loss" not in theory
    assert theory["dist_w_opt"] >= 0


def test_rank_deficient_design_gives_the_minimum_norm_optimum_and_no_condition_number():
    x, y = torch.eye(3), torch.tensor([1.0, 2.0, 3.0])
    reference = theory.reference(x, y, bias=True, curvature=1.0, quadratic=True)
    design = np.column_stack([np.eye(3), np.ones(3)])
    minimum_norm = np.linalg.lstsq(design, y.double().numpy(), rcond=None)[0]
    assert [*reference.w_opt, reference.b_opt] == pytest.approx(minimum_norm, abs=1e-12)
    assert reference.optimum_loss == pytest.approx(0.0, abs=1e-20)
    assert reference.hessian_eig_min == pytest.approx(0.0, abs=1e-12)
    assert reference.condition_number is None
    assert reference.max_stable_lr == pytest.approx(
        2 / np.linalg.eigvalsh(design.T @ design / 3)[-1]
    )
