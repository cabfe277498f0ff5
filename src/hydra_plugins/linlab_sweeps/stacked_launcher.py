"""``hydra/launcher=stacked``: jobs of a sweep trained as stacked members of one process.

Hydra imports every module under ``hydra_plugins`` at start-up and accepts launcher classes
from there only, so this module holds the launcher's config and a thin class; the work is in
``linlab.stacking.launcher`` (free of torch: only linlab's own task brings it in).
"""

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Optional

from hydra.core.config_store import ConfigStore
from hydra.core.utils import JobReturn
from hydra.plugins.launcher import Launcher
from hydra.types import HydraContext, TaskFunction
from omegaconf import DictConfig


@dataclass
class SubmititConf:
    """``executor=submitit``: the submitit launcher's settings, one array task per group."""

    cluster: str = "slurm"  # slurm, or local: the same array as local processes
    folder: str = "${hydra.sweep.dir}/.submitit/%j"
    name: str = "linlab"
    timeout_min: int = 60
    nodes: int = 1
    tasks_per_node: int = 1
    cpus_per_task: int = 1
    gpus_per_node: Optional[int] = None  # noqa: UP045 (OmegaConf reads Optional, not `| None`)
    mem_gb: Optional[int] = 4  # noqa: UP045
    partition: Optional[str] = None  # noqa: UP045
    account: Optional[str] = None  # noqa: UP045
    array_parallelism: int = 64
    setup: list[str] = field(default_factory=list)


@dataclass
class StackedLauncherConf:
    _target_: str = "hydra_plugins.linlab_sweeps.stacked_launcher.StackedLauncher"
    max_members: int = 4096  # members per group at most; a larger group is split
    executor: str = "local"  # where groups run: local, joblib, submitit, ray
    n_jobs: int = 1  # joblib: groups at once (n_jobs > 1 with executor=local means joblib)
    address: Optional[str] = None  # noqa: UP045  ray: a cluster's address; none: a local one
    submitit: SubmititConf = field(default_factory=SubmititConf)


ConfigStore.instance().store(
    group="hydra/launcher", name="stacked", node=StackedLauncherConf, provider="linlab"
)


class StackedLauncher(Launcher):
    """Runs the task it is handed; linlab's task in groups (``linlab.stacking.launcher``)."""

    def __init__(
        self,
        max_members: int = 4096,
        executor: str = "local",
        n_jobs: int = 1,
        address: str | None = None,
        submitit: Any = None,
    ) -> None:
        from linlab.checks.launchers import check_executor
        from linlab.choices import executor_of

        executor = executor_of(executor, n_jobs)
        check_executor(executor)
        self.max_members, self.executor = max_members, executor
        self.settings = {"n_jobs": n_jobs, "address": address, "submitit": submitit}
        self.config: DictConfig | None = None
        self.hydra_context: HydraContext | None = None
        self.task_function: TaskFunction | None = None

    def setup(
        self, *, hydra_context: HydraContext, task_function: TaskFunction, config: DictConfig
    ) -> None:
        self.config, self.hydra_context = config, hydra_context
        self.task_function = task_function

    def launch(
        self, job_overrides: Sequence[Sequence[str]], initial_job_idx: int
    ) -> Sequence[JobReturn]:
        from linlab.stacking.launcher import launch

        assert self.hydra_context and self.config and self.task_function, "setup() first"
        return launch(
            self.hydra_context,
            self.config,
            self.task_function,
            job_overrides,
            initial_job_idx,
            self.max_members,
            self.executor,
            self.settings,
        )
