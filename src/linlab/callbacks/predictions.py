"""Lightning callback: print the trained model's predictions at chosen inputs (seed 001's f(5))."""

from __future__ import annotations

from typing import Any

import lightning as L
import torch


class PrintPredictions(L.Callback):
    """At the end of fit, print ŷ for each input and keep them for results.json.

    Args:
        inputs: one entry per input: a number for a 1-feature model, else a row of features.
    """

    def __init__(self, inputs: list) -> None:
        self.inputs = [list(v) if isinstance(v, list | tuple) else [v] for v in inputs]
        self.predictions: list[float] = []

    @torch.no_grad()
    def on_fit_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        dtype = next(pl_module.model.parameters()).dtype
        x = torch.tensor(self.inputs, dtype=dtype, device=pl_module.device)
        self.predictions = pl_module.model(x).double().reshape(-1).tolist()
        if trainer.is_global_zero:
            for inputs, value in zip(self.inputs, self.predictions, strict=True):
                shown = inputs[0] if len(inputs) == 1 else inputs
                print(f"prediction after training: f({shown}) = {value:.3f}")

    def results(self) -> dict[str, Any]:
        return {"predictions": {"x": self.inputs, "y": self.predictions}}
