"""Nothing finished is lost: refused resumes and folders, locks, sweeps that resume, signals."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from conftest import QUIET, run_cli

from linlab.checks import launchers
from linlab.checks.preflight import problem
from linlab.machine import has_slurm
from linlab.report.cli import report
from linlab.run_state import hold_lock
from linlab.train import config_dir

TINY = [*QUIET, "data.n_samples=100", "trainer.max_epochs=2", "callbacks.figures.enabled=false"]
# one chunk per epoch (chunk_batches=auto) of 20000 single-sample steps: seconds per epoch
LONG = [
    *QUIET,
    "data.n_samples=20000",
    "data.batch_size=1",
    "data.val_fraction=0",
    "data.test_fraction=0",
    "trainer.max_epochs=50",
    "callbacks.figures.enabled=false",
    "callbacks.last_checkpoint.min_interval_s=0",
]


def start(args: list[str], cwd: Path, **popen) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "linlab.train", *args],
        cwd=cwd,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        **popen,
    )


def wait_for(path: Path, proc: subprocess.Popen, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists():
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, f"{path} never appeared"
        time.sleep(0.01)


def test_resumes_and_used_folders_that_would_lose_a_result_are_refused(tmp_path):
    run = tmp_path / "run"
    old_umask = os.umask(0o027)
    try:
        run_cli([*TINY, f"hydra.run.dir={run}"], cwd=tmp_path)
    finally:
        os.umask(old_umask)
    results = run / "results.json"
    assert results.stat().st_mode & 0o777 == 0o666 & ~0o027
    finished = results.read_bytes()
    here = [*TINY, f"hydra.run.dir={run}"]

    refused = run_cli([*here, "ckpt_path=last", "data.n_features=3"], tmp_path, check=False)
    assert refused.returncode == 2 and "data.n_features (5 → 3)" in refused.stderr
    assert "Traceback" not in refused.stderr
    assert results.read_bytes() == finished

    assert problem([*here, "ckpt_path=last", "trainer.max_epochs=4"], config_dir()) is None
    adam = [*here, "ckpt_path=last", "optimizer=adam"]
    assert "optimizer._target_" in problem(adam, config_dir())
    assert "already holds a run (status: ok)" in problem(here, config_dir())
    assert problem([*here, "overwrite=true"], config_dir()) is None
    fresh = [*TINY, f"hydra.run.dir={tmp_path / 'fresh'}"]
    assert "holds no run to resume" in problem([*fresh, "ckpt_path=last"], config_dir())
    assert "is not a checkpoint" in problem([*fresh, f"ckpt_path={results}"], config_dir())
    lone = tmp_path / "lone.ckpt"  # a checkpoint without its run folder: shapes are compared
    lone.write_bytes((run / "checkpoints" / "last.ckpt").read_bytes())
    assert "model.w" in problem([*fresh, f"ckpt_path={lone}", "data.n_features=3"], config_dir())
    assert not (tmp_path / "fresh").exists()
    assert results.read_bytes() == finished

    with hold_lock(run):  # a second writer, as another process's run would hold it
        busy = run_cli([*here, "ckpt_path=last", "trainer.max_epochs=4"], tmp_path, check=False)
    assert busy.returncode == 2 and f"another process (pid {os.getpid()}" in busy.stderr
    assert results.read_bytes() == finished


def test_a_rerun_sweep_trains_only_what_did_not_finish(tmp_path):
    sweep = tmp_path / "sweep"
    tiny = [o for o in TINY if not o.startswith("callbacks.")]
    args = ["-m", *tiny, "callbacks=none", "optimizer.lr=0.01,0.1,0.2", f"hydra.sweep.dir={sweep}"]
    run_cli(args, cwd=tmp_path)
    events = {p.name: sorted(e.name for e in p.glob("events.*")) for p in sweep.glob("lr=*")}
    (sweep / "lr=0.1" / "results.json").write_text("[1, 2]")  # e.g. a broken copy
    for path in (sweep / "lr=0.2").rglob("*"):
        if path.is_file():
            path.unlink()
    (sweep / "lr=0.2").rename(tmp_path / "gone")
    text = report(sweep)
    assert "1 ok, 1 pending, 1 unreadable" in text
    assert "lr=0.1: " in text and "holds a list, not a JSON object" in text

    rerun = run_cli(args, cwd=tmp_path)
    assert "1 of 3 jobs finished in an earlier launch" in rerun.stdout
    after = {p.name: sorted(e.name for e in p.glob("events.*")) for p in sweep.glob("lr=*")}
    assert after["lr=0.01"] == events["lr=0.01"], "the finished job was not trained again"
    assert after["lr=0.1"] != events["lr=0.1"]
    assert len(after["lr=0.1"]) == len(after["lr=0.2"]) == len(events["lr=0.01"])
    statuses = {p.parent.name: json.loads(p.read_text())["status"] for p in sweep.glob("*/res*")}
    assert statuses == {"lr=0.01": "ok", "lr=0.1": "ok", "lr=0.2": "ok"}


def test_sigterm_stops_a_whole_epoch_chunk_within_a_second(tmp_path):
    run = tmp_path / "run"
    proc = start([*LONG, f"hydra.run.dir={run}"], tmp_path)
    wait_for(run / "checkpoints" / "last.ckpt", proc)  # the second epoch's chunk is running
    time.sleep(0.3)
    sent = time.monotonic()
    proc.send_signal(signal.SIGTERM)
    wait_for(run / "checkpoints" / "interrupted.ckpt", proc, timeout=30)
    assert time.monotonic() - sent < 1.0
    _, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 130, stderr
    results = json.loads((run / "results.json").read_text())
    checkpoint = torch.load(run / "checkpoints" / "interrupted.ckpt", weights_only=True)
    assert results["status"] == "interrupted"
    epochs = results["epochs"]  # whole epochs done; the steps of the interrupted one count too
    assert epochs >= 1 and epochs * 20000 < results["steps"] < (epochs + 1) * 20000
    assert checkpoint["global_step"] == results["steps"]


def children(pid: int) -> list[int]:
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            found.append(int(stat.parent.name))
    return found


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def test_joblib_sweep_ctrl_c_is_one_line_and_killed_parent_stops_workers(tmp_path):
    short_epochs = [*(o for o in LONG if "n_samples" not in o), "data.n_samples=2000"]
    joblib = ["-m", *short_epochs, "hydra/launcher=joblib", "hydra.launcher.n_jobs=2"]
    args = [*joblib, "optimizer.lr=0.001,0.002", f"hydra.sweep.dir={tmp_path}/a"]
    proc = start(args, tmp_path, start_new_session=True)
    wait_for(tmp_path / "a" / "lr=0.001" / "checkpoints" / "last.ckpt", proc)
    os.killpg(proc.pid, signal.SIGINT)  # what Ctrl-C in a terminal does
    _, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 130
    assert "Traceback" not in stderr and stderr.count("linlab-train: interrupted") == 1, stderr

    args = [*joblib, "optimizer.lr=0.003,0.004", f"hydra.sweep.dir={tmp_path}/b"]
    proc = start(args, tmp_path, start_new_session=True)
    wait_for(tmp_path / "b" / "lr=0.003" / "checkpoints" / "last.ckpt", proc)
    workers = children(proc.pid)
    proc.send_signal(signal.SIGKILL)
    proc.communicate()
    deadline = time.monotonic() + 20
    while any(alive(w) for w in workers) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not any(alive(w) for w in workers)
    for results in (tmp_path / "b").glob("*/results.json"):
        assert json.loads(results.read_text())["status"] == "interrupted"


def test_ddp_run_with_frequent_save_decisions_never_hangs(tmp_path):
    """Saves due every 5 ms at 2 ms epochs: ranks reading their own clocks disagree often."""
    args = [
        *TINY,
        "trainer=ddp_cpu",
        "trainer.max_epochs=40",
        "callbacks.last_checkpoint.min_interval_s=0.005",
        "trainer.strategy.collective_timeout_s=60",
    ]
    for attempt in range(2):
        run_cli([*args, f"hydra.run.dir={tmp_path}/{attempt}"], cwd=tmp_path)
        results = json.loads((tmp_path / str(attempt) / "results.json").read_text())
        assert results["status"] == "ok" and results["epochs"] == 40


@pytest.mark.parametrize(
    "overrides, message",
    [
        (["hydra/launcher=slurm"], "needs SLURM"),
        (["hydra/launcher=joblib", "hydra.launcher.n_jobs=0"], "hydra.launcher.n_jobs=0"),
    ],
)
def test_launcher_misconfigurations_are_refused_before_any_folder(tmp_path, overrides, message):
    if message == "needs SLURM" and has_slurm():
        pytest.skip("this machine has SLURM")
    sweep = tmp_path / "sweep"
    argv = ["-m", *overrides, "optimizer.lr=0.1,0.2", f"hydra.sweep.dir={sweep}"]
    assert message in problem(argv, config_dir())
    assert not sweep.exists()


def test_a_launcher_plugin_that_is_not_installed_names_the_extra(monkeypatch):
    monkeypatch.setitem(launchers.PLUGINS, "joblib", "hydra_plugins.not_installed_launcher")
    refused = problem(["-m", "hydra/launcher=joblib", "optimizer.lr=0.1,0.2"], config_dir())
    assert 'pip install -e ".[launchers]"' in refused
