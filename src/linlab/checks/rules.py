"""Which values of the built-in groups make sense, beyond their types (see ``signatures``).

Plain Python on the composed config: no torch, no Lightning, so a bad value is refused in
the time Hydra takes to compose. The names and sizes come from ``linlab.choices``, where the
classes that use them take them from too.

Each rule raises ``ConfigError("<key>=<value> is not allowed; <what is>")``. Rules for a group
apply while the group builds the built-in class; a user's own class is checked by type only.
"""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Any

from linlab.choices import (
    COVARIANCES,
    FLOAT_MAX,
    GENERATOR_NAMES,
    GRADIENT_MODES,
    INIT_MODES,
    NOISE_KINDS,
    UPDATE_MODES,
    WEIGHT_KINDS,
    check_equal_shards,
    dtype_name,
    split_sizes,
)
from linlab.errors import ConfigError

BUILT_IN_DATA = ("linlab.data.LinearDataModule", "linlab.data.datamodule.LinearDataModule")
BUILT_IN_MODEL = "linlab.models.LinearRegression"
BINARY_LOSSES = tuple(f"linlab.losses.{name}Loss" for name in ("Logistic", "Hinge", "SquaredHinge"))


def is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def is_finite_number(value: Any) -> bool:
    return is_number(value) and math.isfinite(value)


