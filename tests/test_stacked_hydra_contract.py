"""Hydra's own launcher suites against ``hydra/launcher=stacked``, wired as Hydra 1.3's joblib
launcher wires them (``plugins/hydra_joblib_launcher/tests/test_joblib_launcher.py`` at
v1.3.2; the ``hydra_sweep_runner`` fixture comes from Hydra's pytest plugin). Their apps are
not linlab's, so the launcher runs each job through Hydra's ``run_job``, as the basic launcher
does."""

import pytest
from hydra.core.plugins import Plugins
from hydra.plugins.launcher import Launcher
from hydra.test_utils.launcher_common_tests import IntegrationTestSuite, LauncherTestSuite
from hydra.version import VersionBase, __compat_version__

from hydra_plugins.linlab_sweeps.stacked_launcher import StackedLauncher

# Hydra 1.1's default (jobs chdir) comes with Hydra's notice that it will change.
pytestmark = pytest.mark.filterwarnings("ignore:Future Hydra versions will no longer change")


@pytest.fixture(autouse=True)
def hydras_default_version_base():
    """The suites' in-process apps expect Hydra's default behaviour (no ``version_base``, so
    Hydra 1.1's: jobs change directory); ``tests/conftest.py`` imports ``linlab.train``, whose
    ``hydra.main(version_base="1.3")`` set it for the whole process."""
    base = VersionBase.instance()
    saved = base.getbase()
    base.setbase(__compat_version__)
    yield
    base.setbase(saved)


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
