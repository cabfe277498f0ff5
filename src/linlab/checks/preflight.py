"""Check a command line before Hydra runs it: compose every job's config and validate it.

Hydra makes the run (or sweep) folder before it calls the task function, and prints its own
composition errors over several lines. So ``main()`` first calls :func:`check_command_line`:
it composes every job's config with Hydra's own parser exactly as Hydra will (search path,
``--config-dir``, ``--config-name``, ``-m``, ``hydra.*`` overrides, the basic sweeper's grid)
and validates each (``linlab.checks.validation``): a problem is one line on stderr, exit code
2, before any folder, logger or data exists. A stacked sweep's launcher gets the checked jobs.
"""

from __future__ import annotations

import copy
import functools
import os
import sys
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
from hydra._internal.hydra import Hydra
from hydra.core.global_hydra import GlobalHydra
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.errors import HydraException, MissingConfigException
from hydra.types import RunMode
from omegaconf import DictConfig, OmegaConf, open_dict, read_write
from omegaconf.errors import OmegaConfBaseException

from linlab.checks import launchers, search_space
from linlab.checks.composed import output_dir
from linlab.checks.overrides import check_syntax, plain_words
from linlab.checks.rules import refusal, show
from linlab.checks.signatures import from_source, takes
from linlab.checks.validation import validate
from linlab.config_tree import create_hydra, parse_command_line
from linlab.errors import ConfigError, did_you_mean, first_line
from linlab.heap import few_full_collections
from linlab.search import settings
from linlab.search.space import sample_jobs
from linlab.sweeps.compose import JobComposer, as_hydra_main_launches, hand_over, stacked
from linlab.sweeps.current_job import make_current

EXIT_CONFIG_ERROR = 2
Announce = Callable[..., None]  # (values: dict, folder: Path | None)
every_job_checked = False  # this process's command line passed: a sweeper need not recompose


def check_command_line(
    argv: Sequence[str], primary_config_dir: Path, announce: Announce | None = None
) -> DictConfig | None:
    """Refuse ``argv`` (one line on stderr, exit 2) if any job it launches has a bad config;
    ``announce(values, output folder)`` is called for a single run once its values passed.
    Returns a single run's config or a sweep's master as composed and checked: Hydra can run
    it without composing it again, and its ``${now:...}`` (cached) names the same folder."""
    global every_job_checked
    checked: list[DictConfig] = []
    message = problem(argv, primary_config_dir, announce, checked, for_launcher=True)
    if message is not None:
        print(f"linlab-train: error: {message}", file=sys.stderr)
        sys.exit(EXIT_CONFIG_ERROR)
    every_job_checked = True
    return checked[0] if checked else None


@few_full_collections()
def problem(
    argv: Sequence[str],
    primary_config_dir: Path,
    announce: Announce | None = None,
    composed: list[DictConfig] | None = None,
    for_launcher: bool = False,
) -> str | None:
    """The one-line refusal of the first bad job config ``argv`` launches (also of an error the
    checks did not foresee, naming what raised it), or None; a single run's checked config is
    appended to ``composed``; ``for_launcher``: a stacked sweep's jobs are handed to its
    launcher once all passed (``linlab.sweeps.compose``), its master appended to ``composed``."""
    to_launcher, built = [], {}  # a stacked sweep's jobs; the dry build's stages, shared
    try:
        for cfg in job_configs(argv, primary_config_dir, composed if for_launcher else None):
            single_run = cfg.hydra.mode == RunMode.RUN
            say = announce if single_run else None  # a single run's first line
            validate(cfg, say and functools.partial(say, folder=output_dir(cfg)), built)
            if single_run and composed is not None:
                composed.append(cfg)
            elif for_launcher and stacked(cfg):
                to_launcher.append(cfg)
    except ConfigError as error:
        return str(error)
    except Exception as error:
        return f"the config could not be checked: {type(error).__name__}: {first_line(error)}"
    hand_over(to_launcher)
    return None


