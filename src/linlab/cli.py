"""The fast front of ``linlab-train``: answer ``--help`` and refuse bad command lines quickly.

Importing Lightning takes seconds, and neither ``--help`` nor a mistyped group option
(``data=gausian``) needs it: :func:`main` answers ``--help`` with Hydra's argument parser
alone, and the config checks compose every job with Hydra before they import torch (a missing
group option is refused at composition), and the value checks import neither. A single run
prints its first line (:func:`announce`) as soon as its values passed. Only a command line
that passed every check imports ``linlab.train``. The console script (:func:`console`) then
ends the process without Python's teardown of the ~4000 modules torch and Lightning loaded.
"""

from __future__ import annotations

import atexit
import os
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any, NoReturn

from hydra._internal.callbacks import Callbacks
from hydra._internal.utils import get_args_parser, run_and_report
from hydra.core.global_hydra import GlobalHydra
from hydra.core.plugins import Plugins
from hydra.core.utils import JobReturn, configure_log, run_job
from hydra.types import HydraContext, RunMode
from omegaconf import DictConfig, OmegaConf, read_write

from linlab import heap, interpolation_parses
from linlab.checks.preflight import check_command_line
from linlab.config_tree import config_dir, create_hydra, group_options, parse_command_line
from linlab.sweeps import naming

HELP = """\
linlab-train: train a linear model by gradient descent (Lightning + Hydra), one run or a sweep.

Usage: linlab-train [-m] [--config-dir DIR] [key=value | group=option ...]

  linlab-train                                       defaults: 5-feature Gaussian data, SGD, CPU
  linlab-train data=line_1d optimizer.lr=0.1         change any key or pick a group's option
  linlab-train experiment=two_x                      a tutorial preset (conf/experiment/)
  linlab-train -m optimizer.lr=1e-3,1e-2 seed=0,1    a sweep: one job per combination
  linlab-train ... hydra.run.dir=DIR ckpt_path=last  resume a run folder
  linlab-report multirun/<sweep folder>              table and figures of a finished sweep

Every run writes results.json, TensorBoard events, figures and checkpoints into its folder
(outputs/<date>_<time>_<id>/, or multirun/... for a sweep). A bad config is refused with one
line and exit code 2 before anything runs.

Config groups (group=option):
{groups}
  hydra/launcher  basic (default), stacked (jobs trained together in one process), joblib,
                  slurm, slurm_local (how a -m sweep runs its jobs)

More: --cfg job (print the composed config), --info, --hydra-help; the README explains the rest.
"""


def announce(values: dict[str, Any], folder: Path | None) -> None:
    """The first console line of a single run, printed once its values passed the checks
    (well within a second), not after torch and Lightning have loaded."""
    print(f"linlab-train: {what_is_trained(values)} -> {folder or '.'}", flush=True)


def what_is_trained(values: dict[str, Any]) -> str:
    """``LinearRegression on gaussian data (1000 x 5), SGD lr=0.01, 20 epochs, cpu``."""

    def name(node: Any) -> str:
        target = node.get("_target_", "?") if isinstance(node, dict) else "?"
        return str(target).rpartition(".")[2]

    data, trainer = values.get("data") or {}, values.get("trainer") or {}
    size = ""
    if "n_samples" in data and "n_features" in data:
        size = f" ({data['n_samples']} x {data['n_features']})"
    source = f"{data['generator']} data" if "generator" in data else name(data)
    optimizer = values.get("optimizer") or {}
    lr = f" lr={optimizer['lr']}" if "lr" in optimizer else ""
    epochs = trainer.get("max_epochs", "?")
    return (
        f"{name(values.get('model'))} on {source}{size}, {name(optimizer)}{lr}, {epochs} epochs, "
        f"{trainer.get('accelerator', 'auto')}"
    )


def help_text() -> str:
    groups = group_options(config_dir())
    width = max(map(len, groups), default=0)
    lines = [f"  {group:<{width}}  {', '.join(options)}" for group, options in groups.items()]
    return HELP.format(groups="\n".join(lines))


