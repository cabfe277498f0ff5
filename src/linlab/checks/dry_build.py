"""Build what a config builds, on something tiny, and turn what that raises into one line.

Types and value rules cannot know every constraint of every class a ``_target_`` names
(torch's optimisers and schedulers, a researcher's own model or callback). So after them the
check builds each group as the run will, only small: the model, with a forward pass on a
two-sample batch of ``data.n_features`` and the loss and its gradient on it; the optimiser
over a one-element parameter, stepped twice; the scheduler over that optimiser, stepped a few
times; the module around them; the data generator on at most ``TINY_SAMPLES`` samples; every
callback. Whatever raises is refused before any folder exists, naming the key to blame: the
error's own ``key=value`` when it gives one, else the key whose reset to its default (or to
1) makes the build pass, else the group (``<group>: <ExceptionType>: <message>``). A loss that
fails on the model's output but not on one prediction per sample blames ``model._target_``.

The groups that need only torch (model, loss, optimiser, scheduler) are built first, so a
refusal there comes before Lightning is imported; a node whose target is not linlab's has
its keys checked against the imported signature (``schema.from_object``) just before.
"""

from __future__ import annotations

import copy
import functools
import inspect
import re
import warnings
from collections.abc import Callable
from typing import Any

import torch

from linlab import schema
from linlab.build import instantiate as build_plain
from linlab.checks import signatures
from linlab.checks.composed import target_nodes
from linlab.checks.rules import BUILT_IN_DATA, TORCH_SETTINGS, is_integer, show
from linlab.checks.targets import locate
from linlab.dtypes import default_dtype, dtype_for_precision
from linlab.errors import ConfigError, first_line

TINY_SAMPLES = 16
SCHEDULER_STEPS = 3
REMEMBERED = 256  # stages a sweep's check keeps built


def check(values: dict[str, Any], built: dict[tuple[str, str], Any]) -> None:
    """Refuse (``ConfigError``) the first group whose tiny build raises. ``built``: what a
    sweep's earlier jobs built, by exactly each stage's inputs (its node, what it builds on),
    so a stage is built once per distinct input; one that raises is built and refused again."""
    precision = (values.get("trainer") or {}).get("precision", "32-true")
    dtype = dtype_for_precision(str(precision))
    data, model_node = values.get("data") or {}, values.get("model") or {}
    found = (n for n in (data.get("n_features"), model_node.get("n_features")) if is_integer(n))
    n_features = next(found, 1)
    x = torch.linspace(-1.0, 1.0, 2 * n_features, dtype=dtype).reshape(2, n_features)
    y = torch.tensor([0.5, -0.5], dtype=dtype)
    inputs = {"x": repr((precision, n_features))}

    def stage(group: str, build: Callable[[dict], Any], *after: str) -> Any:
        inputs[group] = repr((values.get(group), *(inputs[earlier] for earlier in after)))
        return _stage(group, values.get(group), build, built, inputs[group])

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = stage("model", lambda n: _model(n, precision, dtype, x), "x")
        loss = stage("loss", lambda n: _loss(n, model, model_node, x, y), "model")
        optimizer = stage("optimizer", lambda n: _optimizer(n, dtype), "x")
        scheduler = stage("scheduler", lambda n: _scheduler(n, optimizer, dtype), "optimizer")
        module = stage(
            "module", lambda n: _module(n, model, loss, optimizer, scheduler), "loss", "scheduler"
        )
        _stage("data", data or None, _data, built, repr(data))
        for name, callback in (values.get("callbacks") or {}).items():
            key = repr((callback, inputs["module"]))
            _stage(f"callbacks.{name}", callback, lambda n: _callback(n, module), built, key)
    for path, target_node in target_nodes(values):
        _check_imported_signature(path, target_node)


def instantiate(node: dict, **extra: Any) -> Any:
    """``linlab.build.instantiate`` (Hydra's, on plain values), each target imported through
    the targets policy."""
    return build_plain(node, functools.partial(locate, ""), **extra)


def _model(node: dict, precision: Any, dtype: torch.dtype, x: torch.Tensor) -> torch.nn.Module:
    with default_dtype(precision):
        model = instantiate(node)
    if dtype in (torch.float16, torch.bfloat16):
        model = model.to(dtype)
    model(x)
    return model


def _loss(node: dict, model: Any, model_node: dict, x: torch.Tensor, y: torch.Tensor) -> Any:
    loss = instantiate(node)
    with torch.no_grad():
        pred = model(x)
    try:
        loss(pred.requires_grad_(True), y).backward()
    except Exception as error:
        try:  # one prediction per sample: if the loss takes that, the model's output is wrong
            loss(y.clone().requires_grad_(True), y).backward()
        except Exception:
            raise error from None
        raise _misfit(model_node["_target_"], pred, x, error) from None
    return loss


def _misfit(target: str, pred: torch.Tensor, x: torch.Tensor, error: Exception) -> ConfigError:
    """The model's refusal where the loss cannot take its output, though it takes one value per
    sample."""
    n = x.shape[0]
    return ConfigError(
        f"model._target_={target} does not fit the loss: its output for a batch of shape "
        f"{tuple(x.shape)} has shape {tuple(pred.shape)}, which the loss cannot take "
        f"({type(error).__name__}: {first_line(error)}); allowed: a model that outputs "
        f"one prediction per sample, shape ({n},) or ({n}, 1)"
    )


