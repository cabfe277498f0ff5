"""``hydra.launcher.executor``: a stacked sweep's groups on submitit (its local executor) and on
a Ray instance started on 127.0.0.1 give the same folders and results as in-process groups."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from conftest import REPO
from sweeps import SRC
from test_stacked import TESTS, finish, results, start

from linlab.checks.launchers import check
from linlab.errors import ConfigError

GRID = ["optimizer.lr=0.01,0.1", "data.batch_size=16,32"]  # 2 groups (one per batch size)
TINY = ["data.n_samples=200", "trainer.max_epochs=2", "callbacks.figures.enabled=false"]
STACKED = ["hydra/launcher=stacked"]
EXECUTORS = {
    "local": [],
    "submitit": ["hydra.launcher.executor=submitit", "hydra.launcher.submitit.cluster=local"],
    "ray": ["hydra.launcher.executor=ray"],
}


@pytest.fixture(scope="module")
def sweeps(tmp_path_factory):
    root = tmp_path_factory.mktemp("executors")
    procs = {
        name: start([*STACKED, *GRID, *TINY, *extra, f"hydra.sweep.dir={root / name}"], REPO)
        for name, extra in EXECUTORS.items()
    }
    for name, proc in procs.items():
        code, out, err = finish(proc)
        assert code == 0, (name, out, err)
        lines = [line for line in out.splitlines() if line.startswith("[")]
        assert len(lines) == 4 and all(" ok " in line for line in lines), (name, out)
        header = f"sweep {root / name}: 4 jobs, launcher stacked (executor {name})"
        assert header in out.splitlines(), (name, out)  # names where the groups run
    return {name: root / name for name in procs}


@pytest.mark.parametrize("executor", ["submitit", "ray"])
def test_an_executors_sweep_equals_the_in_process_one(sweeps, executor):
    expected, got = results(sweeps["local"]), results(sweeps[executor])
    assert len(expected) == 4 and set(got) == set(expected)
    for job, member in got.items():
        for key in ("status", "steps", "epochs", "weights", "bias", "val_loss", "stacked_members"):
            assert member[key] == expected[job][key], (job, key)
        for name in (".hydra/config.yaml", ".hydra/overrides.yaml", "checkpoints/last.ckpt"):
            assert (sweeps[executor] / job / name).is_file(), (job, name)
        overrides = (sweeps[executor] / job / ".hydra" / "overrides.yaml").read_text()
        assert overrides == (sweeps["local"] / job / ".hydra" / "overrides.yaml").read_text()


def test_a_group_lost_on_its_worker_fails_its_members_and_a_rerun_trains_them(tmp_path):
    """The worker of the batch_size=32 group dies (once): its members are ``failed``, the
    other group finishes; the same command again trains only the lost group."""
    folder = tmp_path / "sweep"
    args = [*STACKED, *GRID, *TINY, *EXECUTORS["submitit"], f"hydra.sweep.dir={folder}"]
    args += ["+callbacks.die._target_=dying.DieOnceIn", "+callbacks.die.part='batch_size=32'"]
    args += [f"+callbacks.die.marker={tmp_path / 'died'}"]
    code, out, err = finish(start(args, REPO))
    assert code == 1, (out, err)
    first = results(folder)
    assert {job: r["status"] for job, r in first.items()} == {
        job: "failed" if "batch_size=32" in job else "ok" for job in first
    }
    assert len(first) == 4
    kept = {job: (folder / job / "results.json").read_bytes() for job in first}
    code, out, err = finish(start(args, REPO))
    assert code == 0, (out, err)
    again = results(folder)
    assert all(r["status"] == "ok" for r in again.values()), again
    lines = [line.split() for line in out.splitlines() if line.startswith("[")]
    assert sorted(line[0] for line in lines) == ["[3/4]", "[4/4]"], out  # each trained again
    assert sorted(line[1] for line in lines) == sorted(j for j in first if "batch_size=32" in j)
    assert all("ok" in line for line in lines), out
    for job in ("lr=0.01,batch_size=16", "lr=0.1,batch_size=16"):
        assert (folder / job / "results.json").read_bytes() == kept[job]  # not retrained


REFUSED = {
    "hydra.launcher.executor=dask": "hydra.launcher.executor=dask is not allowed; allowed: "
    "local|joblib|submitit|ray",
    "hydra.launcher.submitit.cluster=aws": "hydra.launcher.submitit.cluster=aws is not allowed; "
    "allowed: slurm|local",
    "hydra.launcher.executor=submitit": "hydra.launcher.executor=submitit sends groups to SLURM, "
    "and this machine has no sbatch/srun on the PATH; allowed here: "
    "hydra.launcher.submitit.cluster=local (the same array as local processes)",
}


@pytest.mark.parametrize("override", list(REFUSED))
def test_a_bad_executor_setting_is_refused_in_one_line(override):
    with pytest.raises(ConfigError) as refused:
        check([*STACKED, "optimizer.lr=0.1,0.2", override])
    assert str(refused.value) == REFUSED[override]


def test_the_cli_refuses_a_bad_executor_before_any_folder(tmp_path):
    folder = tmp_path / "sweep"
    env = {**os.environ, "PYTHONPATH": f"{SRC}:{TESTS}", "OMP_NUM_THREADS": "1"}
    override = "hydra.launcher.executor=dask"
    args = [*STACKED, override, f"hydra.sweep.dir={folder}"]
    proc = subprocess.run(
        [sys.executable, "-m", "linlab.train", "-m", *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        env=env,
    )
    assert proc.returncode == 2, (proc.stdout, proc.stderr)
    assert proc.stderr.strip().splitlines() == [f"linlab-train: error: {REFUSED[override]}"]
    assert not folder.exists()
