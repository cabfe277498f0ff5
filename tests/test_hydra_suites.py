"""Hydra's own sweeper and launcher test suites, run with ``hydra/sweeper=grid``.

Wired as Hydra wires them for its basic sweeper and launcher (``tests/test_basic_launcher.py``
in facebookresearch/hydra): the suites run Hydra's test apps in this process
(``hydra_sweep_runner``) and as scripts, so the grid sweeper must behave as the basic one.
Hydra runs them with no version base chosen (jobs change directory); importing linlab chose
1.3, so each test here runs with the choice undone.
"""

import pytest
from hydra.test_utils.launcher_common_tests import (
    BatchedSweeperTestSuite,
    IntegrationTestSuite,
    LauncherTestSuite,
)
from pytest import mark, param

pytestmark = [
    pytest.mark.filterwarnings("ignore:Future Hydra versions will no longer change"),
    pytest.mark.usefixtures("hydra_default_version_base"),
]


@mark.parametrize("launcher_name, overrides", [("basic", ["hydra/sweeper=grid"])])
class TestGridSweeper(LauncherTestSuite):
    pass


@mark.parametrize(
    "launcher_name, overrides",
    [("basic", ["hydra/sweeper=grid", "hydra.sweeper.max_batch_size=2"])],
)
class TestGridSweeperWithBatching(BatchedSweeperTestSuite):
    pass


@mark.parametrize(
    "task_launcher_cfg, extra_flags",
    [
        param(
            {},
            [
                "-m",
                "hydra/sweeper=grid",
                "hydra/launcher=basic",
                "hydra/hydra_logging=disabled",
                "hydra/job_logging=disabled",
            ],
            id="grid_sweeper_multirun",
        )
    ],
)
class TestGridSweeperIntegration(IntegrationTestSuite):
    pass
