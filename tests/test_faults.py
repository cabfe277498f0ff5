"""Runs that stop early leave usable records: divergence, failures, kills and Ctrl-C."""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import faulty
import pytest
import torch
from conftest import QUIET, run_cli, train_run
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from linlab import interrupts, tags
from linlab.results import write_json_atomic

# ~0.3 s an epoch of 1000 single-sample steps: long enough to be stopped part-way through
LONG_EPOCHS = [
    *QUIET,
    "data.n_samples=1000",
    "data.batch_size=1",
    "data.val_fraction=0",
    "data.test_fraction=0",
    "optimizer.lr=0.001",
    "optimizer.momentum=0.9",
    "trainer.max_epochs=4",
    "trainer.log_every_n_steps=100",
    "callbacks.last_checkpoint.min_interval_s=0",  # last.ckpt after every epoch
]


def scalars(run_dir: Path, tag: str) -> list[int]:
    events = EventAccumulator(str(run_dir))
    events.Reload()
    return [e.step for e in events.Scalars(tag)]


def start_cli(args: list[str], cwd: Path) -> subprocess.Popen:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.Popen(
        [sys.executable, "-m", "linlab.train", *args],
        cwd=cwd,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        # a shell's background job ignores SIGINT, and so would the run: restore the default
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )


def wait_for(path: Path, proc: subprocess.Popen, timeout: float = 300) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists():
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, f"{path} never appeared"
        time.sleep(0.02)


def wait_for_step(checkpoint: Path, step: int, proc: subprocess.Popen) -> None:
    """Wait until the run has saved ``checkpoint`` at ``step`` or later (replaced atomically)."""
    deadline = time.monotonic() + 300
    while not checkpoint.exists() or saved_step(checkpoint) < step:
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, f"{checkpoint} never reached step {step}"
        time.sleep(0.02)


def saved_step(checkpoint: Path) -> int:
    return torch.load(checkpoint, weights_only=True)["global_step"]


def test_divergence_stops_with_last_finite_values(train_in):
    results = train_in(["data.n_samples=200", "optimizer.lr=50", "trainer.max_epochs=5"])
    assert results["status"] == "diverged"
    assert results["epochs"] < 5
    finite = [results["train_loss"], results["val_loss"], results["bias"], *results["weights"]]
    assert all(math.isfinite(v) for v in finite), results


def test_results_json_is_never_half_written(tmp_path):
    path = tmp_path / "results.json"
    write_json_atomic(path, {"status": "ok", "train_loss": 0.5})
    with pytest.raises(TypeError):
        write_json_atomic(path, {"status": "ok", "train_loss": 0.25, "oops": object()})
    assert json.loads(path.read_text()) == {"status": "ok", "train_loss": 0.5}
    assert [p.name for p in tmp_path.iterdir()] == ["results.json"]


def test_failing_run_flushes_tensorboard(tmp_path):
    overrides = [
        "data=line_1d",
        "trainer.max_epochs=5",
        "trainer.log_every_n_steps=1",
        "+callbacks.fail._target_=faulty.FailAtEpoch",
        "+callbacks.fail.epoch=3",
    ]
    with pytest.raises(RuntimeError, match="on purpose"):
        train_run(overrides, tmp_path / "run")
    assert scalars(tmp_path / "run", tags.TRAIN_LOSS) == [0, 1, 2]


def test_last_checkpoint_waits_min_interval_and_saves_the_end(tmp_path):
    last = tmp_path / "short" / "checkpoints" / "last.ckpt"
    overrides = [
        *QUIET,
        "data.n_samples=200",
        "callbacks.last_checkpoint.min_interval_s=1e9",  # no epoch end is due
        "+callbacks.probe._target_=faulty.FileAtEpochEnds",
        f"+callbacks.probe.path={last}",
    ]
    short = train_run([*overrides, "trainer.max_epochs=3"], tmp_path / "short")
    assert faulty.SEEN[str(last)] == [False, False, False]
    state = torch.load(last, weights_only=True)
    assert state["global_step"] == short["steps"]

    # the end-of-training checkpoint resumes exactly: 3 + 2 epochs equal 5 in one go
    longer = [*overrides, "trainer.max_epochs=5"]
    resumed = train_run([*longer, "ckpt_path=last"], tmp_path / "short")
    reference = train_run(longer, tmp_path / "reference")
    assert resumed["weights"] == reference["weights"] and resumed["bias"] == reference["bias"]
    assert resumed["steps"] == reference["steps"]


