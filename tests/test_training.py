"""A configured run trains as a plain PyTorch loop does, reproducibly, and records it."""

from __future__ import annotations

import math

import torch
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from linlab import tags
from linlab.data.synthetic import line_1d
from linlab.logger import TensorBoardLogger

TIMING = {"wall_time_s"}


def plain_full_batch_gd(x, y, lr, epochs):
    """The textbook loop: zero start, full batch, MSE, w -= lr * grad."""
    w = torch.zeros(x.shape[1], requires_grad=True)
    b = torch.zeros((), requires_grad=True)
    for _ in range(epochs):
        loss = ((x @ w + b - y) ** 2).mean()
        loss.backward()
        with torch.no_grad():
            w -= lr * w.grad
            b -= lr * b.grad
            w.grad.zero_()
            b.grad.zero_()
    return w.detach(), b.detach()


def test_full_batch_gd_equals_plain_loop(train_in):
    results = train_in(
        ["data=line_1d", "model.init=zeros", "optimizer.lr=0.1", "trainer.max_epochs=20", "seed=3"]
    )
    data = line_1d(n_samples=61, weights=[-3.0], noise=0.1, seed=3)
    w, b = plain_full_batch_gd(data.x.float(), data.y.float(), lr=0.1, epochs=20)
    assert results["steps"] == 20 and results["epochs"] == 20
    assert torch.allclose(
        torch.tensor(results["weights"], dtype=torch.float64), w.double(), atol=1e-6
    )
    assert math.isclose(results["bias"], float(b), abs_tol=1e-6)


def test_gaussian_recovers_true_weights(train_in):
    results = train_in(["data=gaussian", "data.n_features=5", "optimizer.lr=0.05"])
    assert results["status"] == "ok"
    error = torch.tensor(results["weights"]) - torch.tensor(results["true_weights"])
    assert error.abs().max() < 0.05, error
    assert results["val_loss"] < 0.02 and results["test_loss"] < 0.02


def test_same_seed_same_results_other_seed_differs(train_in):
    args = ["data.n_samples=300", "trainer.max_epochs=3"]
    first = train_in([*args, "seed=0"], name="a")
    again = train_in([*args, "seed=0"], name="b")
    other = train_in([*args, "seed=1"], name="c")

    def strip(r):
        return {k: v for k, v in r.items() if k not in TIMING}

    assert strip(first) == strip(again)
    assert first["weights"] != other["weights"]
    assert first["true_weights"] != other["true_weights"]


def test_results_json_holds_the_contract(train_in):
    results = train_in(["trainer.max_epochs=2", "optimizer.lr=0.02", "data.batch_size=16"])
    for key in (
        "lr",
        "batch_size",
        "precision",
        "accelerator",
        "seed",
        "train_loss",
        "val_loss",
        "test_loss",
        "weights",
        "bias",
        "true_weights",
        "true_bias",
        "status",
        "message",
        "epochs",
        "steps",
        "wall_time_s",
    ):
        assert key in results, key
    assert results["lr"] == 0.02 and results["batch_size"] == 16 and results["seed"] == 0
    assert results["steps"] == 2 * math.ceil(700 / 16)


def test_null_seed_draws_and_records_a_seed(train_in):
    results = train_in(["seed=null", "trainer=cpu", "trainer.max_epochs=1", "data.n_samples=100"])
    assert isinstance(results["seed"], int)
    assert results["accelerator_effective"] == "cpu" and results["device"] == "cpu"


def test_tensorboard_holds_losses_and_parameters(train_in, tmp_path):
    train_in(
        [
            "data=line_1d",
            "trainer.max_epochs=5",
            "trainer.log_every_n_steps=1",
            "data.val_fraction=0.2",
        ]
    )
    events = EventAccumulator(str(tmp_path / "run"))
    events.Reload()
    tag_names = set(events.Tags()["scalars"])
    assert {tags.TRAIN_LOSS, tags.VAL_LOSS, tags.param("w0"), tags.param("b")} <= tag_names
    assert [e.step for e in events.Scalars(tags.TRAIN_LOSS)] == [0, 1, 2, 3, 4]
    assert len(events.Scalars(tags.VAL_LOSS)) == 5


def test_linlab_tensorboard_logger_writes_one_event_per_call_and_reopens(tmp_path):
    logger = TensorBoardLogger(save_dir=str(tmp_path), name="", version="")
    logger.log_metrics({"a": 1.0, "b": torch.tensor(2.0)}, step=3)
    logger.finalize("success")
    logger.log_metrics({"a": 5.0}, step=4)  # after the end of fit, e.g. trainer.test()
    logger.finalize("success")
    events = EventAccumulator(str(tmp_path))
    events.Reload()
    assert [(e.step, e.value) for e in events.Scalars("a")] == [(3, 1.0), (4, 5.0)]
    assert [(e.step, e.value) for e in events.Scalars("b")] == [(3, 2.0)]


def test_linlab_loggers_share_their_writers_default_histogram_bins(tmp_path):
    """One list of TensorBoard's default bins for every writer (a stacked group has one per
    member); a histogram with those bins reads back as a plain ``SummaryWriter`` writes it."""
    from torch.utils.tensorboard import SummaryWriter

    loggers = [
        TensorBoardLogger(save_dir=str(tmp_path / f"m{k}"), name="", version="") for k in (0, 1)
    ]
    values = torch.linspace(-3.0, 5.0, 101)
    with SummaryWriter(str(tmp_path / "plain")) as plain:
        assert loggers[0].experiment.default_bins == plain.default_bins
        plain.add_histogram("h", values, 1)
    assert loggers[0].experiment.default_bins is loggers[1].experiment.default_bins
    loggers[1].experiment.add_histogram("h", values, 1)
    loggers[1].finalize("success")
    histograms = []
    for folder in ("plain", "m1"):
        events = EventAccumulator(str(tmp_path / folder))
        events.Reload()
        histograms.append(events.Histograms("h")[0].histogram_value)
    assert histograms[0] == histograms[1] and len(histograms[0].bucket_limit) > 10
