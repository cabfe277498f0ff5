"""``linlab.run`` and ``linlab.sweep``: the command line's jobs, started from Python.

A call is the command line ``linlab-train [-m] <overrides>``: the same checks
(``linlab.checks.preflight``), the same Hydra composition and callbacks (folder locks,
``sweep.json``, the sweep's console), the same task (``linlab.train.task``) and so the same
run folders and ``results.json``. A single run is the config the checks composed, run as
``Hydra.run`` runs it (``linlab.cli.run_composed``: composed once, as the CLI's); a sweep is
Hydra's own ``Hydra.multirun``, so it goes through the configured sweeper (grid, Optuna) and
launcher (basic, stacked, joblib, submitit) exactly as ``-m`` does. ``hydra.main`` cannot be
used, since it reads ``sys.argv`` and ends the process. Each call starts from a clean Hydra
(``GlobalHydra``) and gives the logging set-up back as it found it.

Keyword settings are overrides with ``__`` for the dot: ``optimizer__lr=0.1`` is
``optimizer.lr=0.1``, ``data="line_1d"`` picks a group's option, ``outdir=`` is the run
(or sweep) folder. In :func:`sweep` a list or tuple is swept, one job per value.
"""

from __future__ import annotations

import gc
import logging
import os
import sys
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from linlab.errors import ConfigError

if TYPE_CHECKING:
    from linlab.runs import Run
    from linlab.sweep_results import Sweep

EXIT_INTERRUPTED = 130  # linlab.faults.EXIT_INTERRUPTED, without importing torch here
EXIT_CONFIG_ERROR = 2  # linlab.checks.preflight.EXIT_CONFIG_ERROR


def run(*overrides: str, **settings: Any) -> Run:
    """Train one run as ``linlab-train <overrides>`` does; return it as a :class:`Run`.

    ``linlab.run("experiment=two_x", optimizer__lr=0.05, outdir="outputs/two_x")``.
    A bad setting raises :class:`ConfigError` (the CLI's line) before any folder exists; a
    folder that holds a run is refused unless ``overwrite=True`` or ``ckpt_path="last"``.
    An interrupt (Ctrl-C, the kernel's stop button) ends the run as in the terminal: status
    ``interrupted``, the resume call printed, and the interrupted run is returned.
    """
    from linlab.runs import Run

    argv = command_line(overrides, settings, folder_key="hydra.run.dir", sweeping=False)
    folder: list[Path] = []

    def task(cfg: Any) -> float | None:
        from hydra.core.hydra_config import HydraConfig

        from linlab.train import task as train_task

        folder.append(Path(HydraConfig.get().runtime.output_dir))
        try:
            return train_task(cfg)
        except SystemExit as stop:  # interrupted: recorded and announced by linlab.train
            if stop.code != EXIT_INTERRUPTED:
                raise RuntimeError(f"the run stopped with exit code {stop.code}") from None
            print(f"resume from Python: {resume_call(argv, folder[0])}", file=sys.stderr)
            return None

    checked: list[Any] = []  # the config the checks composed: Hydra runs it, not a new one
    with hydra_session(argv, checked) as hydra:
        from linlab.cli import run_composed

        if not checked:
            raise ConfigError("linlab.run trains a single run; a sweep is linlab.sweep(...)")
        try:
            run_composed(hydra, checked[0], task)
        except SystemExit as stop:  # the folder's lock, taken since the checks passed
            raise lock_refusal(stop) from None
    return Run(folder[0])


def sweep(
    *overrides: str, launcher: str = "stacked", sweeper: str | None = None, **settings: Any
) -> Sweep:
    """Run a sweep as ``linlab-train -m <overrides>`` does; return it as a :class:`Sweep`.

    ``linlab.sweep(optimizer__lr=[0.01, 0.1], data__batch_size=[8, 64])`` trains the four
    jobs of the grid. ``launcher`` is a ``hydra/launcher`` option (``stacked``, ``basic``,
    ``joblib``, ...), ``sweeper`` a ``hydra/sweeper`` one (None: the config's, a grid unless an
    ``hparams_search`` preset picks Optuna). Failed jobs and an interrupt do not raise: they
    are rows of the returned sweep's table (failed, interrupted, pending).
    """
    from linlab.sweep_results import Sweep

    choices = [f"hydra/launcher={launcher}"] + ([f"hydra/sweeper={sweeper}"] if sweeper else [])
    argv = command_line(
        (*choices, *overrides), settings, folder_key="hydra.sweep.dir", sweeping=True
    )
    with hydra_session(["-m", *argv]) as hydra:
        from linlab.train import task  # torch and Lightning, once the checks passed

        sweep_dir = sweep_folder(hydra, argv)
        if not any(a.startswith("hydra.sweep.dir=") for a in argv):
            argv.append(f"hydra.sweep.dir={sweep_dir}")  # named once, not again at launch
        try:
            hydra.multirun("train", task, list(argv))
        except SystemExit as stop:  # jobs failed (the summary said so), or an interrupt
            if stop.code == EXIT_CONFIG_ERROR:
                raise lock_refusal(stop) from None
            if stop.code == EXIT_INTERRUPTED:
                print(f"sweep interrupted; go on with: {resume_call(argv, sweep_dir)}")
        except KeyboardInterrupt:
            print(f"sweep interrupted; go on with: {resume_call(argv, sweep_dir)}")
    return Sweep(sweep_dir)


