"""linlab: Lightning + Hydra experiments for linear models trained by gradient descent."""

from linlab.runs import load_run

__version__ = "0.1.0"
__all__ = ["load_run"]