def job_configs(
    argv: Sequence[str], primary_config_dir: Path, masters: list[DictConfig] | None = None
) -> Iterator[DictConfig]:
    """The composed config (Hydra node included) of each job ``linlab-train argv`` launches
    (a sweep's master, as ``Hydra.multirun`` composes it, appended to ``masters``);
    informational commands (``--help``, ``--cfg``, ``--info``, ...) launch no job."""
    args = parse_command_line(argv)
    if args.help or args.hydra_help or args.cfg or args.info or args.shell_completion:
        return
    check_syntax(args.overrides)
    launchers.check(args.overrides)
    hydra = create_hydra(args, primary_config_dir)
    try:
        config_name = args.config_name or "train"
        if not args.multirun:
            cfg = _compose(hydra, config_name, args.overrides, None, RunMode.RUN)
            if cfg.hydra.mode != RunMode.MULTIRUN:
                yield _with_output_dir(cfg, _output_dir(cfg, "hydra.run.dir"), RunMode.RUN)
                return
        master = _compose(hydra, config_name, args.overrides, None, RunMode.MULTIRUN)
        master = as_hydra_main_launches(master) if args.multirun else master
        if masters is not None:
            masters.append(master)
        sweep_dir = _output_dir(master, "hydra.sweep.dir")
        composer = JobComposer(hydra.config_loader, master)
        search = settings.is_search(OmegaConf.select(master, "hydra.sweeper"))
        job_folders: dict[str, int] | None = None if search else {}  # a search's are samples
        for num, job in enumerate(_grid(master)):
            cfg = _compose(hydra, config_name, args.overrides, (composer, job), RunMode.RUN)
            _check_job_folder(cfg, num, job_folders)
            yield _with_output_dir(cfg, sweep_dir, RunMode.MULTIRUN)
    finally:
        GlobalHydra.instance().clear()


def _grid(master: DictConfig) -> list[list[str]]:
    """The basic sweeper's jobs: the product of the swept values (command line + config)."""
    params = OmegaConf.select(master, "hydra.sweeper.params") or {}
    arguments = [f"{k}={v}" for k, v in params.items()] + list(master.hydra.overrides.task)
    sweeper = OmegaConf.select(master, "hydra.sweeper")
    if settings.is_search(sweeper):
        search_space.check(sweeper, arguments)
        return sample_jobs(arguments)  # an Optuna search: jobs at the space's edges
    try:
        parsed = OverridesParser.create().parse_overrides(arguments)
    except HydraException as error:
        raise ConfigError(first_line(error)) from None
    if search_space.searched_elsewhere(sweeper, parsed):
        return [arguments]  # interval searches belong to an optimising sweeper
    return BasicSweeper.split_arguments(parsed, max_batch_size=None)[0]


def _compose(hydra, config_name, overrides, sweep, run_mode):
    """Compose like Hydra does, turning its multi-line errors into one ``ConfigError``."""
    try:
        if sweep is not None:  # (composer, job)
            return sweep[0].compose(sweep[1])
        return hydra.compose_config(
            config_name, list(overrides), run_mode=run_mode, with_log_configuration=False
        )
    except MissingConfigException as error:
        raise ConfigError(_missing_option_message(hydra, error, overrides)) from None
    except (HydraException, OmegaConfBaseException) as error:
        raise ConfigError(_composition_message(hydra, config_name, error, overrides)) from None


def _missing_option_message(hydra: Hydra, error: MissingConfigException, overrides) -> str:
    missing = error.missing_cfg_file or ""
    group, _, option = missing.rpartition("/")
    if not group:
        return first_line(error)
    options = sorted(hydra.config_loader.get_group_options(group))
    hint = did_you_mean(option, options, prefix=f"{group}=", before="; ", after="")
    return f"{group}={option} is not an option of {group}; available: {', '.join(options)}{hint}"


def _composition_message(hydra: Hydra, config_name: str, error: Exception, overrides) -> str:
    cause, text = error.__cause__ or error, str(error)
    failed = text.split("'")[1] if text.startswith("Could not override '") else None
    key = getattr(cause, "full_key", None) or failed
    if key and "not in struct" in str(cause):
        others = [o for o in overrides if o.partition("=")[0].lstrip("+~") != key]
        return _unknown_key_message(hydra, config_name, key, others)
    first = first_line(error)
    plain = plain_words(first)
    if plain is not None:
        return plain
    detail = first_line(cause) if cause is not error else ""
    return f"{first} ({detail})" if detail and detail not in first else first


