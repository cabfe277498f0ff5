"""Does this machine have what the config asks for: accelerator, devices, precision, a folder?

Lightning's own names come from Lightning's registries (strategies, accelerators, the plugin
types ``Trainer(plugins=...)`` takes), so they cannot drift from the installed version.
"""

from __future__ import annotations

import inspect
import os
import shutil
import tempfile
import typing
from pathlib import Path
from typing import Any

import torch
from lightning.pytorch.accelerators import AcceleratorRegistry
from lightning.pytorch.plugins import _PLUGIN_INPUT
from lightning.pytorch.strategies import StrategyRegistry

from linlab.checks.rules import is_integer, processes, refusal, require, show
from linlab.checks.targets import locate
from linlab.ddp import SCRIPT_LAUNCHER_IN_MULTIRUN, relaunches_command_line
from linlab.dtypes import dtype_for_precision
from linlab.errors import ConfigError
from linlab.machine import PSEUDO_FILE_SYSTEMS, available_memory, file_system_type, installed

_CUDA_NAMES = ("gpu", "cuda")
_FP16_MIXED = ("16-mixed", "16", 16)


FIX = "(set hydra.run.dir / hydra.sweep.dir to a writable folder)"  # ends each folder refusal
# a run's config, log, events, checkpoint, figures and results.json: a few hundred KiB
MIN_FREE_BYTES = 1024 * 1024
DATA_COPIES = 3  # generated in float64, converted to the training dtype, split by index


def check(values: dict[str, Any], output_dir: Path | None, multirun: bool) -> None:
    trainer = values.get("trainer") or {}
    check_strategy(trainer, multirun)
    check_plugins(trainer.get("plugins"))
    accelerator = trainer.get("accelerator", "auto")
    if isinstance(accelerator, str):
        check_accelerator(accelerator, trainer.get("devices", "auto"))
        check_precision(trainer.get("precision", "32-true"), accelerator)
        check_memory(values.get("data") or {}, trainer.get("precision", "32-true"), accelerator)
    if output_dir is not None:
        check_writable(output_dir)


def check_strategy(trainer: dict[str, Any], multirun: bool) -> None:
    """A name of Lightning's strategy registry (or a strategy node); in a multirun, not one
    whose processes Lightning starts by re-running the command line (the whole sweep)."""
    strategy = trainer.get("strategy", "auto")
    if isinstance(strategy, str):
        names = ["auto", *StrategyRegistry.available_strategies()]
        require(strategy.lower() in names, "trainer.strategy", strategy, ", ".join(names))
        if strategy.lower() == "auto":
            return
        entry = StrategyRegistry[strategy.lower()]
        kind, settings = entry["strategy"], entry["init_params"]
    elif isinstance(strategy, dict) and "_target_" in strategy:
        kind, settings = locate("trainer.strategy", strategy["_target_"]), strategy
    else:
        return
    if multirun and relaunches_command_line(kind, settings) and processes(trainer) > 1:
        name = strategy if isinstance(strategy, str) else strategy["_target_"]
        raise ConfigError(SCRIPT_LAUNCHER_IN_MULTIRUN.format(strategy=name))


def check_plugins(plugins: Any) -> None:
    """``trainer.plugins``: nodes building one of the plugin types Lightning's Trainer takes."""
    if plugins is None:
        return
    kinds = typing.get_args(_PLUGIN_INPUT)
    allowed = "nodes whose _target_ is a " + ", ".join(k.__name__ for k in kinds)
    for index, plugin in enumerate(plugins if isinstance(plugins, list) else [plugins]):
        key = f"trainer.plugins[{index}]" if isinstance(plugins, list) else "trainer.plugins"
        built = locate(key, plugin["_target_"]) if isinstance(plugin, dict) else None
        if not (inspect.isclass(built) and issubclass(built, kinds)):
            shown = plugin.get("_target_") if isinstance(plugin, dict) else plugin
            raise refusal(key, show(shown), allowed)


def check_accelerator(name: str, devices: Any) -> None:
    names = ["auto", "gpu", *sorted(AcceleratorRegistry.available_accelerators())]
    require(name in names, "trainer.accelerator", name, ", ".join(names))
    if name == "auto":
        return
    registered = "cuda" if name == "gpu" else name
    if not AcceleratorRegistry[registered]["accelerator"].is_available():
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
    if precision in _FP16_MIXED and not on_cuda:
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
    if str(precision).startswith("transformer-engine") and not installed("transformer_engine"):
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
            f"output folder {folder} cannot be made: {existing} is a file, not a folder {FIX}"
        )
    kind = file_system_type(existing)
    if kind in PSEUDO_FILE_SYSTEMS:
        raise ConfigError(
            f"output folder {folder} cannot be made: {existing} is on the {kind} pseudo file "
            f"system, which holds no run files {FIX}"
        )
    if not os.access(existing, os.W_OK | os.X_OK):
        raise ConfigError(
            f"output folder {folder} is not writable: no write permission on {existing} {FIX}"
        )
    try:  # root passes os.access everywhere: only a real file says whether it can be made
        with tempfile.TemporaryFile(dir=existing):
            pass
    except OSError as error:
        raise ConfigError(
            f"output folder {folder} cannot be made: no file can be created in {existing} "
            f"({error.strerror or error}) {FIX}"
        ) from None
    free = shutil.disk_usage(existing).free
    if free < MIN_FREE_BYTES:
        raise ConfigError(
            f"output folder {folder} cannot hold a run: {free // 1024} KiB free on the file "
            f"system of {existing}, less than the {MIN_FREE_BYTES // 1024} KiB a run's files "
            f"(config, events, checkpoint, figures, results.json) need {FIX}"
        )


def check_memory(data: dict[str, Any], precision: Any, accelerator: str) -> None:
    """The built-in generators hold n × d values ``DATA_COPIES`` times at their peak (float64
    while generated, then in the training dtype): refuse what the machine cannot hold."""
    n, d = data.get("n_samples"), data.get("n_features")
    if data.get("streaming") or not (is_integer(n) and is_integer(d)) or "generator" not in data:
        return
    itemsize = dtype_for_precision(str(precision)).itemsize
    needed = n * d * (8 + (DATA_COPIES - 1) * itemsize)
    where, available = "this machine's available memory", available_memory()
    if accelerator in _CUDA_NAMES and torch.cuda.is_available():
        where, available = "the GPU's free memory", torch.cuda.mem_get_info()[0]
        needed = n * d * (DATA_COPIES - 1) * itemsize
    if available is not None and needed > available:
        raise ConfigError(
            f"data.n_samples={n} × data.n_features={d} needs about {needed / 2**30:.3g} GiB, "
            f"more than {where} ({available / 2**30:.3g} GiB); allowed: n_samples × "
            f"n_features up to about {available // (needed // (n * d)):.3g}, or "
            "data.streaming=true (memory flat in n_samples)"
        )
