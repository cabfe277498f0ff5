"""``JobComposer`` against Hydra's own ``load_sweep_config``, over generated override forms.

The config tree (``tests/compose_app``) is small on purpose: a group with dict-valued options,
an optional group, nested dicts, a list and an interpolation, so every override form Hydra
accepts (``=``, ``+``, ``++``, ``~``, dict and list values, interpolations, group choices)
has something to act on. Each generated sweep runs through one composer, so later jobs come
from its cache, and every job must equal Hydra's composition or fail with Hydra's error.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
from hydra._internal.hydra import Hydra
from hydra._internal.utils import create_automatic_config_search_path
from hydra.core.global_hydra import GlobalHydra
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.types import RunMode
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from omegaconf import OmegaConf

from linlab.sweeps.compose import JobComposer

APP = Path(__file__).with_name("compose_app")
MASTER_OVERRIDES = [
    "hydra.job.config.override_dirname.item_sep=+",
    "hydra.sweep.subdir=job_${hydra.job.num}",
]

KEYS = [
    "lr",
    "name",
    "flags",
    "nested",
    "nested.a",
    "nested.b",
    "nested.b.c",
    "nested.new",
    "new_key",
    "db",
    "db.options",
    "db.options.timeout",
    "db.port",
    "extra.size",
]
VALUES = [
    "1",
    "0.5",
    "null",
    "true",
    "abc",
    "'true'",
    "'a\\\\b'",
    "[1,2,3]",
    "[]",
    "{a:1}",
    "{enabled:false}",
    "{timeout:1,extra:{x:2}}",
    "${lr}",
    "${db.port}",
    "'${nested.a}'",
]
STRUCTURES = [
    [],
    ["db=postgres"],
    ["+extra=small"],
    ["db=postgres", "+extra=large"],
    ["~db"],
    ["hydra.job.name=renamed"],
]


@pytest.fixture(scope="module")
def hydra():
    search_path = create_automatic_config_search_path(None, None, str(APP))
    GlobalHydra.instance().clear()
    hydra = Hydra.create_main_hydra2(task_name="app", config_search_path=search_path)
    yield hydra
    GlobalHydra.instance().clear()


@pytest.fixture(scope="module")
def master(hydra):
    return hydra.compose_config("app", MASTER_OVERRIDES, run_mode=RunMode.MULTIRUN)


def outcome(make):
    """The composed config as plain containers, or the error Hydra would show."""
    try:
        return OmegaConf.to_container(make())
    except Exception as error:
        return type(error).__name__, str(error)


def override(prefix: str, key: str, value: str) -> str:
    return f"~{key}" if prefix == "~" else f"{prefix}{key}={value}"


swept_key = st.tuples(st.sampled_from(["", "", "+", "++", "~"]), st.sampled_from(KEYS))


@st.composite
def sweep(draw) -> list[list[str]]:
    """A sweep's jobs: one structure, the same swept keys, each job its own values."""
    structure = draw(st.sampled_from(STRUCTURES))
    keys = draw(st.lists(swept_key, max_size=3))
    n_jobs = draw(st.integers(min_value=2, max_value=4))
    values = st.sampled_from(VALUES)
    return [
        [*structure, *(override(prefix, key, draw(values)) for prefix, key in keys)]
        for _ in range(n_jobs)
    ]


