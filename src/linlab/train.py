"""Hydra entry point: ``linlab-train [overrides]`` (or ``python -m linlab.train``).

    linlab-train                                     # defaults: gaussian data, SGD, CPU
    linlab-train data=line_1d model.init=zeros trainer.max_epochs=20
    linlab-train -m optimizer.lr=1e-3,1e-2,1e-1 data.batch_size=8,64,512

Seeds, builds data, model, loss, optimiser, logger and trainer from the config, fits, and
writes ``results.json`` into the Hydra job folder.
"""

from __future__ import annotations

import logging
import random
import sys
import time
import warnings
from pathlib import Path
from typing import Any

import hydra
import lightning as L
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from hydra.utils import instantiate
from lightning.pytorch.utilities import rank_zero_only
from omegaconf import DictConfig

from linlab import ddp, devices, faults, folders
from linlab.checks.preflight import check_command_line
from linlab.results import RESULTS_FILE, learned_parameters, split_losses, write_json_atomic
from linlab.sweeps import naming
from linlab.sweeps.hparams import log_hparams, param_distance
from linlab.sweeps.vectorized import report_lr_sweep, train_lr_sweep

log = logging.getLogger("linlab")


def config_dir() -> Path:
    """``conf/``: inside the installed package (wheel), else at the top of the source tree."""
    here = Path(__file__).resolve().parent
    packaged = here / "conf"
    return packaged if packaged.is_dir() else here.parents[1] / "conf"


def resolve_seed(cfg: DictConfig) -> int:
    """``seed=0`` is a seed like any other; ``seed=null`` draws one, which the run records."""
    if cfg.seed is None:
        cfg.seed = random.SystemRandom().randrange(2**31)
    return int(cfg.seed)


def build(cfg: DictConfig) -> tuple[L.LightningDataModule, L.LightningModule]:
    datamodule = instantiate(cfg.data)
    scheduler = instantiate(cfg.scheduler) if cfg.get("scheduler") else None
    module = instantiate(
        cfg.module,
        model=instantiate(cfg.model),
        loss=instantiate(cfg.loss),
        optimizer=instantiate(cfg.optimizer),
        scheduler=scheduler,
    )
    return datamodule, module


def build_trainer(cfg: DictConfig, run_dir: Path) -> L.Trainer:
    loggers = [instantiate(c, save_dir=str(run_dir)) for c in (cfg.get("logger") or {}).values()]
    callbacks = [instantiate(c) for c in (cfg.get("callbacks") or {}).values()]
    progress_bar = cfg.trainer.get("enable_progress_bar")
    if progress_bar is None:
        progress_bar = sys.stderr.isatty() and HydraConfig.get().mode == RunMode.RUN
    return instantiate(
        cfg.trainer,
        logger=loggers or False,
        callbacks=callbacks,
        enable_progress_bar=progress_bar,
        default_root_dir=str(run_dir),
    )


def hyperparameters(cfg: DictConfig, seed: int) -> dict[str, Any]:
    choices = HydraConfig.get().runtime.choices
    return {
        "lr": cfg.optimizer.get("lr"),
        "batch_size": cfg.data.get("batch_size"),
        "precision": str(cfg.trainer.precision),
        "accelerator": cfg.trainer.accelerator,
        "seed": seed,
        "optimizer": choices.get("optimizer"),
        "model": choices.get("model"),
        "loss": choices.get("loss"),
        "data": choices.get("data"),
        "n_samples": cfg.data.get("n_samples"),
        "n_features": cfg.data.get("n_features"),
        "noise": cfg.data.get("noise"),
        "max_epochs": cfg.trainer.max_epochs,
    }


