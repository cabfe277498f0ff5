"""Linear classifiers: losses against autograd, a run against a plain NumPy loop, stacked
members against their runs alone, the metrics against their definitions, and the max-margin
solver against a second method and against the data's construction."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
import scipy.optimize
import torch
from conftest import train_group_run
from test_performance import scalars

from linlab import tags
from linlab.checks.preflight import problem
from linlab.data.synthetic import gaussian_mixture, separable
from linlab.losses import CrossEntropyLoss, HingeLoss, LogisticLoss, SquaredHingeLoss
from linlab.margins import max_margin
from linlab.models import SoftmaxRegression
from linlab.train import config_dir

BINARY = [LogisticLoss, HingeLoss, SquaredHingeLoss]
LOGISTIC = ["data=gaussian_mixture", "model=logistic", "loss=logistic"]


@pytest.mark.parametrize("loss_class", BINARY)
def test_binary_loss_gradients_equal_autograd(loss_class):
    gen = torch.Generator().manual_seed(0)
    pred = torch.randn(64, generator=gen, dtype=torch.float64).requires_grad_()
    labels = torch.randint(0, 2, (64,), generator=gen).double()
    loss_fn = loss_class()
    loss_fn(pred, labels).backward()
    torch.testing.assert_close(loss_fn.grad_wrt_prediction(pred.detach(), labels), pred.grad)
    sign = 2 * labels - 1  # the formula of the docstring, written independently
    margin = (sign * pred).detach().numpy()
    phi = {
        LogisticLoss: np.log1p(np.exp(-margin)),
        HingeLoss: np.maximum(0, 1 - margin),
        SquaredHingeLoss: np.maximum(0, 1 - margin) ** 2,
    }[loss_class]
    assert float(loss_fn(pred.detach(), labels)) == pytest.approx(phi.mean(), rel=1e-12)


def test_cross_entropy_and_softmax_gradients_equal_autograd():
    gen = torch.Generator().manual_seed(1)
    x = torch.randn(50, 4, generator=gen, dtype=torch.float64)
    labels = torch.randint(0, 3, (50,), generator=gen).double()
    model = SoftmaxRegression(4, 3).double()
    loss_fn = CrossEntropyLoss()
    pred = model(x)
    loss = loss_fn(pred, labels)
    expected = torch.nn.functional.cross_entropy(pred, labels.long())
    torch.testing.assert_close(loss, expected)
    loss.backward()
    analytic = model.analytic_gradients(x, loss_fn.grad_wrt_prediction(pred.detach(), labels))
    for name, p in model.named_parameters():
        torch.testing.assert_close(analytic[name], p.grad)


def numpy_logistic_gd(x, labels, lr, epochs):
    """Full-batch gradient descent from zero on mean log(1 + exp(-s(xw + b))), in NumPy."""
    s = 2 * labels - 1
    w, b = np.zeros(x.shape[1]), 0.0
    for _ in range(epochs):
        margin = s * (x @ w + b)
        g = -s / (1 + np.exp(margin)) / len(s)  # ∂L/∂ŷ
        w, b = w - lr * x.T @ g, b - lr * g.sum()
    return w, b


@pytest.mark.parametrize("gradient", ["autograd", "analytic"])
def test_logistic_run_equals_a_numpy_gradient_descent_loop(train_in, gradient):
    settings = dict(n_samples=120, n_features=3, separation=1.5, label_noise=0.1, seed=4)
    overrides = [f"data.{k}={v}" for k, v in settings.items() if k != "seed"]
    results = train_in(
        [
            *LOGISTIC,
            *overrides,
            "seed=4",
            "data.batch_size=null",
            "data.val_fraction=0",
            "data.test_fraction=0",
            "data.shuffle=false",
            "model.init=zeros",
            "optimizer.lr=0.5",
            "trainer.max_epochs=25",
            "trainer.precision=64-true",
            "callbacks.figures.enabled=false",
            f"module.gradient={gradient}",
        ]
    )
    data = gaussian_mixture(**settings)
    x, labels = data.x.numpy(), data.y.numpy()
    w, b = numpy_logistic_gd(x, labels, 0.5, 25)
    np.testing.assert_allclose(results["weights"], w, rtol=1e-10, atol=1e-12)
    assert results["bias"] == pytest.approx(b, rel=1e-10, abs=1e-12)
    scores = x @ w + b
    assert results["train_accuracy"] == pytest.approx(np.mean((scores >= 0) == labels))
    norm = math.hypot(*w, b)
    assert results["train_margin"] == pytest.approx(np.min((2 * labels - 1) * scores) / norm)


@pytest.mark.parametrize(
    "setup",
    [
        [*LOGISTIC, "loss=hinge"],
        ["data=gaussian_mixture", "data.n_classes=3", "model=softmax", "loss=cross_entropy"],
    ],
    ids=["hinge", "softmax"],
)
def test_classifier_members_stack_and_equal_their_runs_alone(tmp_path, train_in, setup):
    """Members differing in lr and seed (their own data) train as one group; each equals
    its separate run, metrics included."""
    base = [*setup, "data.n_samples=150", "trainer.max_epochs=2", "callbacks.figures.enabled=false"]
    members = [[*base, "optimizer.lr=0.3", "seed=0"], [*base, "optimizer.lr=0.05", "seed=1"]]
    stacked, dirs = train_group_run(members, tmp_path)
    for k, overrides in enumerate(members):
        alone = train_in(overrides, name=f"alone{k}")
        assert stacked[k]["stacked_members"] == 2
        for key in ("val_loss", "train_accuracy", "val_accuracy", "test_margin"):
            assert stacked[k][key] == pytest.approx(alone[key], rel=1e-5, abs=1e-6), key
        logged = scalars(dirs[k])  # per epoch, and HParams' final value
        assert [step for step, _ in logged[tags.split_metric("val", "accuracy")]] == [
            0,
            4,
            8,
        ]  # 105 samples / 32
        assert logged[tags.value("val_accuracy")][-1][1] == pytest.approx(
            stacked[k]["val_accuracy"]
        )


def scipy_max_margin(x: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """The primal min ½‖θ‖² s.t. sᵢθᵀxᵢ ≥ 1, by SciPy's SLSQP (a second, independent method)."""
    a = (2 * labels - 1)[:, None] * x
    solution = scipy.optimize.minimize(
        lambda t: 0.5 * t @ t,
        np.ones(x.shape[1]),
        jac=lambda t: t,
        constraints=[{"type": "ineq", "fun": lambda t: a @ t - 1, "jac": lambda t: a}],
        method="SLSQP",
        options={"ftol": 1e-14, "maxiter": 500},
    )
    assert solution.success, solution.message
    return solution.x