@settings(
    max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(jobs=sweep())
def test_every_job_equals_hydras_composition(hydra, master, jobs):
    composer = JobComposer(hydra.config_loader, master)
    for job in jobs:
        expected = outcome(lambda job=job: hydra.config_loader.load_sweep_config(master, job))
        assert outcome(lambda job=job: composer.compose(job)) == expected, job


def test_a_dict_override_merges_into_the_composed_node_not_the_previous_job(hydra, master):
    """Hydra's basic launcher: ``db.options={enabled:false},{timeout:1}`` gives the second
    job the composed ``enabled: true``."""
    composer = JobComposer(hydra.config_loader, master)
    first = composer.compose(["db.options={enabled:false}"])
    second = composer.compose(["db.options={timeout:1}"])
    assert first.db.options == {"enabled": False, "timeout": 5}
    assert second.db.options == {"enabled": True, "timeout": 1}


def test_each_structure_is_composed_by_hydra_once(hydra, master):
    composer = JobComposer(hydra.config_loader, master)
    for lr in (0.1, 0.2, 0.3):
        for db in ("mysql", "postgres"):
            composer.compose([f"db={db}", f"lr={lr}", f"+seed={int(lr * 10)}"])
    assert len(composer.composed) == 2


def test_the_preflight_checks_each_dict_sweep_job_as_hydra_composes_it():
    """The issue's case: ``callbacks.theory={enabled:false},{target_val_loss:0.5}``."""
    from linlab.checks.preflight import job_configs
    from linlab.train import config_dir

    argv = ["-m", "callbacks.theory={enabled:false},{target_val_loss:0.5}"]
    first, second = (cfg.callbacks.theory for cfg in job_configs(argv, config_dir()))
    assert (first.enabled, first.target_val_loss) == (False, None)
    assert (second.enabled, second.target_val_loss) == (True, 0.5)


def flags(node, path: str = "") -> dict[str, dict]:
    """Every container's own flags (struct, readonly), by path."""
    found = {path: dict(node._metadata.flags)}
    keys = node.keys() if OmegaConf.is_dict(node) else range(len(node))
    for key in keys:
        child = node._get_node(key)
        if OmegaConf.is_config(child):
            found |= flags(child, f"{path}.{key}")
    return found


def test_the_stacked_launcher_gets_the_checked_jobs_as_hydra_composes_them():
    """``linlab-train -m``'s up-front check hands its jobs to the launcher's composer, which
    returns them as Hydra's ``load_sweep_config`` composes them from the master ``hydra.main``
    makes (``_run_app`` appends ``hydra.mode=MULTIRUN``) and its later ``${now:...}``."""
    import time

    from linlab.checks.preflight import problem
    from linlab.config_tree import config_dir, create_hydra, parse_command_line
    from linlab.sweeps import naming

    argv = [
        "-m",
        "hydra/launcher=stacked",
        "optimizer=sgd,adam",  # a group choice
        "optimizer.lr=0.01,0.1",
        "callbacks.theory={enabled:false}",  # a dict value
        "+trainer.limit_val_batches=2",
        "~callbacks.figures",
        "hydra.job.config.override_dirname.item_sep=+",
        "hydra.sweep.dir=multirun/\\${now:%H-%M-%S-%f}",  # resolved later by the launcher
    ]
    naming.register_resolvers()
    naming.start_launch(argv)
    assert problem(argv, config_dir(), for_launcher=True) is None
    time.sleep(0.01)
    args = parse_command_line(argv)
    hydra = create_hydra(args, config_dir())
    try:
        overrides = [*args.overrides, "hydra.mode=MULTIRUN"]  # as hydra.main's _run_app
        master = hydra.compose_config("train", overrides, run_mode=RunMode.MULTIRUN)
        sweep_dir = str(master.hydra.sweep.dir)
        launcher_composer = JobComposer(hydra.config_loader, master)
        task = OverridesParser.create().parse_overrides(list(master.hydra.overrides.task))
        jobs = BasicSweeper.split_arguments(task, max_batch_size=None)[0]  # the sweeper's
        assert len(jobs) == 4
        for job in jobs:
            expected = hydra.config_loader.load_sweep_config(master, job)
            got = launcher_composer.compose(job)
            assert OmegaConf.to_yaml(got) == OmegaConf.to_yaml(expected), job
            assert flags(got) == flags(expected), job
            assert got.hydra.sweep.dir == expected.hydra.sweep.dir == sweep_dir
        assert launcher_composer.composed == {}  # each job composed once, by the check
    finally:
        GlobalHydra.instance().clear()


def _hydra_files(folder: Path) -> dict[str, str]:
    """Every ``.hydra/*.yaml`` and ``multirun.yaml`` under ``folder``, by relative path, with
    the one setting and override the comparison adds (``hydra.verbose``) taken out."""
    files = {}
    for path in sorted([*folder.rglob(".hydra/*.yaml"), *folder.glob("multirun.yaml")]):
        lines = path.read_text().replace(str(folder), "<folder>").splitlines()
        kept = [x for x in lines if "hydra.verbose=" not in x and not x.startswith("  verbose:")]
        files[path.relative_to(folder).as_posix()] = "\n".join(kept)
    return files


@pytest.mark.parametrize("launch", [["-m", "hydra/launcher=stacked"], []], ids=["sweep", "run"])
def test_the_cli_runs_what_hydra_main_composes(tmp_path, launch):
    """``linlab-train`` runs a single run's checked config and a sweep's checked master
    without ``hydra.main`` composing them again; ``hydra.verbose=true`` goes through
    ``hydra.main`` itself (``Hydra.run``/``Hydra.multirun`` compose from scratch, with the
    version base its decorator sets): every ``.hydra/`` file and ``multirun.yaml`` must equal.
    Run as the console script runs (``python -m linlab.train`` sets the version base first)."""
    import os
    import subprocess
    import sys

    from test_cli import CONSOLE_SCRIPT

    grid = ["optimizer.lr=0.01,0.1"] if launch else []
    tiny = ["data.n_samples=64", "trainer.max_epochs=1", "callbacks=none"]
    folders = {}
    for name, extra in (("checked", []), ("hydra_main", ["hydra.verbose=true"])):
        folder = tmp_path / name / "out"
        key = "hydra.sweep.dir" if launch else "hydra.run.dir"
        subprocess.run(
            [
                sys.executable,
                "-c",
                CONSOLE_SCRIPT,
                *launch,
                *grid,
                *tiny,
                *extra,
                f"{key}={folder}",
            ],
            cwd=tmp_path,
            env={**os.environ, "OMP_NUM_THREADS": "1"},
            check=True,
            timeout=300,
        )
        folders[name] = _hydra_files(folder)
    assert folders["checked"] == folders["hydra_main"]
    assert len(folders["checked"]) == (7 if launch else 3)
    if launch:  # the jobs the check handed over were composed as hydra.main composes
        bases = {n: re.findall(r"version_base: .*", t) for n, t in folders["hydra_main"].items()}
        assert len({b[0] for b in bases.values() if b}) == 1, bases
