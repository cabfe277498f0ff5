"""Does this machine have what the config asks for: accelerator, devices, precision, a folder?"""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path
from typing import Any

import torch
from lightning.pytorch.accelerators import AcceleratorRegistry

from linlab.checks.rules import require, show
from linlab.checks.validation import ConfigError, is_integer

_CUDA_NAMES = ("gpu", "cuda")
_FP16 = ("16-mixed", "16", 16, "16-true")


def check(values: dict[str, Any], output_dir: Path | None) -> None:
    trainer = values.get("trainer") or {}
    accelerator = trainer.get("accelerator", "auto")
    if isinstance(accelerator, str):
        check_accelerator(accelerator, trainer.get("devices", "auto"))
        check_precision(trainer.get("precision", "32-true"), accelerator)
    if output_dir is not None:
        check_writable(output_dir)


def accelerator_names() -> list[str]:
    return ["auto", "gpu", *sorted(AcceleratorRegistry.available_accelerators())]


def check_accelerator(name: str, devices: Any) -> None:
    names = accelerator_names()
    require(name in names, "trainer.accelerator", name, ", ".join(names))
    if name == "auto":
        return
    registered = "cuda" if name == "gpu" else name
    available = AcceleratorRegistry[registered]["accelerator"].is_available()
    if not available:
        raise ConfigError(
            f"trainer.accelerator={name} is not available on this machine; "
            f"allowed here: cpu, auto{', gpu, cuda' if torch.cuda.is_available() else ''}"
        )
    if name in _CUDA_NAMES and is_integer(devices) and devices > torch.cuda.device_count():
        raise ConfigError(
            f"trainer.devices={devices} but this machine has {torch.cuda.device_count()} CUDA "
            "device(s); allowed: 1 to that number, or -1 for all"
        )


def check_precision(precision: Any, accelerator: str) -> None:
    on_cuda = accelerator in _CUDA_NAMES or (accelerator == "auto" and torch.cuda.is_available())
    if precision in _FP16 and not on_cuda and str(precision) != "16-true":
        raise ConfigError(
            f"trainer.precision={show(precision)} (float16 mixed precision) needs a CUDA "
            f"device, not trainer.accelerator={accelerator}; allowed here: 32-true, 64-true, "
            "bf16-mixed, bf16-true"
        )
    if str(precision).startswith("bf16") and on_cuda and not torch.cuda.is_bf16_supported():
        raise ConfigError(
            f"trainer.precision={precision} needs bfloat16, which this GPU lacks; "
            "allowed here: 32-true, 64-true, 16-mixed"
        )
    if str(precision).startswith("transformer-engine") and not importlib.util.find_spec(
        "transformer_engine"
    ):
        raise ConfigError(
            f"trainer.precision={precision} needs the transformer_engine package, not installed"
        )


def check_writable(folder: Path) -> None:
    """The nearest existing ancestor of ``folder`` must be a folder this process can write."""
    existing = folder.absolute()
    while not existing.exists():
        existing = existing.parent
    if not existing.is_dir():
        raise ConfigError(
            f"output folder {folder} cannot be made: {existing} is a file, not a folder "
            "(set hydra.run.dir / hydra.sweep.dir to a writable folder)"
        )
    if not os.access(existing, os.W_OK | os.X_OK):
        raise ConfigError(
            f"output folder {folder} is not writable: no write permission on {existing} "
            "(set hydra.run.dir / hydra.sweep.dir to a writable folder)"
        )
