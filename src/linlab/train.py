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
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import hydra
import lightning as L
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from hydra.utils import get_object, instantiate
from lightning.pytorch.utilities import rank_zero_only
from omegaconf import DictConfig

from linlab import ddp, devices, dtypes, faults, folders, interpolation_parses, run_state, unwritten
from linlab.build import instantiate as instantiate_plain
from linlab.config_tree import VERSION_BASE, config_dir
from linlab.config_values import resolved
from linlab.data.datamodule import LinearDataModule
from linlab.final_values import learned_parameters, split_losses
from linlab.module import RegressionModule
from linlab.notebook import in_kernel, live_progress
from linlab.progress import interrupted_message
from linlab.results import RESULTS_FILE, param_distance, write_json_atomic
from linlab.stacking.checkpoints import merged_resume_checkpoint
from linlab.stacking.data import StackedDataModule
from linlab.stacking.event_writer import one_writer_thread
from linlab.stacking.members import PerMemberCallbacks
from linlab.stacking.models import stack_modules
from linlab.stacking.threads import threads_for_group
from linlab.sweeps import naming
from linlab.sweeps.hparams import log_hparams
from linlab.sweeps.progress import keep_logs_off_the_console

log = logging.getLogger("linlab")


def resolve_seed(cfg: DictConfig) -> int:
    """``seed=0`` is a seed like any other; ``seed=null`` draws one, which the run records."""
    if cfg.seed is None:
        cfg.seed = random.SystemRandom().randrange(2**31)
    return int(cfg.seed)


def build(cfg: DictConfig) -> tuple[LinearDataModule, RegressionModule]:
    """The datamodule and module of one job; the model is made in the precision's dtype."""
    datamodule = instantiate_node(cfg.data)
    scheduler = instantiate_node(cfg.scheduler) if cfg.get("scheduler") else None
    with dtypes.default_dtype(cfg.trainer.precision):
        model = instantiate_node(cfg.model)
    module = instantiate_node(
        cfg.module,
        model=model,
        loss=instantiate_node(cfg.loss),
        optimizer=instantiate_node(cfg.optimizer),
        scheduler=scheduler,
    )
    return datamodule, module


def build_trainer(
    cfgs: Sequence[DictConfig],
    run_dirs: Sequence[Path],
    module: RegressionModule,
    datamodules: Sequence[LinearDataModule],
    as_member: Callable[[int], None],
) -> L.Trainer:
    """The trainer of K members: each member's loggers write into its own folder; with K > 1
    each member's callbacks see it as a run of its own (``linlab.stacking.members``)."""
    member_loggers, member_callbacks = [], []
    for k, (cfg, run_dir) in enumerate(zip(cfgs, run_dirs, strict=True)):
        as_member(k)
        loggers = (cfg.get("logger") or {}).values()
        callbacks = (cfg.get("callbacks") or {}).values()
        save_dir = str(run_dir)
        member_loggers.append([instantiate_node(c, save_dir=save_dir) for c in loggers])
        member_callbacks.append([instantiate_node(c) for c in callbacks])
    as_member(0)
    cfg = cfgs[0]
    extra: dict[str, Any] = {}
    callbacks = member_callbacks[0]
    if len(cfgs) > 1:
        one_writer_thread(logger for member in member_loggers for logger in member)
        module.member_loggers = member_loggers
        callbacks = [PerMemberCallbacks(member_callbacks, module, datamodules, run_dirs)]
        extra["enable_checkpointing"] = False  # the members' own checkpoint callbacks save
    progress_bar = cfg.trainer.get("enable_progress_bar")
    if progress_bar is None:
        single_run = HydraConfig.get().mode == RunMode.RUN
        progress_bar = in_kernel() or (sys.stderr.isatty() and single_run)  # a cell: sweeps too
    if progress_bar:
        callbacks.append(live_progress())
    loggers = [logger for member in member_loggers for logger in member]
    trainer = instantiate(cfg.trainer, _partial_=True)  # the K members' objects not merged
    with devices.lightning_precision_notice_silenced():  # into a config (~10 ms a member)
        return trainer(
            logger=loggers or False,
            callbacks=callbacks,
            enable_progress_bar=progress_bar,
            default_root_dir=str(run_dirs[0]),
            **extra,
        )


def instantiate_node(node: Any, **extra: Any) -> Any:
    """A run's object from its config node, as Hydra's ``instantiate(node, **extra)`` builds
    it. Where every argument resolves to a plain value (no list or mapping, which Hydra would
    pass as its own config objects) it is built from the resolved values (``linlab.build``):
    Hydra's deep copy and resolution of the node cost ~1.5 ms a node, ten nodes a member, a
    thousand members a group."""
    content = node.__dict__["_content"] if isinstance(node, DictConfig) else None
    if isinstance(content, dict) and "_target_" in content:  # ``in node`` resolves it
        try:
            values = resolved_plain(node)
            if values is not None:
                return instantiate_plain(values, get_object, **extra)
        except Exception:  # Hydra's instantiate below raises it as a run has always seen it
            pass
    return instantiate(node, **extra)


