"""Which values of the built-in groups make sense, beyond their types (see ``validation``).

Each rule raises ``ConfigError("<key>=<value> is not allowed; <what is>")``. Rules for a group
apply while the group builds the built-in class; a user's own class is checked by type only.
"""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Any

from linlab.checks.validation import ConfigError, is_finite_number, is_integer, is_number
from linlab.data.datamodule import split_sizes
from linlab.data.synthetic import COVARIANCES, GENERATORS, NOISE_KINDS, WEIGHT_KINDS
from linlab.models import INIT_MODES
from linlab.module import GRADIENT_MODES, UPDATE_MODES

BUILT_IN_DATA = ("linlab.data.LinearDataModule", "linlab.data.datamodule.LinearDataModule")
BUILT_IN_MODEL = "linlab.models.LinearRegression"


def show(value: Any) -> str:
    if isinstance(value, float) and math.isnan(value):
        return "nan"
    return repr(value) if isinstance(value, str) else str(value)


def require(ok: bool, key: str, value: Any, allowed: str) -> None:
    if not ok:
        raise ConfigError(f"{key}={show(value)} is not allowed; allowed: {allowed}")


def check(values: dict[str, Any]) -> None:
    seed = values.get("seed")
    require(
        seed is None or (is_integer(seed) and 0 <= seed < 2**32),
        "seed",
        seed,
        "null or an integer in [0, 2**32)",
    )
    ckpt_path = values.get("ckpt_path")
    require(
        ckpt_path in (None, "last") or (isinstance(ckpt_path, str) and Path(ckpt_path).is_file()),
        "ckpt_path",
        ckpt_path,
        "null, last (this run folder's checkpoints/last.ckpt) or an existing checkpoint file",
    )
    optimizer = values.get("optimizer") or {}
    if "lr" in optimizer:
        lr = optimizer["lr"]
        require(is_finite_number(lr) and lr > 0, "optimizer.lr", lr, "a finite number > 0")
    check_trainer(values.get("trainer") or {})
    data = values.get("data") or {}
    if data.get("_target_") in BUILT_IN_DATA:
        check_data(data)
    model = values.get("model") or {}
    if model.get("_target_") == BUILT_IN_MODEL:
        check_model(model, data)
    loss = values.get("loss") or {}
    if "delta" in loss:
        delta = loss["delta"]
        require(is_finite_number(delta) and delta > 0, "loss.delta", delta, "a finite number > 0")
    check_module(values.get("module") or {}, optimizer)


def check_trainer(trainer: dict[str, Any]) -> None:
    for key in ("max_epochs", "log_every_n_steps"):
        if key in trainer:
            value = trainer[key]
            require(is_integer(value) and value >= 1, f"trainer.{key}", value, "an integer >= 1")
    devices = trainer.get("devices", "auto")
    require(
        devices == "auto"
        or (is_integer(devices) and (devices >= 1 or devices == -1))
        or (isinstance(devices, list) and all(is_integer(d) and d >= 0 for d in devices))
        or (isinstance(devices, str) and re.fullmatch(r"-1|\d+(\s*,\s*\d+)*,?", devices)),
        "trainer.devices",
        devices,
        "auto, a count >= 1, -1 (all), or a list of device indices",
    )


def check_data(data: dict[str, Any]) -> None:
    generator = data.get("generator")
    require(generator in GENERATORS, "data.generator", generator, ", ".join(GENERATORS))
    n_features = data.get("n_features")
    require(is_integer(n_features) and n_features >= 1, "data.n_features", n_features, ">= 1")
    noise = data.get("noise", 0.0)
    require(is_finite_number(noise) and noise >= 0, "data.noise", noise, "a finite number >= 0")
    bias = data.get("bias", 0.0)
    require(is_finite_number(bias), "data.bias", bias, "a finite number")
    n = check_samples(data, generator, n_features)
    check_splits(data, n)
    chunk = data.get("chunk_batches", "auto")
    valid = chunk == "auto" or (is_integer(chunk) and chunk >= 1)
    require(valid, "data.chunk_batches", chunk, "auto or an integer >= 1")


def check_samples(data: dict[str, Any], generator: str, n_features: int) -> int:
    """Check the generator's own settings; return the number of samples it makes."""
    if generator == "fixed":
        x, y = data.get("x"), data.get("y")
        require(isinstance(x, list) and len(x) > 0, "data.x", x, "a non-empty list")
        require(isinstance(y, list), "data.y", y, "a list of numbers")
        require(len(x) == len(y), "data.y", y, f"as many values as data.x has rows ({len(x)})")
        columns = len(x[0]) if isinstance(x[0], list) else 1
        require(
            columns == n_features,
            "data.n_features",
            n_features,
            f"the number of columns of data.x ({columns})",
        )
        return len(y)
    if generator == "line_1d":
        require(n_features == 1, "data.n_features", n_features, "1 for data.generator=line_1d")
        spacing = data.get("spacing", "linspace")
        require(spacing in ("linspace", "uniform"), "data.spacing", spacing, "linspace, uniform")
        x_range = data.get("x_range", [-3.0, 3.0])
        require(
            isinstance(x_range, list) and len(x_range) == 2 and all(map(is_finite_number, x_range)),
            "data.x_range",
            x_range,
            "two finite numbers [low, high]",
        )
    weights = data.get("weights")
    require(
        weights is None or (isinstance(weights, list) and len(weights) == n_features),
        "data.weights",
        weights,
        f"null or a list of data.n_features={n_features} numbers",
    )
    if generator == "gaussian":
        check_gaussian_design(data, n_features)
    n = data.get("n_samples", 61 if generator == "line_1d" else 1000)
    require(is_integer(n) and n >= 1, "data.n_samples", n, "an integer >= 1")
    return n


