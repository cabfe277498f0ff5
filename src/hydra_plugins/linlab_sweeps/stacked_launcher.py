"""``hydra/launcher=stacked``: jobs of a sweep trained as stacked members of one process.

Hydra imports every module under ``hydra_plugins`` at start-up and accepts launcher classes
from there only, so this module holds the launcher's config and a thin class; the work is in
``linlab.stacking.launcher`` (imported, with torch, when a sweep selects this launcher).
"""

from collections.abc import Sequence
from dataclasses import dataclass

from hydra.core.config_store import ConfigStore
from hydra.core.utils import JobReturn
from hydra.plugins.launcher import Launcher
from hydra.types import HydraContext, TaskFunction
from omegaconf import DictConfig


@dataclass
class StackedLauncherConf:
    _target_: str = "hydra_plugins.linlab_sweeps.stacked_launcher.StackedLauncher"
    max_members: int = 4096  # members per group at most; a larger group is split
    n_jobs: int = 1  # groups trained at once, each in its own process (joblib, loky)


ConfigStore.instance().store(
    group="hydra/launcher", name="stacked", node=StackedLauncherConf, provider="linlab"
)


class StackedLauncher(Launcher):
    """Groups the jobs it is given (``linlab.stacking.groups``) and trains each group at once."""

    def __init__(self, max_members: int = 4096, n_jobs: int = 1) -> None:
        self.max_members, self.n_jobs = max_members, n_jobs
        self.config: DictConfig | None = None
        self.hydra_context: HydraContext | None = None

    def setup(
        self, *, hydra_context: HydraContext, task_function: TaskFunction, config: DictConfig
    ) -> None:
        self.config, self.hydra_context = config, hydra_context

    def launch(
        self, job_overrides: Sequence[Sequence[str]], initial_job_idx: int
    ) -> Sequence[JobReturn]:
        from linlab.stacking.launcher import launch_groups

        return launch_groups(
            self.hydra_context,
            self.config,
            job_overrides,
            initial_job_idx,
            self.max_members,
            self.n_jobs,
        )
