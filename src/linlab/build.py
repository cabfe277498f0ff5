"""Build a config node held as plain, resolved values, as Hydra's ``instantiate`` does.

The same call for the keys it reads (``_target_``, ``_args_``, ``_partial_``, ``_recursive_``,
nested targets), without first wrapping every node in an OmegaConf object: that wrapping is
ten times the cost of the config checks' dry build, which builds every group on something
tiny, and a run's nodes (data, model, module, loggers, callbacks) whose arguments are plain
values (``linlab.train.instantiate_node``); a node with a list or mapping argument builds
through Hydra's own ``instantiate``. ``find`` imports each target, so the caller decides
which targets may be imported (the checks' targets policy).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

Find = Callable[[str], Callable]  # a dotted ``_target_`` → the object it names


def instantiate(node: dict, find: Find, **extra: Any) -> Any:
    """``node`` built as Hydra builds it, with the keywords ``extra`` added."""
    target = find(node["_target_"])
    recursive = node.get("_recursive_", True)
    build = functools.partial(_nested, find=find) if recursive else (lambda value: value)
    args = [build(a) for a in node.get("_args_", [])]
    kwargs = {k: build(v) for k, v in node.items() if not k.startswith("_")} | extra
    if node.get("_partial_", False):
        return functools.partial(target, *args, **kwargs)
    return target(*args, **kwargs)


def _nested(value: Any, find: Find) -> Any:
    if isinstance(value, dict):
        if "_target_" in value:
            return instantiate(value, find)
        return {k: _nested(v, find) for k, v in value.items()}
    if isinstance(value, list):
        return [_nested(v, find) for v in value]
    return value
