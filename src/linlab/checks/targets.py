"""Which ``_target_`` a config may name: not the standard library's file, process and code tools.

Hydra imports and calls any ``_target_``: that is how researchers plug in their own models,
losses and callbacks, and a ``_target_`` is code you choose to run. A plain command-line
override must still not turn linlab into a shell (``+callbacks.x._target_=builtins.open``
creates files, ``shutil.copyfile`` copies them), so targets in the modules below are refused
wherever they appear, judged both by the dotted path written and by the module the object
found there really comes from (``torch.serialization.os.system`` is ``posix.system``).
"""

from __future__ import annotations

import importlib
import inspect
from collections.abc import Callable
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
    module, _, name = target.partition(".")
    if refused(module, name.partition(".")[0]):
        raise ConfigError(f"{path}._target_={target} is not allowed: {RULE}")


def refused(module: str, name: str) -> bool:
    """Whether ``name`` of ``module`` is in a refused module or a refused builtin."""
    top = module.split(".")[0]
    return top in REFUSED_MODULES or (top == "builtins" and name in REFUSED_BUILTINS)


def check_target_object(path: str, target: str, found: Any) -> None:
    """Refuse an object that comes from a refused module, however the path reached it."""
    module = found.__name__ if inspect.ismodule(found) else getattr(found, "__module__", "")
    name = getattr(found, "__name__", "")
    if refused(module or "", name):
        raise ConfigError(
            f"{path}._target_={target} is not allowed (it is {module}.{name}): {RULE}"
        )


def locate(path: str, target: Any) -> Callable:
    """Import ``target`` (``package.module.Name``), or refuse naming what could not be found
    or what the policy above refuses."""
    if not isinstance(target, str) or not target:
        raise ConfigError(f"{path}._target_={target!r} is not a dotted import path")
    check_target_path(path, target)
    parts = target.split(".")
    for split in range(len(parts), 0, -1):
        module_name = ".".join(parts[:split])
        try:
            found = importlib.import_module(module_name)
            break
        except ModuleNotFoundError as error:
            if error.name is None or not module_name.startswith(error.name):
                raise ConfigError(_cannot_import(path, target, str(error))) from None
        except Exception as error:  # the module itself raised while it was imported
            reason = f"its import raised {type(error).__name__}: {error}"
            raise ConfigError(_cannot_import(path, target, reason.splitlines()[0])) from None
    else:
        raise ConfigError(_cannot_import(path, target, f"no module named {parts[0]!r}"))
    for name in parts[split:]:
        if not hasattr(found, name):
            reason = f"{'.'.join(parts[:split])} has no attribute {name!r}"
            raise ConfigError(_cannot_import(path, target, reason))
        found, split = getattr(found, name), split + 1
    check_target_object(path, target, found)
    return found


def _cannot_import(path: str, target: str, reason: str) -> str:
    return (
        f"{path}._target_={target} cannot be imported: {reason} "
        "(allowed: a module.Name importable from the Python path)"
    )
