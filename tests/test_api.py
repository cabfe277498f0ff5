"""``linlab.run``/``linlab.sweep`` are the CLI's jobs: same results.json, same refusals."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from omegaconf import OmegaConf

import linlab
from linlab import tags
from linlab.results import TIMING_KEYS

RUN = ["experiment=two_x", "trainer.max_epochs=5", "callbacks.figures.enabled=false"]
GRID = ["experiment=two_x", "trainer.max_epochs=3", "optimizer.lr=0.01,0.05", "seed=0,1"]


CLI = """
import contextlib, io, json, sys
from linlab.cli import main
command_lines, refused = json.loads(sys.argv[1])
for argv in command_lines:
    sys.argv = ["linlab-train", *argv]
    try:
        main()
    except SystemExit as stop:
        assert not stop.code, (argv, stop.code)
answers = []
for argv in refused:
    sys.argv = ["linlab-train", *argv]
    stderr = io.StringIO()
    with contextlib.redirect_stderr(stderr):
        try:
            main()
            code = 0
        except SystemExit as stop:
            code = stop.code
    answers.append([code, stderr.getvalue()])
with open("refusals.json", "w") as f:
    json.dump(answers, f)
"""

# one command line per family of refusal (tests/test_bad_configs.py has them all)
FAMILIES = [
    ["optimizer.lr=-1"],  # a value out of range
    ["data.weights=[1,2,3]"],  # a list of the wrong length
    ["optimzer.lr=0.1"],  # a typo in a key
    ["data=gausian"],  # a typo in a group's option
    ["optimizer.lr=0.1,0.2"],  # a sweep without -m
    ["optimizer.lr==1"],  # override syntax
    ["+callbacks.x._target_=shutil.copyfile"],  # a _target_ out of bounds
]


@pytest.fixture(scope="module")
def cli_folders(tmp_path_factory) -> Path:
    """``linlab-train``'s entry point, in a process of its own (torch imported once for all):
    ``RUN`` into ``cli_run``, ``-m GRID`` with the stacked launcher into ``cli_sweep``, then
    each of ``FAMILIES`` (exit code and stderr into ``refusals.json``)."""
    folder = tmp_path_factory.mktemp("cli")
    command_lines = [
        [*RUN, "hydra.run.dir=cli_run"],
        ["-m", *GRID, "hydra/launcher=stacked", "hydra.sweep.dir=cli_sweep"],
    ]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(
        [sys.executable, "-c", CLI, json.dumps([command_lines, FAMILIES])],
        cwd=folder,
        env=env,
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, proc.stderr
    return folder


def comparable(results_file: Path) -> dict:
    results = json.loads(results_file.read_text())
    return {k: v for k, v in results.items() if k not in TIMING_KEYS}


def test_import_linlab_stays_free_of_torch():
    code = (
        "import sys, linlab; linlab.ConfigError, linlab.__all__; "
        "assert 'torch' not in sys.modules and 'hydra' not in sys.modules, 'heavy import'"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
    assert linlab.ConfigError is __import__("linlab.errors").errors.ConfigError


def test_run_equals_the_cli_run(cli_folders, tmp_path, monkeypatch):
    """Same results and overrides; the config is composed once (checked, then run)."""
    from hydra._internal.config_loader_impl import ConfigLoaderImpl

    compositions = []
    compose = ConfigLoaderImpl.load_configuration

    def counted(self, *args, **kwargs):
        compositions.append(args)
        return compose(self, *args, **kwargs)

    monkeypatch.setattr(ConfigLoaderImpl, "load_configuration", counted)
    monkeypatch.chdir(tmp_path)
    run = linlab.run(
        *RUN[:1], trainer__max_epochs=5, callbacks__figures__enabled=False, outdir="api"
    )
    assert len(compositions) == 1, compositions
    assert run.folder == tmp_path / "api" and run.status == "ok"
    cli_run = cli_folders / "cli_run"
    assert comparable(tmp_path / "api" / "results.json") == comparable(cli_run / "results.json")
    overrides = Path(".hydra") / "overrides.yaml"
    assert (tmp_path / "api" / overrides).read_text() == (cli_run / overrides).read_text()
    hydra_yaml = [OmegaConf.load(f / ".hydra" / "hydra.yaml").hydra for f in (run.folder, cli_run)]
    assert [h.mode for h in hydra_yaml] == ["RUN", "RUN"]
    assert hydra_yaml[0].runtime.choices == hydra_yaml[1].runtime.choices
    assert [set(h.overrides.hydra) >= {"hydra.mode=RUN"} for h in hydra_yaml] == [True, True]
    history = run.history
    assert list(history[tags.param("w0")].dropna().index) == list(range(6))
    assert run.model.w.item() == pytest.approx(run.results["weights"][0])


@pytest.fixture(scope="module")
def sweeps(cli_folders):
    """The CLI's stacked sweep (``cli_sweep``) and the same from Python (``api``)."""
    folder = cli_folders
    cwd = Path.cwd()
    os.chdir(folder)
    try:
        sweep = linlab.sweep(
            *GRID[:2], optimizer__lr=[0.01, 0.05], seed=(0, 1), outdir=str(folder / "api")
        )
    finally:
        os.chdir(cwd)
    return folder, sweep