def check_gaussian_design(data: dict[str, Any], d: int) -> None:
    """The covariance, true-weight and noise kinds of ``linlab.data.synthetic.gaussian``."""
    for key, kinds in (
        ("covariance", COVARIANCES),
        ("weights_kind", WEIGHT_KINDS),
        ("noise_kind", NOISE_KINDS),
    ):
        value = data.get(key, kinds[0])
        require(value in kinds, f"data.{key}", value, ", ".join(kinds))
    for key, low, allowed in (
        ("covariance_decay", 0.0, "a finite number >= 0"),
        ("weights_decay", 0.0, "a finite number >= 0"),
        ("spike", 0.0, "a finite number >= 0"),
        ("condition_number", 1.0, "a finite number >= 1"),
    ):
        value = data.get(key, low)
        require(is_finite_number(value) and value >= low, f"data.{key}", value, allowed)
    for key in ("n_nonzero", "n_spikes"):
        value = data.get(key, 1)
        require(is_integer(value) and 1 <= value <= d, f"data.{key}", value, f"1 to {d}")
    df = data.get("noise_df", 5.0)
    require(
        is_finite_number(df) and df > 2,
        "data.noise_df",
        df,
        "a finite number > 2 (the Student-t noise needs a variance: data.noise is its std)",
    )
    norm = data.get("signal_norm")
    require(
        norm is None or (is_finite_number(norm) and norm >= 0),
        "data.signal_norm",
        norm,
        "null (unscaled) or a finite number >= 0",
    )


def check_splits(data: dict[str, Any], n: int) -> None:
    fractions = []
    for key in ("val_fraction", "test_fraction"):
        value = data.get(key, 0.0)
        require(
            is_finite_number(value) and 0 <= value <= 1, f"data.{key}", value, "a number in [0, 1]"
        )
        fractions.append(value)
    total = sum(fractions)
    require(
        total < 1,
        "data.val_fraction + data.test_fraction",
        total,
        "a sum < 1 (the rest is the training split)",
    )
    n_train, n_val, n_test = split_sizes(n, *fractions)
    require(
        n_train >= 1,
        "data.val_fraction + data.test_fraction",
        total,
        f"shares that leave a training split ({n} samples give val {n_val}, test {n_test}, "
        f"train {n_train})",
    )
    batch = data.get("batch_size")
    require(
        batch is None or (is_integer(batch) and 1 <= batch <= n_train),
        "data.batch_size",
        batch,
        f"null (full batch) or an integer from 1 to the training split's size {n_train}",
    )


def check_model(model: dict[str, Any], data: dict[str, Any]) -> None:
    n_features = model.get("n_features")
    data_features = data.get("n_features")
    require(is_integer(n_features) and n_features >= 1, "model.n_features", n_features, ">= 1")
    if is_integer(data_features):
        require(
            n_features == data_features,
            "model.n_features",
            n_features,
            f"data.n_features ({data_features})",
        )
    init = model.get("init", "default")
    if isinstance(init, dict):
        check_explicit_init(init, n_features, model.get("bias", True))
    else:
        require(
            init in INIT_MODES,
            "model.init",
            init,
            f"{', '.join(INIT_MODES)} or explicit values {{weight: [...], bias: ...}}",
        )
    std = model.get("init_std", 0.0)
    require(is_finite_number(std) and std >= 0, "model.init_std", std, "a finite number >= 0")


def check_explicit_init(init: dict[str, Any], n_features: int, bias: bool) -> None:
    unknown = sorted(set(init) - {"weight", "bias"})
    require(not unknown, "model.init", init, "a mapping with keys weight, bias")
    weight = init.get("weight", [0.0] * n_features)
    weight = weight if isinstance(weight, list) else [weight]
    require(
        len(weight) == n_features and all(map(is_number, weight)),
        "model.init.weight",
        weight,
        f"a list of model.n_features={n_features} numbers",
    )
    value = init.get("bias")
    require(value is None or is_number(value), "model.init.bias", value, "a number")
    require(value is None or bias, "model.init.bias", value, "null when model.bias=false")


def check_module(module: dict[str, Any], optimizer: dict[str, Any]) -> None:
    for key, allowed in (("gradient", GRADIENT_MODES), ("update", UPDATE_MODES)):
        if key in module:
            require(module[key] in allowed, f"module.{key}", module[key], ", ".join(allowed))
    if "divergence_factor" in module:
        factor = module["divergence_factor"]
        require(
            is_number(factor) and factor > 1, "module.divergence_factor", factor, "a number > 1"
        )
    if module.get("update") == "manual":
        extras = {
            k: v
            for k, v in optimizer.items()
            if not k.startswith("_") and k != "lr" and v not in (0, 0.0, False, None)
        }
        require(
            optimizer.get("_target_") == "torch.optim.SGD" and not extras,
            "module.update",
            "manual",
            f"optimizer=sgd without momentum or weight decay (got {optimizer.get('_target_')} "
            f"{extras or ''})".rstrip(),
        )
