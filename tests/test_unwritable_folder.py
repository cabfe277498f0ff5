"""A run folder that turns read-only or full mid-run: one line, exit 1, the last checkpoint loads.

Real faults: the folder is made read-only (``chmod`` for a user; root ignores modes, so for
root the folders are made immutable with ``chattr +i``), or lives on a small tmpfs that a
filler file fills up (root only: mounting needs it).
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch
from conftest import QUIET
from test_resume_anywhere import saved_step

RUN = [
    *QUIET,
    "data.n_samples=1000",
    "data.batch_size=1",
    "data.val_fraction=0",
    "data.test_fraction=0",
    "trainer.max_epochs=8",
    "callbacks.figures.enabled=false",
    "callbacks.last_checkpoint.min_interval_s=0",
]


def make_read_only(run: Path) -> None:
    folders = [run, run / "checkpoints"]
    if os.geteuid() == 0:
        subprocess.run(["chattr", "+i", *map(str, folders)], check=True)
    else:
        for folder in folders:
            folder.chmod(0o555)


def make_writable(run: Path) -> None:
    folders = [run, run / "checkpoints"]
    if os.geteuid() == 0:
        subprocess.run(["chattr", "-i", *map(str, folders)], check=False)
    for folder in folders:
        folder.chmod(0o755)


def fill_up(run: Path) -> None:
    with contextlib.suppress(OSError), (run.parent / "filler").open("wb") as filler:
        while True:
            filler.write(b"\0" * 65536)
            filler.flush()


@contextlib.contextmanager
def small_disk(folder: Path) -> Iterator[Path]:
    folder.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=8m", "tmpfs", str(folder)], capture_output=True
    )
    if mounted.returncode != 0:
        pytest.skip("mounting a small tmpfs needs root")
    try:
        yield folder
    finally:
        subprocess.run(["umount", "-l", str(folder)], check=False)


@pytest.mark.parametrize("fault", ["read_only", "full"])
def test_a_folder_that_turns_unwritable_is_one_line_and_keeps_its_checkpoint(tmp_path, fault):
    if fault == "read_only" and os.geteuid() == 0 and not shutil.which("chattr"):
        pytest.skip("root needs chattr to make a folder read-only")
    with contextlib.ExitStack() as stack:
        base = stack.enter_context(small_disk(tmp_path / "disk")) if fault == "full" else tmp_path
        run = base / "run"
        proc = subprocess.Popen(
            [sys.executable, "-m", "linlab.train", *RUN, f"hydra.run.dir={run}"],
            cwd=tmp_path,
            env={**os.environ, "OMP_NUM_THREADS": "1"},
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        last = run / "checkpoints" / "last.ckpt"
        while saved_step(last) < 1000:
            assert proc.poll() is None, proc.communicate()
        if fault == "read_only":
            make_read_only(run)
            stack.callback(make_writable, run)
        else:
            fill_up(run)
        _, stderr = proc.communicate(timeout=300)
        assert proc.returncode == 1, stderr
        assert len(stderr.strip().splitlines()) == 1 and "Traceback" not in stderr, stderr
        assert f"the run folder {run} can no longer be written" in stderr
        assert f"could not write {run / 'results.json'}" in stderr
        step = int(re.search(r"\(step (\d+)\), still loads", stderr).group(1))
        state = torch.load(last, map_location="cpu", weights_only=True)
        assert state["global_step"] == step >= 1000
        assert state["state_dict"]["model.w"].isfinite().all()
