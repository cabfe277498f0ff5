"""The report's figures: final val loss over lr × batch size, and the val-loss curves.

Jobs are split into panels by the keys varied besides lr and batch size (e.g. one panel per
seed). Both axes of the heatmap are logarithmic when every value is a positive number;
a full-batch job (``batch_size: null``) puts that axis on evenly spaced labelled cells.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from matplotlib import colormaps
from matplotlib.cm import ScalarMappable
from matplotlib.colors import LogNorm, Normalize
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle
from matplotlib.ticker import MaxNLocator
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

if TYPE_CHECKING:
    from linlab.sweeps.report import Job

AXIS_KEYS = {"lr": "optimizer.lr", "batch_size": "data.batch_size"}
COLORMAP = colormaps["viridis"]
# status -> (face colour, hatch, text colour)
MARKED = {
    "diverged": ("0.75", "xx", "k"),
    "failed": ("#b22222", "//", "w"),
    "running": ("white", "..", "k"),
}


def facet_keys(varied: Sequence[str]) -> list[str]:
    """Varied keys other than lr and batch size: each combination of them is one panel."""
    return [k for k in varied if k not in AXIS_KEYS.values()]


def panels(jobs: list[Job], facets: list[str]) -> dict[str, list[Job]]:
    """Jobs grouped by their values of the facet keys, titled ``seed=1, data.noise=0.5``."""
    groups: dict[str, list[Job]] = {}
    for job in jobs:
        title = ", ".join(f"{k}={job.overrides.get(k)}" for k in facets)
        groups.setdefault(title, []).append(job)
    return groups


def axis_value(job: Job, name: str) -> Any:
    """lr or batch_size of a job, from results.json or (while running) its overrides."""
    return job.results.get(name, job.overrides.get(AXIS_KEYS[name]))


def cell_edges(values: list[Any]) -> tuple[list[float], bool]:
    """Cell boundaries: geometric midpoints on a log axis, else unit cells around 0..n-1."""
    if all(isinstance(v, int | float) and v > 0 for v in values):
        mids = [math.sqrt(a * b) for a, b in itertools.pairwise(values)]
        if not mids:
            return [values[0] / 2, values[0] * 2], True
        return [values[0] ** 2 / mids[0], *mids, values[-1] ** 2 / mids[-1]], True
    return [i - 0.5 for i in range(len(values) + 1)], False


def _grid(n: int) -> tuple[int, int]:
    cols = min(n, 3)
    return math.ceil(n / cols), cols


def heatmap_figure(jobs: list[Job], facets: list[str]) -> Figure:
    """Final val loss per (lr, batch size) cell; diverged, failed and running cells marked."""
    groups = panels(jobs, facets)
    rows, cols = _grid(len(groups))
    fig = Figure(figsize=(5.2 * cols, 4.2 * rows), layout="constrained")
    losses = [j.val_loss for j in jobs if j.status == "ok" and j.val_loss is not None]
    positive = bool(losses) and min(losses) > 0
    norm = LogNorm(min(losses), max(losses)) if positive else Normalize(*_span(losses))
    for index, (title, members) in enumerate(groups.items()):
        ax = fig.add_subplot(rows, cols, index + 1)
        _draw_heatmap(ax, members, norm)
        ax.set_title(title or "final val loss")
    fig.colorbar(ScalarMappable(norm, COLORMAP), ax=fig.axes, label="final val loss (ok jobs)")
    return fig


def _span(values: list[float]) -> tuple[float, float]:
    return (min(values), max(values)) if values else (0.0, 1.0)


def _draw_heatmap(ax: Any, jobs: list[Job], norm: Normalize) -> None:
    lrs = sorted({axis_value(j, "lr") for j in jobs}, key=_order)
    sizes = sorted({axis_value(j, "batch_size") for j in jobs}, key=_order)
    x_edges, x_log = cell_edges(lrs)
    y_edges, y_log = cell_edges(sizes)
    for job in jobs:
        i, k = lrs.index(axis_value(job, "lr")), sizes.index(axis_value(job, "batch_size"))
        x0, x1, y0, y1 = x_edges[i], x_edges[i + 1], y_edges[k], y_edges[k + 1]
        if job.status == "ok" and job.val_loss is not None:
            shade = float(norm(job.val_loss))
            face, hatch, ink = COLORMAP(shade), None, "w" if shade < 0.6 else "k"
            text = f"{job.val_loss:.3g}"
        else:
            face, hatch, ink = MARKED.get(job.status, ("white", None, "k"))
            text = job.status
        ax.add_patch(Rectangle((x0, y0), x1 - x0, y1 - y0, facecolor=face, hatch=hatch, ec="w"))
        cx = math.sqrt(x0 * x1) if x_log else (x0 + x1) / 2
        cy = math.sqrt(y0 * y1) if y_log else (y0 + y1) / 2
        ax.text(cx, cy, text, ha="center", va="center", fontsize=8, color=ink, weight="bold")
    for axis, edges, log, values in (("x", x_edges, x_log, lrs), ("y", y_edges, y_log, sizes)):
        getattr(ax, f"set_{axis}lim")(edges[0], edges[-1])
        if log:
            getattr(ax, f"set_{axis}scale")("log")
        centres = (
            [math.sqrt(a * b) for a, b in itertools.pairwise(edges)]
            if log
            else list(range(len(values)))
        )
        getattr(ax, f"set_{axis}ticks")(centres, [_label(v) for v in values], minor=False)
        if log:
            getattr(ax, f"set_{axis}ticks")([], minor=True)
    ax.set_xlabel("learning rate (optimizer.lr)")
    ax.set_ylabel("batch size (data.batch_size)")


def val_curve(job: Job) -> list[float]:
    """``val/loss`` after each validation, read back from the job's TensorBoard events."""
    if not job.folder.is_dir():  # a pending job
        return []
    events = EventAccumulator(str(job.folder), size_guidance={"scalars": 0})
    events.Reload()
    if "val/loss" not in events.Tags()["scalars"]:
        return []
    return [e.value for e in events.Scalars("val/loss")]


def curves_figure(jobs: list[Job], facets: list[str]) -> Figure:
    """Every job's val-loss curve over epochs; diverged jobs dashed, failed ones absent."""
    groups = panels(jobs, facets)
    rows, cols = _grid(len(groups))
    fig = Figure(figsize=(7.5 * cols, 4.0 * rows), layout="constrained")
    for index, (title, members) in enumerate(groups.items()):
        ax = fig.add_subplot(rows, cols, index + 1)
        ax.set_prop_cycle(color=colormaps["tab20"].colors)
        for job in members:
            curve = val_curve(job)
            if curve:
                style = "--" if job.status == "diverged" else "-"
                ax.plot(range(1, len(curve) + 1), curve, style, marker=".", label=job.name)
        if all(v > 0 for line in ax.get_lines() for v in line.get_ydata()) and ax.get_lines():
            ax.set_yscale("log")
        ax.set_title(title or "val loss")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_xlabel("epoch")
        ax.set_ylabel("val/loss")
        if ax.get_lines():
            ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    return fig


def _order(value: Any) -> tuple:
    """Numbers ascending, then None (full batch), then text."""
    if isinstance(value, int | float):
        return (0, value, "")
    return (1 if value is None else 2, 0, str(value))


def _label(value: Any) -> str:
    if value is None:
        return "full"
    return f"{value:g}" if isinstance(value, float) else str(value)
