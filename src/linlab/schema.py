"""The parameters a config node's ``_target_`` takes: the signature of the class it names.

Its parameters are the node's allowed keys and their type hints the allowed types, so the
schema cannot drift from the code and a user's own class gets the same check
(``linlab.checks.signatures``). A target of linlab's own is read from its source file
(``ast``), without importing it and with it torch or Lightning, so that check runs with the
value rules, in the time Hydra takes to compose. Any other target is read from the imported
object, when the dry build imports it anyway. :func:`accepts` says whether a config value
fits a type hint, :func:`describe` names what does.
"""

from __future__ import annotations

import ast
import builtins
import collections.abc
import functools
import inspect
import os
import types
import typing
from collections.abc import Callable
from pathlib import Path, PurePath
from typing import Any, Literal, Union

Parameters = dict[str, inspect.Parameter]
PACKAGE = Path(__file__).resolve().parent  # src/linlab, read as source


def from_object(target: Callable) -> Parameters | None:
    """The keyword parameters an imported ``target`` takes; None where its signature cannot
    be read. A module class without its own ``__init__`` takes none: ``nn.Module.__init__``'s
    ``**kwargs`` raises for any keyword. Read once per target (a sweep checks every job):
    callers must not change what it returns."""
    if isinstance(target, collections.abc.Hashable):
        return _object_parameters(target)
    return _object_parameters.__wrapped__(target)


@functools.cache
def _object_parameters(target: Callable) -> Parameters | None:
    from torch import nn

    if inspect.isclass(target) and target.__init__ is nn.Module.__init__:
        return {}
    try:
        params = dict(inspect.signature(target).parameters)
    except (TypeError, ValueError):
        return None
    try:
        hints = typing.get_type_hints(target.__init__ if inspect.isclass(target) else target)
    except Exception:
        hints = {}
    return {
        name: p.replace(annotation=hints.get(name, inspect.Parameter.empty))
        for name, p in params.items()
    }


@functools.cache
def definition(target: str) -> tuple[str, Parameters] | None:
    """``(module.Name where it is defined, its parameters)`` for a linlab target, following
    ``from ... import`` re-exports and base classes of the same module; read once per target
    (as its source, ``_module_tree``): callers must not change what it returns."""
    module, _, name = target.rpartition(".")
    tree = _module_tree(module)
    if tree is None:
        return None
    for statement in tree.body:
        if isinstance(statement, ast.ImportFrom) and statement.level == 0:
            for alias in statement.names:
                if (alias.asname or alias.name) == name:
                    return definition(f"{statement.module}.{alias.name}")
        if isinstance(statement, ast.FunctionDef) and statement.name == name:
            return target, _parameters(statement.args, skip_first=False)
        if isinstance(statement, ast.ClassDef) and statement.name == name:
            return _class_parameters(module, statement)
    return None


def default(target: str, key: str) -> Any:
    """The default that a linlab target's source writes for ``key`` (``empty`` where none)."""
    found = definition(target)
    parameter = None if found is None else found[1].get(key)
    return inspect.Parameter.empty if parameter is None else parameter.default


def _class_parameters(module: str, cls: ast.ClassDef) -> tuple[str, Parameters] | None:
    if cls.decorator_list:  # a dataclass or the like: its signature is made at import
        return None
    for statement in cls.body:
        if isinstance(statement, ast.FunctionDef) and statement.name == "__init__":
            return f"{module}.{cls.name}", _parameters(statement.args, skip_first=True)
    bases = [ast.unparse(b) for b in cls.bases]
    if bases in (["nn.Module"], ["torch.nn.Module"]):  # nn.Module.__init__ takes no settings
        return f"{module}.{cls.name}", {}
    if len(bases) == 1 and bases[0].isidentifier():
        inherited = definition(f"{module}.{bases[0]}")
        return None if inherited is None else (f"{module}.{cls.name}", inherited[1])
    return None


@functools.cache
def _module_tree(module: str) -> ast.Module | None:
    parts = module.split(".")
    if parts[0] != "linlab":
        return None
    base = PACKAGE.joinpath(*parts[1:])
    for file in (base.with_suffix(".py"), base / "__init__.py"):
        if file.is_file():
            return ast.parse(file.read_text(encoding="utf-8"))
    return None


def _parameters(args: ast.arguments, skip_first: bool) -> Parameters:
    kind = inspect.Parameter
    listed = [(a, kind.POSITIONAL_ONLY) for a in args.posonlyargs]
    listed += [(a, kind.POSITIONAL_OR_KEYWORD) for a in args.args]
    listed = listed[1:] if skip_first else listed
    if args.vararg:
        listed.append((args.vararg, kind.VAR_POSITIONAL))
    listed += [(a, kind.KEYWORD_ONLY) for a in args.kwonlyargs]
    if args.kwarg:
        listed.append((args.kwarg, kind.VAR_KEYWORD))
    positional = [*args.posonlyargs, *args.args]
    written = dict(
        zip(positional[len(positional) - len(args.defaults) :], args.defaults, strict=True)
    )
    written |= {
        a: d for a, d in zip(args.kwonlyargs, args.kw_defaults, strict=True) if d is not None
    }
    return {
        a.arg: inspect.Parameter(
            a.arg, k, annotation=_annotation(a.annotation), default=_default(written.get(a))
        )
        for a, k in listed
    }


def _default(written: ast.expr | None) -> Any:
    """A default written as a literal (``n_samples: int = 200``); any other is ``empty``."""
    try:
        return inspect.Parameter.empty if written is None else ast.literal_eval(written)
    except ValueError:
        return inspect.Parameter.empty


class UnknownType(type):
    """The type of a name an annotation uses that the schema cannot know without importing
    (``torch.Tensor``): ``accepts`` judges no value by it."""

    def __getattr__(cls, name: str) -> Any:
        if name.startswith("_"):
            raise AttributeError(name)
        return UnknownType(name, (), {})


class _Names(dict):
    def __missing__(self, name: str) -> Any:
        return UnknownType(name, (), {})


_KNOWN = {**vars(builtins), **vars(collections.abc), **vars(typing), "None": None}


def _annotation(written: ast.expr | None) -> Any:
    if written is None:
        return inspect.Parameter.empty
    try:
        return eval(ast.unparse(written), {"__builtins__": {}}, _Names(_KNOWN))
    except Exception:
        return inspect.Parameter.empty


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
        return isinstance(value, int) and not isinstance(value, bool) and -(2**63) <= value < 2**63
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
