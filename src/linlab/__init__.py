"""linlab: Lightning + Hydra experiments for linear models trained by gradient descent."""

__version__ = "0.1.0"
