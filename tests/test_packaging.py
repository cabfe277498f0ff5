"""The built wheel carries the configs: `linlab-train` runs from a fresh venv outside the repo."""

from __future__ import annotations

import json
import subprocess
import sys
import venv

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
    venv.create(env_dir, system_site_packages=True, with_pip=True)  # torch etc. from this env
    python = env_dir / "bin" / "python"
    subprocess.run([python, "-m", "pip", "install", "--no-deps", "-q", wheel], check=True)

    where = subprocess.run(
        [python, "-c", "import linlab.train as t; print(t.__file__); print(t.config_dir())"],
        cwd=tmp_path,
        check=True,
        capture_output=True,
        text=True,
    ).stdout.split()
    assert all(str(env_dir) in path for path in where), where

    proc = subprocess.run(
        [env_dir / "bin" / "linlab-train", "data=line_1d", "trainer.max_epochs=2"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    (results,) = (tmp_path / "outputs").glob("*/results.json")
    assert json.loads(results.read_text())["status"] == "ok"
    assert (results.parent / ".hydra" / "config.yaml").exists()
    assert list(results.parent.glob("events.out.tfevents.*"))
