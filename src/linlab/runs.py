"""Load a finished run back into Python: ``model = linlab.load_run("outputs/<run>")``."""

from __future__ import annotations

import pickle
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
    results.json (killed) falls back to ``checkpoints/last.ckpt``, read with
    ``torch.load(weights_only=True)`` only: tensors and plain values, never arbitrary pickled
    objects (which could run code). A checkpoint that needs more is refused.
    """
    folder = Path(folder)
    config_file = folder / ".hydra" / "config.yaml"
    if not config_file.is_file():
        raise FileNotFoundError(f"{config_file} is missing: is {folder} a linlab run folder?")
    model = instantiate(OmegaConf.load(config_file).model)
    if (folder / RESULTS_FILE).is_file():
        _load_results(model, read_results(folder))
    elif (folder / CHECKPOINT).is_file():
        state = load_weights_only(folder / CHECKPOINT)
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


def load_weights_only(path: Path) -> dict:
    """A checkpoint's tensors and plain values; refuse one that only unpickling could load."""
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as error:
        reason = str(error).strip().splitlines()[0]
        raise ValueError(
            f"{path} holds objects other than tensors and plain values ({reason}); linlab "
            "loads checkpoints with torch.load(weights_only=True) only and will not unpickle "
            "it: load it yourself only if you trust where it came from"
        ) from None


@torch.no_grad()
def _load_results(model: nn.Module, results: dict) -> None:
    values = results.get("parameters") or {"w": results["weights"], "b": results.get("bias")}
    for name, p in model.named_parameters():
        p.copy_(torch.as_tensor(values[name], dtype=p.dtype).reshape(p.shape))
