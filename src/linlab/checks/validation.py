"""Refuse a bad config before anything is built: every problem is one line naming key and value.

The typed schema of a config node is the signature of the class its ``_target_`` names: its
parameters are the allowed keys and their type hints the allowed types (so the schema cannot
drift from the code, and a user's own class gets the same check). ``LinearDataModule`` also
takes its generator's parameters. On top of the types, ``linlab.checks.rules`` says which
values make sense (``lr > 0``, a batch no larger than the training split, ...), and the
environment check says whether the accelerator and precision exist here and the output folder
can be written.
"""

from __future__ import annotations

import copy
import difflib
import importlib
import inspect
import math
import os
import types
import typing
from collections.abc import Callable
from pathlib import Path, PurePath
from typing import Any, Literal, Union

from omegaconf import DictConfig, OmegaConf, open_dict
from omegaconf.errors import OmegaConfBaseException

from linlab.errors import ConfigError


def validate(cfg: DictConfig) -> None:
    """Raise ``ConfigError`` for the first problem of a composed config (Hydra node optional).

    In order: every ``_target_`` against the targets policy, the value rules, every node
    against its target's signature, the machine, the dry build (``dry_build``): what the
    config builds, built on something tiny; and last the run folder (``run_folder``: resume,
    a used folder, a lock).
    """
    from linlab.checks import dry_build, environment, rules, run_folder, targets

    for path, target in targets.all_targets(_plain(cfg)):
        targets.check_target_path(path, target)
    values = resolved(cfg)
    rules.check(values)
    for path, node in target_nodes(values):
        check_against_signature(path, node, schema_of(path, node))
    environment.check(values, output_dir(cfg))
    dry_build.check(values)
    run_folder.check(cfg)


def resolved(cfg: DictConfig) -> dict[str, Any]:
    """The config as plain values, with interpolations resolved (the ``hydra`` node left out).

    ``seed: null`` draws a seed when the run starts (``linlab.train.resolve_seed``); here it
    stands as 0, so that what interpolates it (``data.seed: ${seed}``) is checked as an int.
    """
    if "seed" in cfg and cfg.seed is None:
        cfg = copy.deepcopy(cfg)
        with open_dict(cfg):
            cfg.seed = 0
    values = {}
    for key in cfg:
        if key == "hydra":
            continue
        try:
            node = cfg[key]
            values[key] = (
                OmegaConf.to_container(node, resolve=True) if OmegaConf.is_config(node) else node
            )
        except OmegaConfBaseException as error:
            raise ConfigError(f"{key}: cannot resolve ({str(error).splitlines()[0]})") from None
    return values


def _plain(cfg: DictConfig) -> Any:
    """The whole config, ``hydra`` node included, without resolving anything."""
    return OmegaConf.to_container(cfg, resolve=False)


def output_dir(cfg: DictConfig) -> Path | None:
    folder = OmegaConf.select(cfg, "hydra.runtime.output_dir", default=None)
    return None if folder in (None, "???") else Path(folder)


def target_nodes(values: Any, path: str = "") -> list[tuple[str, dict[str, Any]]]:
    """Every ``(dotted path, node)`` whose node names a ``_target_``."""
    found = []
    if isinstance(values, dict):
        if "_target_" in values:
            found.append((path, values))
        for key, value in values.items():
            found += target_nodes(value, f"{path}.{key}" if path else str(key))
    elif isinstance(values, list):
        for index, value in enumerate(values):
            found += target_nodes(value, f"{path}[{index}]")
    return found


def locate(path: str, target: Any) -> Callable:
    """Import ``target`` (``package.module.Name``), or refuse naming what could not be found
    or what the targets policy (``linlab.checks.targets``) refuses."""
    from linlab.checks import targets

    if not isinstance(target, str) or not target:
        raise ConfigError(f"{path}._target_={target!r} is not a dotted import path")
    targets.check_target_path(path, target)
    parts = target.split(".")
    for split in range(len(parts), 0, -1):
        module_name = ".".join(parts[:split])
        try:
            found = importlib.import_module(module_name)
            break
        except ModuleNotFoundError as error:
            if error.name is None or not module_name.startswith(error.name):
                raise ConfigError(_cannot_import(path, target, str(error))) from None
        except Exception as error:  # the module itself raised while it was imported
            reason = f"its import raised {type(error).__name__}: {error}"
            raise ConfigError(_cannot_import(path, target, reason.splitlines()[0])) from None
    else:
        raise ConfigError(_cannot_import(path, target, f"no module named {parts[0]!r}"))
    for name in parts[split:]:
        if not hasattr(found, name):
            reason = f"{'.'.join(parts[:split])} has no attribute {name!r}"
            raise ConfigError(_cannot_import(path, target, reason))
        found, split = getattr(found, name), split + 1
    targets.check_target_object(path, target, found)
    return found


