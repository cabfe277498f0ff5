"""Minibatches: every sample once per epoch, shuffling from (seed, epoch), chunking exact."""

from __future__ import annotations

import pytest
import torch

from linlab.data.batches import CHUNK_BYTES, TensorBatches


def epoch_order(batches: TensorBatches, epoch: int) -> list[list[int]]:
    batches.sampler.set_epoch(epoch)
    return [mb.tolist() for xs, _ in batches for mb in xs[..., 0].long()]


def make(n=103, batch=10, **kw) -> TensorBatches:
    x = torch.arange(n, dtype=torch.float32).unsqueeze(1)
    return TensorBatches(x, x[:, 0].clone(), batch, **kw)


@pytest.mark.parametrize("drop_last", [False, True])
@pytest.mark.parametrize("chunk", [1, 3, 64, "auto"])
def test_every_sample_once_per_epoch(drop_last, chunk):
    batches = make(shuffle=True, drop_last=drop_last, chunk_batches=chunk)
    order = epoch_order(batches, 0)
    flat = [i for mb in order for i in mb]
    assert len(flat) == len(set(flat))
    assert len(flat) == (100 if drop_last else 103)
    assert [len(mb) for mb in order] == [10] * 10 + ([] if drop_last else [3])
    assert len(batches) == len(list(batches))


def test_targets_travel_with_inputs():
    for xs, ys in make(shuffle=True, chunk_batches=4):
        assert torch.equal(xs[..., 0], ys)


def test_shuffle_differs_across_epochs_and_repeats_with_seed():
    a, b = make(shuffle=True, seed=7), make(shuffle=True, seed=7)
    assert epoch_order(a, 0) != epoch_order(a, 1)
    assert epoch_order(a, 1) == epoch_order(b, 1)
    assert epoch_order(make(shuffle=True, seed=8), 1) != epoch_order(a, 1)


def test_chunking_does_not_change_the_sequence():
    chunks = (1, 2, 5, 11, "auto")
    orders = {k: epoch_order(make(shuffle=True, chunk_batches=k), 2) for k in chunks}
    assert all(order == orders[1] for order in orders.values())


def test_no_shuffle_is_identity_order():
    assert [i for mb in epoch_order(make(shuffle=False), 3) for i in mb] == list(range(103))


def test_shards_split_each_minibatch():
    whole = epoch_order(make(n=40, batch=8, shuffle=True), 0)
    parts = [
        epoch_order(make(n=40, batch=8, shuffle=True, shard=r, num_shards=2), 0) for r in (0, 1)
    ]
    assert [p0 + p1 for p0, p1 in zip(*parts, strict=True)] == whole


def test_auto_chunks_fill_the_byte_budget():
    small = make(chunk_batches="auto")  # 103 samples: the 10 full batches in one chunk
    assert [len(xs) for xs, _ in small] == [10, 1]
    d = CHUNK_BYTES // (4 * 10 * 3) - 1  # float32 rows of d + 1 values: 3 batches of 10 fit
    x = torch.zeros(70, d)
    chunks = [len(xs) for xs, _ in TensorBatches(x, x[:, 0], 10, chunk_batches="auto")]
    assert chunks == [3, 3, 1]