def _unknown_key_message(hydra: Hydra, config_name: str, key: str, others: list[str]) -> str:
    """Name the close keys; suggest ``+key=...`` only where the node's target takes ``key``."""
    parent, _, name = key.rpartition(".")
    try:
        base = hydra.compose_config(
            config_name, others, run_mode=RunMode.RUN, with_log_configuration=False
        )
        node = OmegaConf.select(base, parent) if parent else base
    except (HydraException, OmegaConfBaseException):
        node = None
    keys = [str(k) for k in node] if isinstance(node, DictConfig) else []
    keys = [k for k in keys if not k.startswith("_") and k != "hydra"]
    where = parent or "the top level"
    hint = did_you_mean(name, keys, prefix=f"{parent}." if parent else "")
    allowed = f"allowed: {', '.join(keys)}" if keys else f"{where} has no settings"
    target = node.get("_target_") if isinstance(node, DictConfig) else None
    parameters = from_source({"_target_": target})  # None where not linlab's: judged on import
    if parameters is None or takes(parameters, name):
        return f"{key} is not a key of {where}; {hint}{allowed} (or +{key}=... to add a new one)"
    return f"{key} is not a key of {where}; {hint}{allowed} ({target} takes no {name})"


def _output_dir(cfg: DictConfig, key: str) -> str:
    """A folder Hydra makes (``hydra.run.dir``, ``hydra.sweep.dir``): a usable path."""
    try:
        folder = OmegaConf.select(cfg, key, throw_on_resolution_failure=True)
    except OmegaConfBaseException as error:
        raise ConfigError(f"{key}: {first_line(error)}") from None
    too_long = any(len(os.fsencode(part)) > 255 for part in Path(str(folder)).parts)
    if not isinstance(folder, str) or not folder.strip() or "\0" in folder or too_long:
        allowed = "a folder path (not empty, no NUL character, each name at most 255 bytes)"
        raise refusal(key, show(folder), f"{allowed} where the run's files go")
    return folder


def _check_job_folder(cfg: DictConfig, num: int, taken: dict[str, int] | None) -> None:
    """``hydra.sweep.subdir`` of job ``num``, as the launcher resolves it, must be a folder of
    its own inside the sweep folder: not the sweep folder itself, not outside, not shared.
    A search's jobs (``taken`` None) are samples, and two trials may draw the same values: only
    their number tells them apart, so the subdir must change from trial ``num`` to ``num + 1``
    (a constant, ``${now:...}`` or ``${hydra.job.override_dirname}``, which the sweeper keeps
    ``optuna_trial`` out of, do not)."""
    with read_write(cfg), open_dict(cfg):
        cfg.hydra.job.num = cfg.hydra.job.id = num  # as the launcher numbers its jobs
    search = taken is None
    subdir = _subdir(_trial(cfg, num) if search else cfg)
    name = os.path.normpath(subdir)
    if name == "." or name.startswith("..") or os.path.isabs(name):
        why = "not a folder inside hydra.sweep.dir"
    elif search and _subdir(_trial(cfg, num + 1)) == subdir:
        why = (
            "trials of the search would share that folder (it does not change with the "
            "trial's number, hydra.job.num, and trials may draw the same values)"
        )
    elif not search and taken.setdefault(name, num) != num:
        why = f"jobs {taken[name]} and {num} would share that folder"
    else:
        return
    allowed = "a folder per job inside hydra.sweep.dir (the default, or e.g. job${hydra.job.num})"
    raise refusal("hydra.sweep.subdir", show(subdir), allowed, why)


def _trial(cfg: DictConfig, number: int) -> DictConfig:
    """A copy of job ``cfg`` named as search trial ``number``'s folder is planned
    (``linlab.folders.job_folder``): numbered, its overrides ending in ``+optuna_trial=<number>``.
    The key ``optuna_trial`` itself is not set there, so ``${optuna_trial}`` is refused."""
    trial = copy.deepcopy(cfg)
    with read_write(trial), open_dict(trial):
        trial.hydra.job.num = trial.hydra.job.id = number
        trial.hydra.overrides.task.append(f"+{settings.TRIAL_KEY}={number}")
    return trial


def _subdir(cfg: DictConfig) -> str:
    """``hydra.sweep.subdir`` as the launcher resolves it for the job ``cfg``."""
    make_current(cfg)  # so that ${hydra:job.num} resolves; no copy of the node
    try:
        return _output_dir(cfg, "hydra.sweep.subdir")
    finally:
        OmegaConf.set_readonly(cfg.hydra, None)  # the launcher's set-up still writes to it


def _with_output_dir(cfg: DictConfig, folder: str, mode: RunMode) -> DictConfig:
    """Set ``hydra.runtime.output_dir`` and ``hydra.mode`` as the launcher will, so that
    ``${hydra:...}`` resolves and a sweep's job is checked as one (a folder per job)."""
    with open_dict(cfg):
        cfg.hydra.runtime.output_dir = str(folder)
        cfg.hydra.mode = mode
    make_current(cfg)
    return cfg
