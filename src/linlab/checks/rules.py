"""Which values of the built-in groups make sense, beyond their types (see ``signatures``).

Plain Python on the composed config: no torch, no Lightning, so a bad value is refused in
the time Hydra takes to compose. The names and sizes come from ``linlab.choices``, where the
classes that use them take them from too.

Each rule raises ``refusal(...)``: ``<key>=<value> is not allowed; allowed: <what is>``. Rules
for a group apply while the group builds the built-in class; a user's own class is checked by
type only.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

from linlab.choices import (
    COVARIANCES,
    FLOAT_MAX,
    GENERATOR_NAMES,
    GENERATORS_MODULE,
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
from linlab.schema import default

BUILT_IN_DATA = ("linlab.data.LinearDataModule", "linlab.data.datamodule.LinearDataModule")
BUILT_IN_MODEL = "linlab.models.LinearRegression"
BINARY_LOSSES = tuple(f"linlab.losses.{name}Loss" for name in ("Logistic", "Hinge", "SquaredHinge"))


Rule = tuple[Callable[[Any], bool], str]  # (is the value allowed, what is)


def is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def is_finite_number(value: Any) -> bool:
    return is_number(value) and math.isfinite(value)


def is_integer(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def is_list_of(value: Any, test: Callable[[Any], bool], length: int | None = None) -> bool:
    """A list whose items all pass ``test`` (exactly ``length`` of them where given)."""
    return isinstance(value, list) and length in (None, len(value)) and all(map(test, value))


def integer_from(low: int, null: bool = False) -> Rule:
    """An integer >= ``low`` (or null)."""
    allowed = f"an integer >= {low}"
    return (
        lambda v: (null and v is None) or (is_integer(v) and v >= low),
        f"null or {allowed}" if null else allowed,
    )


def number_from(low: float, strict: bool = False) -> Rule:
    """A finite number >= ``low`` (> ``low`` if strict)."""
    return (
        lambda v: is_finite_number(v) and (v > low if strict else v >= low),
        f"a finite number {'>' if strict else '>='} {low}",
    )


def show(value: Any) -> str:
    if isinstance(value, float) and math.isnan(value):
        return "nan"
    return repr(value) if isinstance(value, str) else str(value)


def refusal(key: str, shown: str, allowed: str, why: str | None = None) -> ConfigError:
    """The one wording of a refused setting (``: <why>`` before the ``;`` where given);
    ``shown`` is ``show(value)``, or an override's own text read off the command line."""
    because = f": {why}" if why else ""
    return ConfigError(f"{key}={shown} is not allowed{because}; allowed: {allowed}")


def require(ok: bool, key: str, value: Any, allowed: str) -> None:
    if not ok:
        raise refusal(key, show(value), allowed)


def check_table(group: str, node: dict[str, Any], table: dict[str, Rule]) -> None:
    """Each key of ``table`` that ``node`` sets must pass its rule."""
    for key, (ok, allowed) in table.items():
        if key in node:
            require(ok(node[key]), f"{group}.{key}", node[key], allowed)


def is_seed(value: Any) -> bool:
    return is_integer(value) and 0 <= value < 2**32


def one_of(names: tuple[str, ...]) -> Rule:
    return (lambda v: v in names, ", ".join(names))


def check(values: dict[str, Any]) -> None:
    seed = values.get("seed")
    require(seed is None or is_seed(seed), "seed", seed, "null or an integer in [0, 2**32)")
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
    check_table("trainer", trainer, TRAINER_VALUES)
    for group in ("optimizer", "scheduler"):
        if str((values.get(group) or {}).get("_target_", "")).startswith("torch.optim."):
            check_table(group, values[group], TORCH_SETTINGS)
    data = values.get("data") or {}
    if data.get("_target_") in BUILT_IN_DATA:
        check_shards(data, trainer, check_data(data))
    model = values.get("model") or {}
    if model.get("_target_") == BUILT_IN_MODEL:
        check_model(model, data)
    loss = values.get("loss") or {}
    if loss.get("_target_") in BINARY_LOSSES:
        classes = data.get("n_classes", 2)
        binary = "2 with a binary loss (use model=softmax loss=cross_entropy for more classes)"
        require(classes == 2, "data.n_classes", classes, binary)
    check_table("loss", loss, {"delta": number_from(0, strict=True)})
    module = values.get("module") or {}
    check_table("module", module, MODULE_VALUES)
    if module.get("update") == "manual":
        check_manual_update(optimizer)


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


# Common settings of torch's optimisers and schedulers. torch itself refuses some values only
# when it steps (step_size=0) and others never (gamma=-1 flips the learning rate's sign).
TORCH_SETTINGS: dict[str, Rule] = {
    **dict.fromkeys(("momentum", "dampening", "weight_decay", "eps", "eta_min"), number_from(0)),
    "betas": (
        lambda v: is_list_of(v, lambda b: is_finite_number(b) and 0 <= b < 1, length=2),
        "two numbers in [0, 1), e.g. [0.9, 0.999]",
    ),
    "nesterov": (lambda v: isinstance(v, bool), "true only with momentum > 0 and dampening = 0"),
    **dict.fromkeys(("step_size", "T_max", "T_0"), integer_from(1)),
    "gamma": number_from(0, strict=True),
}

