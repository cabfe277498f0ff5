"""Which ``_target_`` a config may name: not the standard library's file, process and code tools.

Hydra imports and calls any ``_target_``: that is how researchers plug in their own models,
losses and callbacks, and a ``_target_`` is code you choose to run. A plain command-line
override must still not turn linlab into a shell (``+callbacks.x._target_=builtins.open``
creates files, ``shutil.copyfile`` copies them), so targets in the modules below are refused
wherever they appear, judged both by the dotted path written and by the module the object
found there really comes from (``torch.serialization.os.system`` is ``posix.system``).
"""

from __future__ import annotations

from typing import Any

from linlab.errors import ConfigError

REFUSED_MODULES = frozenset(
    {
        *("os", "posix", "nt", "posixpath", "ntpath", "shutil", "subprocess", "sys", "pathlib"),
        *("io", "_io", "importlib", "pickle", "_pickle", "marshal", "runpy", "ctypes", "_ctypes"),
        *("socket", "_socket", "tempfile", "multiprocessing", "signal", "code", "codeop", "pty"),
        *("webbrowser", "glob", "fileinput", "shelve", "dbm", "zipfile", "tarfile", "zipimport"),
        *("pkgutil", "pydoc", "pdb", "bdb", "trace", "site", "threading", "_thread", "asyncio"),
        *("concurrent", "fcntl", "mmap", "resource", "sqlite3", "urllib", "http", "ftplib"),
        *("smtplib", "socketserver", "ssl", "xmlrpc", "gc", "inspect", "types", "operator"),
    }
)
REFUSED_BUILTINS = frozenset(
    {
        *("open", "exec", "eval", "compile", "__import__", "breakpoint", "input", "getattr"),
        *("setattr", "delattr", "globals", "locals", "vars", "exit", "quit", "help"),
    }
)
RULE = (
    "targets in the standard library's file, process and code-execution modules (builtins.open, "
    "exec, eval, compile, __import__; os, shutil, subprocess, sys, pathlib, io, importlib, "
    "pickle, ...) are refused; allowed: a class or function of your own or of a library "
    "(a _target_ is code you choose to run)"
)


def check_target_path(path: str, target: Any) -> None:
    """Refuse a dotted path that starts in a refused module or names a refused builtin."""
    if not isinstance(target, str):
        return
    parts = target.split(".")
    if parts[0] in REFUSED_MODULES or (
        parts[0] == "builtins" and len(parts) > 1 and parts[1] in REFUSED_BUILTINS
    ):
        raise ConfigError(f"{path}._target_={target} is not allowed: {RULE}")


def check_target_object(path: str, target: str, found: Any) -> None:
    """Refuse an object that comes from a refused module, however the path reached it."""
    module = (
        getattr(found, "__name__", "") if _is_module(found) else getattr(found, "__module__", "")
    )
    top = (module or "").split(".")[0]
    name = getattr(found, "__name__", "")
    if top in REFUSED_MODULES or (top == "builtins" and name in REFUSED_BUILTINS):
        raise ConfigError(
            f"{path}._target_={target} is not allowed (it is {module}.{name}): {RULE}"
        )


def all_targets(node: Any, path: str = "") -> list[tuple[str, Any]]:
    """Every ``(dotted path, _target_)`` in a plain config tree, the ``hydra`` node included."""
    found = []
    if isinstance(node, dict):
        if "_target_" in node:
            found.append((path, node["_target_"]))
        for key, value in node.items():
            found += all_targets(value, f"{path}.{key}" if path else str(key))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            found += all_targets(value, f"{path}[{index}]")
    return found


def _is_module(value: Any) -> bool:
    return type(value).__name__ == "module"
