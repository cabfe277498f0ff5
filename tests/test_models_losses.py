"""The linear model's initialisations and the losses' formulas and shape safety."""

from __future__ import annotations

import math

import pytest
import torch

from linlab.losses import HalfSquaredLoss, HuberLoss, L1Loss, MSELoss
from linlab.models import LinearRegression
from linlab.params import scalar_names


def test_init_modes():
    assert torch.count_nonzero(LinearRegression(3, init="zeros").w) == 0
    explicit = LinearRegression(1, init={"weight": [-15.0], "bias": -10.0})
    assert explicit.w.tolist() == [-15.0] and explicit.b.item() == -10.0
    torch.manual_seed(0)
    normal = LinearRegression(2000, init="normal", init_std=0.5)
    assert abs(normal.w.std().item() - 0.5) < 0.03
    default = LinearRegression(4)
    assert default.w.abs().max() <= 0.5 and default.b.abs() <= 0.5
    assert LinearRegression(2, bias=False).b is None


@pytest.mark.parametrize("init", ["ones", {"weight": [1.0, 2.0]}, {"weight": [1.0], "slope": 2}])
def test_bad_init_is_refused(init):
    with pytest.raises(ValueError, match=r"model\.init"):
        LinearRegression(1, init=init)


def test_parameter_names_read_like_the_maths():
    assert scalar_names(LinearRegression(3)) == ["w0", "w1", "w2", "b"]
    assert scalar_names(LinearRegression(1, bias=False)) == ["w0"]


def test_forward_is_xw_plus_b():
    model = LinearRegression(2, init={"weight": [2.0, -1.0], "bias": 0.5})
    x = torch.tensor([[1.0, 1.0], [3.0, 2.0]])
    assert model(x).tolist() == [1.5, 4.5]


def test_loss_formulas():
    pred = torch.tensor([1.0, 2.0, 5.0])
    y = torch.tensor([1.5, 0.0, 2.0])
    r = pred - y
    assert math.isclose(MSELoss()(pred, y), (r**2).mean(), rel_tol=1e-6)
    assert math.isclose(HalfSquaredLoss()(pred, y), (r**2 / 2).mean(), rel_tol=1e-6)
    assert math.isclose(L1Loss()(pred, y), r.abs().mean(), rel_tol=1e-6)
    huber = torch.where(r.abs() <= 1, r**2 / 2, r.abs() - 0.5).mean()
    assert math.isclose(HuberLoss(1.0)(pred, y), huber, rel_tol=1e-6)


def test_column_predictions_do_not_broadcast_against_flat_targets():
    pred = torch.tensor([[1.0], [2.0], [3.0]])
    y = torch.tensor([1.0, 2.0, 4.0])
    assert math.isclose(MSELoss()(pred, y), 1 / 3, rel_tol=1e-6)  # an (N, N) loss would give 14/9
    with pytest.raises(ValueError, match="same number of values"):
        MSELoss()(pred, torch.ones(4))


def test_low_precision_inputs_are_promoted():
    pred = torch.tensor([1.0, 2.0], dtype=torch.bfloat16)
    assert MSELoss()(pred, torch.zeros(2, dtype=torch.bfloat16)).dtype == torch.float32
