"""Optuna search (``hydra/sweeper=optuna``) through the real CLI: quality, resume, pruning,
joblib, and bad search spaces refused before anything runs.

The studies start together (module fixture) so their process start-ups overlap; each job is
tiny (200 samples, 5 epochs, no figures).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import optuna
import pytest
from conftest import train_run
from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution
from optuna.trial import TrialState
from sweeps import SRC, hparams_sessions

from linlab.checks.preflight import problem
from linlab.report.cli import report
from linlab.search.space import parse_space
from linlab.search.study import STATUS_ATTR, trial_folders
from linlab.train import config_dir

TINY = [
    "data.n_samples=200",
    "trainer.max_epochs=5",
    "callbacks.figures.enabled=false",
    "callbacks.theory.enabled=false",
]
LR_LOG = "optimizer.lr=tag(log,interval(1e-4,1))"
BATCHES = (8, 16, 32, 64)
SEARCH = ["hydra/sweeper=optuna", LR_LOG, f"data.batch_size=choice({','.join(map(str, BATCHES))})"]
# first half of the pruning study: two good trials; the second half adds a far too small lr
PRUNE_BASE = [
    "hydra/sweeper=optuna",
    "hydra.sweeper.pruner=median",
    "+hydra.sweeper.pruner_options.n_startup_trials=2",
    *TINY,
]
STUDIES = {
    "tpe16": [*SEARCH, "hydra.sweeper.n_trials=16", *TINY],
    "killed": [*SEARCH, "hydra.sweeper.n_trials=6", *TINY],
    "pruned": [*PRUNE_BASE, "optimizer.lr=0.1,0.05", "hydra.sweeper.sampler=grid"],
    "joblib": [
        *SEARCH,
        "hydra.sweeper.n_trials=4",
        "hydra.sweeper.n_jobs=2",
        "hydra/launcher=joblib",
        "hydra.launcher.n_jobs=2",
        *TINY,
    ],
}


def start(args: list[str], folder: Path, cwd: Path | None = None) -> subprocess.Popen:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(SRC)}
    return subprocess.Popen(
        [sys.executable, "-m", "linlab.train", "-m", *args, f"hydra.sweep.dir={folder}"],
        cwd=cwd,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,  # its own process group: joblib's workers go with it
    )


def finish(proc: subprocess.Popen) -> str:
    stdout, stderr = proc.communicate(timeout=300)
    assert proc.returncode == 0, f"{stdout}\n{stderr}"
    return stdout + stderr


def load(folder: Path) -> optuna.Study:
    return optuna.load_study(study_name="linlab", storage=f"sqlite:///{folder / 'optuna.db'}")


def results_of(folder: Path) -> dict[int, dict]:
    return {
        n: json.loads((f / "results.json").read_text()) for n, f in trial_folders(folder).items()
    }


@pytest.fixture(scope="module")
def studies(tmp_path_factory) -> dict[str, Any]:
    """Every study run to its end, except ``killed``: SIGKILLed after 2 finished trials; and
    ``refused``: a bad space, started from an empty folder."""
    root = tmp_path_factory.mktemp("search")
    folders: dict[str, Any] = {name: root / name for name in STUDIES}
    procs = {name: start(args, folders[name]) for name, args in STUDIES.items()}
    (root / "refused").mkdir()
    refused = start(
        ["hparams_search=lr_batch_tpe", "optimizer.lr=tag(log,interval(0,1))"],
        root / "refused" / "multirun",
        cwd=root / "refused",
    )
    try:
        killed = procs.pop("killed")
        deadline = time.monotonic() + 240
        while len(list(folders["killed"].glob("*/results.json"))) < 2:
            assert killed.poll() is None and time.monotonic() < deadline, killed.communicate()
            time.sleep(0.05)
        os.killpg(killed.pid, signal.SIGKILL)  # the sweep and the job it runs
        killed.wait()
        (folders["killed"] / "before_kill.json").write_text(
            json.dumps(results_of(folders["killed"]))
        )
        procs["killed"] = start(STUDIES["killed"], folders["killed"])  # the same command again
        finish(procs.pop("pruned"))  # then the pruning study goes on with a far too small lr
        tiny_lr = [*PRUNE_BASE, "optimizer.lr=1e-6", "hydra.sweeper.n_trials=3"]
        procs["pruned"] = start(tiny_lr, folders["pruned"])
        for proc in procs.values():
            finish(proc)
        _, stderr = refused.communicate(timeout=120)
        folders["refused"] = (refused.returncode, stderr, root / "refused")
    finally:
        for proc in [*procs.values(), refused]:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
    return folders


def test_seeded_tpe_reaches_the_best_of_a_4x4_grid(studies, tmp_path):
    folder = studies["tpe16"]
    study, results = load(folder), results_of(folder)
    assert len(results) == 16 == len(study.trials)
    for trial in study.trials:  # each job ran the trial's settings, and told the study its loss
        job = results[trial.number]
        assert job["lr"] == trial.params["optimizer.lr"]
        assert job["batch_size"] == trial.params["data.batch_size"]
        assert trial.user_attrs[STATUS_ATTR] == job["status"]
        if job["status"] == "ok":
            assert trial.state == TrialState.COMPLETE and trial.value == job["val_loss"]
    lrs = [10 ** (-4 + 4 * i / 3) for i in range(4)]  # 1e-4 ... 1, log-spaced like the search
    grid = [
        train_run([f"optimizer.lr={lr}", f"data.batch_size={b}", *TINY], tmp_path / f"{lr}_{b}")
        for lr in lrs
        for b in BATCHES
    ]
    best_grid = min(r["val_loss"] for r in grid if r["status"] == "ok")
    best_search = min(r["val_loss"] for r in results.values() if r["status"] == "ok")
    assert study.best_value == best_search
    assert best_search <= 1.05 * best_grid, (best_search, best_grid)

    text = report(folder)  # the Optuna view: best trial and Optuna's own figures
    best_folder = trial_folders(folder)[study.best_trial.number].name
    assert best_folder.startswith(f"trial={study.best_trial.number},lr=")
    assert f"best trial {study.best_trial.number} ({best_folder}): val_loss" in text
    for png in ("optuna_history.png", "optuna_importances.png", "report_scatter.png"):
        assert (folder / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    # a study is a scatter of the value over each searched key, not a heatmap
    assert "over optimizer.lr, data.batch_size (a search)" in text
    assert not (folder / "report_heatmap.png").exists()


def test_killed_study_resumes_keeping_finished_trials(studies):
    folder = studies["killed"]
    before = {int(n): r for n, r in json.loads((folder / "before_kill.json").read_text()).items()}
    after, study = results_of(folder), load(folder)
    finished_before = {n: r for n, r in before.items() if r.get("status") != "interrupted"}
    assert len(finished_before) >= 2
    for number, results in finished_before.items():  # kept, not run again
        assert after[number] == results
        trial = study.trials[number]
        assert trial.user_attrs[STATUS_ATTR] == results["status"]
        if results["status"] == "ok":
            assert trial.value == results["val_loss"]
    told = [t for t in study.trials if STATUS_ATTR in t.user_attrs]
    assert len(told) == 6  # n_trials finished in total
    lost = [t for t in study.trials if STATUS_ATTR not in t.user_attrs]
    assert all(t.state == TrialState.FAIL for t in lost)  # at most the trial that was running
    assert len(lost) <= 1
    for trial in lost:  # its folder, if the job had made one, says so
        assert after.get(trial.number, {"status": "interrupted"})["status"] == "interrupted"


def test_median_pruner_stops_a_far_too_small_lr_early(studies):
    folder = studies["pruned"]
    study, results = load(folder), results_of(folder)
    assert sorted(t.params["optimizer.lr"] for t in study.trials[:2]) == [0.05, 0.1]
    assert all(t.state == TrialState.COMPLETE for t in study.trials[:2])
    tiny, job = study.trials[2], results[2]
    assert job["lr"] == 1e-6 and tiny.state == TrialState.PRUNED
    assert job["status"] == "pruned" and job["epochs"] < 5
    assert len(tiny.intermediate_values) == job["epochs"]  # reported each epoch until pruned
    step = max(tiny.intermediate_values)  # pruned: its loss was above the others' median
    median = sum(t.intermediate_values[step] for t in study.trials[:2]) / 2
    assert tiny.intermediate_values[step] > median
    session = hparams_sessions(folder)[trial_folders(folder)[2].name]
    assert session["Status"] == "pruned"


def test_joblib_workers_run_the_study_and_report_through_the_storage(studies, tmp_path):
    folder = studies["joblib"]
    assert "JoblibLauncher" in (folder / "multirun.yaml").read_text()
    study, results = load(folder), results_of(folder)
    assert len(study.trials) == 4 and all(t.state == TrialState.COMPLETE for t in study.trials)
    for trial in study.trials:
        assert len(trial.intermediate_values) == 5  # one report per epoch, from a worker
        assert trial.intermediate_values[4] == pytest.approx(results[trial.number]["val_loss"])
    params = study.trials[0].params  # a worker's job is the same run as one trained here
    settings = [
        f"optimizer.lr={params['optimizer.lr']!r}",
        f"data.batch_size={params['data.batch_size']}",
    ]
    alone = train_run([*settings, *TINY], tmp_path / "alone")
    assert alone["val_loss"] == results[0]["val_loss"]


@pytest.mark.parametrize(
    ("overrides", "fragment"),
    [
        (["optimizer.lrr=tag(log,interval(1e-4,1))"], "optimizer.lrr is not a key of optimizer"),
        (["data.batch_size=choice()"], "empty choice"),
        (["optimizer.lr=interval(1,0.1)"], "needs low < high"),
        (["optimizer.lr=tag(log,interval(0,1))"], "a log interval needs low > 0"),
        (["data.batch_size=choice(8,100000)"], "data.batch_size=100000 is not allowed"),
        (["hydra.sweeper.sampler=tpee"], "allowed: tpe, random, grid, cmaes, gp"),
        (["hydra.sweeper.pruner=medain"], "allowed: none, median, successive_halving, hyperband"),
        (["hydra.sweeper.n_trials=0"], "hydra.sweeper.n_trials=0 is not allowed"),
        (
            ["hydra.sweeper.pruner=median", "+hydra.sweeper.pruner_options.n_warmup_step=2"],
            "n_warmup_step is not an argument of MedianPruner; allowed: n_startup_trials",
        ),
        (["hydra.sweeper.sampler=grid"], "sampler=grid needs listed values"),
    ],
)
def test_bad_search_space_refused_in_one_line(overrides, fragment):
    argv = ["-m", "hydra/sweeper=optuna", LR_LOG, *overrides]
    message = problem(argv, config_dir())
    assert message is not None and fragment in message, message
    assert "\n" not in message


def test_interval_without_a_search_sweeper_is_refused():
    message = problem(["-m", LR_LOG], config_dir())
    assert "is a search space: run it with hydra/sweeper=optuna" in message


def test_cli_refuses_a_bad_space_before_any_folder(studies):
    returncode, stderr, cwd = studies["refused"]
    assert returncode == 2
    assert stderr.count("\n") == 1 and "a log interval needs low > 0" in stderr
    assert list(cwd.iterdir()) == []  # no sweep folder, no study file


def test_the_preset_passes_the_checks():
    assert problem(["-m", "hparams_search=lr_batch_tpe", *TINY], config_dir()) is None


def test_space_reads_the_override_grammar_into_optuna_distributions():
    fixed, dims = parse_space(
        [
            "data.n_samples=200",
            "optimizer.lr=tag(log,interval(1e-4,1))",
            "data.batch_size=tag(int,interval(7.5,512))",
            "trainer.max_epochs=range(5,46,5)",
            "optimizer=sgd,adam",
            "data.batch_size=choice(8,64)",  # the last one of a key wins, as on a command line
        ]
    )
    assert fixed == ["data.n_samples=200"]
    space = {d.name: d.distribution() for d in dims}
    assert space == {
        "optimizer.lr": FloatDistribution(1e-4, 1.0, log=True),
        "trainer.max_epochs": IntDistribution(5, 45, step=5),
        "optimizer": CategoricalDistribution(["sgd", "adam"]),
        "data.batch_size": CategoricalDistribution([8, 64]),
    }
    epochs = next(d for d in dims if d.name == "trainer.max_epochs")
    assert epochs.grid_values() == list(range(5, 46, 5))
    (batch,) = parse_space(["data.batch_size=tag(int,interval(7.5,512))"])[1]
    assert batch.distribution() == IntDistribution(8, 512)
