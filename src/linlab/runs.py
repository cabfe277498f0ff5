"""Load a finished run back into Python: ``model = linlab.load_run("outputs/<run>")``."""

from __future__ import annotations

from pathlib import Path

import torch
from hydra.utils import instantiate
from omegaconf import OmegaConf
from torch import nn

from linlab.results import RESULTS_FILE, read_results

CHECKPOINT = Path("checkpoints") / "last.ckpt"


def load_run(folder: str | Path) -> nn.Module:
    """The trained model of a run folder, in eval mode, ready to predict: ``model(x)``.

    Rebuilt from the run's ``.hydra/config.yaml`` (``model`` node), with the final parameters
    recorded in ``results.json`` (``weights``/``bias``, or ``parameters``); a run without
    results.json (killed) falls back to ``checkpoints/last.ckpt``, a pickle: load only runs
    you trust.
    """
    folder = Path(folder)
    config_file = folder / ".hydra" / "config.yaml"
    if not config_file.is_file():
        raise FileNotFoundError(f"{config_file} is missing: is {folder} a linlab run folder?")
    model = instantiate(OmegaConf.load(config_file).model)
    if (folder / RESULTS_FILE).is_file():
        _load_results(model, read_results(folder))
    elif (folder / CHECKPOINT).is_file():
        state = torch.load(folder / CHECKPOINT, map_location="cpu", weights_only=False)
        prefix = "model."
        model.load_state_dict(
            {
                k.removeprefix(prefix): v
                for k, v in state["state_dict"].items()
                if k.startswith(prefix)
            }
        )
    else:
        raise FileNotFoundError(f"{folder} has neither {RESULTS_FILE} nor {CHECKPOINT}")
    return model.eval()


@torch.no_grad()
def _load_results(model: nn.Module, results: dict) -> None:
    values = results.get("parameters") or {"w": results["weights"], "b": results.get("bias")}
    for name, p in model.named_parameters():
        p.copy_(torch.as_tensor(values[name], dtype=p.dtype).reshape(p.shape))
