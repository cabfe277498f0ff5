"""``linlab.config_values`` reads a config's plain values as ``OmegaConf.to_container`` does,
unresolved and resolved, on every kind of node and on every config linlab composes."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum

import pytest
from omegaconf import MISSING, OmegaConf

from linlab import config_values
from linlab.config_tree import config_dir
from tests.conftest import compose_config


class Color(Enum):
    RED = 1
    BLUE = 2


@dataclass
class Inner:
    color: Color = Color.BLUE
    rate: float = 0.5
    tags: list[str] = field(default_factory=lambda: ["a", "${..name}"])
    name: str = "inner"


@dataclass
class Outer:
    inner: Inner = field(default_factory=Inner)
    missing: str = MISSING
    optional: Inner | None = None
    by_color: dict[Color, int] = field(default_factory=lambda: {Color.RED: 1})


def resolver_made() -> dict:
    return {"made": [1, "${top}"]}


@pytest.fixture(scope="module")
def every_kind():
    """Nested dicts and lists, absolute, relative and string interpolations, one to a node, a
    list item and a resolver's dict, escaped text, ``???`` and None containers, a structured
    config with enum values and keys, int keys."""
    if not OmegaConf.has_resolver("test_config_values.made"):
        OmegaConf.register_new_resolver("test_config_values.made", resolver_made)
    return OmegaConf.create(
        {
            "top": 3,
            "name": "x_${top}_${.top}",
            "nested": {"a": {"b": [1, {"c": "${top}"}, "${..d}"], "d": 4}, "up": "${..top}"},
            "node": "${nested.a}",
            "item": "${nested.a.b[1].c}",
            "listed": ["${nested}", "${top}", [None, "???"]],
            "made": "${test_config_values.made:}",
            "escaped": r"\${top}",
            "missing_node": "???",
            "none_node": None,
            "empty": {},
            "structured": OmegaConf.structured(Outer),
            "numbers": {1: "one", 2: "${top}"},
        }
    )


def test_values_equal_to_container_on_every_kind_of_node(every_kind):
    cfg = every_kind
    assert config_values.resolved(cfg) == OmegaConf.to_container(cfg, resolve=True)
    for enum_to_str in (False, True):
        expected = OmegaConf.to_container(cfg, resolve=False, enum_to_str=enum_to_str)
        assert config_values.unresolved(cfg, enum_to_str) == expected
    for key in cfg:  # each node alone, as the checks and the launcher read them
        node = cfg._get_node(key)
        if OmegaConf.is_config(node):
            assert config_values.resolved(node) == OmegaConf.to_container(node, resolve=True)
            assert config_values.unresolved(node) == OmegaConf.to_container(node)


def test_a_failed_resolution_raises_omegaconfs_own_error():
    cfg = OmegaConf.create({"a": {"b": "${nowhere}", "c": "${d}"}, "d": "???"})
    for node in (cfg, cfg.a):
        with pytest.raises(Exception) as theirs:
            OmegaConf.to_container(node, resolve=True)
        with pytest.raises(Exception) as ours:
            config_values.resolved(node)
        assert type(ours.value) is type(theirs.value)
        assert str(ours.value) == str(theirs.value)


def configs() -> list[list[str]]:
    """Each option of every config group and every experiment preset, on the defaults."""
    found = [[]]
    for group in sorted(p for p in config_dir().iterdir() if p.is_dir() and p.name != "hydra"):
        found += [[f"{group.name}={option.stem}"] for option in sorted(group.glob("*.yaml"))]
    return found


@pytest.mark.parametrize("overrides", configs(), ids=lambda o: ",".join(o) or "defaults")
def test_values_equal_to_container_on_linlab_configs(overrides, tmp_path):
    cfg = compose_config(overrides, tmp_path)
    assert config_values.resolved(cfg) == OmegaConf.to_container(cfg, resolve=True)
    assert config_values.unresolved(cfg) == OmegaConf.to_container(cfg, resolve=False)
