"""A config node's plain values, unresolved: ``OmegaConf.to_container(node, resolve=False)``
read straight from the nodes.

``to_container`` reads each key through the container's checked access (key validation,
missing-value and flag checks): ~1.2 ms a job's config. The stacked launcher converts each
member's config for its ``.hydra/`` files and ten nodes a member to build its objects, a
thousand members a group. Unresolved there is nothing to check: a container holds a mapping or
a list of nodes, or a value of its own (None, ``???`` or an interpolation's text), and a leaf
holds its value.
"""

from __future__ import annotations

from enum import Enum
from typing import Any

from omegaconf import Container, Node


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
