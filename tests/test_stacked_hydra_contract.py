"""Hydra's own launcher suites against ``hydra/launcher=stacked``, wired as Hydra 1.3's joblib
launcher wires them (``plugins/hydra_joblib_launcher/tests/test_joblib_launcher.py`` at
v1.3.2; the ``hydra_sweep_runner`` fixture comes from Hydra's pytest plugin). Their apps are
not linlab's, so the launcher runs each job through Hydra's ``run_job``, as the basic launcher
does."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from hydra.core.plugins import Plugins
from hydra.plugins.launcher import Launcher
from hydra.test_utils.launcher_common_tests import IntegrationTestSuite, LauncherTestSuite

from hydra_plugins.linlab_sweeps.stacked_launcher import StackedLauncher

SRC = Path(__file__).parents[1] / "src"

# Hydra 1.1's default (jobs chdir) comes with Hydra's notice that it will change.
pytestmark = [
    pytest.mark.filterwarnings("ignore:Future Hydra versions will no longer change"),
    pytest.mark.usefixtures("hydra_default_version_base"),
]


def test_discovery() -> None:
    assert StackedLauncher.__name__ in [x.__name__ for x in Plugins.instance().discover(Launcher)]


@pytest.mark.parametrize("launcher_name, overrides", [("stacked", [])])
class TestStackedLauncher(LauncherTestSuite):
    """Hydra's launcher suite; ``hydra/launcher/stacked`` is the plugin's ConfigStore node."""


@pytest.mark.parametrize(
    "task_launcher_cfg, extra_flags",
    [
        (
            {},
            [
                "-m",
                "hydra/job_logging=hydra_debug",
                "hydra/job_logging=disabled",
                "hydra/launcher=stacked",
            ],
        )
    ],
)
class TestStackedLauncherIntegration(IntegrationTestSuite):
    """Hydra's integration suite: real apps in fresh processes with the stacked launcher."""


def test_a_users_own_task_wrapping_linlabs_is_called_for_every_job(tmp_path):
    """The task Hydra hands the launcher is the one that runs: a user's ``@hydra.main`` that
    wraps linlab's task is called once per job (the jobs train one at a time, unstacked)."""
    calls = tmp_path / "calls.txt"
    app = tmp_path / "my_app.py"
    app.write_text(
        "import hydra\n"
        "from linlab.train import config_dir, task\n\n\n"
        '@hydra.main(version_base="1.3", config_path=str(config_dir()), config_name="train")\n'
        "def my_task(cfg):\n"
        f"    with open({str(calls)!r}, 'a') as f:\n"
        "        f.write(f'{cfg.optimizer.lr}\\n')\n"
        "    return task(cfg)\n\n\n"
        "my_task()\n"
    )
    sweep = tmp_path / "sweep"
    args = ["-m", "hydra/launcher=stacked", "optimizer.lr=0.01,0.1", "trainer.max_epochs=2"]
    args += ["logger=none", f"hydra.sweep.dir={sweep}"]
    env = {**os.environ, "PYTHONPATH": str(SRC), "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(
        [sys.executable, str(app), *args], cwd=tmp_path, env=env, capture_output=True, text=True
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert sorted(calls.read_text().split()) == ["0.01", "0.1"]
    results = [json.loads(f.read_text()) for f in sweep.glob("*/results.json")]
    assert len(results) == 2
    assert all(r["status"] == "ok" and r["stacked_members"] == 1 for r in results), results
