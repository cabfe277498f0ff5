"""A config's values read straight from its nodes, where OmegaConf's checked access is not
needed: a node's plain values, unresolved or resolved (``OmegaConf.to_container``), and a key
that holds a plain value (``OmegaConf.select``).

``to_container`` reads each key through the container's checked access (key validation,
missing-value and flag checks): ~1.2 ms a job's config, ~3 ms resolved. The up-front check of
a sweep converts every job's config both ways; the stacked launcher converts each member's
config for its ``.hydra/`` files and ten nodes a member to build its objects, a thousand
members a group. Nothing there needs the checks: a container holds a mapping or a list of
nodes, or a value of its own (None, ``???`` or an interpolation's text), a leaf holds its
value, and an interpolation resolves through the node's own ``_dereference_node``, as
``to_container`` resolves it.
"""

from __future__ import annotations

from enum import Enum
from typing import Any

from omegaconf import Container, DictConfig, Node, OmegaConf, ValueNode
from omegaconf._utils import ValueKind, get_value_kind


def unresolved(node: Node, enum_to_str: bool = False) -> Any:
    """A container as ``OmegaConf.to_container(node, resolve=False, enum_to_str=enum_to_str)``
    gives it (structured configs as plain dicts, ``???`` kept); a leaf as that conversion of
    its parent holds it."""
    if not isinstance(node, Container):
        value = node._value()
        return value.name if enum_to_str and isinstance(value, Enum) else value
    content = node.__dict__["_content"]
    if isinstance(content, dict):
        values = {}
        for key, child in content.items():
            if enum_to_str and isinstance(key, Enum):
                key = key.name
            values[key] = unresolved(child, enum_to_str)
        return values
    if isinstance(content, list):
        return [unresolved(child, enum_to_str) for child in content]
    return content  # None, ``???`` or an interpolation's text


def selected(cfg: Container, key: str) -> Any:
    """``OmegaConf.select(cfg, key, default=None)``, read straight from the nodes where the
    path is keys of mappings to a plain value or a mapping or list (the usual case), else by
    ``select`` itself, which sets and resets the root's ``struct`` flag for each key (each
    node's flag cache invalidated): ~30 µs a key, twenty keys a member."""
    node: Any = cfg
    for part in key.split("."):
        content = node.__dict__["_content"] if isinstance(node, DictConfig) else None
        if not isinstance(content, dict) or part not in content:
            return OmegaConf.select(cfg, key, default=None)
        node = content[part]
    if isinstance(node, Container):
        if isinstance(node.__dict__["_content"], dict | list):
            return node  # as ``select`` returns a mapping or list
    elif isinstance(node, ValueNode) and get_value_kind(node) == ValueKind.VALUE:
        return node._value()
    return OmegaConf.select(cfg, key, default=None)


def resolved(node: Container) -> Any:
    """``OmegaConf.to_container(node, resolve=True)``. Where resolving raises, ``to_container``
    itself runs, so the error is OmegaConf's own (its message names the full key)."""
    try:
        return _resolved(node)
    except Exception:
        return OmegaConf.to_container(node, resolve=True)


def _resolved(node: Node) -> Any:
    if node._is_interpolation():
        node = node._dereference_node()
    if not isinstance(node, Container):
        return node._value()
    content = node.__dict__["_content"]
    if isinstance(content, dict):
        return {key: _resolved(child) for key, child in content.items()}
    if isinstance(content, list):
        return [_resolved(child) for child in content]
    return content  # None or ``???``