def test_sigkill_mid_epoch_then_resume_equals_uninterrupted_run(tmp_path):
    reference = train_run(LONG_EPOCHS, tmp_path / "reference")
    run_dir = tmp_path / "killed"
    folder = [f"hydra.run.dir={run_dir}"]
    proc = start_cli([*LONG_EPOCHS, *folder], cwd=tmp_path)
    wait_for(run_dir / "checkpoints" / "last.ckpt", proc)
    time.sleep(0.1)  # into the next epoch
    proc.send_signal(signal.SIGKILL)
    proc.communicate()
    assert proc.returncode == -signal.SIGKILL
    assert not (run_dir / "results.json").exists(), "killed before the end"
    killed_at = torch.load(run_dir / "checkpoints" / "last.ckpt", weights_only=True)
    assert killed_at["global_step"] < 4 * 1000

    run_cli([*LONG_EPOCHS, *folder, "ckpt_path=last"], cwd=tmp_path)
    resumed = json.loads((run_dir / "results.json").read_text())
    assert resumed["weights"] == reference["weights"]  # bit for bit
    assert resumed["bias"] == reference["bias"]
    for key in ("status", "epochs", "steps", "train_loss"):
        assert resumed[key] == reference[key], key
    state = torch.load(run_dir / "checkpoints" / "last.ckpt", weights_only=True)
    ref_state = torch.load(tmp_path / "reference/checkpoints/last.ckpt", weights_only=True)
    assert state["linlab"] == ref_state["linlab"]  # status and first loss survive the resume
    assert state["global_step"] == ref_state["global_step"] == 4 * 1000
    # one TensorBoard run (the same folder), its steps reaching the end
    assert not any(p.is_dir() and p.name.startswith("version") for p in run_dir.iterdir())
    assert max(scalars(run_dir, tags.TRAIN_LOSS)) == 4 * 1000 - 100


def test_ctrl_c_ends_with_status_interrupted_checkpoint_and_log(tmp_path):
    run_dir = tmp_path / "run"
    # 12 epochs (~3 s): interrupted after 2 epochs, by a checkpoint not a timer, however busy
    overrides = [o for o in LONG_EPOCHS if not o.startswith("trainer.max_epochs=")]
    overrides += ["trainer.max_epochs=12", f"hydra.run.dir={run_dir}"]
    proc = start_cli(overrides, cwd=tmp_path)
    wait_for_step(run_dir / "checkpoints" / "last.ckpt", 2 * 1000, proc)  # 2 epochs done
    proc.send_signal(signal.SIGINT)
    _, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 130, stderr
    assert "Traceback" not in stderr
    results = json.loads((run_dir / "results.json").read_text())
    assert results["status"] == "interrupted"
    assert 2 * 1000 <= results["steps"] < 12 * 1000
    checkpoint = torch.load(run_dir / "checkpoints" / "interrupted.ckpt", weights_only=True)
    assert checkpoint["linlab"]["status"] == "interrupted"
    assert checkpoint["global_step"] == results["steps"]
    logged = scalars(run_dir, tags.TRAIN_LOSS)
    assert logged[-1] >= results["steps"] - 100, "the log was flushed up to the interrupt"


class SendsCtrlCWhenCollected:
    """Ctrl-C typed while a finalizer runs, as between two jobs of a sweep."""

    def __del__(self) -> None:
        os.kill(os.getpid(), signal.SIGINT)
        time.sleep(0.5)  # the handler runs here, inside __del__


def test_a_ctrl_c_that_a_finalizer_swallows_still_stops_the_next_fit():
    previous = signal.signal(signal.SIGINT, interrupts.on_ctrl_c)
    dropped, unraisable_hook = [], sys.unraisablehook
    sys.unraisablehook = lambda unraisable: dropped.append(unraisable.exc_type)
    try:
        victim = SendsCtrlCWhenCollected()
        del victim  # Python hands the KeyboardInterrupt to sys.unraisablehook and goes on
        assert dropped == [KeyboardInterrupt]
        with interrupts.stop_at_minibatch_boundary():
            assert interrupts.STATE.stop  # the next fit ends at its first minibatch boundary
    finally:
        sys.unraisablehook = unraisable_hook
        signal.signal(signal.SIGINT, previous)
        interrupts.STATE.asked = interrupts.STATE.received = interrupts.STATE.stop = False
