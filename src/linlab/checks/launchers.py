"""Refuse a launcher that cannot run here, before Hydra composes anything or makes a folder.

- ``hydra/launcher=joblib`` (or a submitit launcher) without its plugin installed: say which
  extra installs it, instead of Hydra's "not an option".
- ``hydra/launcher=slurm`` where there is no SLURM (no ``sbatch``/``srun`` on the PATH).
- ``hydra.launcher.n_jobs`` that is not a positive integer or joblib's negative count
  (``-1``: every core); the stacked launcher's ``hydra.launcher.max_members`` below 1.
- the stacked launcher's ``hydra.launcher.executor``: one of ``local|joblib|submitit|ray``,
  and the package that runs it installed (``ray``, ``submitit``); ``submitit`` on SLURM
  (``submitit.cluster=slurm``, the default) where there is no SLURM.
"""

from __future__ import annotations

from collections.abc import Sequence

from linlab.checks.rules import Rule, refusal
from linlab.choices import EXECUTORS
from linlab.errors import ConfigError
from linlab.machine import has_slurm, installed

PLUGINS = {
    "joblib": "hydra_plugins.hydra_joblib_launcher",
    "submitit_local": "hydra_plugins.hydra_submitit_launcher",
    "submitit_slurm": "hydra_plugins.hydra_submitit_launcher",
    "slurm": "hydra_plugins.hydra_submitit_launcher",
    "slurm_local": "hydra_plugins.hydra_submitit_launcher",
}
INSTALL = 'pip install -e ".[launchers]"'
CLUSTERS = ("slurm", "local")
EXECUTOR_INSTALL = {"submitit": INSTALL, "ray": 'pip install -e ".[ray]"'}


def is_n_jobs(value: str) -> bool:
    """joblib's ``n_jobs``: a count, or a negative one (``-1``: every core, ``-2``: all but one)."""
    try:
        return int(value) != 0
    except ValueError:
        return False


# Launcher settings read off the command line, where their values are the override's own text.
SETTINGS: dict[str, Rule] = {
    "hydra.launcher.n_jobs": (
        is_n_jobs,
        "a positive number of parallel jobs, or -1 for one per core",
    ),
    "hydra.launcher.max_members": (
        lambda v: v.isdigit() and int(v) >= 1,
        "an integer >= 1 (the most jobs trained together in one process)",
    ),
    "hydra.launcher.executor": (lambda v: v in EXECUTORS, "|".join(EXECUTORS)),
    "hydra.launcher.submitit.cluster": (lambda v: v in CLUSTERS, "|".join(CLUSTERS)),
}


def check(overrides: Sequence[str]) -> None:
    """Refuse the launcher chosen on the command line if it cannot run here."""
    settings = dict(o.lstrip("+~").partition("=")[::2] for o in overrides)
    for key, value in settings.items():
        if key == "hydra/launcher" and value in PLUGINS:
            check_plugin(value)
            if value in ("slurm", "submitit_slurm"):
                check_slurm(
                    f"hydra/launcher={value} needs SLURM",
                    "hydra/launcher=slurm_local (the same jobs as local processes) or "
                    "hydra/launcher=joblib",
                )
        elif key == "hydra.launcher.executor":
            check_executor(value)
        elif key in SETTINGS:
            check_setting(key, value)
    on_slurm = settings.get("hydra.launcher.submitit.cluster", "slurm") == "slurm"
    if settings.get("hydra.launcher.executor") == "submitit" and on_slurm:
        check_slurm(
            "hydra.launcher.executor=submitit sends groups to SLURM",
            "hydra.launcher.submitit.cluster=local (the same array as local processes)",
        )


def check_slurm(asked: str, instead: str) -> None:
    """What ``asked`` for runs on SLURM: refused where there is none, saying what runs here."""
    if not has_slurm():
        raise ConfigError(
            f"{asked}, and this machine has no sbatch/srun on the PATH; allowed here: {instead}"
        )


def check_setting(key: str, value: str) -> None:
    ok, allowed = SETTINGS[key]
    if not ok(value):
        raise refusal(key, value, allowed)


def check_executor(value: str) -> None:
    """The stacked launcher's ``executor``, and the package it needs."""
    check_setting("hydra.launcher.executor", value)
    package = EXECUTORS[value]
    if package and not installed(package):
        raise ConfigError(
            f"hydra.launcher.executor={value} needs {package}, not installed here: run "
            f"{EXECUTOR_INSTALL.get(value, INSTALL)}"
        )


def check_plugin(name: str) -> None:
    if not installed(PLUGINS[name]):
        raise ConfigError(
            f"hydra/launcher={name} needs the launchers extra, not installed here: run {INSTALL}"
        )
