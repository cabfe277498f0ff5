"""A sweep's job configs: Hydra's composition per override structure, then the job's values.

Hydra composes every job of a multirun from scratch (defaults tree, config files, merges):
about 0.15 s a job, more than a stacked member costs to train. Hydra itself works in two
steps (``ConfigLoaderImpl._load_configuration_impl``): the overrides that choose config groups
(and every ``hydra.*`` override) build the defaults list, which is composed; the others --
``key=value``, ``+key=value``, ``++key=value``, ``~key``, dict values, interpolations -- are
then applied to that composition in order by ``_apply_overrides_to_config``. ``JobComposer``
caches the first step, keyed by the overrides that reach it, and runs the second step itself
with Hydra's own function, so each job gets exactly Hydra's config: a dict override merges
into the composed node, never into an earlier job's values.

``linlab-train -m`` composes every job twice: its up-front check (``linlab.checks.preflight``)
composes and validates each, then the stacked launcher composes each again. The check hands
the jobs it passed over (:func:`hand_over`), keyed by the overrides that composed them, and
``compose`` returns such a job as it is, with the launcher's ``${now:...}`` cache, as Hydra
copies the master's into each job: one composition, one copy held.
"""

from __future__ import annotations

import copy
import pickle
from collections.abc import Iterable, Sequence

from hydra._internal.config_loader_impl import ConfigLoaderImpl, get_overrides_dirname
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.override_parser.types import Override
from hydra.types import RunMode
from omegaconf import DictConfig, OmegaConf, open_dict, read_write

STACKED_LAUNCHER = "hydra_plugins.linlab_sweeps.stacked_launcher.StackedLauncher"
JobKey = tuple[str, tuple[str, ...], tuple[str, ...]]  # config name, hydra.* and job overrides
_handed_over: dict[JobKey, DictConfig] = {}


def as_hydra_main_launches(master: DictConfig) -> DictConfig:
    """The master config of ``-m``: ``hydra.main`` (``_run_app``) adds ``hydra.mode=MULTIRUN``
    to the overrides where the config does not say it, and jobs compose from the master's."""
    if master.hydra.mode != RunMode.MULTIRUN:
        with read_write(master.hydra), open_dict(master.hydra):
            master.hydra.overrides.hydra.append("hydra.mode=MULTIRUN")
            master.hydra.mode = RunMode.MULTIRUN
    return master


def stacked(cfg: DictConfig) -> bool:
    """Whether the job runs under ``hydra/launcher=stacked``, which takes handed-over jobs."""
    return OmegaConf.select(cfg, "hydra.launcher._target_") == STACKED_LAUNCHER


def hand_over(configs: Iterable[DictConfig]) -> None:
    """Keep jobs the up-front check composed and passed for this process's stacked launcher;
    ``JobComposer.compose`` takes each back for its overrides (so none is held twice)."""
    for cfg in configs:
        OmegaConf.set_readonly(cfg.hydra, False)  # as composed: the launcher numbers the job
        with open_dict(cfg.hydra):  # and names its folder
            cfg.hydra.job.id = cfg.hydra.job.num = cfg.hydra.runtime.output_dir = "???"
        hydra_lines, task = OmegaConf.to_container(cfg.hydra.overrides).values()  # as written
        key = (cfg.hydra.job.config_name, tuple(hydra_lines), tuple(task))
        _handed_over[key] = cfg


