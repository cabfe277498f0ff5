"""Intra-op threads for a stacked group whose steps are small.

A group's forward is one ``(B, d) @ (d, K)`` product (or a batched one): MKL and OpenMP spread
even a few thousand multiply-adds over every intra-op thread, and each parallel region then
waits for all of them. When another process keeps a core busy (a second training job, as on a
shared machine) that wait is a time slice, not microseconds: the product of a 2-member group
of 64 samples x 5 features took 50 ms a step on 2 threads against 0.5 ms on one
(``scripts/benchmark.py --only sweep`` measures both with and without such a process). Steps
below ``SMALL_STEP`` multiply-adds (about a millisecond on one core) gain nothing from more
threads, so a group that small trains on one.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch
from omegaconf import DictConfig

SMALL_STEP = 1 << 22  # multiply-adds per step: B x d x K


def step_size(cfg: DictConfig, members: int) -> int:
    """B x d x K of one training step (a full batch when ``data.batch_size`` is null)."""
    data = cfg.data
    batch = data.get("batch_size") or data.get("n_samples") or 1
    return int(batch) * int(data.get("n_features") or 1) * members


@contextmanager
def threads_for_group(cfg: DictConfig, members: int) -> Iterator[None]:
    """One intra-op thread while a small group (K > 1) trains; the count is restored after."""
    if members == 1 or step_size(cfg, members) >= SMALL_STEP:
        yield
        return
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)
