"""``hydra/sweeper=grid`` (linlab's default): Hydra's basic grid sweeper, composing fast.

Before launching a batch, Hydra's sweepers compose every job's config once more to find
errors early, about 0.15 s a job. ``linlab-train`` has composed and checked every job before
the sweep started (``linlab.checks.preflight``), so this sweeper skips that; called any other
way, it composes each job through ``linlab.sweeps.compose.JobComposer``, which lets Hydra
compose each structure once.
"""

# OmegaConf's structured configs read typing's Optional/Dict, not PEP 604/585 spellings.
# ruff: noqa: UP006, UP035, UP045
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Dict, Optional

from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
from hydra.core.config_store import ConfigStore

from linlab.sweeps.compose import JobComposer


@dataclass
class GridSweeperConf:
    _target_: str = "hydra_plugins.linlab_sweeps.grid_sweeper.GridSweeper"
    max_batch_size: Optional[int] = None
    params: Optional[Dict[str, str]] = None


ConfigStore.instance().store(
    group="hydra/sweeper", name="grid", node=GridSweeperConf, provider="linlab"
)


class GridSweeper(BasicSweeper):
    """``BasicSweeper`` whose check of a batch composes through one ``JobComposer``."""

    composer: Optional[JobComposer] = None

    def validate_batch_is_legal(self, batch: Sequence[Sequence[str]]) -> None:
        from linlab.checks import preflight

        if preflight.every_job_checked:
            return
        if self.composer is None:
            self.composer = JobComposer(self.hydra_context.config_loader, self.config)
        for overrides in batch:
            self.composer.compose(overrides)