def train(cfg: DictConfig, run_dir: Path) -> dict[str, Any]:
    """Fit one configured run and return what it writes to ``results.json``."""
    seed = resolve_seed(cfg)
    L.seed_everything(seed, workers=True, verbose=False)
    datamodule, module = build(cfg)
    with devices.lightning_precision_notice_silenced():
        trainer = build_trainer(cfg, run_dir)
    ddp.refuse_script_launcher_in_multirun(trainer.strategy)
    placement = devices.record_placement(cfg, trainer)
    started = time.perf_counter()
    faults.fit(trainer, module, datamodule=datamodule, ckpt_path=cfg.get("ckpt_path"))
    results = {
        **hyperparameters(cfg, seed),
        **placement,
        **split_losses(module, datamodule),
        **learned_parameters(module),
        "true_weights": datamodule.data.true_weights,
        "true_bias": datamodule.data.true_bias,
        "status": module.status,
        "message": "",
        "epochs": trainer.current_epoch,
        "steps": trainer.global_step,
        "wall_time_s": time.perf_counter() - started,
    }
    for callback in trainer.callbacks:
        if hasattr(callback, "results"):
            results |= callback.results()
    results["param_distance"] = param_distance(results)
    if trainer.is_global_zero:
        log_hparams(trainer.loggers, cfg, results)
        write_json_atomic(run_dir / RESULTS_FILE, results)
    faults.exit_if_interrupted(module)
    return results


def summary(results: dict[str, Any]) -> str:
    lines = [
        f"status {results['status']} after {results['epochs']} epochs, {results['steps']} steps, "
        f"{results['wall_time_s']:.2f} s",
        "loss  "
        + "  ".join(
            f"{split} {results[f'{split}_loss']:.6g}"
            for split in ("train", "val", "test")
            if results.get(f"{split}_loss") is not None
        ),
    ]
    if "weights" in results:
        lines.append(f"learned w = {_fmt(results['weights'])}  b = {_fmt(results['bias'])}")
    if results.get("true_weights") is not None:
        lines.append(
            f"true    w = {_fmt(results['true_weights'])}  b = {_fmt(results['true_bias'])}"
        )
    return "\n".join(lines)


def _fmt(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, list):
        return "[" + ", ".join(f"{v:.4f}" for v in value) + "]"
    return f"{value:.4f}"


def task(cfg: DictConfig) -> float | None:
    """One job. A job that raises records ``status: failed``; in a sweep the others go on."""
    quiet_lightning()  # again here: joblib and submitit workers do not go through main()
    run_dir = Path(HydraConfig.get().runtime.output_dir)
    if (earlier := folders.finished_before(run_dir)) is not None:
        return earlier.get("val_loss")  # a re-run sweep does not train a finished job again
    if cfg.get("lr_sweep"):
        return report_lr_sweep(train_lr_sweep(cfg, run_dir), run_dir)
    started = time.perf_counter()
    try:
        results = train(cfg, run_dir)
    except Exception as error:
        if rank_zero_only.rank == 0:
            seconds = time.perf_counter() - started
            faults.record_failure(cfg, run_dir, hyperparameters(cfg, cfg.seed), error, seconds)
        if HydraConfig.get().mode == RunMode.RUN:
            raise
        return None
    if rank_zero_only.rank == 0:  # DDP ranks 1..N-1 stay silent
        print(summary(results), f"\nrun folder: {run_dir}", sep="\n")
    return results.get("val_loss")


naming.register_resolvers()
hydra_main = hydra.main(version_base="1.3", config_path=str(config_dir()), config_name="train")(
    task
)


def quiet_lightning() -> None:
    """Drop Lightning's start-up banner and the warnings that do not apply to chunked steps."""
    logging.getLogger("lightning.pytorch").setLevel(logging.WARNING)
    warnings.filterwarnings("ignore", message=r"The number of training batches \(\d+\) is smaller")
    warnings.filterwarnings("ignore", message=r".*isinstance\(treespec, LeafSpec\)")
    warnings.filterwarnings("ignore", message=r"It is recommended to use `self.log\(.*sync_dist")
    warnings.filterwarnings("ignore", message=r"Total length of `list` across ranks is zero")


def main() -> None:
    """Console entry point ``linlab-train``."""
    naming.start_launch(sys.argv[1:])
    check_command_line(sys.argv[1:], config_dir())
    quiet_lightning()
    faults.exit_130_on_interrupt(hydra_main)


if __name__ == "__main__":
    main()