def _cannot_import(path: str, target: str, reason: str) -> str:
    return (
        f"{path}._target_={target} cannot be imported: {reason} "
        "(allowed: a module.Name importable from the Python path)"
    )


def schema_of(path: str, node: dict[str, Any]) -> dict[str, inspect.Parameter] | None:
    """Allowed keys of a node: its target's parameters (and a built-in generator's); None
    where the target's signature cannot be read."""
    from linlab.data.datamodule import LinearDataModule
    from linlab.data.synthetic import GENERATORS

    target = locate(path, node["_target_"])
    params = parameters_of(target)
    if params is None:
        return None
    if target is LinearDataModule and node.get("generator") in GENERATORS:
        params |= parameters_of(GENERATORS[node["generator"]])
        del params["generator_params"]
    return params


def parameters_of(target: Callable) -> dict[str, inspect.Parameter] | None:
    """The keyword parameters ``target`` takes; None where its signature cannot be read.

    A module class without its own ``__init__`` takes none: ``nn.Module.__init__``'s
    ``**kwargs`` raises for any keyword."""
    from torch import nn

    if inspect.isclass(target) and target.__init__ is nn.Module.__init__:
        return {}
    try:
        params = dict(inspect.signature(target).parameters)
    except (TypeError, ValueError):
        return None
    hints = _type_hints(target)
    return {
        name: p.replace(annotation=hints.get(name, inspect.Parameter.empty))
        for name, p in params.items()
    }


def _type_hints(target: Callable) -> dict[str, Any]:
    try:
        return typing.get_type_hints(target.__init__ if inspect.isclass(target) else target)
    except Exception:
        return {}


def check_against_signature(
    path: str, node: dict[str, Any], params: dict[str, inspect.Parameter] | None
) -> None:
    if params is None:
        return
    open_ended = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values())
    for key, value in node.items():
        if key.startswith("_"):
            continue
        if key not in params:
            if open_ended:
                continue
            names = [n for n, p in params.items() if p.kind is not inspect.Parameter.VAR_KEYWORD]
            close = difflib.get_close_matches(key, names, n=1)
            hint = f"did you mean {path}.{close[0]}? " if close else ""
            allowed = f"allowed: {', '.join(names)}" if names else "it takes no settings"
            raise ConfigError(
                f"{path}.{key} is not a setting of {node['_target_']}; {hint}{allowed}"
            )
        hint = params[key].annotation
        if hint is not inspect.Parameter.empty and accepts(hint, value) is False:
            raise ConfigError(f"{path}.{key}={value!r} is not allowed; allowed: {describe(hint)}")
        if is_integer(value) and not -(2**63) <= value < 2**63:
            raise ConfigError(
                f"{path}.{key}={value} is not allowed; allowed: an integer of at most 64 bits"
            )


_UNIONS = (Union, types.UnionType)


def accepts(hint: Any, value: Any) -> bool | None:
    """Whether ``value`` fits ``hint``; None where a config value cannot be judged by type."""
    origin = typing.get_origin(hint)
    if origin in _UNIONS:
        verdicts = [accepts(member, value) for member in typing.get_args(hint)]
        return True if True in verdicts else (None if None in verdicts else False)
    if origin is Literal:
        return any(value == v and type(value) is type(v) for v in typing.get_args(hint))
    if hint is type(None):
        return value is None
    if hint is bool:
        return isinstance(value, bool)
    if hint is int:
        return is_integer(value) and -(2**63) <= value < 2**63
    if hint is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if hint is str:
        return isinstance(value, str)
    if inspect.isclass(hint) and origin is None and _is_scalar(value):
        if issubclass(hint, (PurePath, os.PathLike)):
            return isinstance(value, str)
        return isinstance(value, hint)
    return None


def describe(hint: Any) -> str:
    origin = typing.get_origin(hint)
    if origin in _UNIONS:
        members = typing.get_args(hint)
        choices = [
            v for m in members if typing.get_origin(m) is Literal for v in typing.get_args(m)
        ]
        parts = [describe(m) for m in members if typing.get_origin(m) is not Literal]
        if choices:
            parts.insert(0, "one of " + ", ".join(dict.fromkeys(map(str, choices))))
        return " or ".join(dict.fromkeys(parts))
    if origin is Literal:
        return "one of " + ", ".join(str(v) for v in typing.get_args(hint))
    names = {
        type(None): "null",
        bool: "true or false",
        int: "an integer (64 bits)",
        float: "a number",
    }
    if hint in names:
        return names[hint]
    return "a string" if hint is str else getattr(hint, "__name__", str(hint))


def _is_scalar(value: Any) -> bool:
    return value is None or isinstance(value, (bool, int, float, str))


def is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def is_finite_number(value: Any) -> bool:
    return is_number(value) and math.isfinite(value)


def is_integer(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)