def is_integer(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


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
    trainer = values.get("trainer") or {}
    optimizer = values.get("optimizer") or {}
    if "lr" in optimizer:
        check_lr(optimizer["lr"], trainer.get("precision", "32-true"))
    check_trainer(trainer)
    for group in ("optimizer", "scheduler"):
        check_torch_settings(group, values.get(group) or {})
    data = values.get("data") or {}
    if data.get("_target_") in BUILT_IN_DATA:
        check_data(data)
        check_shards(data, trainer)
    model = values.get("model") or {}
    if model.get("_target_") == BUILT_IN_MODEL:
        check_model(model, data)
    loss = values.get("loss") or {}
    if loss.get("_target_") in BINARY_LOSSES:
        classes = data.get("n_classes", 2)
        binary = "2 with a binary loss (use model=softmax loss=cross_entropy for more classes)"
        require(classes == 2, "data.n_classes", classes, binary)
    if "delta" in loss:
        delta = loss["delta"]
        require(is_finite_number(delta) and delta > 0, "loss.delta", delta, "a finite number > 0")
    check_module(values.get("module") or {}, optimizer)


def check_lr(lr: Any, precision: Any) -> None:
    """lr > 0, finite, and a number the parameters' dtype can hold (float32: below 3.4e38)."""
    dtype = dtype_name(precision)
    largest = FLOAT_MAX[dtype]
    require(
        is_finite_number(lr) and 0 < lr <= largest,
        "optimizer.lr",
        lr,
        f"a finite number > 0 representable in the training dtype ({dtype} for "
        f"trainer.precision={precision}: at most {largest:.4g})",
    )


# Common settings of torch's optimisers and schedulers: key -> (is the value allowed, what is).
# torch itself refuses some values only when it steps (step_size=0) and others never
# (gamma=-1 flips the learning rate's sign).
TORCH_SETTINGS = {
    "momentum": (lambda v: is_finite_number(v) and v >= 0, "a finite number >= 0"),
    "dampening": (lambda v: is_finite_number(v) and v >= 0, "a finite number >= 0"),
    "weight_decay": (lambda v: is_finite_number(v) and v >= 0, "a finite number >= 0"),
    "eps": (lambda v: is_finite_number(v) and v >= 0, "a finite number >= 0"),
    "betas": (
        lambda v: (
            isinstance(v, list)
            and len(v) == 2
            and all(is_finite_number(b) and 0 <= b < 1 for b in v)
        ),
        "two numbers in [0, 1), e.g. [0.9, 0.999]",
    ),
    "nesterov": (lambda v: isinstance(v, bool), "true only with momentum > 0 and dampening = 0"),
    "step_size": (lambda v: is_integer(v) and v >= 1, "an integer >= 1"),
    "T_max": (lambda v: is_integer(v) and v >= 1, "an integer >= 1"),
    "T_0": (lambda v: is_integer(v) and v >= 1, "an integer >= 1"),
    "gamma": (lambda v: is_finite_number(v) and v > 0, "a finite number > 0"),
    "eta_min": (lambda v: is_finite_number(v) and v >= 0, "a finite number >= 0"),
}


def check_torch_settings(group: str, node: dict[str, Any]) -> None:
    """The settings of a ``torch.optim`` class: what torch accepts and what makes sense."""
    if not str(node.get("_target_", "")).startswith("torch.optim."):
        return
    for key, (ok, allowed) in TORCH_SETTINGS.items():
        if key in node:
            require(ok(node[key]), f"{group}.{key}", node[key], allowed)


# Lightning Trainer options whose values Lightning checks only once fit has started, or not at
# all: key -> (is the value allowed, what is)
TRAINER_VALUES = {
    "max_epochs": (lambda v: is_integer(v) and v >= 1, "an integer >= 1"),
    "log_every_n_steps": (lambda v: is_integer(v) and v >= 1, "an integer >= 1"),
    "check_val_every_n_epoch": (
        lambda v: v is None or (is_integer(v) and v >= 1),
        "null or an integer >= 1",
    ),
    "min_epochs": (lambda v: v is None or (is_integer(v) and v >= 0), "null or an integer >= 0"),
    "max_steps": (lambda v: is_integer(v) and v >= -1, "-1 (no limit) or an integer >= 0"),
    "min_steps": (lambda v: v is None or (is_integer(v) and v >= 0), "null or an integer >= 0"),
    "num_sanity_val_steps": (lambda v: is_integer(v) and v >= -1, "-1 (all) or an integer >= 0"),
    "num_nodes": (lambda v: is_integer(v) and v >= 1, "an integer >= 1"),
    "reload_dataloaders_every_n_epochs": (lambda v: is_integer(v) and v >= 0, "an integer >= 0"),
    "fast_dev_run": (
        lambda v: isinstance(v, bool) or (is_integer(v) and v >= 0),
        "true, false or an integer >= 0",
    ),
    "val_check_interval": (
        lambda v: v is None or (is_integer(v) and v >= 1) or (is_finite_number(v) and 0 < v <= 1),
        "null, an integer >= 1 (batches) or a fraction in (0, 1] of an epoch",
    ),
    # linlab's module optimises manually (exact steps per minibatch): Lightning cannot clip
    # or accumulate for it, and refuses both only once fit has started
    "gradient_clip_val": (
        lambda v: v in (None, 0),
        "null or 0: linlab steps the optimiser itself (manual optimisation), so Lightning "
        "cannot clip gradients",
    ),
    "accumulate_grad_batches": (
        lambda v: v == 1 and not isinstance(v, bool),
        "1: linlab steps the optimiser itself (manual optimisation), once per minibatch; "
        "for bigger steps raise data.batch_size",
    ),
}
for _key in ("limit_train_batches", "limit_val_batches", "limit_test_batches"):
    TRAINER_VALUES[_key] = (
        lambda v: v is None or (is_integer(v) and v >= 0) or (is_finite_number(v) and 0 <= v <= 1),
        "null, an integer >= 0 (batches) or a fraction in [0, 1]",
    )


def check_trainer(trainer: dict[str, Any]) -> None:
    for key, (ok, allowed) in TRAINER_VALUES.items():
        if key in trainer:
            require(ok(trainer[key]), f"trainer.{key}", trainer[key], allowed)
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
    require(generator in GENERATOR_NAMES, "data.generator", generator, ", ".join(GENERATOR_NAMES))
    n_features = data.get("n_features")
    require(is_integer(n_features) and n_features >= 1, "data.n_features", n_features, ">= 1")
    noise = data.get("noise", 0.0)
    require(is_finite_number(noise) and noise >= 0, "data.noise", noise, "a finite number >= 0")
    bias = data.get("bias", 0.0)
    require(is_finite_number(bias), "data.bias", bias, "a finite number")
    seed = data.get("seed", 0)
    require(is_integer(seed) and 0 <= seed < 2**32, "data.seed", seed, "an integer in [0, 2**32)")
    n = check_samples(data, generator, n_features)
    check_splits(data, n)
    chunk = data.get("chunk_batches", "auto")
    valid = chunk == "auto" or (is_integer(chunk) and chunk >= 1)
    require(valid, "data.chunk_batches", chunk, "auto or an integer >= 1")


def check_samples(data: dict[str, Any], generator: str, n_features: int) -> int:
    """Check the generator's own settings; return the number of samples it makes."""
    if generator == "fixed":
        x, y = data.get("x"), data.get("y")
        rows = "a non-empty list of finite numbers, or of rows of as many finite numbers"
        require(isinstance(x, list) and len(x) > 0, "data.x", x, rows)
        flat = not isinstance(x[0], list)
        width = 1 if flat else len(x[0])
        for row in x:
            values = [row] if flat else row
            ok = isinstance(values, list) and len(values) == width >= 1
            require(ok and all(map(is_finite_number, values)), "data.x", x, rows)
        require(
            isinstance(y, list) and all(map(is_finite_number, y)),
            "data.y",
            y,
            "a list of finite numbers",
        )
        require(len(x) == len(y), "data.y", y, f"as many values as data.x has rows ({len(x)})")
        columns = width
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
        weights is None
        or (
            isinstance(weights, list)
            and len(weights) == n_features
            and all(map(is_finite_number, weights))
        ),
        "data.weights",
        weights,
        f"null or a list of data.n_features={n_features} finite numbers",
    )
    if generator in ("gaussian", "gaussian_mixture", "separable"):
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


def check_shards(data: dict[str, Any], trainer: dict[str, Any]) -> None:
    """DDP presets: each minibatch splits into one equal shard per process (``linlab.ddp``)."""
    strategy = trainer.get("strategy")
    target = strategy.get("_target_", "") if isinstance(strategy, dict) else str(strategy)
    devices = trainer.get("devices")
    if "ddp" not in target.lower() or not is_integer(devices) or devices < 2:
        return
    ranks = devices * trainer.get("num_nodes", 1)
    n = data.get("n_samples") if data.get("generator") != "fixed" else len(data.get("y", []))
    if data.get("streaming") or not is_integer(n):
        return
    n_train = split_sizes(n, data.get("val_fraction", 0.0), data.get("test_fraction", 0.0))[0]
    try:
        check_equal_shards(n_train, data.get("batch_size"), data.get("drop_last", False), ranks)
    except ValueError as error:
        raise ConfigError(
            f"{error} (trainer.devices={devices} processes; allowed: data.batch_size a "
            f"multiple of {ranks})"
        ) from None


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
