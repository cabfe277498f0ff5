"""Real ``linlab-train -m`` sweeps for the sweep tests, started together to share the cores."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from tensorboard.backend.event_processing.event_multiplexer import EventMultiplexer
from tensorboard.plugins.hparams import metadata

from linlab.tags import VALUE_PREFIX

EXTENSION = Path(__file__).parent / "extension"
SRC = Path(__file__).parents[1] / "src"  # this checkout's linlab, whatever is installed
TINY = ["data.n_samples=200", "trainer.max_epochs=2", "callbacks=none"]
GRID = ["optimizer.lr=0.01,0.1", "data.batch_size=16,64"]
# The default folder is multirun/<date>_<time>_<id>; pinning <date>_<time> makes the two
# sweeps that share a folder collide unless their launch ids keep them apart.
SAME_SECOND = "hydra.sweep.dir=multirun/same-second_${linlab.unique_id:}"
GRID_NAMES = {f"lr={lr},batch_size={b}" for lr in ("0.01", "0.1") for b in (16, 64)}
FAILING = [
    "optimizer.lr=0.05,1e4",
    "data.batch_size=16,32",
    "module._target_=my_research.FragileModule",
    "+module.fail_at_lr=0.05",
    "+module.fail_at_batch_size=32",
]
SWEEPS = {
    "sequential": [*GRID, *TINY, SAME_SECOND],
    "joblib": [*GRID, *TINY, SAME_SECOND, "hydra/launcher=joblib", "hydra.launcher.n_jobs=2"],
    "submitit": [
        "optimizer.lr=0.01,0.1",
        "data.batch_size=16",
        *TINY,
        "hydra/launcher=slurm_local",
    ],
    "failing": [*FAILING, *TINY],
    "preset": [
        "sweep=lr_batch",
        "optimizer.lr=0.1",
        "seed=0,1",
        "trainer.precision=32-true,64-true",
        "data.n_samples=800",  # a training split of 560 holds the preset's batch of 512
        "trainer.max_epochs=1",
        "callbacks=none",
    ],
}


@dataclass
class Sweep:
    """A finished sweep: its process output and its one sweep folder."""

    returncode: int
    stdout: str
    stderr: str
    folder: Path

    def job(self, name: str) -> Path:
        return self.folder / name

    def results(self) -> dict[str, dict]:
        return {
            p.parent.name: json.loads(p.read_text()) for p in self.folder.glob("*/results.json")
        }


def start_all(root: Path) -> dict[str, tuple[subprocess.Popen, Path]]:
    """Start every sweep at once, each from its own folder with the default sweep folders."""
    env = {
        **os.environ,
        "OMP_NUM_THREADS": "1",
        "PYTHONPATH": os.pathsep.join([str(SRC), str(EXTENSION)]),
    }
    started = {}
    for name, args in SWEEPS.items():
        cwd = root / ("shared" if name in ("sequential", "joblib") else name)
        cwd.mkdir(exist_ok=True)
        proc = subprocess.Popen(
            [sys.executable, "-m", "linlab.train", "-m", *args],
            cwd=cwd,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        started[name] = (proc, cwd)
    return started


def finish(proc: subprocess.Popen, cwd: Path, launcher: str | None = None) -> Sweep:
    """Wait for a sweep; find its folder (by launcher where two sweeps share ``cwd``)."""
    stdout, stderr = proc.communicate(timeout=300)
    folders = sorted((cwd / "multirun").iterdir())
    if launcher:
        folders = [f for f in folders if launcher in (f / "multirun.yaml").read_text()]
    assert len(folders) == 1, (folders, stdout, stderr)
    return Sweep(proc.returncode, stdout, stderr, folders[0])


def hparams_sessions(folder: Path) -> dict[str, dict]:
    """Each run's HParams session (hparam name → value), read back from the event files."""
    events = EventMultiplexer().AddRunsFromDirectory(str(folder))
    events.Reload()
    sessions = {}
    for run, tags in events.PluginRunToTagToContent(metadata.PLUGIN_NAME).items():
        if metadata.SESSION_START_INFO_TAG not in tags:  # the sweep's experiment summary
            continue
        start = metadata.parse_session_start_info_plugin_data(tags[metadata.SESSION_START_INFO_TAG])
        sessions[run] = {k: getattr(v, v.WhichOneof("kind")) for k, v in start.hparams.items()}
        scalars = events.GetAccumulator(run).Tags()["scalars"]
        for tag in scalars:
            if tag.startswith(VALUE_PREFIX):  # shown as final/* in the HParams dashboard
                sessions[run]["final/" + tag.removeprefix(VALUE_PREFIX)] = events.Scalars(run, tag)[
                    -1
                ].value
        sessions[run]["scalar tags"] = set(scalars)
    return sessions