def lock_refusal(stop: SystemExit) -> Exception:
    """What Hydra's callbacks ended the process for: a folder locked by another process
    (linlab.folders, which printed the CLI's line), or anything else, said plainly."""
    if stop.code == EXIT_CONFIG_ERROR:
        return ConfigError(
            "the folder is being written by another process (see the line above); allowed: "
            "wait for it to end, or choose another folder"
        )
    return RuntimeError(f"linlab stopped with exit code {stop.code}")


def command_line(
    overrides: Sequence[str], settings: Mapping[str, Any], folder_key: str, sweeping: bool
) -> list[str]:
    """The overrides of a call: the positional ones as written, then the keyword settings."""
    argv = [str(o) for o in overrides]
    for name, value in settings.items():
        key = folder_key if name == "outdir" else name.replace("__", ".")
        if sweeping and isinstance(value, list | tuple):
            argv.append(f"{key}={','.join(override_value(v) for v in value)}")
        else:
            argv.append(f"{key}={override_value(value)}")
    return argv


def override_value(value: Any) -> str:
    """A Python value as Hydra's override grammar reads it back (``True`` → ``true``)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list | tuple):
        return "[" + ",".join(override_value(v) for v in value) + "]"
    if isinstance(value, Mapping):
        return "{" + ",".join(f"{k}:{override_value(v)}" for k, v in value.items()) + "}"
    return str(value)


def resume_call(argv: Sequence[str], folder: Path) -> str:
    """The Python call that goes on in ``folder`` from its checkpoints."""
    choices = dict(
        a.split("=", 1) for a in argv if a.startswith(("hydra/launcher=", "hydra/sweeper="))
    )
    folder_key = "hydra.sweep.dir" if choices else "hydra.run.dir"
    skipped = (f"{folder_key}=", "ckpt_path=", "overwrite=", *choices)
    words = [repr(a) for a in argv if not a.startswith(skipped)]
    words += [f"{k.removeprefix('hydra/')}={v!r}" for k, v in choices.items()]
    words += [f"outdir={str(folder)!r}", "ckpt_path='last'"]
    return f"linlab.{'sweep' if choices else 'run'}({', '.join(words)})"


@contextmanager
def hydra_session(argv: Sequence[str], single_runs: list[Any] | None = None) -> Iterator[Any]:
    """A Hydra made as ``linlab-train argv`` makes it, after the command line's checks (a
    single run's checked config appended to ``single_runs``).

    Raises ``ConfigError`` (the CLI's one line) before anything is written. Afterwards
    Hydra is cleared and the root logger gets back its handlers and level.
    """
    from hydra._internal.hydra import Hydra
    from hydra._internal.utils import create_automatic_config_search_path
    from hydra.core.global_hydra import GlobalHydra

    from linlab import interpolation_parses
    from linlab.checks import preflight
    from linlab.config_tree import config_dir
    from linlab.sweeps import naming

    naming.register_resolvers()
    interpolation_parses.remember()
    naming.start_launch(list(argv))
    message = preflight.problem(list(argv), config_dir(), composed=single_runs)
    if message is not None:
        raise ConfigError(message)
    checked_before, preflight.every_job_checked = preflight.every_job_checked, True
    train_py = str(Path(__file__).with_name("train.py"))  # the task's file, as hydra.main has
    search_path = create_automatic_config_search_path(train_py, None, str(config_dir()))
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    GlobalHydra.instance().clear()
    launch_variables = {k: v for k, v in os.environ.items() if k.startswith("LINLAB_")}
    try:
        yield Hydra.create_main_hydra2(task_name="train", config_search_path=search_path)
    finally:
        preflight.every_job_checked = checked_before  # for this call's sweeper only
        GlobalHydra.instance().clear()
        restore_logging(root, handlers, level)
        for name in [k for k in os.environ if k.startswith("LINLAB_")]:  # the sweep's pid, ...
            os.environ.pop(name)
        os.environ.update(launch_variables)
        gc.collect()  # an interrupted call's folder lock (in Hydra's callbacks) is released


def restore_logging(root: logging.Logger, handlers: list[logging.Handler], level: int) -> None:
    """Close the handlers Hydra's job logging added (its ``<job>.log``), keep the caller's."""
    for handler in root.handlers:
        if handler not in handlers:
            handler.close()
    root.handlers[:] = handlers
    root.setLevel(level)


def sweep_folder(hydra: Any, argv: Sequence[str]) -> Path:
    """``hydra.sweep.dir`` of this launch, resolved once (it holds the launch's time and id)."""
    from hydra.types import RunMode
    from omegaconf import OmegaConf

    cfg = hydra.compose_config(
        "train", list(argv), run_mode=RunMode.MULTIRUN, with_log_configuration=False
    )
    return Path(str(OmegaConf.select(cfg, "hydra.sweep.dir")))
