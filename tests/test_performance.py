"""What the speed work must not break: exact trajectories, logging cadence, the vectorised
sweep, streaming data. Every reference here is computed independently (no timing tests)."""

from __future__ import annotations

import pytest
import torch
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from linlab import tags
from linlab.data.streaming import StreamingBatches, StreamingGaussian
from linlab.data.synthetic import gaussian

GOLDEN = 0x9E3779B97F4A7C15  # the documented (seed, epoch) shuffling rule of EpochPermutation


def scalars(run_dir) -> dict[str, list[tuple[int, float]]]:
    events = EventAccumulator(str(run_dir))
    events.Reload()
    return {
        tag: [(e.step, e.value) for e in events.Scalars(tag)]
        for tag in events.Tags()["scalars"]
        if tag != "epoch"
    }


def plain_minibatch_sgd(x, y, lr, batch, epochs, seed):
    """Zero start, MSE, torch.optim.SGD per minibatch, order randperm seeded by (seed, epoch)."""
    w = torch.zeros(x.shape[1], requires_grad=True)
    b = torch.zeros((), requires_grad=True)
    opt = torch.optim.SGD([w, b], lr=lr)
    losses, params = [], []
    for epoch in range(epochs):
        gen = torch.Generator().manual_seed((seed * GOLDEN + epoch) % 2**63)
        order = torch.randperm(len(y), generator=gen)
        for start in range(0, len(y), batch):
            idx = order[start : start + batch]
            params.append([*w.tolist(), b.item()])
            loss = ((x[idx] @ w + b - y[idx]) ** 2).mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
            losses.append(loss.item())
    return losses, params, w.detach(), b.detach()


PLAIN_RUN = ["data.n_samples=203", "data.n_features=3", "data.batch_size=16", "model.init=zeros"]
PLAIN_RUN += ["data.val_fraction=0", "data.test_fraction=0", "optimizer.lr=0.05", "seed=5"]


@pytest.mark.parametrize("chunk", [1, 3, 64])
def test_chunked_steps_follow_the_plain_loop(train_in, tmp_path, chunk):
    results = train_in(
        [
            *PLAIN_RUN,
            "trainer.max_epochs=3",
            "trainer.log_every_n_steps=1",
            f"data.chunk_batches={chunk}",
        ]
    )
    data = gaussian(n_samples=203, n_features=3, seed=5)
    losses, params, w, _ = plain_minibatch_sgd(data.x.float(), data.y.float(), 0.05, 16, 3, 5)
    assert results["steps"] == len(losses) == 3 * 13
    torch.testing.assert_close(torch.tensor(results["weights"]), w, atol=1e-6, rtol=1e-6)
    logged = scalars(tmp_path / "run")
    assert [s for s, _ in logged[tags.TRAIN_LOSS]] == list(range(len(losses)))
    torch.testing.assert_close(
        torch.tensor([v for _, v in logged[tags.TRAIN_LOSS]]),
        torch.tensor(losses),
        atol=1e-6,
        rtol=1e-5,
    )
    torch.testing.assert_close(
        torch.tensor([v for _, v in logged[tags.param("w2")]][: len(params)]),
        torch.tensor([p[2] for p in params]),
        atol=1e-6,
        rtol=1e-5,
    )


def test_logging_cadence_every_k_steps_and_epoch_metrics_at_epoch_ends(train_in, tmp_path):
    train_in(
        [*PLAIN_RUN, "trainer.max_epochs=3", "trainer.log_every_n_steps=7", "data.chunk_batches=5"]
    )
    logged = scalars(tmp_path / "run")
    assert [s for s, _ in logged[tags.TRAIN_LOSS]] == list(range(0, 39, 7))
    assert [s for s, _ in logged[tags.param("b")]] == [*range(0, 39, 7), 39]  # + final parameters
    assert [s for s, _ in logged[tags.TRAIN_EPOCH_LOSS]] == [12, 25, 38]


def stream(n=1000, batch=64, shuffle=True, seed=3, chunk=4):
    data = StreamingGaussian(n, 2, batch, seed=seed)
    return StreamingBatches(data, shuffle, chunk, torch.device("cpu"), torch.float64)


def epoch_rows(batches: StreamingBatches, epoch: int) -> torch.Tensor:
    batches.sampler.set_epoch(epoch)
    return torch.cat([xs.reshape(-1, 2) for xs, _ in batches])


def test_streaming_is_deterministic_and_sees_every_sample_once_per_epoch():
    first, again = epoch_rows(stream(), 1), epoch_rows(stream(), 1)
    assert torch.equal(first, again) and first.shape == (1000, 2)
    other_epoch = epoch_rows(stream(), 2)
    assert not torch.equal(first, other_epoch)
    assert torch.equal(first.unique(dim=0), other_epoch.unique(dim=0))  # same samples, reordered
    assert torch.equal(epoch_rows(stream(chunk=1), 1), first)
    assert not torch.equal(epoch_rows(stream(seed=4), 1), first)
    batches = stream()
    assert len(batches) == len(list(batches)) == 5  # 15 full blocks in chunks of 4, 1 short


def test_streaming_targets_follow_the_true_model():
    batches = stream(n=2000, batch=100)
    x = torch.cat([xs.reshape(-1, 2) for xs, _ in batches])
    y = torch.cat([ys.reshape(-1) for _, ys in batches])
    beta = torch.linalg.lstsq(torch.cat([x, torch.ones(len(y), 1, dtype=x.dtype)], 1), y).solution
    true_w = batches.data.true_w
    assert torch.allclose(beta[:2], true_w, atol=0.02) and abs(beta[2]) < 0.02


def test_streaming_run_is_reproducible(train_in):
    args = ["data.streaming=true", "data.val_fraction=0", "data.test_fraction=0"]
    args += ["data.n_samples=5000", "data.batch_size=50", "trainer.max_epochs=2"]
    first, again = train_in(args, name="a"), train_in(args, name="b")
    assert first["weights"] == again["weights"] and first["steps"] == 200
    assert first["true_weights"] == again["true_weights"]


def test_streaming_refuses_held_out_fractions(train_in):
    with pytest.raises(ValueError, match=r"data\.val_fraction=0"):
        train_in(["data.streaming=true"])
