"""A killed joblib sweep leaves no process of its own behind: workers and resource trackers.

Sweeps run in their own session (``start_new_session``), so every process they start, loky's
workers and its and multiprocessing's resource trackers included, carries the session id of
the sweep's process. Each sweep's process is killed with SIGKILL at another point (while loky
starts its workers, as the first job is handed to a worker, as a worker that finished a job is
handed the next, mid-job), at a random moment within it; after a bounded wait the process
table must hold nothing of that session.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from conftest import QUIET

SEED = int(os.environ.get("LINLAB_TEST_SEED", time.time_ns() % 10**6))
SWEEP = [
    "-m",
    *QUIET,
    "data.n_samples=400",
    "data.batch_size=1",
    "trainer.max_epochs=3",
    "callbacks=none",
    "hydra/launcher=joblib",
    "hydra.launcher.n_jobs=2",
    "optimizer.lr=0.001,0.002,0.003,0.004,0.005",
]
WAIT_S = 15  # a worker polls its parent every 0.2 s; a job stops at its next minibatch


def count(pattern: str, at_least: int) -> Callable[[Path], bool]:
    return lambda sweep: len(list(sweep.glob(pattern))) >= at_least


# where: (when it may be killed, a random extra wait in seconds)
KILL_POINTS = {
    "workers_starting": (count("sweep.json", 1), 1.0),
    "first_job_handed_over": (count("*/.hydra", 1), 0.05),
    "next_job_handed_over": (count("*/results.json", 1), 0.05),
    "mid_job": (count("*/.hydra", 3), 0.3),
}


def session_members(session: int) -> list[str]:
    """Command lines of the live processes of ``session`` (zombies are dead)."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
            command = (stat.parent / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        if int(fields[3]) == session and fields[0] != "Z":
            found.append(f"{stat.parent.name}: {command[:120]}")
    return found


@pytest.fixture(scope="module")
def leftovers(tmp_path_factory) -> dict[str, list[str]]:
    """Per kill point: the sweep's processes still alive ``WAIT_S`` after its parent's kill."""
    tmp = tmp_path_factory.mktemp("strays")
    rng = random.Random(SEED)
    sweeps = {}
    for name in KILL_POINTS:
        sweeps[name] = subprocess.Popen(
            [sys.executable, "-m", "linlab.train", *SWEEP, f"hydra.sweep.dir={tmp / name}"],
            cwd=tmp,
            env={**os.environ, "OMP_NUM_THREADS": "1"},
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
    waiting = dict(KILL_POINTS)
    killed = {}
    deadline = time.monotonic() + 300
    while waiting and time.monotonic() < deadline:
        for name, (ready, wait) in list(waiting.items()):
            if sweeps[name].poll() is None and ready(tmp / name):
                time.sleep(rng.uniform(0, wait))
                sweeps[name].send_signal(signal.SIGKILL)
                killed[name] = time.monotonic()
                del waiting[name]
        time.sleep(0.005)
    assert not waiting, f"never reached (LINLAB_TEST_SEED={SEED}): {list(waiting)}"
    for proc in sweeps.values():
        proc.wait()
    left = {}
    for name, proc in sweeps.items():
        while session_members(proc.pid) and time.monotonic() < killed[name] + WAIT_S:
            time.sleep(0.2)
        left[name] = session_members(proc.pid)
        for line in left[name]:  # clean up after a failure: this test's own processes only
            os.kill(int(line.split(":")[0]), signal.SIGKILL)
    return left


@pytest.mark.parametrize("point", list(KILL_POINTS))
def test_a_killed_sweep_leaves_no_process(leftovers, point):
    assert leftovers[point] == [], f"LINLAB_TEST_SEED={SEED}"