def resolved_plain(node: DictConfig) -> dict[str, Any] | None:
    """``OmegaConf.to_container(node, resolve=True)`` where each of the node's values resolves to
    a plain value (no list or mapping, written or interpolated); None otherwise."""
    values = resolved(node)
    if not isinstance(values, dict) or any(isinstance(v, dict | list) for v in values.values()):
        return None
    return values


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
    return train_group([cfg], [run_dir])[0]


def train_group(
    cfgs: Sequence[DictConfig],
    run_dirs: Sequence[Path],
    as_member: Callable[[int], None] | None = None,
) -> list[dict[str, Any]]:
    """Fit K jobs as the members of one run (K = 1: a single run); return their results.

    The jobs must agree on everything but what ``linlab.stacking.groups`` lets them vary;
    each member gets its own seed (data draw, initial values, shuffle order), optimiser
    settings, TensorBoard run, callbacks, checkpoint and ``results.json``. ``as_member(k)``
    (the stacked launcher's) makes member k's Hydra config the current one, while its loggers
    and callbacks are built and its results written (``${hydra:...}``, its overrides).
    """
    as_member = as_member or (lambda k: None)
    seeds = [resolve_seed(cfg) for cfg in cfgs]
    datamodules, module = build_members(cfgs, seeds)
    shared = len(cfgs) > 1 and shared_data(cfgs)
    datamodule = datamodules[0] if len(cfgs) == 1 else StackedDataModule(datamodules, shared)
    trainer = build_trainer(cfgs, run_dirs, module, datamodules, as_member)
    ddp.refuse_script_launcher_in_multirun(trainer.strategy)
    placement = devices.record_placement(cfgs[0], trainer)
    started = time.perf_counter()
    with threads_for_group(cfgs[0], len(cfgs)):
        faults.fit(trainer, module, datamodule=datamodule, ckpt_path=resume_path(cfgs, run_dirs))
    wall_time = time.perf_counter() - started
    warnings_ = unwritten.take()  # what could not be written (a full disk): not a failure
    all_results = []
    for k, (cfg, run_dir) in enumerate(zip(cfgs, run_dirs, strict=True)):
        as_member(k)
        state, data = module.states[k], datamodules[k]
        results = {
            **hyperparameters(cfg, seeds[k]),
            **placement,
            **split_losses(module.member_model(k), module.loss_fn, data),
            **learned_parameters(module.member_model(k)),
            "true_weights": data.data.true_weights,
            "true_bias": data.data.true_bias,
            "status": state.status,
            "message": state.message,
            "epochs": trainer.current_epoch if state.stopped_epoch is None else state.stopped_epoch,
            "steps": trainer.global_step if state.stopped_step is None else state.stopped_step,
            "wall_time_s": wall_time,
            "stacked_members": len(cfgs),  # jobs trained together in this process
        }
        if warnings_:
            results["warnings"] = warnings_
        if state.diverged_at_step is not None:
            results["diverged_at_step"] = state.diverged_at_step
            results["last_finite_loss"] = state.last_finite_loss
        for callback in trainer.callbacks:
            if isinstance(callback, PerMemberCallbacks):
                results |= callback.results(k)
            elif hasattr(callback, "results"):
                results |= callback.results()
        results["param_distance"] = param_distance(results)
        if trainer.is_global_zero:
            log_hparams(module.loggers_of(k), cfg, results)
            write_json_atomic(run_dir / RESULTS_FILE, results)
        all_results.append(results)
    if module.status == faults.INTERRUPTED and HydraConfig.get().mode == RunMode.RUN:
        overrides = HydraConfig.get().overrides.task
        print(interrupted_message(all_results[0], run_dirs[0], overrides), file=sys.stderr)
    for state in module.states:
        faults.exit_if_interrupted(state)
    return all_results


def build_members(
    cfgs: Sequence[DictConfig], seeds: Sequence[int]
) -> tuple[list[LinearDataModule], RegressionModule]:
    """Each member's datamodule, and the members' modules merged into one (``stack_modules``);
    the other members' module objects (~8 KiB each) are not kept through the fit."""
    datamodules, modules = [], []
    for cfg, seed in zip(cfgs, seeds, strict=True):
        L.seed_everything(seed, workers=True, verbose=False)
        datamodule, module = build(cfg)
        datamodules.append(datamodule)
        modules.append(module)
    return datamodules, stack_modules(modules)


def shared_data(cfgs: Sequence[DictConfig]) -> bool:
    """Whether the members' data settings agree (resolved): then one dataset serves all."""
    first, *others = (resolved(cfg.data) for cfg in cfgs)
    return all(settings == first for settings in others)


def resume_path(cfgs: Sequence[DictConfig], run_dirs: Sequence[Path]) -> str | None:
    """The checkpoint Lightning resumes from (``linlab.run_state.resume_from``: also a
    plain re-run of an unfinished run; None: from the start); for a group, the members'
    checkpoints merged."""
    ckpt_path = cfgs[0].get("ckpt_path")
    if len(cfgs) > 1:
        return None if ckpt_path is None else str(merged_resume_checkpoint(ckpt_path, run_dirs))
    single_run = HydraConfig.get().mode == RunMode.RUN
    checkpoint = run_state.resume_from(run_dirs[0], ckpt_path, single_run)
    return None if checkpoint is None else str(checkpoint)


