"""A sweep on a real terminal: its live line, and Ctrl-C typed while a job trains: one message
with how far it got and the command that resumes it, exit 130; that command, run as printed,
finishes the sweep."""

import itertools
import json
import re
import shlex
import statistics
import subprocess
import sys

import pytest
from terminal import SRC, run_on_terminal

LIVE = re.compile(r"(\d+) done, (\d+) running, (\d+) left  \d+:\d\d:\d\d elapsed  \S+ left")

# 4 jobs; stacked: 2 groups of 2 (one per batch size)
SWEEP = [
    "-m",
    "data.batch_size=16,32",
    "seed=0,1",
    "data.n_samples=1000",
    "trainer.max_epochs=150",  # the second stacked group must still train when Ctrl-C comes
    "logger=none",
]


@pytest.mark.parametrize("launcher", ["basic", "stacked"])
def test_ctrl_c_in_a_sweep_says_how_to_resume_and_the_command_finishes_it(tmp_path, launcher):
    args = [*SWEEP, f"hydra/launcher={launcher}"]

    def while_the_next_job_runs(screen: str) -> bytes | None:
        live = LIVE.findall(screen)
        done, running, _ = map(int, live[-1]) if live else (0, 0, 0)
        return b"\x03" if done >= 1 and running >= 1 else None

    session = run_on_terminal(args, tmp_path, while_the_next_job_runs)
    assert session.returncode == 130, session.text
    drawn = [(at, LIVE.fullmatch(line)) for at, line in session.lines()]
    drawn = [(at, match) for at, match in drawn if match]
    assert all(sum(map(int, m.groups())) == 4 for _, m in drawn), session.text
    gaps = [b[0] - a[0] for a, b in itertools.pairwise(drawn)]
    assert gaps and statistics.median(gaps) <= 1.0, gaps  # redrawn at least once a second
    sweep_dir = next((tmp_path / "multirun").iterdir()).resolve()
    statuses = {
        f.parent.name: json.loads(f.read_text())["status"] for f in sweep_dir.glob("*/results.json")
    }
    finished = sorted(name for name, status in statuses.items() if status == "ok")
    assert 1 <= len(finished) < 4, statuses
    lines = [line.removeprefix("^C") for _, line in session.lines()]  # the terminal's echo
    stopped = lines.index(
        f"linlab-train: interrupted; sweep {sweep_dir}: {len(finished)} of 4 jobs finished"
    )
    command = lines[stopped + 1].removeprefix("resume with: ")
    assert lines[stopped + 1].startswith("resume with: linlab-train ")
    words = shlex.split(command)
    assert words[1:] == [*args, f"hydra.sweep.dir={sweep_dir}"]
    kept = {name: (sweep_dir / name / "results.json").stat().st_mtime_ns for name in finished}

    resumed = subprocess.run(
        [sys.executable, "-m", "linlab.train", *words[1:]],
        cwd=tmp_path,
        env={"PYTHONPATH": str(SRC), "OMP_NUM_THREADS": "1", "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    results = [json.loads(f.read_text()) for f in sweep_dir.glob("*/results.json")]
    assert len(results) == 4 and all(r["status"] == "ok" for r in results), results
    for name, written in kept.items():  # what finished before Ctrl-C was not trained again
        assert (sweep_dir / name / "results.json").stat().st_mtime_ns == written
