"""The LightningDataModule: make a synthetic dataset, split it, and feed it in minibatches."""

from __future__ import annotations

import inspect
from typing import Any

import lightning as L
import torch
from torch import Tensor

from linlab.choices import check_equal_shards, split_sizes
from linlab.data.batches import TensorBatches
from linlab.data.streaming import StreamingBatches, streaming_gaussian
from linlab.data.synthetic import GENERATORS, SyntheticData
from linlab.dtypes import dtype_for_precision


class LinearDataModule(L.LightningDataModule):
    """Synthetic regression data, split into train/val/test and served as tensor slices.

    Args:
        generator: a key of ``GENERATORS`` (``linlab.data.synthetic``), e.g. ``gaussian``.
        n_features: input dimension; checked against what the generator makes.
        batch_size: minibatch size; ``None`` is full-batch gradient descent.
        val_fraction, test_fraction: shares of the samples held out (0 disables a split).
        shuffle: reshuffle the training split every epoch, from (seed, epoch).
        drop_last: drop a last, smaller training batch.
        chunk_batches: minibatches handed to one training step (speed only; the trajectory
            is the same for every value); ``"auto"``: as many as fit in 64 MiB
            (``linlab.data.batches.CHUNK_BYTES``), 64 for streamed data.
        seed: seeds the data and the shuffling.
        streaming: generate each training batch when it is needed (``gaussian`` only; see
            ``linlab.data.streaming``): memory flat in ``n_samples``, no val/test splits.
        **generator_params: the generator's own arguments (``n_samples``, ``noise``, ...).
    """

    def __init__(
        self,
        generator: str = "gaussian",
        n_features: int = 1,
        batch_size: int | None = None,
        val_fraction: float = 0.0,
        test_fraction: float = 0.0,
        shuffle: bool = True,
        drop_last: bool = False,
        chunk_batches: int | str = "auto",
        seed: int = 0,
        streaming: bool = False,
        **generator_params: Any,
    ) -> None:
        super().__init__()
        if generator not in GENERATORS:
            raise ValueError(f"data.generator={generator!r} is not one of {', '.join(GENERATORS)}")
        self.make = GENERATORS[generator]
        accepted = inspect.signature(self.make).parameters
        if "n_features" in accepted:
            generator_params["n_features"] = n_features
        unknown = sorted(set(generator_params) - set(accepted))
        if unknown:
            raise ValueError(
                f"data.{unknown[0]} is not a setting of data.generator={generator}; "
                f"its settings are: {', '.join(p for p in accepted if p != 'seed')}"
            )
        self.generator_params = generator_params
        self.n_features = n_features
        self.batch_size = batch_size
        self.fractions = (val_fraction, test_fraction)
        self.shuffle, self.drop_last, self.chunk_batches = shuffle, drop_last, chunk_batches
        self.seed, self.streaming = seed, streaming
        self.data: SyntheticData | None = None
        self.splits: dict[str, tuple[Tensor, Tensor]] = {}

    def setup(self, stage: str | None = None) -> None:
        if self.splits or self.data is not None:
            return
        if self.streaming:
            params = {**self.generator_params, "seed": self.seed}
            self.stream = streaming_gaussian(
                self.make.__name__, self.batch_size, self.fractions, params
            )
            self.data = self.stream.description()
            return
        self.data = self.make(seed=self.seed, **self.generator_params)
        if self.data.x.shape[1] != self.n_features:
            raise ValueError(
                f"data.n_features={self.n_features} but the data has "
                f"{self.data.x.shape[1]} features"
            )
        device, dtype = self._target_device_and_dtype()
        x, y = self.data.x.to(device, dtype), self.data.y.to(device, dtype)
        self.splits = {
            name: (x[index], y[index]) for name, index in self.split_indices(len(self.data)).items()
        }

    def split_indices(self, n: int) -> dict[str, Tensor]:
        """Disjoint index sets from one seeded permutation (no shuffle when nothing is held out)."""
        n_train, n_val, n_test = split_sizes(n, *self.fractions)
        if n_val == n_test == 0:
            order = torch.arange(n)
        else:
            order = torch.randperm(n, generator=torch.Generator().manual_seed(self.seed + 1))
        return {
            "train": order[:n_train],
            "val": order[n_train : n_train + n_val],
            "test": order[n_train + n_val :],
        }

    def _target_device_and_dtype(self) -> tuple[torch.device, torch.dtype]:
        if self.trainer is None:
            return torch.device("cpu"), torch.float32
        return self.trainer.strategy.root_device, dtype_for_precision(self.trainer.precision)

    def split_size(self, name: str) -> int:
        return self.splits[name][1].numel() if self.splits else 0

    def loader(self, name: str, training: bool = False) -> TensorBatches:
        x, y = self.splits[name]
        trainer = self.trainer
        ranks = (trainer.global_rank, trainer.world_size) if trainer and training else (0, 1)
        check_equal_shards(len(y), self.batch_size, self.drop_last and training, ranks[1])
        return TensorBatches(
            x,
            y,
            batch_size=self.batch_size if training else None,
            shuffle=self.shuffle and training,
            drop_last=self.drop_last and training,
            seed=self.seed,
            chunk_batches=self.chunk_batches if training else 1,
            shard=ranks[0],
            num_shards=ranks[1],
        )

    def train_dataloader(self) -> TensorBatches | StreamingBatches:
        if self.streaming:
            device, dtype = self._target_device_and_dtype()
            return StreamingBatches(self.stream, self.shuffle, self.chunk_batches, device, dtype)
        return self.loader("train", training=True)

    def val_dataloader(self) -> TensorBatches | list:
        return self.loader("val") if self.split_size("val") else []

    def test_dataloader(self) -> TensorBatches | list:
        return self.loader("test") if self.split_size("test") else []