def summary(results: dict[str, Any]) -> str:
    losses = [
        f"{split} {results[f'{split}_loss']:.6g}"
        for split in ("train", "val", "test")
        if results.get(f"{split}_loss") is not None
    ]
    lines = [
        f"status {results['status']} after {results['epochs']} epochs, {results['steps']} steps, "
        f"{results['wall_time_s']:.2f} s",
        *(["loss  " + "  ".join(losses)] if losses else []),
    ]
    if "weights" in results:
        lines.append(f"learned w = {_fmt(results['weights'])}  b = {_fmt(results['bias'])}")
    elif 0 < sum(map(len, (parameters := results.get("parameters") or {}).values())) <= 8:
        shown = [f"{name} = {_fmt(v[0] if len(v) == 1 else v)}" for name, v in parameters.items()]
        lines.append("learned " + "  ".join(shown))  # a custom model of a few scalars
    if results.get("true_weights") is not None:
        lines.append(
            f"true    w = {_fmt(results['true_weights'])}  b = {_fmt(results['true_bias'])}"
        )
    return "\n".join(lines)


def closing_lines(results: dict[str, Any], run_dir: Path) -> str:
    """What a single run prints when it ends: the summary, its folder, how to look at it."""
    lines = [summary(results), f"run folder: {run_dir}"]
    if any(run_dir.glob("events.out.tfevents.*")):
        lines.append(f"next: tensorboard --logdir {run_dir}")
    return "\n".join(lines)


def mirror_to_log_files(text: str) -> None:
    """Append ``text`` as shown to the run's log files (Hydra's ``train.log``), which hold
    what the console showed."""
    for handler in logging.getLogger().handlers:
        if isinstance(handler, logging.FileHandler):
            handler.acquire()
            try:
                handler.stream.write(text + "\n")
                handler.flush()
            finally:
                handler.release()


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
    # DDP ranks 1..N-1 stay silent; in a sweep the sweep's console has a line per job
    if rank_zero_only.rank == 0 and HydraConfig.get().mode == RunMode.RUN:
        closing = closing_lines(results, run_dir)
        print(closing)
        mirror_to_log_files(closing)
    return results.get("val_loss")


def task_group(
    cfgs: Sequence[DictConfig], run_dirs: Sequence[Path], as_member: Callable[[int], None]
) -> list[float | None]:
    """The stacked launcher's task: train a group; each member's val loss (None: failed).

    As in ``task``, a member an earlier launch finished is not trained again, and a failure
    is a recorded result and the sweep goes on."""
    quiet_lightning()
    keep_logs_off_the_console()  # the launcher set up job logging after the jobs' on_job_start
    values: list[float | None] = [None] * len(cfgs)
    todo = []
    for k, run_dir in enumerate(run_dirs):
        as_member(k)
        if (earlier := folders.finished_before(run_dir)) is not None:
            values[k] = earlier.get("val_loss")
        else:
            todo.append(k)
    if not todo:
        return values

    def as_todo(j: int) -> None:
        as_member(todo[j])

    started = time.perf_counter()
    try:
        results = train_group([cfgs[k] for k in todo], [run_dirs[k] for k in todo], as_todo)
    except Exception as error:
        seconds = time.perf_counter() - started
        for k in todo:
            as_member(k)
            hyper = hyperparameters(cfgs[k], cfgs[k].seed)
            faults.record_failure(cfgs[k], run_dirs[k], hyper, error, seconds)
        return values
    for k, result in zip(todo, results, strict=True):
        values[k] = result.get("val_loss")
    return values


# How the stacked launcher trains a group of this task's jobs; other tasks run one by one.
task.group_task = task_group  # type: ignore[attr-defined]
naming.register_resolvers()
interpolation_parses.remember()
hydra_main = hydra.main(
    version_base=VERSION_BASE, config_path=str(config_dir()), config_name="train"
)(task)


def quiet_lightning() -> None:
    """Drop Lightning's start-up banner and the warnings that do not apply to chunked steps."""
    logging.getLogger("lightning.pytorch").setLevel(logging.WARNING)
    faults.warnings_to_log_files()
    logging.getLogger("lightning.fabric").setLevel(logging.WARNING)  # "Initializing distributed"
    warnings.filterwarnings("ignore", message=r"The number of training batches \(\d+\) is smaller")
    warnings.filterwarnings("ignore", message=r".*isinstance\(treespec, LeafSpec\)")
    warnings.filterwarnings("ignore", message=r"It is recommended to use `self.log\(.*sync_dist")
    warnings.filterwarnings("ignore", message=r"Total length of `list` across ranks is zero")


if __name__ == "__main__":  # python -m linlab.train: the console script's checks first
    from linlab.cli import console

    console()
