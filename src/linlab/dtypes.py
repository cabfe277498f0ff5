"""The torch dtype a Lightning precision setting trains in (the names: ``linlab.choices``)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import torch

from linlab.choices import dtype_name


def dtype_for_precision(precision: Any) -> torch.dtype:
    """Data dtype that a Lightning precision setting trains in (mixed precision keeps fp32)."""
    return getattr(torch, dtype_name(precision))


@contextmanager
def default_dtype(precision: Any) -> Iterator[None]:
    """Make parameters in the dtype the run trains in (float64 for ``64-true``), so that
    explicit initial values are not first rounded to float32."""
    previous = torch.get_default_dtype()
    dtype = dtype_for_precision(precision)
    torch.set_default_dtype(dtype if dtype == torch.float64 else previous)
    try:
        yield
    finally:
        torch.set_default_dtype(previous)
