"""The names and sizes config values are checked against, importable without torch.

The classes that use them (``linlab.data``, ``linlab.models``, ``linlab.module``) take them
from here, so the value rules (``linlab.checks.rules``) refuse a bad value in the time Hydra
takes to compose, not in the seconds torch and Lightning take to load.
"""

from __future__ import annotations

GENERATORS_MODULE = "linlab.data.synthetic"
GENERATOR_NAMES = ("line_1d", "gaussian", "fixed", "gaussian_mixture", "separable")  # its functions
COVARIANCES = ("identity", "power_law", "condition", "spiked")
WEIGHT_KINDS = ("normal", "power_law", "sparse")
NOISE_KINDS = ("gaussian", "student_t", "none")
INIT_MODES = ("default", "zeros", "normal")
GRADIENT_MODES = ("autograd", "analytic")
UPDATE_MODES = ("optimizer", "manual")
# sweepers that run the grid of a command line's lists (not a search)
GRID_SWEEPERS = (
    "hydra._internal.core_plugins.basic_sweeper.BasicSweeper",
    "hydra_plugins.linlab_sweeps.grid_sweeper.GridSweeper",
)

# hydra/launcher=stacked's hydra.launcher.executor -> the package it needs (None: none)
EXECUTORS = {"local": None, "joblib": "joblib", "submitit": "submitit", "ray": "ray"}


def executor_of(executor: str, n_jobs: int | None) -> str:
    """The executor a stacked sweep uses: ``n_jobs`` other than 1 with ``local`` (the
    setting's older form) means ``joblib``."""
    return "joblib" if executor == "local" and n_jobs not in (None, 1) else executor


# Lightning precision -> the dtype the parameters and data train in (mixed precision keeps fp32)
PRECISION_DTYPES = {"64-true": "float64", "64": "float64", "bf16-true": "bfloat16"}
PRECISION_DTYPES["16-true"] = "float16"
# the largest finite value of each dtype (IEEE 754; torch.finfo(dtype).max)
FLOAT_MAX = {
    "float16": 65504.0,
    "bfloat16": 3.3895313892515355e38,
    "float32": 3.4028234663852886e38,
    "float64": 1.7976931348623157e308,
}


def dtype_name(precision: object) -> str:
    """The name of the torch dtype a Lightning precision setting trains in."""
    return PRECISION_DTYPES.get(str(precision), "float32")


def split_sizes(n: int, val_fraction: float, test_fraction: float) -> tuple[int, int, int]:
    """(train, val, test) sizes of n samples: each held-out share rounded, training the rest."""
    n_val, n_test = round(val_fraction * n), round(test_fraction * n)
    return n - n_val - n_test, n_val, n_test


def check_equal_shards(n_train: int, batch_size: int | None, drop_last: bool, ranks: int) -> None:
    """Refuse minibatches that do not split into ``ranks`` equal shards (the average would tilt)."""
    if ranks == 1:
        return
    size = min(batch_size or n_train, n_train)
    if size % ranks:
        raise ValueError(
            f"data.batch_size={batch_size} (a minibatch of {size} samples) does not split into "
            f"{ranks} equal shards for {ranks} DDP processes; use a multiple of {ranks}"
        )
    last = n_train % size
    if last and not drop_last and last % ranks:
        raise ValueError(
            f"the last minibatch of the {n_train} training samples has {last} samples, which do "
            f"not split into {ranks} equal shards; set data.drop_last=true or choose "
            f"data.batch_size/data.n_samples so that it does"
        )
