"""The built wheel carries the configs: `linlab-train` runs from a fresh venv outside the repo."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import sysconfig
import venv
from pathlib import Path

from conftest import REPO


def test_wheel_installs_and_trains_outside_the_repo(tmp_path):
    dist = tmp_path / "dist"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "-w",
            dist,
            REPO,
        ],
        check=True,
        capture_output=True,
    )
    wheel = next(dist.glob("linlab-*.whl"))
    env_dir = tmp_path / "venv"
    python = venv_seeing_these_dependencies(env_dir)
    subprocess.run(
        [sys.executable, "-m", "pip", "--python", python, "install", "--no-deps", "-q", wheel],
        check=True,
    )

    outside = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}  # no source tree
    where = subprocess.run(
        [python, "-c", "import linlab.train as t; print(t.__file__); print(t.config_dir())"],
        cwd=tmp_path,
        env=outside,
        check=True,
        capture_output=True,
        text=True,
    ).stdout.split()
    assert all(str(env_dir) in path for path in where), where

    proc = subprocess.run(
        [env_dir / "bin" / "linlab-train", "data=line_1d", "trainer.max_epochs=2"],
        cwd=tmp_path,
        env=outside,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    (results,) = (tmp_path / "outputs").glob("*/results.json")
    assert json.loads(results.read_text())["status"] == "ok"
    assert (results.parent / ".hydra" / "config.yaml").exists()
    assert list(results.parent.glob("events.out.tfevents.*"))


def venv_seeing_these_dependencies(env_dir: Path) -> Path:
    """A fresh venv whose ``sys.path`` ends with this interpreter's site-packages (torch etc.).

    ``system_site_packages=True`` would expose the *base* interpreter's packages, not those of
    the venv running the tests. A ``.pth`` line appends the directories without processing
    their own ``.pth`` files, so this checkout's editable install of linlab stays invisible and
    ``import linlab`` finds the wheel installed into the new venv.
    """
    venv.create(env_dir, with_pip=False)
    python = env_dir / "bin" / "python"
    new_site = subprocess.run(
        [python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    ours = dict.fromkeys(sysconfig.get_paths()[key] for key in ("purelib", "platlib"))
    (Path(new_site) / "outer_site_packages.pth").write_text("\n".join(ours) + "\n")
    return python
