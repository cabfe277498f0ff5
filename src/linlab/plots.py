"""The tutorials' pictures as matplotlib ``Figure``s, drawn headless (Agg, no pyplot state).

Each function takes plain arrays and returns a Figure; ``linlab.callbacks.figures`` feeds them
from a run. Figures use matplotlib's constrained layout, so tick labels as wide as ``-2.4e+06``
and the axis labels beside them stay inside the picture (about 30 ms a figure, at the end of
fit); colour bars print their ticks in full (``%.3g``), with no exponent above them to run
into the title.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator


def new_figure(width: float = 6.0, height: float = 4.5) -> Figure:
    """A figure on its own Agg canvas whose layout keeps every label inside it."""
    figure = Figure(figsize=(width, height), dpi=100, layout="constrained")
    FigureCanvasAgg(figure)
    return figure


def render(figure: Figure) -> np.ndarray:
    """Draw once; the figure as an (H, W, 3) uint8 array (TensorBoard's image, the PNG's pixels)."""
    figure.canvas.draw()
    return np.asarray(figure.canvas.buffer_rgba())[..., :3].copy()


def fit_figure(
    x: np.ndarray,
    y: np.ndarray,
    pred: np.ndarray,
    truth: tuple[Sequence[float], float] | None = None,
) -> Figure:
    """1-D data: the points, the fitted line (and the true one); else predicted against true y."""
    figure = new_figure()
    ax = figure.subplots()
    if x.shape[1] == 1:
        order = np.argsort(x[:, 0])
        ax.plot(x[:, 0], y, ".", label="data")
        ax.plot(x[order, 0], pred[order], "-", label="fitted")
        if truth is not None:
            weights, bias = truth
            ax.plot(x[order, 0], x[order, 0] * weights[0] + bias, "--", label="truth")
        ax.set(xlabel="x", ylabel="y", title="data and fitted line")
    else:
        ax.plot(y, pred, ".", label="samples")
        ends = [min(y.min(), pred.min()), max(y.max(), pred.max())]
        ax.plot(ends, ends, "--", label="ŷ = y")
        ax.set(xlabel="true y", ylabel="predicted ŷ", title="predicted against true")
    ax.legend(loc="best")
    ax.grid(True)
    return figure


def _geometric_levels(z: np.ndarray, count: int = 20) -> np.ndarray:
    top = float(np.nanmax(z))
    bottom = max(float(np.nanmin(z)), top * 1e-6, 1e-12)
    return np.unique(np.geomspace(bottom, top, count)) if top > bottom else np.array([top])


def surface_figure(
    a: np.ndarray,
    b: np.ndarray,
    loss: np.ndarray,
    names: tuple[str, str],
    path: np.ndarray,
    optimum: Sequence[float] | None = None,
    note: str = "",
) -> Figure:
    """Loss contours over two parameters (grids ``a``, ``b``) with the descent path on top."""
    figure = new_figure()
    ax = figure.subplots()
    contours = ax.contour(a, b, loss, levels=_geometric_levels(loss), cmap="viridis")
    figure.colorbar(contours, ax=ax, label="loss", format="%.3g")
    if len(path):
        ax.plot(path[:, 0], path[:, 1], ".-", color="C3", label="descent path")
        ax.plot(path[0, 0], path[0, 1], "o", color="C3", label="start")
    if optimum is not None:
        ax.plot(optimum[0], optimum[1], "*", color="k", ms=12, label="least-squares optimum")
    ax.set(xlabel=names[0], ylabel=names[1], title=f"loss surface{note}")
    if ax.get_legend_handles_labels()[0]:  # no path for models too big to track
        ax.legend(loc="best")
    ax.grid(True)
    return figure


def loss_curve_figure(
    values: np.ndarray,
    loss: np.ndarray,
    name: str,
    path: np.ndarray,
    path_loss: np.ndarray,
    optimum: float | None = None,
) -> Figure:
    """One parameter: loss against it, with the steps taken (seed 000's cost-vs-w picture)."""
    figure = new_figure()
    ax = figure.subplots()
    ax.plot(values, loss, "-", label="loss")
    if len(path):
        ax.plot(path, path_loss, ".-", color="C3", label="descent path")
    if optimum is not None:
        ax.axvline(optimum, color="k", ls="--", label="least-squares optimum")
    ax.set(xlabel=name, ylabel="loss", title="loss against the parameter")
    ax.legend(loc="best")
    ax.grid(True)
    return figure


def curves_figure(
    epochs: Sequence[int],
    losses: dict[str, tuple[Sequence[int], Sequence[float]]],
    params: dict[str, Sequence[float]] | None = None,
    truth: dict[str, float] | None = None,
) -> Figure:
    """Loss against epoch (log scale), and each parameter against ``epochs`` when given, with
    a dashed line at its true value where ``truth`` names one.

    ``losses`` maps a label to its own (epochs, values), since validation starts after epoch 1.
    """
    figure = new_figure(6.0, 7.0 if params else 4.5)
    axes = figure.subplots(2 if params else 1, 1, squeeze=False)[:, 0]
    for label, (at, values) in losses.items():
        axes[0].plot(at, values, ".-", label=label)
    if all(v > 0 for _, values in losses.values() for v in values if np.isfinite(v)):
        axes[0].set_yscale("log")
    axes[0].set(xlabel="epoch", ylabel="loss", title="loss against epoch")
    if params:
        for label, values in params.items():
            (line,) = axes[1].plot(epochs, values, ".-", label=label)
            if truth and label in truth:
                axes[1].axhline(truth[label], color=line.get_color(), ls="--", lw=1)
        title = "parameters against epoch" + (" (dashed: true values)" if truth else "")
        axes[1].set(xlabel="epoch", ylabel="value", title=title)
    for ax in axes:
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.legend(loc="best")
        ax.grid(True)
    return figure
