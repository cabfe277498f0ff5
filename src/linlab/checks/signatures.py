"""A config node checked against its schema (``linlab.schema``: the signature of the class
its ``_target_`` names): a key the class does not take, or a value its type hint does not
allow, is refused with the keys and types it does allow. ``LinearDataModule`` also takes its
generator's parameters.
"""

from __future__ import annotations

import difflib
import inspect
import os
import types
import typing
from pathlib import PurePath
from typing import Any, Literal, Union

from linlab.checks.rules import is_integer
from linlab.choices import GENERATOR_NAMES
from linlab.errors import ConfigError
from linlab.schema import Parameters, UnknownType, definition

DATA_MODULE = "linlab.data.datamodule.LinearDataModule"
GENERATORS_MODULE = "linlab.data.synthetic"


def check_node(path: str, node: dict[str, Any], params: Parameters | None) -> None:
    """Refuse a key ``params`` does not take, or a value its type hint does not allow."""
    if params is None:
        return
    for key, value in node.items():
        if key.startswith("_") or (key not in params and takes(params, key)):
            continue
        if key not in params:
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


def from_source(node: dict[str, Any]) -> Parameters | None:
    """The parameters of a linlab ``_target_`` read from its source; None where it is not
    linlab's or its signature is not written out there (inherited from another package)."""
    found = definition(str(node.get("_target_", "")))
    if found is None:
        return None
    qualified, params = found
    if qualified == DATA_MODULE and node.get("generator") in GENERATOR_NAMES:
        generator = definition(f"{GENERATORS_MODULE}.{node['generator']}")
        if generator is not None:
            params = {k: v for k, v in params.items() if k != "generator_params"}
            params |= generator[1]
    return params


def takes(params: Parameters, key: str) -> bool:
    """Whether a callable of these parameters accepts the keyword ``key`` (``**kwargs``: any)."""
    return key in params or any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values())


_UNIONS = (Union, types.UnionType)


def accepts(hint: Any, value: Any) -> bool | None:
    """Whether ``value`` fits ``hint``; None where a config value cannot be judged by type."""
    origin = typing.get_origin(hint)
    if origin in _UNIONS:
        verdicts = [accepts(member, value) for member in typing.get_args(hint)]
        return True if True in verdicts else (None if None in verdicts else False)
    if origin is Literal:
        return any(value == v and type(value) is type(v) for v in typing.get_args(hint))
    if hint is type(None) or hint is None:
        return value is None
    if hint is bool:
        return isinstance(value, bool)
    if hint is int:
        return is_integer(value) and -(2**63) <= value < 2**63
    if hint is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if hint is str:
        return isinstance(value, str)
    if isinstance(hint, UnknownType) or hint is Any:
        return None
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