def _optimizer(node: dict, dtype: torch.dtype) -> Callable | None:
    """The partial, after building it over a one-element parameter and stepping it twice."""
    partial = instantiate(node)
    _stepped_optimizer(partial, dtype)
    return partial


def _stepped_optimizer(partial: Callable, dtype: torch.dtype) -> torch.optim.Optimizer:
    parameter = torch.nn.Parameter(torch.ones(1, dtype=dtype))
    optimizer = partial([parameter])
    for _ in range(2):
        parameter.grad = torch.ones_like(parameter)
        optimizer.step()
    return optimizer


def _scheduler(node: dict, optimizer: Callable | None, dtype: torch.dtype) -> Callable | None:
    partial = instantiate(node)
    if optimizer is None:
        return partial
    built = _stepped_optimizer(optimizer, dtype)
    scheduler = partial(built)
    for _ in range(SCHEDULER_STEPS):
        built.step()
        scheduler.step()
    return partial


def _module(node: dict, model: Any, loss: Any, optimizer: Any, scheduler: Any) -> Any:
    module = instantiate(node, model=model, loss=loss, optimizer=optimizer, scheduler=scheduler)
    if hasattr(module, "configure_optimizers"):
        module.configure_optimizers()
    return module


def _data(node: dict) -> Any:
    """The built-in datamodule made and set up on at most ``TINY_SAMPLES`` samples."""
    if node.get("_target_") not in BUILT_IN_DATA:
        return instantiate(node)
    node = dict(node)
    if is_integer(node.get("n_samples")):
        node["n_samples"] = min(node["n_samples"], TINY_SAMPLES)
    datamodule = instantiate(node)
    datamodule.setup("fit")
    return datamodule


def _callback(node: dict, module: Any) -> Any:
    """The callback, made without a trainer; ``check_module(module)`` where it has one."""
    callback = instantiate(node)
    if module is not None and hasattr(callback, "check_module"):
        callback.check_module(module)
    return callback


def _stage(group: str, node: dict | None, build: Callable, built: dict, inputs: str) -> Any:
    """``build(node)``, or refuse with the one line that names what to change; what it built
    kept in ``built`` by ``(group, inputs)`` (forgotten all at once past ``REMEMBERED``)."""
    if not isinstance(node, dict) or "_target_" not in node:
        return None
    if (group, inputs) in built:
        return built[group, inputs]
    _check_imported_signature(group, node)
    try:
        result = build(node)
    except ConfigError:
        raise
    except Exception as error:
        raise ConfigError(_refusal(group, node, build, error)) from None
    if len(built) >= REMEMBERED:
        built.clear()
    return built.setdefault((group, inputs), result)


def _check_imported_signature(path: str, node: dict) -> None:
    """The keys of a node whose target is not linlab's (read from source before)."""
    if signatures.from_source(node) is None:
        params = schema.from_object(locate(path, node["_target_"]))
        signatures.check_node(path, node, params)


def _refusal(group: str, node: dict, build: Callable[[dict], Any], error: Exception) -> str:
    text = first_line(error)
    if text.startswith(f"{group}."):
        return text  # linlab's own errors name the full key already
    named = re.match(r"([A-Za-z_]\w*)=", text)
    if named and named.group(1) in node:
        return f"{group}.{text}"
    blamed = _key_to_blame(node, build, text)
    if blamed is None:
        return f"{group}: {type(error).__name__}: {text}"
    key, default = blamed
    target = node["_target_"]
    known = TORCH_SETTINGS.get(key, (None, None))[1] if key != "lr" else "a finite number > 0"
    shown = "" if default is inspect.Parameter.empty else f" (its default: {show(default)})"
    return (
        f"{group}.{key}={show(node[key])} is not allowed by {target} "
        f"({type(error).__name__}: {text}); allowed: "
        f"{known or f'what {target} accepts for {key}{shown}'}"
    )


def _key_to_blame(node: dict, build: Callable[[dict], Any], text: str) -> tuple[str, Any] | None:
    """The first key whose reset to its default (or, without one, to 1) lets ``build`` pass,
    with that default; keys the error message names are tried first, in the order it names
    them."""
    try:
        parameters = inspect.signature(locate("", node["_target_"])).parameters.values()
    except (ConfigError, TypeError, ValueError):
        parameters = []
    defaults = {p.name: p.default for p in parameters}
    keys = [k for k in node if not k.startswith("_")]
    found = {k: re.search(rf"\b{re.escape(k)}\b", text, re.IGNORECASE) for k in keys}
    named = sorted((match.start(), k) for k, match in found.items() if match)
    for key in dict.fromkeys([k for _, k in named] + keys):
        default = defaults.get(key, inspect.Parameter.empty)
        for replacement in (default, 1):
            if replacement is inspect.Parameter.empty or replacement == node[key]:
                continue
            try:
                build({**copy.deepcopy(node), key: replacement})
            except Exception:
                continue
            return key, default
    return None
