"""Report each epoch's val loss to an Optuna study and stop when its pruner says so.

Active only in a job of ``hydra/sweeper=optuna`` (``hparams_search=...``): the sweeper gives
each job ``+optuna_trial=<number>`` and the study's storage URL, so the report goes through the
storage and works in joblib workers, SLURM tasks or any other process. Elsewhere (``trial``
null) it does nothing. A pruned run stops after the epoch with ``status: pruned`` in its
``results.json``: a result, like ``diverged``, and the sweeper tells the study so.
"""

from __future__ import annotations

import functools
from typing import Any

import lightning as L
from lightning.pytorch.callbacks import Callback

from linlab import tags

PRUNED = "pruned"


class OptunaPruning(Callback):
    """After each validation: ``trial.report(val loss, epoch)``; prune if ``should_prune()``."""

    def __init__(
        self,
        trial: int | None = None,
        storage: str | None = None,
        study_name: str | None = None,
        pruner: str | None = None,
        pruner_options: dict[str, Any] | None = None,
        monitor: str = tags.VAL_LOSS,
    ) -> None:
        self.number, self.storage, self.study_name = trial, storage, study_name
        self.pruner, self.pruner_options = pruner or "none", dict(pruner_options or {})
        self.monitor = monitor
        self.trial: Any = None

    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        if self.number is None or not trainer.is_global_zero:
            return
        if not (self.storage and self.study_name):
            raise ValueError(
                f"optuna_trial={self.number} needs the study's storage and name: run it "
                "through hydra/sweeper=optuna (hparams_search=...)"
            )
        self.trial = running_trial(
            self.storage, self.study_name, self.number, self.pruner, self.pruner_options
        )

    def on_validation_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if self.number is None or trainer.sanity_checking:
            return
        prune = False
        value = trainer.callback_metrics.get(self.monitor)
        if (
            self.trial is not None
            and value is not None
            and getattr(pl_module, "status", "ok") == "ok"
        ):
            self.trial.report(float(value), step=trainer.current_epoch)
            prune = self.trial.should_prune()
        if trainer.strategy.broadcast(prune, src=0):  # every DDP rank stops together
            pl_module.status = PRUNED
            trainer.should_stop = True


def running_trial(
    storage: str, study_name: str, number: int, pruner: str, pruner_options: dict[str, Any]
) -> Any:
    """Trial ``number`` of the study, seen through the sweep's pruner."""
    import optuna

    from linlab.search.study import make_pruner

    study = optuna.load_study(
        study_name=study_name, storage=_storage(storage), pruner=make_pruner(pruner, pruner_options)
    )
    trial_id = study._storage.get_trial_id_from_study_id_trial_number(study._study_id, number)
    return optuna.Trial(study, trial_id)


@functools.lru_cache(maxsize=4)
def _storage(url: str) -> Any:
    """One storage (one database engine) per URL and process, shared by its jobs."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    return optuna.storages.get_storage(url)
