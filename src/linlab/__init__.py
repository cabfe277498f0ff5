"""linlab: Lightning + Hydra experiments for linear models trained by gradient descent.

From Python (``linlab.run``, ``linlab.sweep``, ``linlab.load_run``, ``linlab.load_sweep``)
the names are loaded on first use, so ``import linlab`` stays free of torch and Hydra.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from linlab.errors import ConfigError

if TYPE_CHECKING:
    from linlab.launch import run, sweep
    from linlab.runs import Run, load_run
    from linlab.sweep_results import Sweep, load_sweep

__version__ = "0.1.0"
__all__ = ["ConfigError", "Run", "Sweep", "load_run", "load_sweep", "run", "sweep"]

_HOMES = {
    "run": "linlab.launch",
    "sweep": "linlab.launch",
    "Run": "linlab.runs",
    "load_run": "linlab.runs",
    "Sweep": "linlab.sweep_results",
    "load_sweep": "linlab.sweep_results",
}


def __getattr__(name: str) -> Any:
    """The public names, imported from their modules when first used."""
    if name in _HOMES:
        import importlib

        return getattr(importlib.import_module(_HOMES[name]), name)
    raise AttributeError(f"module 'linlab' has no attribute {name!r}")
