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

    Rebuilt from the run's ``.hydra/config.yaml`` (``model`` node), with the parameters of
    ``checkpoints/last.ckpt`` when it exists, else the ``weights``/``bias`` (or
    ``parameters``) recorded in ``results.json``.
    """
    folder = Path(folder)
    config_file = folder / ".hydra" / "config.yaml"
    if not config_file.is_file():
        raise FileNotFoundError(f"{config_file} is missing: is {folder} a linlab run folder?")
    cfg = OmegaConf.load(config_file)
    model = instantiate(cfg.model)
    if (folder / CHECKPOINT).is_file():
        state = torch.load(folder / CHECKPOINT, map_location="cpu", weights_only=True)
        prefix = "model."
        model.load_state_dict(
            {
                k.removeprefix(prefix): v
                for k, v in state["state_dict"].items()
                if k.startswith(prefix)
            }
        )
    elif (folder / RESULTS_FILE).is_file():
        _load_results(model, read_results(folder))
    else:
        raise FileNotFoundError(f"{folder} has neither {CHECKPOINT} nor {RESULTS_FILE}")
    return model.eval()


@torch.no_grad()
def _load_results(model: nn.Module, results: dict) -> None:
    params = dict(model.named_parameters())
    values = results.get("parameters") or {"w": results["weights"], "b": results.get("bias")}
    for name, p in params.items():
        p.copy_(torch.as_tensor(values[name], dtype=p.dtype).reshape(p.shape))