# linlab's module optimises manually (exact steps per minibatch): Lightning cannot clip or
# accumulate for it, and refuses both only once fit has started
MANUAL = "linlab steps the optimiser itself (manual optimisation)"
# Lightning Trainer options whose values Lightning checks only once fit has started, or not at
# all
TRAINER_VALUES: dict[str, Rule] = {
    **dict.fromkeys(("max_epochs", "log_every_n_steps", "num_nodes"), integer_from(1)),
    "check_val_every_n_epoch": integer_from(1, null=True),
    **dict.fromkeys(("min_epochs", "min_steps"), integer_from(0, null=True)),
    "max_steps": (lambda v: is_integer(v) and v >= -1, "-1 (no limit) or an integer >= 0"),
    "num_sanity_val_steps": (lambda v: is_integer(v) and v >= -1, "-1 (all) or an integer >= 0"),
    "reload_dataloaders_every_n_epochs": integer_from(0),
    "fast_dev_run": (
        lambda v: isinstance(v, bool) or (is_integer(v) and v >= 0),
        "true, false or an integer >= 0",
    ),
    "val_check_interval": (
        lambda v: v is None or (is_integer(v) and v >= 1) or (is_finite_number(v) and 0 < v <= 1),
        "null, an integer >= 1 (batches) or a fraction in (0, 1] of an epoch",
    ),
    "gradient_clip_val": (
        lambda v: v in (None, 0),
        f"null or 0: {MANUAL}, so Lightning cannot clip gradients",
    ),
    "accumulate_grad_batches": (
        lambda v: v == 1 and not isinstance(v, bool),
        f"1: {MANUAL}, once per minibatch; for bigger steps raise data.batch_size",
    ),
    **dict.fromkeys(
        ("limit_train_batches", "limit_val_batches", "limit_test_batches"),
        (
            lambda v: (
                v is None or (is_integer(v) and v >= 0) or (is_finite_number(v) and 0 <= v <= 1)
            ),
            "null, an integer >= 0 (batches) or a fraction in [0, 1]",
        ),
    ),
    "devices": (
        lambda v: (
            v == "auto"
            or (is_integer(v) and (v >= 1 or v == -1))
            or is_list_of(v, lambda index: is_integer(index) and index >= 0)
            or (isinstance(v, str) and re.fullmatch(r"-1|\d+(\s*,\s*\d+)*,?", v) is not None)
        ),
        "auto, a count >= 1, -1 (all), or a list of device indices",
    ),
}


DATA_VALUES: dict[str, Rule] = {
    "noise": number_from(0),
    "bias": (is_finite_number, "a finite number"),
    "seed": (is_seed, "an integer in [0, 2**32)"),
    "chunk_batches": (
        lambda v: v == "auto" or (is_integer(v) and v >= 1),
        "auto or an integer >= 1",
    ),
}
# the covariance, true-weight and noise settings of ``linlab.data.synthetic.gaussian``
GAUSSIAN_VALUES: dict[str, Rule] = {
    "covariance": one_of(COVARIANCES),
    "weights_kind": one_of(WEIGHT_KINDS),
    "noise_kind": one_of(NOISE_KINDS),
    **dict.fromkeys(("covariance_decay", "weights_decay", "spike"), number_from(0)),
    "condition_number": number_from(1),
    "noise_df": (
        lambda v: is_finite_number(v) and v > 2,
        "a finite number > 2 (the Student-t noise needs a variance: data.noise is its std)",
    ),
    "signal_norm": (
        lambda v: v is None or (is_finite_number(v) and v >= 0),
        "null (unscaled) or a finite number >= 0",
    ),
}
LINE_VALUES: dict[str, Rule] = {
    "spacing": one_of(("linspace", "uniform")),
    "x_range": (
        lambda v: is_list_of(v, is_finite_number, length=2),
        "two finite numbers [low, high]",
    ),
}
MODULE_VALUES: dict[str, Rule] = {
    "gradient": one_of(GRADIENT_MODES),
    "update": one_of(UPDATE_MODES),
    "divergence_factor": (lambda v: is_number(v) and v > 1, "a number > 1"),
}


def check_data(data: dict[str, Any]) -> int:
    """Check the built-in datamodule's settings; return the training split's size."""
    generator = data.get("generator")
    require(generator in GENERATOR_NAMES, "data.generator", generator, ", ".join(GENERATOR_NAMES))
    n_features = data.get("n_features")
    require(is_integer(n_features) and n_features >= 1, "data.n_features", n_features, ">= 1")
    check_table("data", data, DATA_VALUES)
    return check_splits(data, check_samples(data, generator, n_features))


