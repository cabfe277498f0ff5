"""Gaussian regression data generated batch by batch: n beyond memory, peak memory flat in n.

The n samples are ``ceil(n / batch)`` blocks of ``batch`` samples; block j is drawn from its own
generator seeded by (seed, j), so a sample's values never change. An epoch visits the full
blocks in an order that is a pure function of (seed, epoch) (``EpochPermutation`` over blocks,
O(n/batch) memory) and ends with the last, smaller block if there is one: every sample is seen
once per epoch and a rerun sees the same batches in the same order. Only one chunk of
``chunk_batches`` blocks exists at a time.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import torch
from torch import Tensor

from linlab.data.batches import _GOLDEN, EpochPermutation
from linlab.data.synthetic import SyntheticData, gaussian_design


class StreamingGaussian:
    """The ``gaussian`` generator's design (any covariance, weights and noise kind), produced one
    block at a time (see module docstring); settings as ``linlab.data.synthetic.gaussian``."""

    def __init__(
        self, n_samples: int, n_features: int, batch_size: int, seed: int = 0, **settings: Any
    ) -> None:
        self.n, self.d, self.batch_size, self.seed = n_samples, n_features, batch_size, seed
        settings = {"weights": None, "bias": 0.0, "noise": 0.1, **settings}
        self.design, _ = gaussian_design(n_features, seed=seed, **settings)
        self.true_w = self.design.true_w

    @property
    def num_blocks(self) -> int:
        return -(-self.n // self.batch_size)

    def block(self, j: int) -> tuple[Tensor, Tensor]:
        """Samples ``j·batch .. min((j+1)·batch, n) - 1`` in float64, the same on every call."""
        size = min(self.batch_size, self.n - j * self.batch_size)
        gen = torch.Generator().manual_seed((self.seed * _GOLDEN + 2**40 + j) % 2**63)
        return self.design.sample(size, gen)

    def description(self) -> SyntheticData:
        """What results.json and the theory metrics use about the data (no samples are held)."""
        empty = torch.empty(0, self.d, dtype=torch.float64)
        return self.design.description(empty, empty[:, 0])


def streaming_gaussian(
    generator: str, batch_size: int | None, fractions: tuple[float, float], params: dict
) -> StreamingGaussian:
    """The stream for ``data.streaming=true``; refuses settings that would need all samples."""
    if generator != "gaussian":
        raise ValueError(f"data.streaming=true needs data.generator=gaussian, got {generator!r}")
    if not batch_size:
        raise ValueError(f"data.streaming=true needs a data.batch_size, got {batch_size}")
    if any(fractions):
        raise ValueError(
            f"data.streaming=true trains on every generated sample: set data.val_fraction=0 and "
            f"data.test_fraction=0 (got {fractions[0]} and {fractions[1]})"
        )
    return StreamingGaussian(batch_size=batch_size, **params)


class StreamingBatches:
    """Chunks ``(k, batch, d)``/``(k, batch)`` of generated blocks, ordered by (seed, epoch).

    The full blocks are shuffled; a last, smaller block (n not a multiple of the batch size)
    ends every epoch, in a chunk of its own.
    """

    def __init__(
        self,
        data: StreamingGaussian,
        shuffle: bool,
        chunk_batches: int | str,
        device: torch.device,
        dtype: torch.dtype,
    ) -> None:
        self.data = data
        # "auto" stays at 64 blocks: generated data must keep memory flat, not fill a budget
        self.chunk_batches = 64 if chunk_batches == "auto" else max(1, int(chunk_batches))
        self.device, self.dtype = device, dtype
        self.sampler = EpochPermutation(data.n // data.batch_size, data.seed, shuffle)
        self.batch_sampler = None  # DataLoader's attribute, looked up by Lightning

    def __len__(self) -> int:
        full = self.data.n // self.data.batch_size
        return -(-full // self.chunk_batches) + (self.data.num_blocks - full)

    def __iter__(self) -> Iterator[tuple[Tensor, Tensor]]:
        pending: list[tuple[Tensor, Tensor]] = []
        for j in self.sampler.indices().tolist():
            pending.append(self.data.block(j))
            if len(pending) == self.chunk_batches:
                yield self._stack(pending)
                pending = []
        if pending:
            yield self._stack(pending)
        full = self.data.n // self.data.batch_size
        if self.data.num_blocks > full:
            yield self._stack([self.data.block(full)])

    def _stack(self, blocks: list[tuple[Tensor, Tensor]]) -> tuple[Tensor, Tensor]:
        xs = torch.stack([x for x, _ in blocks]).to(self.device, self.dtype)
        ys = torch.stack([y for _, y in blocks]).to(self.device, self.dtype)
        return xs, ys
