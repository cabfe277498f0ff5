"""A run folder in Python: ``run = linlab.load_run("outputs/<run>")``; ``run.model(x)``.

:class:`Run` reads what the run wrote: ``results.json``, the model rebuilt from its config and
final parameters, the TensorBoard scalars as a table, and the figures.
"""

from __future__ import annotations

from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from hydra.utils import instantiate
from omegaconf import OmegaConf
from torch import nn

from linlab import tags
from linlab.results import RESULTS_FILE, read_results_if_any
from linlab.run_state import LAST_CHECKPOINT, SAVED_CONFIG, load_checkpoint
from linlab.scalars import read_scalars

if TYPE_CHECKING:
    import pandas as pd
    from matplotlib.figure import Figure


class Run:
    """One run folder: ``results``, ``model``, ``history``, ``figures``, ``plot()``."""

    def __init__(self, folder: str | Path) -> None:
        self.folder = Path(folder)

    def __repr__(self) -> str:
        return f"Run({str(self.folder)!r}, status={self.status!r})"

    @property
    def results(self) -> dict[str, Any]:
        """``results.json`` (empty while the run has not written it)."""
        return read_results_if_any(self.folder)

    @property
    def status(self) -> str:
        return self.results.get("status", "running")

    @cached_property
    def model(self) -> nn.Module:
        """The trained ``nn.Module`` (see :func:`load_model`)."""
        return load_model(self.folder)

    @property
    def history(self) -> pd.DataFrame:
        """The logged scalars, one row per step and one column per tag (``loss/train``,
        ``params/w0``, ...: ``linlab.tags``)."""
        pd = pandas()
        columns = {
            tag: pd.Series(curve, dtype=float) for tag, curve in read_scalars(self.folder).items()
        }
        table = pd.DataFrame(columns).sort_index()
        table.index.name = "step"
        return table

    @property
    def figures(self) -> dict[str, Path]:
        """The PNGs the run drew (``figures/<name>.png``), by name."""
        return {p.stem: p for p in sorted((self.folder / "figures").glob("*.png"))}

    def plot(self) -> Figure:
        """The loss curves from :attr:`history`, and beside them the run's own figures."""
        from matplotlib.image import imread

        from linlab.notebook import show_figures_inline
        from linlab.plots import new_figure

        show_figures_inline()
        history, pictures = self.history, self.figures
        figure = new_figure(5.0 * (1 + len(pictures)), 4.0)
        axes = figure.subplots(1, 1 + len(pictures), squeeze=False)[0]
        for tag in (t for t in history.columns if tags.is_loss(t)):
            values = history[tag].dropna()
            axes[0].plot(values.index, values.to_numpy(), ".-", label=tag)
        if axes[0].lines:
            axes[0].set_yscale("log")
            axes[0].legend(loc="best")
        axes[0].set(xlabel="step", ylabel="loss", title=self.folder.name)
        for ax, (name, path) in zip(axes[1:], pictures.items(), strict=True):
            ax.imshow(imread(path))
            ax.set_title(name)
            ax.axis("off")
        return figure


def pandas() -> Any:
    """pandas, or an ImportError that says which extra brings it."""
    try:
        import pandas
    except ImportError:
        raise ImportError(
            "linlab's tables are pandas DataFrames: pip install 'linlab[notebook]'"
        ) from None
    return pandas


def load_run(folder: str | Path) -> Run:
    """A run folder as a :class:`Run`; its model is loaded now, so a bad folder fails here."""
    run = Run(folder)
    _ = run.model
    return run


def load_model(folder: str | Path) -> nn.Module:
    """The trained model of a run folder, in eval mode, ready to predict: ``model(x)``.

    Rebuilt from the run's ``.hydra/config.yaml`` (``model`` node), with the final parameters
    recorded in ``results.json`` (``weights``/``bias``, or ``parameters``); a run without
    results.json (killed) falls back to ``checkpoints/last.ckpt``, read with
    ``torch.load(weights_only=True)`` only: tensors and plain values, never arbitrary pickled
    objects (which could run code). A checkpoint that needs more is refused.
    """
    folder = Path(folder)
    config_file = folder / SAVED_CONFIG
    if not config_file.is_file():
        raise FileNotFoundError(f"{config_file} is missing: is {folder} a linlab run folder?")
    model = instantiate(OmegaConf.load(config_file).model)
    results = read_results_if_any(folder)
    if results.get("weights") is not None or results.get("parameters"):
        _load_results(model, results)
    elif (folder / LAST_CHECKPOINT).is_file():
        state = load_checkpoint(folder / LAST_CHECKPOINT)
        prefix = "model."
        model.load_state_dict(
            {
                k.removeprefix(prefix): v
                for k, v in state["state_dict"].items()
                if k.startswith(prefix)
            }
        )
    else:
        raise FileNotFoundError(f"{folder} has neither {RESULTS_FILE} nor {LAST_CHECKPOINT}")
    return model.eval()


@torch.no_grad()
def _load_results(model: nn.Module, results: dict) -> None:
    values = results.get("parameters") or {"w": results["weights"], "b": results.get("bias")}
    for name, p in model.named_parameters():
        p.copy_(torch.as_tensor(values[name], dtype=p.dtype).reshape(p.shape))