def main() -> None:
    """The command line ``linlab-train``: help, checks, then Hydra runs ``linlab.train``."""
    argv = sys.argv[1:]
    if get_args_parser().parse_known_args(argv)[0].help:
        print(help_text(), end="")
        return
    naming.register_resolvers()
    interpolation_parses.remember()
    naming.start_launch(argv)
    config = check_command_line(argv, config_dir(), announce)
    heap.settle()
    from linlab.faults import exit_130_on_interrupt
    from linlab.train import hydra_main, quiet_lightning, task  # torch and Lightning from here

    quiet_lightning()
    args = parse_command_line(argv)
    if config is None or args.experimental_rerun is not None or config.hydra.verbose:
        exit_130_on_interrupt(hydra_main)  # what only hydra.main does
    else:
        exit_130_on_interrupt(lambda: run_checked(args, config, task))


def run_checked(args: Any, config: DictConfig, task: Callable[[DictConfig], Any]) -> None:
    """``Hydra.run`` or ``Hydra.multirun``, as ``hydra.main`` calls them, on the config the
    checks composed (a single run's, or a sweep's master): ``hydra.main`` would compose it twice
    more (once only to read its run mode), about 0.1 s each. Errors are Hydra's
    (``run_and_report``: the task's error, exit 1)."""
    hydra = create_hydra(args, config_dir())
    name = args.config_name or "train"
    composed = sweep_composed if config.hydra.mode == RunMode.MULTIRUN else run_composed
    try:
        run_and_report(lambda: composed(hydra, config, task, name))
    finally:
        GlobalHydra.instance().clear()


def sweep_composed(
    hydra: Any, master: DictConfig, task: Callable[[DictConfig], Any], name: str
) -> Any:
    """What ``Hydra.multirun`` does once it has composed, on a sweep's checked master config:
    logging, callbacks, the sweeper over the command line's overrides."""
    configure_log(master.hydra.hydra_logging, master.hydra.verbose)
    callbacks = Callbacks(master)
    callbacks.on_multirun_start(config=master, config_name=name)
    sweeper = Plugins.instance().instantiate_sweeper(
        config=master,
        hydra_context=HydraContext(config_loader=hydra.config_loader, callbacks=callbacks),
        task_function=task,
    )
    overrides = OmegaConf.to_container(master.hydra.overrides.task, resolve=False)
    returns = sweeper.sweep(arguments=overrides)
    callbacks.on_multirun_end(config=master, config_name=name)
    return returns


def run_composed(
    hydra: Any, config: DictConfig, task: Callable[[DictConfig], Any], name: str = "train"
) -> JobReturn:
    """What ``Hydra.run`` does once it has composed, on a single run's checked config (the
    CLI's and ``linlab.run``'s): logging, callbacks, the job; raises the task's error."""
    with read_write(config.hydra.overrides.hydra):
        config.hydra.overrides.hydra.append("hydra.mode=RUN")  # as hydra.main records it
    configure_log(config.hydra.hydra_logging, config.hydra.verbose)
    callbacks = Callbacks(config)
    callbacks.on_run_start(config=config, config_name=name)
    context = HydraContext(config_loader=hydra.config_loader, callbacks=callbacks)
    job = run_job(task, config, "hydra.run.dir", None, hydra_context=context)
    callbacks.on_run_end(config=config, config_name=name, job_return=job)
    _ = job.return_value  # raises the task's error
    return job


def console() -> NoReturn:
    """Console entry point ``linlab-train``: :func:`main`, then end the process.

    Once the run is written, Python's own teardown (clearing the modules torch and Lightning
    loaded, freeing their objects) costs about a second and writes nothing; so after what
    Python runs first at exit, in its order (``threading``'s exit hooks, which stop the
    workers of joblib's pools, and the joins of non-daemon threads; then the ``atexit``
    handlers, which close the log files; the streams flushed) the process ends at once. A
    file lock is the kernel's: it goes with the process.
    """
    code: Any = 0
    try:
        main()
    except SystemExit as stop:
        code = stop.code or 0
    if not isinstance(code, int):  # sys.exit("message"), as Python says it
        print(code, file=sys.stderr)
        code = 1
    threading._shutdown()  # as Python at exit: its exit hooks (joblib's pools), then the joins
    atexit._run_exitfuncs()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)
