"""``linlab.config_values`` reads a config's values as OmegaConf does: ``unresolved`` and
``resolved`` are ``OmegaConf.to_container`` (``resolve=False``/``True``), ``selected`` is
``OmegaConf.select(default=None)``, on every node of corner-case configs and of every config
linlab composes."""

from __future__ import annotations

import dataclasses
import enum
from pathlib import Path

import pytest
from conftest import compose_config
from hydra import compose, initialize_config_dir
from omegaconf import MISSING, Container, DictConfig, ListConfig, OmegaConf

from linlab.config_tree import config_dir
from linlab.config_values import resolved, selected, unresolved


class Color(enum.Enum):
    RED = 1
    BLUE = 2


@dataclasses.dataclass
class Settings:
    color: Color = Color.RED
    size: int = 3
    path: Path = Path("/tmp")
    tags: list[str] = dataclasses.field(default_factory=lambda: ["a", "${..name}"])
    name: str = "settings"
    missing: str = MISSING


def made() -> dict:
    return {"made": [1, "${top}"]}


def corner_cases() -> DictConfig:
    """Missing values, None and interpolated nodes (absolute, relative, in text, to a node, a
    list item, a resolver's dict, escaped), lists, enums (also as keys), a structured
    config, integer keys."""
    if not OmegaConf.has_resolver("test_config_values.made"):
        OmegaConf.register_new_resolver("test_config_values.made", made)
    corners = OmegaConf.create(
        {
            "top": 3,
            "missing": "???",
            "none": None,
            "empty": {},
            "alias": "${lists}",
            "text": "${lists.0}/x_${.top}",
            "escaped": "\\${lists}",
            "lists": [1, [2.0, {"a": True}], "???", None, "${none}", "${top}"],
            "deep": {"node": "???", "none": None, "list": "${lists}", "alias": "${deep}"},
            "nested": {"a": {"b": [1, {"c": "${top}"}, "${..d}"], "d": 4}, "up": "${..top}"},
            "item": "${nested.a.b[1].c}",
            "to_missing": "${missing}",
            "nowhere": "${absent}",
            "made": "${test_config_values.made:}",
            "ints": {1: "one", 2: {3: "three"}},
            "colors": {"first": Color.RED, "keys": {Color.RED: "red"}},
        }
    )
    corners.settings = OmegaConf.structured(Settings)
    corners.missing_node = DictConfig("???")
    corners.none_node = ListConfig(None)
    return corners


def job() -> DictConfig:
    with initialize_config_dir(config_dir=str(config_dir()), version_base="1.3"):
        return compose("train", ["optimizer.lr=0.5"], return_hydra_config=True)


def nodes(node, path=()):
    yield path, node
    content = node._content if isinstance(node, Container) else None
    items = content.items() if isinstance(content, dict) else enumerate(content or ())
    for key, child in items if isinstance(content, dict | list) else ():
        yield from nodes(child, (*path, key))


def outcome(read, *args) -> tuple:
    """What ``read(*args)`` gives, or the type and text of what it raises."""
    try:
        return "value", read(*args)
    except Exception as error:
        return "raised", type(error), str(error)


@pytest.mark.parametrize("make", [job, corner_cases])
def test_values_read_from_the_nodes_are_what_omegaconf_reads(make):
    cfg = make()
    for path, node in nodes(cfg):
        if isinstance(node, Container):
            for enum_to_str in (False, True):
                expected = OmegaConf.to_container(node, enum_to_str=enum_to_str)
                assert repr(unresolved(node, enum_to_str)) == repr(expected), path
            expected = outcome(lambda n: OmegaConf.to_container(n, resolve=True), node)  # or raises
            assert repr(outcome(resolved, node)) == repr(expected), path
        if path and all(isinstance(part, str | int) for part in path):
            key = ".".join(map(str, path))
            expected, read = outcome(select, cfg, key), outcome(selected, cfg, key)
            assert repr(read[:2]) == repr(expected[:2]), key  # also the type it raises
            assert read[1] is expected[1] or not isinstance(expected[1], Container)
    for key in ("absent", "deep.absent", "alias.0", ".missing", "deep.alias.node"):
        assert repr(outcome(selected, cfg, key)[:2]) == repr(outcome(select, cfg, key)[:2])


def select(cfg, key):
    return OmegaConf.select(cfg, key, default=None)


def configs() -> list[list[str]]:
    """Each option of every config group (experiment presets included), on the defaults."""
    found = [[]]
    for group in sorted(p for p in config_dir().iterdir() if p.is_dir() and p.name != "hydra"):
        found += [[f"{group.name}={option.stem}"] for option in sorted(group.glob("*.yaml"))]
    return found


@pytest.mark.parametrize("overrides", configs(), ids=lambda o: ",".join(o) or "defaults")
def test_every_linlab_config_reads_as_omegaconf_reads_it(overrides, tmp_path):
    cfg = compose_config(overrides, tmp_path)
    assert resolved(cfg) == OmegaConf.to_container(cfg, resolve=True)
    assert unresolved(cfg) == OmegaConf.to_container(cfg, resolve=False)
