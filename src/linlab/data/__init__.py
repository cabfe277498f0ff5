"""Synthetic data and the DataModule that feeds it."""

from linlab.data.batches import TensorBatches
from linlab.data.datamodule import LinearDataModule
from linlab.data.synthetic import GENERATORS, SyntheticData

__all__ = ["GENERATORS", "LinearDataModule", "SyntheticData", "TensorBatches"]