class JobComposer:
    """``compose(overrides)``: what ``config_loader.load_sweep_config(master, overrides)``
    returns, from a cache of Hydra's compositions keyed by the overrides' structure (or the
    job the up-front check handed over)."""

    def __init__(self, config_loader: ConfigLoaderImpl, master: DictConfig) -> None:
        self.loader, self.master = config_loader, master
        self.parser = OverridesParser.create()
        self.composed: dict[tuple[str, ...], bytes | DictConfig] = {}
        self.overrides: dict[str, Override] = {}  # each override line parsed once a sweep
        self.repositories: dict[tuple[str, ...], object] = {}
        self.master_hydra = tuple(OmegaConf.to_container(master.hydra.overrides.hydra))

    def compose(self, overrides: Sequence[str]) -> DictConfig:
        key = (self.master.hydra.job.config_name, self.master_hydra, tuple(overrides))
        checked = _handed_over.pop(key, None)  # (a sweep's jobs override no hydra.* key)
        if checked is not None:
            OmegaConf.copy_cache(from_config=self.master, to_config=checked)
            return checked
        parsed = self._parsed(overrides)
        hydra_lines = self.master_hydra + tuple(
            o.input_line for o in parsed if o.is_hydra_override()
        )
        task = [o for o in parsed if not o.is_hydra_override()]
        values = [o for o in parsed if self._is_value(o, hydra_lines)]
        structure = tuple(o.input_line for o in parsed if o not in values)
        if structure not in self.composed:
            self.composed[structure] = _frozen(
                self.loader.load_sweep_config(self.master, list(structure))
            )
        cfg = _thawed(self.composed[structure])
        ConfigLoaderImpl._apply_overrides_to_config(values, cfg)
        naming = cfg.hydra.job.config.override_dirname
        with read_write(cfg.hydra), open_dict(cfg.hydra):
            cfg.hydra.overrides.task = [o.input_line for o in task]
            cfg.hydra.job.override_dirname = get_overrides_dirname(
                overrides=task,
                kv_sep=naming.kv_sep,
                item_sep=naming.item_sep,
                exclude_keys=naming.exclude_keys,
            )
        OmegaConf.copy_cache(from_config=self.master, to_config=cfg)
        return cfg

    def _parsed(self, lines: Sequence[str]) -> list[Override]:
        """Hydra's ``parse_overrides(lines)``; a line parsed for an earlier job is not parsed
        again (``seed=0`` and a sweep's fixed overrides recur in every job; ~0.3 ms a line).
        Hydra reads an ``Override`` and does not change it."""
        new = [line for line in dict.fromkeys(lines) if line not in self.overrides]
        if new:
            self.overrides.update(zip(new, self.parser.parse_overrides(new), strict=True))
        return [self.overrides[line] for line in lines]

    def _is_value(self, override: Override, hydra_lines: tuple[str, ...]) -> bool:
        """Hydra's ``config_overrides`` (``defaults_list.Overrides``): a dict value, or a key
        that is no config group. Hydra's own keys stay in the structure: they may move the
        search path, and Hydra fills its node from them after the values are applied."""
        if override.is_sweep_override() or override.package is not None:
            return False
        if override.is_hydra_override() or override.key_or_group == "hydra":
            return False
        if isinstance(override.value(), dict):
            return True
        return not self._repository(hydra_lines).group_exists(override.key_or_group)

    def _repository(self, hydra_lines: tuple[str, ...]):
        """The repository Hydra composes from: ``hydra.searchpath`` (the primary config's, or
        an override's) adds config sources, hence groups."""
        if hydra_lines not in self.repositories:
            config_name = self.master.hydra.job.config_name
            _, repo = self.loader._parse_overrides_and_create_caching_repo(
                config_name, list(hydra_lines)
            )
            self.repositories[hydra_lines] = repo
        return self.repositories[hydra_lines]


def _frozen(cfg: DictConfig) -> bytes | DictConfig:
    """The cached composition, pickled: unpickling a copy is ~3x faster than ``deepcopy``
    (``scripts/bench_compose.py``). A structured config of a class pickle cannot import
    stays a config, copied by ``deepcopy``."""
    try:
        return pickle.dumps(cfg)
    except (pickle.PicklingError, AttributeError, TypeError):
        return cfg


def _thawed(frozen: bytes | DictConfig) -> DictConfig:
    return pickle.loads(frozen) if isinstance(frozen, bytes) else copy.deepcopy(frozen)