@pytest.mark.parametrize("bias", [False, True])
def test_max_margin_equals_a_second_solver_and_the_construction(bias):
    mixture = gaussian_mixture(80, 3, separation=8.0, seed=2)  # well separated at this size
    found = max_margin(mixture.x, mixture.y, bias)
    assert found is not None
    x = mixture.x.numpy()
    x = np.hstack([x, np.ones((len(x), 1))]) if bias else x
    theta = scipy_max_margin(x, mixture.y.numpy())
    np.testing.assert_allclose(found.direction.numpy(), theta / np.linalg.norm(theta), atol=1e-6)
    assert found.margin == pytest.approx(1 / np.linalg.norm(theta), rel=1e-6)

    data = separable(300, 4, margin=0.3, seed=5)
    found = max_margin(data.x, data.y, bias)
    u = np.append(data.true_weights, 0.0) if bias else np.array(data.true_weights)
    np.testing.assert_allclose(found.direction.numpy(), u, atol=1e-9)
    assert found.margin == pytest.approx(0.3, rel=1e-9)
    overlapping = gaussian_mixture(200, 2, separation=1.0, seed=0)
    assert max_margin(overlapping.x, overlapping.y, bias) is None


def test_gaussian_mixture_draws_its_classes_as_configured():
    data = gaussian_mixture(20000, 3, separation=3.0, class_balance=[0.8, 0.2], seed=0)
    labels = data.y.long()
    assert labels.float().mean().item() == pytest.approx(0.2, abs=0.01)
    means = torch.stack([data.x[labels == k].mean(0) for k in (0, 1)])
    torch.testing.assert_close(
        means[1] - means[0], torch.tensor([3.0, 0, 0]).double(), atol=0.06, rtol=0
    )
    noisy = gaussian_mixture(20000, 3, separation=3.0, label_noise=0.3, seed=0)
    assert (noisy.y != gaussian_mixture(20000, 3, separation=3.0, seed=0).y).double().mean() == (
        pytest.approx(0.3, abs=0.01)
    )


