"""The data of K members: shared when their data settings agree, else gathered per member.

Members that differ only in optimiser settings see the same samples in the same order, so
one member's batches serve all (x (B, d), y (B,)). Members with their own data draw (another
``seed`` or ``data.noise``) each keep their own splits and shuffle order; every chunk gathers
each member's minibatches and stacks them, x (k, K, B, d) and y (k, K, B): K copies of the
data in memory.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import lightning as L
import torch
from torch import Tensor

from linlab.data.batches import TensorBatches
from linlab.data.datamodule import LinearDataModule


class _EpochFanOut:
    """``set_epoch`` for every member's sampler (Lightning calls it on ``loader.sampler``)."""

    def __init__(self, loaders: Sequence[TensorBatches]) -> None:
        self.loaders = loaders

    def set_epoch(self, epoch: int) -> None:
        for loader in self.loaders:
            loader.sampler.set_epoch(epoch)


class StackedBatches:
    """Chunks of every member's minibatches, stacked along a member axis after the chunk's."""

    def __init__(self, loaders: Sequence[TensorBatches]) -> None:
        self.loaders = loaders
        self.sampler = _EpochFanOut(loaders)
        self.batch_sampler = None  # DataLoader's attribute, looked up by Lightning

    def __len__(self) -> int:
        return len(self.loaders[0])

    def __iter__(self) -> Iterator[tuple[Tensor, Tensor]]:
        for parts in zip(*self.loaders, strict=True):
            xs, ys = zip(*parts, strict=True)
            yield torch.stack(xs, dim=1), torch.stack(ys, dim=1)


class StackedDataModule(L.LightningDataModule):
    """The members' ``LinearDataModule``s behind one Lightning datamodule."""

    def __init__(self, members: Sequence[LinearDataModule], shared: bool) -> None:
        super().__init__()
        self.members, self.shared = list(members), shared

    def setup(self, stage: str | None = None) -> None:
        for member in self.members if not self.shared else self.members[:1]:
            member.trainer = self.trainer
            member.setup(stage)
        if self.shared:
            for member in self.members[1:]:
                member.data, member.splits = self.members[0].data, self.members[0].splits

    def _loaders(self, name: str, training: bool) -> TensorBatches | StackedBatches | list:
        if not self.members[0].split_size(name):
            return []
        if self.shared:
            return self.members[0].loader(name, training=training)
        return StackedBatches([m.loader(name, training=training) for m in self.members])

    def train_dataloader(self) -> TensorBatches | StackedBatches | list:
        return self._loaders("train", training=True)

    def val_dataloader(self) -> TensorBatches | StackedBatches | list:
        return self._loaders("val", training=False)

    def test_dataloader(self) -> TensorBatches | StackedBatches | list:
        return self._loaders("test", training=False)
