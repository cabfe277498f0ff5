"""A run stopped at any point goes on with the command linlab prints, or the one a user tries.

Runs are stopped with real signals at random moments of a few windows (before the first
checkpoint, mid-epoch, at an epoch's end, after the final checkpoint), continued by the printed
command as printed (after SIGKILL nothing is printed: the same command, or with
``ckpt_path=last``), and compared with an uninterrupted run bit for bit.
"""

from __future__ import annotations

import json
import os
import pickle
import random
import shlex
import signal
import subprocess
import sys
import time
import warnings
from collections.abc import Callable
from pathlib import Path

import pytest
import torch
from conftest import QUIET, run_cli, train_run

from linlab.checks.preflight import problem
from linlab.train import config_dir

EPOCH = 1000  # single-sample steps an epoch: ~0.3 s, long enough to land inside one
RUN = [
    *QUIET,
    "data.n_samples=1000",
    "data.batch_size=1",
    "data.val_fraction=0",
    "data.test_fraction=0",
    "optimizer.lr=0.001",
    "optimizer.momentum=0.9",
    "trainer.max_epochs=3",
    "callbacks.figures.enabled=false",
    "callbacks.last_checkpoint.min_interval_s=0",
]
COMPARED = ("weights", "bias", "train_loss", "status", "epochs", "steps")
SEED = int(os.environ.get("LINLAB_TEST_SEED", time.time_ns() % 10**6))


def saved_step(path: Path) -> int:
    try:
        return torch.load(path, weights_only=True)["global_step"]
    except Exception:  # replaced while read, or not there yet
        return -1


def started(run: Path) -> bool:
    return (run / ".hydra" / "config.yaml").is_file()


def checkpoint_at_least(step: int) -> Callable[[Path], bool]:
    return lambda run: saved_step(run / "checkpoints" / "last.ckpt") >= step


# name: (when to stop, a random extra wait in seconds, signal, what the user runs next)
STOPS = {
    "sigint_before_first_checkpoint": (started, 0.5, signal.SIGINT, "printed"),
    "sigkill_before_first_checkpoint": (started, 0.5, signal.SIGKILL, "same"),
    "sigterm_mid_epoch": (checkpoint_at_least(EPOCH), 0.25, signal.SIGTERM, "printed"),
    "sigkill_at_an_epoch_end": (checkpoint_at_least(2 * EPOCH), 0.0, signal.SIGKILL, "same"),
    "sigkill_in_final_writes": (checkpoint_at_least(3 * EPOCH), 0.0, signal.SIGKILL, "last"),
}


def cli(args: list[str]) -> list[str]:
    return [sys.executable, "-m", "linlab.train", *args]


def printed_command(stderr: str) -> list[str] | None:
    """The ``resume with: linlab-train ...`` line, as words a shell would pass."""
    for line in stderr.splitlines():
        if line.startswith("resume with: "):
            words = shlex.split(line.removeprefix("resume with: "))
            assert words[0] == "linlab-train"
            return words[1:]
    return None


@pytest.fixture(scope="module")
def stopped_and_continued(tmp_path_factory) -> tuple[dict, dict[str, tuple[dict, str]]]:
    """The reference run, and per stop: the continued run's results and what happened."""
    tmp = tmp_path_factory.mktemp("resume")
    reference = train_run(RUN, tmp / "reference")
    rng = random.Random(SEED)
    procs = {}
    for name in STOPS:
        args = [*RUN, f"hydra.run.dir={tmp / name}"]
        procs[name] = (
            args,
            subprocess.Popen(
                cli(args),
                cwd=tmp,
                env={**os.environ, "OMP_NUM_THREADS": "1"},
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
                preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
            ),
        )
    pending = dict(STOPS)
    delays = {name: rng.uniform(0, wait) for name, (_, wait, _, _) in STOPS.items()}
    deadline = time.monotonic() + 300
    while pending and time.monotonic() < deadline:
        for name, (ready, _, signum, _) in list(pending.items()):
            proc = procs[name][1]
            if proc.poll() is not None:
                del pending[name]  # ended before the stop: continuing must still be exact
            elif ready(tmp / name):
                time.sleep(delays[name])
                proc.send_signal(signum)
                del pending[name]
        time.sleep(0.005)
    assert not pending, f"never reached: {list(pending)}"
    continued = {}
    for name, (args, proc) in procs.items():
        _, stderr = proc.communicate(timeout=120)
        assert "Traceback" not in stderr, stderr
        how = STOPS[name][3]
        command = printed_command(stderr) if how == "printed" else None
        if command is None:
            command = [*args, "ckpt_path=last"] if how == "last" else args
        rerun = run_cli(command, cwd=tmp, check=False)
        assert rerun.returncode == 0, (name, SEED, stderr, rerun.stderr)
        for noise in ("Traceback", "exists and is not empty", "HINT", "Warning"):
            assert noise not in rerun.stderr, (name, rerun.stderr)  # train.log holds warnings
        results = json.loads((tmp / name / "results.json").read_text())
        continued[name] = (results, f"{name} (LINLAB_TEST_SEED={SEED}): {stderr[-300:]}")
    return reference, continued


@pytest.mark.parametrize("stop", list(STOPS))
def test_a_stopped_run_continues_bit_for_bit(stopped_and_continued, stop):
    reference, continued = stopped_and_continued
    results, context = continued[stop]
    for key in COMPARED:
        assert results[key] == reference[key], (key, context)


def test_a_resume_keeps_lightnings_warning_in_train_log(stopped_and_continued, tmp_path_factory):
    log = tmp_path_factory.getbasetemp() / "resume0" / "sigterm_mid_epoch" / "train.log"
    assert "Checkpoint directory" in log.read_text()  # not on the console (checked above)


def test_a_checkpoint_that_needs_unpickling_is_refused_in_linlabs_words(tmp_path):
    run = [*QUIET, f"hydra.run.dir={tmp_path / 'run'}"]
    for protocol, payload in ((2, {"state_dict": {}, "call": print}), (4, {"state_dict": {}})):
        path = tmp_path / f"protocol{protocol}.ckpt"
        path.write_bytes(pickle.dumps(payload, protocol=protocol))
        with warnings.catch_warnings(record=True) as shown:
            warnings.simplefilter("always")
            refused = problem([*run, f"ckpt_path={path}"], config_dir())
        assert not [w for w in shown if "pickle protocol" in str(w.message)]
        assert refused.startswith(f"ckpt_path={path}: {path} is not a checkpoint linlab loads")
        assert "could execute code" in refused and "\n" not in refused
        assert "GLOBAL print" in refused if protocol == 2 else "operand" in refused
    assert not (tmp_path / "run").exists()


def test_a_finished_run_is_not_rerun_over(tmp_path):
    run = tmp_path / "run"
    tiny = [*QUIET, "data.n_samples=50", "trainer.max_epochs=1", "callbacks=none"]
    run_cli([*tiny, f"hydra.run.dir={run}"], cwd=tmp_path)
    finished = (run / "results.json").read_bytes()
    for extra in ([], ["ckpt_path=last"]):
        refused = problem([*tiny, f"hydra.run.dir={run}", *extra], config_dir())
        assert "status: ok" in refused and "overwrite=true" in refused, refused
    assert (run / "results.json").read_bytes() == finished
