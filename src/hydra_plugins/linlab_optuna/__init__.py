"""linlab's Optuna sweeper, found by Hydra's plugin scan (``hydra/sweeper=optuna``)."""
