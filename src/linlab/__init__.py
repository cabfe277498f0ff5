"""linlab: Lightning + Hydra experiments for linear models trained by gradient descent."""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"
__all__ = ["load_run"]


def __getattr__(name: str) -> Any:
    """``linlab.load_run`` without importing torch and Hydra on ``import linlab``."""
    if name == "load_run":
        from linlab.runs import load_run

        return load_run
    raise AttributeError(f"module 'linlab' has no attribute {name!r}")
