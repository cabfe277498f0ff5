"""The terminal of an interactive single run: the live progress line and what Ctrl-C says.

Both drive ``linlab-train`` on a real pseudo-terminal (``tests/terminal.py``).
"""

from __future__ import annotations

import itertools
import json
import re
import shlex
import statistics
import subprocess
import sys

import pytest
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from terminal import SRC, run_on_terminal

from linlab import tags

FRAME = re.compile(
    r"epoch (\d+)/(\d+) .*?step ([\d,]+)/([\d,]+) train (\S+) val (\S+) "
    r"(\d+:\d\d:\d\d)<(\d+:\d\d:\d\d)"
)


def frames(session) -> list[tuple[float, dict]]:
    """Every progress line drawn, with when it arrived."""
    found = []
    for at, line in session.lines():
        for match in FRAME.finditer(line):
            epoch, epochs, step, steps, *rest = match.groups()
            found.append(
                (
                    at,
                    {
                        "epoch": int(epoch),
                        "epochs": int(epochs),
                        "step": int(step.replace(",", "")),
                        "steps": int(steps.replace(",", "")),
                        "left": rest[3],
                    },
                )
            )
    return found


def test_progress_line_moves_inside_one_long_chunk(tmp_path):
    # batch 1: 5,600 minibatches an epoch, all in one chunk (one training_step call)
    n_train = 5600
    session = run_on_terminal(
        ["data.n_samples=8000", "data.batch_size=1", "trainer.max_epochs=2", "callbacks=none"],
        tmp_path,
    )
    assert session.returncode == 0, session.text
    run_dir = next((tmp_path / "outputs").iterdir())
    results = json.loads((run_dir / "results.json").read_text())
    shown = frames(session)
    assert shown, session.text
    last = shown[-1][1]
    assert (last["epoch"], last["epochs"]) == (2, 2)  # 1-based: never "epoch 0", ends at 2/2
    assert last["step"] == last["steps"] == results["steps"] == 2 * n_train
    assert last["left"] == "0:00:00"
    assert re.search(r"status ok after 2 epochs", session.text)
    # inside the first chunk (epoch 1, before its last step) the line keeps moving
    inside = [(at, f["step"]) for at, f in shown if f["epoch"] == 1 and 0 < f["step"] < n_train]
    assert len({step for _, step in inside}) >= 3, inside
    assert all(a[1] <= b[1] for a, b in itertools.pairwise(inside))
    gaps = [b[0] - a[0] for a, b in itertools.pairwise(inside)]
    assert statistics.median(gaps) <= 0.5, gaps
    # the final line shows the run's own last losses (4 significant digits): the last
    # epoch's mean train loss as TensorBoard has it, and the final validation loss
    line = [m for m in FRAME.finditer(session.text)][-1]
    events = EventAccumulator(str(run_dir))
    events.Reload()
    epoch_loss = events.Scalars(tags.TRAIN_EPOCH_LOSS)[-1].value
    assert float(line[5]) == pytest.approx(float(f"{epoch_loss:.4g}"), rel=1e-6)
    assert float(line[6]) == pytest.approx(float(f"{results['val_loss']:.4g}"), rel=1e-6)


def test_ctrl_c_says_where_it_stopped_and_how_to_resume(tmp_path):
    args = [
        "data.n_samples=2000",
        "data.batch_size=8",  # 175 steps an epoch
        "trainer.max_epochs=60",
        "callbacks.figures.enabled=false",
        "callbacks.last_checkpoint.min_interval_s=0",
    ]

    # Ctrl-C typed on the terminal once the line shows the third epoch or a later one
    def after_two_epochs(screen: str) -> bytes | None:
        shown = [int(e) for e in re.findall(r"epoch (\d+)/60", screen)]
        return b"\x03" if shown and max(shown) >= 3 else None

    session = run_on_terminal(args, tmp_path, after_two_epochs)
    assert session.returncode == 130, session.text
    run_dir = next((tmp_path / "outputs").iterdir()).resolve()
    results = json.loads((run_dir / "results.json").read_text())
    assert results["status"] == "interrupted"
    lines = [line for _, line in session.lines()]
    stopped = lines.index(next(ln for ln in lines if ln.startswith("interrupted in epoch")))
    assert lines[stopped] == (
        f"interrupted in epoch {results['epochs'] + 1}/60 at step {results['steps']}; "
        f"run folder: {run_dir}"
    )
    expected = shlex.join(["linlab-train", *args, f"hydra.run.dir={run_dir}", "ckpt_path=last"])
    assert lines[stopped + 1] == f"resume with: {expected}"
    # the printed command, run as printed, finishes the same run in the same folder
    command = shlex.split(lines[stopped + 1].removeprefix("resume with: "))
    resumed = subprocess.run(
        [sys.executable, "-m", "linlab.train", *command[1:]],
        cwd=tmp_path,
        env={"PYTHONPATH": str(SRC), "OMP_NUM_THREADS": "1", "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert resumed.returncode == 0, resumed.stderr
    final = json.loads((run_dir / "results.json").read_text())
    assert final["status"] == "ok" and final["epochs"] == 60 and final["steps"] == 60 * 175


def test_an_80_column_terminal_gets_one_line_and_the_closing_lines(tmp_path):
    """The live line fits 80 columns (never wrapped); the run ends naming its folder and the
    TensorBoard command, and its train.log holds those closing lines too."""
    args = ["data.n_samples=400", "data.batch_size=1", "trainer.max_epochs=3", "callbacks=none"]
    session = run_on_terminal(args, tmp_path, width=80)
    assert session.returncode == 0, session.text
    drawn = [line for _, line in session.lines() if FRAME.search(line)]
    assert drawn and all(len(line.rstrip()) <= 80 for line in drawn), max(drawn, key=len)
    assert "━" in drawn[0]  # the bar takes the columns the numbers leave
    run_dir = next((tmp_path / "outputs").iterdir()).resolve()
    lines = [line.rstrip() for _, line in session.lines()]
    assert lines[-2:] == [f"run folder: {run_dir}", f"next: tensorboard --logdir {run_dir}"]
    log = (run_dir / "train.log").read_text()
    assert log.rstrip().endswith("\n".join(lines[-6:]))  # status, loss, w, true w, folder, next


def test_the_last_line_names_three_failed_logs_and_counts_the_rest(tmp_path, capsys):
    """A sweep whose 1,000 jobs all failed must not print 1,000 paths in its last line."""
    from omegaconf import OmegaConf

    from linlab.sweeps.progress import SweepProgress

    for k in range(5):
        job = tmp_path / f"job{k}"
        (job / ".hydra").mkdir(parents=True)
        (job / "train.log").write_text("Traceback ...\n")
        (job / "results.json").write_text('{"status": "failed"}')
    config = OmegaConf.create({"hydra": {"sweep": {"dir": str(tmp_path)}}})
    with pytest.raises(SystemExit):
        SweepProgress().on_multirun_end(config)
    logs = ", ".join(str(tmp_path / f"job{k}" / "train.log") for k in range(3))
    last = capsys.readouterr().out.strip().splitlines()[-1]
    assert last == f"5 of 5 jobs failed; logs: {logs} and 2 more in {tmp_path}"
