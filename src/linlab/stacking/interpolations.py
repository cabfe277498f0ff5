"""A sweep's config values read with each interpolation parsed once, not at every read.

OmegaConf parses an interpolation's text with its ANTLR grammar (~0.3 ms) each time the value
is read. A sweep's jobs hold the same texts (``${hydra:runtime.output_dir}/checkpoints``,
``${seed}``, ``${hydra.job.override_dirname}``), each resolving to the job's own value: a
thousand members read each of them a thousand times. :func:`read` resolves with the parse
tree of the text kept in ``parsed``, a dict that the reads of a sweep or group share.
"""

from __future__ import annotations

from typing import Any

from omegaconf import DictConfig
from omegaconf._utils import ValueKind, _get_value, get_value_kind
from omegaconf.grammar_parser import parse

Parsed = dict[str, Any]  # an interpolation's text -> its parse tree


def read(node: DictConfig, key: str, parsed: Parsed) -> Any:
    """``node[key]`` as OmegaConf reads it (``_resolve_with_default``), the parse tree of its
    interpolation taken from ``parsed`` (and put there)."""
    value = node._get_node(key)
    if get_value_kind(value) != ValueKind.INTERPOLATION:
        return node[key]
    text = value._value()
    tree = parsed.get(text)
    if tree is None:
        tree = parsed[text] = parse(text)
    resolved = node._resolve_interpolation_from_parse_tree(
        parent=node,
        value=value,
        key=key,
        parse_tree=tree,
        throw_on_resolution_failure=True,
        memo=set(),
    )
    return _get_value(resolved)