def test_sweep_equals_the_cli_sweep_job_for_job(sweeps):
    folder, sweep = sweeps
    cli_jobs = sorted(p.parent.name for p in (folder / "cli_sweep").glob("*/results.json"))
    assert cli_jobs == sorted(p.parent.name for p in (folder / "api").glob("*/results.json"))
    assert len(cli_jobs) == 4
    for job in cli_jobs:
        assert comparable(folder / "api" / job / "results.json") == comparable(
            folder / "cli_sweep" / job / "results.json"
        ), job
    table = sweep.table
    assert set(table.index) == set(cli_jobs) and set(table["status"]) == {"ok"}
    assert list(table.columns[:2]) == ["optimizer.lr", "seed"]
    for job in cli_jobs:
        results = json.loads((folder / "api" / job / "results.json").read_text())
        assert table.loc[job, "optimizer.lr"] == results["lr"]
        assert table.loc[job, "seed"] == results["seed"]
        assert table.loc[job, "epochs"] == results["epochs"] == 3
    assert len(sweep.runs) == 4 and all(r.status == "ok" for r in sweep.runs)
    assert {r.folder.name for r in sweep.runs} == set(cli_jobs)


def test_a_killed_sweeps_unstarted_jobs_are_pending_rows(sweeps, tmp_path):
    folder, _ = sweeps
    copy = tmp_path / "killed"
    subprocess.run(["cp", "-r", str(folder / "api"), str(copy)], check=True)
    gone = sorted(p.name for p in copy.iterdir() if (p / "results.json").is_file())[-1]
    subprocess.run(["rm", "-r", str(copy / gone)], check=True)  # never started
    sweep = linlab.load_sweep(copy)
    assert sweep.table.loc[gone, "status"] == "pending"
    assert (sweep.table["status"] == "ok").sum() == 3


def test_a_bad_setting_raises_config_error_with_the_clis_line(cli_folders, tmp_path, monkeypatch):
    """Each family's refusal by ``linlab-train`` is the ConfigError's message; nothing is
    written, by the CLI or by Python."""
    refusals = json.loads((cli_folders / "refusals.json").read_text())
    monkeypatch.chdir(tmp_path)
    for argv, (code, stderr) in zip(FAMILIES, refusals, strict=True):
        (line,) = stderr.splitlines()
        assert code == 2, argv
        with pytest.raises(linlab.ConfigError) as refused:
            linlab.run(*argv)
        assert f"linlab-train: error: {refused.value}" == line
    assert list(tmp_path.iterdir()) == []
    assert not (cli_folders / "outputs").exists() and not (cli_folders / "multirun").exists()


def test_keyword_settings_are_the_same_overrides(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(linlab.ConfigError) as by_keyword:
        linlab.run(optimizer__lr=-1)
    with pytest.raises(linlab.ConfigError) as by_override:
        linlab.run("optimizer.lr=-1")
    assert str(by_keyword.value) == str(by_override.value)
    with pytest.raises(linlab.ConfigError) as by_keyword:
        linlab.run(data__weights=[1, 2, 3], model__init={"weight": [1, 1, 1, 1, 1]})
    with pytest.raises(linlab.ConfigError) as by_override:
        linlab.run("data.weights=[1,2,3]", "model.init={weight:[1,1,1,1,1]}")
    assert str(by_keyword.value) == str(by_override.value)
    with pytest.raises(linlab.ConfigError, match=r"data\.batch_size"):
        linlab.sweep(optimizer__lr=[0.1, 0.2], data__batch_size=0)
    assert list(tmp_path.iterdir()) == []


def test_a_used_folder_is_refused_unless_overwrite(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    first = linlab.run(*RUN, outdir="run")
    with pytest.raises(linlab.ConfigError, match="already holds a run"):
        linlab.run(*RUN, outdir="run")
    assert first.results["status"] == "ok"
    again = linlab.run(*RUN, "optimizer.lr=0.02", outdir="run", overwrite=True)
    assert again.results["lr"] == 0.02
