"""linlab against a plain PyTorch loop: epoch time, per-job cost, vectorised sweep, streaming.

    OMP_PROC_BIND=true OMP_PLACES="{0},{1}" PYTHONPATH=src python scripts/benchmark.py
    PYTHONPATH=src python scripts/benchmark.py --quick            # about a minute
    PYTHONPATH=src python scripts/benchmark.py --only streaming   # one part

linlab runs its *default* batch-run configuration (``conf/train.yaml`` through Hydra's compose
and ``linlab.train.train``: TensorBoard on, ``train/loss`` and ``params/*`` logged every
``trainer.log_every_n_steps``, validation and a last checkpoint every epoch, no progress bar).
The plain loop trains the same model on the same training split with the same SGD settings,
slicing a shuffled index tensor per minibatch. The two alternate in this one process, epoch
by epoch timings are taken with a callback, and the table reports medians. Threads are pinned
(``OMP_PROC_BIND``/``OMP_PLACES``, set before torch loads) because an unpinned 2-core VM can
pack both OpenMP threads on one core and run many times slower.
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_PROC_BIND", "true")
os.environ.setdefault("OMP_PLACES", "{0},{1}")

import tempfile
import time
from pathlib import Path

import lightning as L
import torch
from hydra import compose, initialize_config_dir
from hydra.core.hydra_config import HydraConfig
from omegaconf import open_dict

from linlab.data.batches import EpochPermutation
from linlab.data.datamodule import LinearDataModule
from linlab.models import LinearRegression
from linlab.train import config_dir, train

SIZES = [  # (name, n_samples, n_features, batch_size)
    ("n=100k, d=10, batch 32", 100_000, 10, 32),
    ("n=100k, d=10, batch 1024", 100_000, 10, 1024),
    ("n=1M, d=100, batch 1024", 1_000_000, 100, 1024),
]
TARGETS = {32: 1.5, 1024: 1.3}
LR = 0.01


class EpochClock(L.Callback):
    """Wall time between consecutive epoch starts: everything an epoch costs, hooks included."""

    def __init__(self) -> None:
        self.starts: list[float] = []

    def on_train_epoch_start(self, trainer: L.Trainer, module: L.LightningModule) -> None:
        self.starts.append(time.perf_counter())

    def on_train_end(self, trainer: L.Trainer, module: L.LightningModule) -> None:
        self.starts.append(time.perf_counter())

    def epoch_times(self) -> list[float]:
        return [b - a for a, b in zip(self.starts, self.starts[1:], strict=False)]


CLOCK: EpochClock | None = None


def make_clock() -> EpochClock:
    """Hydra target for the benchmark's callback (kept in a global to read it after the run)."""
    global CLOCK
    CLOCK = EpochClock()
    return CLOCK


def compose_config(overrides: list[str], run_dir: Path):
    """The config ``linlab-train`` builds for these overrides (as tests/conftest.py does)."""
    with initialize_config_dir(config_dir=str(config_dir()), version_base="1.3"):
        cfg = compose("train", overrides=overrides, return_hydra_config=True)
    with open_dict(cfg):
        cfg.hydra.runtime.output_dir = str(run_dir)
        cfg.hydra.job.num = 0
    HydraConfig.instance().set_config(cfg)
    with open_dict(cfg):
        del cfg.hydra
    return cfg


def linlab_run(overrides: list[str], workdir: Path, clock: bool = True) -> tuple[dict, list[float]]:
    run_dir = Path(tempfile.mkdtemp(dir=workdir))
    extra = [f"+callbacks.epoch_clock._target_={__name__}.make_clock"] if clock else []
    results = train(compose_config([*overrides, *extra], run_dir), run_dir)
    return results, (CLOCK.epoch_times() if clock else [])


def data_overrides(n: int, d: int, batch: int) -> list[str]:
    return [f"data.n_samples={n}", f"data.n_features={d}", f"data.batch_size={batch}"]


def training_split(n: int, d: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """The same training split linlab's default config trains on."""
    dm = LinearDataModule(
        generator="gaussian",
        n_features=d,
        n_samples=n,
        seed=seed,
        val_fraction=0.2,
        test_fraction=0.1,
    )
    dm.setup()
    return dm.splits["train"]


def plain_loop(x, y, batch: int, epochs: int, lr: float = LR, seed: int = 0) -> list[float]:
    """The textbook loop over shuffled index slices; returns each epoch's wall time."""
    torch.manual_seed(seed)
    model = LinearRegression(x.shape[1])
    opt = torch.optim.SGD(model.parameters(), lr=lr)
    order = EpochPermutation(len(y), seed, shuffle=True)
    times = []
    for epoch in range(epochs):
        started = time.perf_counter()
        order.set_epoch(epoch)
        perm = order.indices()
        for i in range(0, len(y), batch):
            idx = perm[i : i + batch]
            loss = ((model(x[idx]) - y[idx]) ** 2).mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
        times.append(time.perf_counter() - started)
    return times