def test_implicit_bias_preset_logs_a_shrinking_angle(train_in, tmp_path):
    results = train_in(["experiment=implicit_bias", "trainer.max_epochs=300"])
    theory = results["theory"]
    assert theory["max_margin"] == pytest.approx(0.5, rel=1e-6)
    w = np.array(results["weights"])
    cosine = w @ np.array(results["true_weights"]) / np.linalg.norm(w)
    assert theory["angle_to_max_margin"] == pytest.approx(math.acos(min(cosine, 1.0)), abs=1e-6)
    angles = scalars(tmp_path / "run")[tags.theory("angle_to_max_margin")]
    assert [step for step, _ in angles] == list(range(301))
    values = [v for _, v in angles]
    assert math.isnan(values[0])  # θ = 0: no direction yet
    assert all(later < earlier for earlier, later in itertools.pairwise(values[1:]))
    assert values[-1] < 0.6 * values[1]
    assert 0 < theory["normalized_margin"] < theory["max_margin"]


@pytest.mark.parametrize(
    ("overrides", "fragments"),
    [
        (["data.n_classes=3"], ["data.n_classes=3", "allowed: 2 with a binary loss"]),
        (["data.label_noise=1.5"], ["data.label_noise=1.5", "[0, 1)"]),
        (["data.class_balance=[1,-1]"], ["data.class_balance", "non-negative shares"]),
        (["loss=cross_entropy"], ["CrossEntropyLoss", "model=softmax"]),
        (["model=softmax"], ["LogisticLoss", "loss=cross_entropy"]),
        (["data=separable", "data.margin=0"], ["data.margin=0", "> 0"]),
        (["data.covariance=foo"], ["data.covariance='foo'", "power_law"]),
    ],
)
def test_bad_classifier_settings_are_refused_in_one_line(overrides, fragments):
    message = problem([*LOGISTIC, *overrides], config_dir())
    assert message is not None and "\n" not in message
    for fragment in fragments:
        assert fragment in message, message


def test_a_softmax_run_resumes_to_the_uninterrupted_result(train_in):
    """3 epochs, then resumed to 5 from checkpoints/last.ckpt, equal 5 in one go."""
    base = [
        "data=gaussian_mixture",
        "data.n_classes=3",
        "model=softmax",
        "loss=cross_entropy",
        "data.n_samples=200",
        "optimizer.lr=0.5",
        "callbacks.figures.enabled=false",
    ]
    train_in([*base, "trainer.max_epochs=3"], name="short")
    resumed = train_in([*base, "trainer.max_epochs=5", "ckpt_path=last"], name="short")
    reference = train_in([*base, "trainer.max_epochs=5"], name="reference")
    assert resumed["parameters"] == reference["parameters"]
    assert resumed["steps"] == reference["steps"] == 5 * 5
    assert resumed["val_accuracy"] == reference["val_accuracy"]