def check_samples(data: dict[str, Any], generator: str, n_features: int) -> int:
    """Check the generator's own settings; return the number of samples it makes."""
    if generator == "fixed":
        x, y = data.get("x"), data.get("y")
        rows = "a non-empty list of finite numbers, or of rows of as many finite numbers"
        require(isinstance(x, list) and len(x) > 0, "data.x", x, rows)
        flat = not isinstance(x[0], list)
        width = 1 if flat else len(x[0])
        matrix = [[value] for value in x] if flat else x
        ok = width >= 1 and all(is_list_of(row, is_finite_number, width) for row in matrix)
        require(ok, "data.x", x, rows)
        require(is_list_of(y, is_finite_number), "data.y", y, "a list of finite numbers")
        require(len(x) == len(y), "data.y", y, f"as many values as data.x has rows ({len(x)})")
        columns = f"the number of columns of data.x ({width})"
        require(width == n_features, "data.n_features", n_features, columns)
        return len(y)
    if generator == "line_1d":
        require(n_features == 1, "data.n_features", n_features, "1 for data.generator=line_1d")
        check_table("data", data, LINE_VALUES)
    weights = data.get("weights")
    require(
        weights is None or is_list_of(weights, is_finite_number, n_features),
        "data.weights",
        weights,
        f"null or a list of data.n_features={n_features} finite numbers",
    )
    if generator in ("gaussian", "gaussian_mixture", "separable"):
        check_table("data", data, GAUSSIAN_VALUES)
        in_range = (lambda v: is_integer(v) and 1 <= v <= n_features, f"1 to {n_features}")
        check_table("data", data, dict.fromkeys(("n_nonzero", "n_spikes"), in_range))
    n = data.get("n_samples", default(f"{GENERATORS_MODULE}.{generator}", "n_samples"))
    require(is_integer(n) and n >= 1, "data.n_samples", n, "an integer >= 1")
    return n


def check_splits(data: dict[str, Any], n: int) -> int:
    share = (lambda v: is_finite_number(v) and 0 <= v <= 1, "a number in [0, 1]")
    check_table("data", data, dict.fromkeys(("val_fraction", "test_fraction"), share))
    fractions = [data.get("val_fraction", 0.0), data.get("test_fraction", 0.0)]
    shares, total = "data.val_fraction + data.test_fraction", sum(fractions)
    require(total < 1, shares, total, "a sum < 1 (the rest is the training split)")
    n_train, n_val, n_test = split_sizes(n, *fractions)
    require(
        n_train >= 1,
        shares,
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
    return n_train


def check_shards(data: dict[str, Any], trainer: dict[str, Any], n_train: int) -> None:
    """DDP presets: each minibatch splits into one equal shard per process (``linlab.ddp``)."""
    strategy = trainer.get("strategy")
    target = strategy.get("_target_", "") if isinstance(strategy, dict) else str(strategy)
    ranks = processes(trainer)
    sized = "n_samples" in data or data.get("generator") == "fixed"  # n_train is no default's guess
    if "ddp" not in target.lower() or ranks < 2 or data.get("streaming") or not sized:
        return
    try:
        check_equal_shards(n_train, data.get("batch_size"), data.get("drop_last", False), ranks)
    except ValueError as error:
        raise ConfigError(
            f"{error} (trainer.devices={trainer.get('devices')} processes; allowed: "
            f"data.batch_size a multiple of {ranks})"
        ) from None


def processes(trainer: dict[str, Any]) -> int:
    """How many processes the trainer asks for where the config says (1 where it does not)."""
    devices = trainer.get("devices", "auto")
    count = len(devices) if isinstance(devices, list) else devices
    count = count if is_integer(count) and count >= 1 else 1
    nodes = trainer.get("num_nodes", 1)
    return count * (nodes if is_integer(nodes) and nodes >= 1 else 1)


def check_model(model: dict[str, Any], data: dict[str, Any]) -> None:
    n_features = model.get("n_features")
    data_features = data.get("n_features")
    require(is_integer(n_features) and n_features >= 1, "model.n_features", n_features, ">= 1")
    matches = not is_integer(data_features) or n_features == data_features
    require(matches, "model.n_features", n_features, f"data.n_features ({data_features})")
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
    check_table("model", model, {"init_std": number_from(0)})


def check_explicit_init(init: dict[str, Any], n_features: int, bias: bool) -> None:
    require(set(init) <= {"weight", "bias"}, "model.init", init, "a mapping with keys weight, bias")
    weight = init.get("weight", [0.0] * n_features)
    weight = weight if isinstance(weight, list) else [weight]
    require(
        is_list_of(weight, is_number, n_features),
        "model.init.weight",
        weight,
        f"a list of model.n_features={n_features} numbers",
    )
    value = init.get("bias")
    require(value is None or is_number(value), "model.init.bias", value, "a number")
    require(value is None or bias, "model.init.bias", value, "null when model.bias=false")


def check_manual_update(optimizer: dict[str, Any]) -> None:
    """``module.update=manual`` applies plain SGD by hand: no momentum, no weight decay."""
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
