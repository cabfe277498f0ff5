"""A config node checked against its schema (``linlab.schema``: the signature of the class
its ``_target_`` names): a key the class does not take, or a value its type hint does not
allow, is refused with the keys and types it does allow. ``LinearDataModule`` also takes its
generator's parameters.
"""

from __future__ import annotations

import inspect
from typing import Any

from linlab.checks.rules import is_integer, refusal, show
from linlab.choices import GENERATOR_NAMES, GENERATORS_MODULE
from linlab.errors import ConfigError, did_you_mean
from linlab.schema import Parameters, accepts, definition, describe

DATA_MODULE = "linlab.data.datamodule.LinearDataModule"


def check_node(path: str, node: dict[str, Any], params: Parameters | None) -> None:
    """Refuse a key ``params`` does not take, or a value its type hint does not allow."""
    if params is None:
        return
    for key, value in node.items():
        if key.startswith("_") or (key not in params and takes(params, key)):
            continue
        if key not in params:
            names = [n for n, p in params.items() if p.kind is not inspect.Parameter.VAR_KEYWORD]
            hint = did_you_mean(key, names, prefix=f"{path}.")
            allowed = f"allowed: {', '.join(names)}" if names else "it takes no settings"
            raise ConfigError(
                f"{path}.{key} is not a setting of {node['_target_']}; {hint}{allowed}"
            )
        hint = params[key].annotation
        if hint is not inspect.Parameter.empty and accepts(hint, value) is False:
            raise refusal(f"{path}.{key}", show(value), describe(hint))
        if is_integer(value) and not -(2**63) <= value < 2**63:
            raise refusal(f"{path}.{key}", show(value), "an integer of at most 64 bits")


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
