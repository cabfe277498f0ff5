"""The fast front of ``linlab-train``: answer ``--help`` and refuse bad command lines quickly.

Importing Lightning takes seconds, and neither ``--help`` nor a mistyped group option
(``data=gausian``) needs it: :func:`main` answers ``--help`` with Hydra's argument parser
alone, and the config checks compose every job with Hydra before they import torch (a missing
group option is refused at composition), and the value checks import neither. A single run
prints its first line (:func:`announce`) as soon as its values passed. Only a command line
that passed every check imports ``linlab.train``.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from hydra._internal.utils import get_args_parser

from linlab.checks.preflight import check_command_line
from linlab.config_tree import config_dir, group_options
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
    where = f"{folder.parent}/" if folder is not None else "./"
    print(f"linlab-train: {what_is_trained(values)} -> {where}", flush=True)


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
    """Console entry point ``linlab-train``: help, checks, then Hydra runs ``linlab.train``."""
    argv = sys.argv[1:]
    if get_args_parser().parse_known_args(argv)[0].help:
        print(help_text(), end="")
        return
    naming.register_resolvers()
    naming.start_launch(argv)
    check_command_line(argv, config_dir(), announce)
    from linlab.faults import exit_130_on_interrupt
    from linlab.train import hydra_main, quiet_lightning  # torch and Lightning from here on

    quiet_lightning()
    exit_130_on_interrupt(hydra_main)
