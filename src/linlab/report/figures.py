"""The report's figures: final val loss over lr × batch size, and the val-loss curves.

Jobs are split into panels by the keys varied besides lr, batch size and seed; the seeds of
a setting are aggregated (``linlab.report.aggregate``): the heatmap shows their mean, the
curves a mean line with a 95% band. The heatmap carries the theoretical stability boundary
(``linlab.report.stability``) when the jobs recorded it. Both axes of the heatmap are
logarithmic when every value is a positive number; a full-batch job (``batch_size: null``)
puts that axis on evenly spaced labelled cells. A cell that has no final value to colour
(diverged, failed, interrupted, ...) gets its own hatch and its status written in it. In the
curves, colour follows lr on one scale and the line style the batch size; a red cross marks
where a diverged setting stopped. A panel of more than ``CURVES_MAX`` settings (a sweep of
thousands of lrs) shows an evenly spaced set of them and the best, and says so in its title.
"""

from __future__ import annotations

import itertools
import math
from typing import TYPE_CHECKING, Any

import numpy as np
from matplotlib import colormaps
from matplotlib.cm import ScalarMappable
from matplotlib.colors import ListedColormap, LogNorm, Normalize
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Rectangle
from matplotlib.ticker import MaxNLocator

from linlab import tags
from linlab.report import aggregate, stability
from linlab.report.kinds import spans_decades
from linlab.report.value import is_number, order
from linlab.scalars import read_scalars

if TYPE_CHECKING:
    from linlab.report.jobs import Job

AXIS_KEYS = {"lr": "optimizer.lr", "batch_size": "data.batch_size"}
COLORMAP = colormaps["viridis"]
# status -> (face colour, hatch, text colour)
MARKED = {
    "diverged": ("#f4a582", "xx", "k"),
    "failed": ("#b22222", "//", "w"),
    "interrupted": ("0.85", "\\\\", "k"),
    "pruned": ("0.85", "--", "k"),
    "running": ("white", "..", "k"),
    "pending": ("white", "..", "k"),
}
UNKNOWN = ("white", "++", "k")  # any other status, e.g. unreadable
LINE_STYLES = ("-", "--", ":", "-.")
CURVE_TAGS = (tags.VAL_LOSS, tags.TRAIN_EPOCH_LOSS)
CURVE_COLOURS = ListedColormap(colormaps["plasma"](np.linspace(0.0, 0.85, 256)))
CELL_TEXT_MAX = 16  # more cells per row or column than this: the colour alone tells the value
LEGEND_MAX = 12  # more settings than this: a colour bar and a legend of line styles
CURVES_MAX = 100  # more settings in a panel than this: ``CURVES_THINNED`` of them are drawn
CURVES_THINNED = 25  # evenly spaced along the colour key, the best among them


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
    """Cell boundaries: geometric midpoints on a log axis when the values are positive and
    about evenly spaced in log (no gap over 3 times another: cells of similar widths), else
    unit cells around 0..n-1."""
    if all(isinstance(v, int | float) and v > 0 for v in values) and _log_even(values):
        mids = [math.sqrt(a * b) for a, b in itertools.pairwise(values)]
        if not mids:
            return [values[0] / 2, values[0] * 2], True
        return [values[0] ** 2 / mids[0], *mids, values[-1] ** 2 / mids[-1]], True
    return [i - 0.5 for i in range(len(values) + 1)], False


def _log_even(values: list[float]) -> bool:
    gaps = [math.log(b / a) for a, b in itertools.pairwise(values)]
    return len(gaps) < 2 or max(gaps) <= 3 * min(gaps)


def _grid(n: int) -> tuple[int, int]:
    cols = min(n, 3)
    return math.ceil(n / cols), cols


def heatmap_figure(jobs: list[Job], facets: list[str], value: str = "val_loss") -> Figure:
    """``value`` (final val loss) per (lr, batch size) cell, the mean over seeds; diverged,
    failed and running cells marked; the stability boundary drawn where it is known."""
    groups = panels(jobs, facets)
    rows, cols = _grid(len(groups))
    n_lrs = len({axis_value(j, "lr") for j in jobs})
    n_sizes = len({axis_value(j, "batch_size") for j in jobs})
    width, height = max(5.2, 1.6 + 0.5 * n_lrs), max(4.2, 2.2 + 0.3 * n_sizes)
    fig = Figure(figsize=(width * cols, height * rows), layout="constrained")
    means = [
        summary.mean
        for members in aggregate.by_setting(jobs).values()
        if (summary := aggregate.cell(members, value)[0]) is not None
    ]
    norm = loss_norm(means)
    bound = stability.boundary_of(jobs)
    label = f"final {value.replace('_', ' ')}"
    for index, (title, members) in enumerate(groups.items()):
        ax = fig.add_subplot(rows, cols, index + 1)
        _draw_heatmap(ax, members, norm, value, bound)
        ax.set_title(title or label)
    fig.colorbar(ScalarMappable(norm, COLORMAP), ax=fig.axes, label=f"{label} (ok jobs, mean)")
    return fig


def loss_norm(losses: list[float]) -> Normalize:
    """Colour scale over the ok jobs' losses: logarithmic when all are positive; a single value
    (or several equal ones) gets a decade (or a unit) around it instead of an empty range."""
    if not losses:
        return Normalize(0.0, 1.0)
    low, high = min(losses), max(losses)
    if low > 0:
        return LogNorm(low, high) if high > low else LogNorm(low / 10**0.5, low * 10**0.5)
    return Normalize(low, high) if high > low else Normalize(low - 0.5, low + 0.5)


def _draw_heatmap(
    ax: Any, jobs: list[Job], norm: Normalize, value: str, bound: stability.Boundary | None
) -> None:
    lrs = sorted({axis_value(j, "lr") for j in jobs}, key=order)
    sizes = sorted({axis_value(j, "batch_size") for j in jobs}, key=order)
    x_edges, x_log = cell_edges(lrs)
    y_edges, y_log = cell_edges(sizes)
    few = len(lrs) <= 5
    cells: dict[tuple[int, int], list[Job]] = {}
    for job in jobs:
        key = (lrs.index(axis_value(job, "lr")), sizes.index(axis_value(job, "batch_size")))
        cells.setdefault(key, []).append(job)
    for (i, k), members in cells.items():
        x0, x1, y0, y1 = x_edges[i], x_edges[i + 1], y_edges[k], y_edges[k + 1]
        summary, status = aggregate.cell(members, value)
        if status == "ok" and summary is not None:
            shade = float(norm(summary.mean))
            face, hatch, ink = COLORMAP(shade), None, "w" if shade < 0.6 else "k"
            text = f"{summary.mean:.3g}" if len(lrs) <= 5 else f"{summary.mean:.2g}"
        elif status == "ok":  # no value: steps_to_target never reached, or not recorded
            face, hatch, ink = "white", None, "k"
            text = "never" if value == "steps_to_target" else "-"
        else:
            face, hatch, ink = MARKED.get(status, UNKNOWN)
            text = status
            steps = [j.results.get("diverged_at_step") for j in members]
            if status == "diverged" and len(members) == 1 and steps[0] is not None and few:
                text += f"\nat step {steps[0]}"
        ax.add_patch(Rectangle((x0, y0), x1 - x0, y1 - y0, facecolor=face, hatch=hatch, ec="w"))
        cx = math.sqrt(x0 * x1) if x_log else (x0 + x1) / 2
        cy = math.sqrt(y0 * y1) if y_log else (y0 + y1) / 2
        size = (8 if few else 6) - ("\n" in text)
        if len(lrs) <= CELL_TEXT_MAX and len(sizes) <= CELL_TEXT_MAX:  # else colour only
            back = {"boxstyle": "square,pad=0.15", "fc": face, "ec": "none", "hatch": None}
            ax.text(cx, cy, text, ha="center", va="center", fontsize=size, color=ink,
                    weight="bold", bbox=back, zorder=4)  # fmt: skip
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
    if len(lrs) > 5:
        ax.tick_params(axis="x", labelrotation=45 if len(lrs) <= 12 else 90)
    if len(lrs) > 12 or len(sizes) > 12:
        ax.tick_params(labelsize=7)
    ax.set_xlabel("learning rate (optimizer.lr)")
    ax.set_ylabel("batch size (data.batch_size)")
    if bound is not None and x_log:
        y_centres = [
            math.sqrt(a * b) if y_log else (a + b) / 2 for a, b in itertools.pairwise(y_edges)
        ]
        stability.draw(ax, bound, sizes, y_centres)
        ax.set_xlim(x_edges[0], x_edges[-1])


def val_curve(job: Job) -> list[float]:
    """``loss/val`` after each validation, read back from the job's TensorBoard events; a job
    without a validation split gives its ``loss/train_epoch`` instead."""
    curves = read_scalars(job.folder)
    tag = next((t for t in CURVE_TAGS if t in curves), None)
    return list(curves[tag].values()) if tag else []


def curve_tag(jobs: list[Job]) -> str:
    """The tag the curves show: loss/val when any job validated."""
    validated = any(j.results.get("val_loss") is not None for j in jobs)
    return tags.VAL_LOSS if validated else tags.TRAIN_EPOCH_LOSS


def key_value(job: Job, key: str) -> Any:
    """A job's value of ``key``: lr and batch size from results.json (also when not swept),
    any other key from its overrides."""
    for name, full in AXIS_KEYS.items():
        if key == full:
            return axis_value(job, name)
    return job.overrides.get(key)


def curves_figure(
    jobs: list[Job],
    facets: list[str],
    colour_key: str = AXIS_KEYS["lr"],
    style_key: str | None = AXIS_KEYS["batch_size"],
) -> Figure:
    """Loss curves over epochs, one per setting: a job's own curve, or over several seeds
    their mean with a 95% band. Colour by ``colour_key`` (one scale, logarithmic over
    decades), line style by ``style_key``, the legend in numeric order; a red cross marks
    where a diverged setting stopped (also one that diverged before its first validation).
    Past ``LEGEND_MAX`` settings a colour bar and a legend of the line styles replace the
    legend of every line, so the legend never outgrows the figure; past ``CURVES_MAX`` in a
    panel only the settings of ``shown_settings`` are read and drawn."""
    from linlab.report.jobs import varied_keys

    groups = panels(jobs, facets)
    varied = [k for k in varied_keys(jobs) if k not in (*facets, aggregate.SEED_KEY)]
    rows, cols = _grid(len(groups))
    fig = Figure(figsize=(7.5 * cols, 4.0 * rows), layout="constrained")
    colour, norm = key_colours([key_value(j, colour_key) for j in jobs])
    styles = sorted({key_value(j, style_key) for j in jobs}, key=order) if style_key else [None]
    many = len(aggregate.by_setting(jobs)) > LEGEND_MAX
    tag = curve_tag(jobs)
    for index, (title, members) in enumerate(groups.items()):
        ax = fig.add_subplot(rows, cols, index + 1)
        settings = sorted(
            aggregate.by_setting(members).values(),
            key=lambda seeds: (order(key_value(seeds[0], colour_key)),
                               order(key_value(seeds[0], style_key) if style_key else None)),
        )  # fmt: skip
        shown = shown_settings(settings, tag)
        thinned = len(shown) < len(settings)
        best = best_setting(shown, tag) if thinned else None
        for seeds in shown:
            curves = [c for c in map(val_curve, seeds) if c]
            status = aggregate.cell(seeds, "val_loss")[1]
            shade = key_value(seeds[0], colour_key)
            size = key_value(seeds[0], style_key) if style_key else None
            style = LINE_STYLES[styles.index(size) % len(LINE_STYLES)]
            label = f"{short(colour_key)}={_label(shade)}"
            if style_key:
                label += f", {short(style_key)} {_label(size)}"
            if len(seeds) > 1:
                label = f"{_setting_label(seeds, varied)}"
            mean: list[float] = []
            if curves:
                mean, low, high = aggregate.mean_band(curves)
                epochs = range(1, len(mean) + 1)
                if seeds is best:  # drawn over the others, named in the legend
                    ax.plot(epochs, mean, style, color=colour(shade), marker=".", lw=3,
                            mec="k", zorder=3, label=f"best: {label}")  # fmt: skip
                else:
                    ax.plot(epochs, mean, style, color=colour(shade), marker=".", label=label)
                if len(curves) > 1 and not thinned:  # bands of many settings hide the lines
                    ax.fill_between(epochs, low, high, color=colour(shade), alpha=0.25, lw=0)
            if status == "diverged" and (end := divergence_point(seeds, list(mean))):
                ax.plot(*end, "X", color="red", ms=11, mec="k", label=f"{label}: diverged")
        if all(v > 0 for line in ax.get_lines() for v in line.get_ydata()) and ax.get_lines():
            ax.set_yscale("log")
        ax.set_title(title or tag)
        if thinned:
            ax.set_title(f"{title or tag}\n{thinned_note(len(shown), len(settings), colour_key)}")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_xlabel("epoch")
        ax.set_ylabel(tag)
        if many and ax.get_lines():
            style_legend(ax, style_key, styles)
        elif ax.get_lines():
            ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    if many and norm is not None:
        fig.colorbar(ScalarMappable(norm, CURVE_COLOURS), ax=fig.axes, label=colour_key)
    return fig


def shown_settings(settings: list[list[Job]], tag: str) -> list[list[Job]]:
    """The settings a panel draws, in the order given: all of them up to ``CURVES_MAX``;
    past it ``CURVES_THINNED - 1`` evenly spaced in that order (the first and last included)
    and the best (lowest final ``tag`` loss, mean over its ok seeds). Hundreds of curves are one
    smear of colour, and reading them costs one events file per job; the thinned set keeps the
    trend along the colour key and the setting that won."""
    if len(settings) <= CURVES_MAX:
        return settings
    step = (len(settings) - 1) / (CURVES_THINNED - 2)
    picked = {round(i * step) for i in range(CURVES_THINNED - 1)}
    best = best_setting(settings, tag)
    return [s for i, s in enumerate(settings) if i in picked or s is best]


def best_setting(settings: list[list[Job]], tag: str) -> list[Job] | None:
    """The setting with every seed ``ok`` and the lowest mean final loss of ``tag`` (val loss,
    or train loss for jobs without a validation split), from results.json."""
    metric = "val_loss" if tag == tags.VAL_LOSS else "train_loss"
    finals = []
    for seeds in settings:
        summary, status = aggregate.cell(seeds, metric)
        if summary is not None and status == "ok":
            finals.append((summary.mean, seeds))
    return min(finals, key=lambda pair: pair[0])[1] if finals else None


def thinned_note(shown: int, total: int, colour_key: str) -> str:
    """The line under a thinned panel's title that says which curves it shows."""
    return f"{shown} of {total:,} settings: evenly spaced in {short(colour_key)}, and the best"


def style_legend(ax: Any, style_key: str | None, styles: list[Any]) -> None:
    """A legend of what the line styles and the red cross mean, and the best setting's line
    when a thinned panel marks it (the colours have a bar)."""
    handles = [
        Line2D([], [], ls=LINE_STYLES[i % len(LINE_STYLES)], color="k",
               label=f"{short(style_key)} {_label(v)}")
        for i, v in enumerate(styles[: len(LINE_STYLES)]) if style_key
    ]  # fmt: skip
    handles += [line for line in ax.get_lines() if line.get_label().startswith("best: ")]
    if any(line.get_marker() == "X" for line in ax.get_lines()):
        handles.append(Line2D([], [], ls="", marker="X", color="red", mec="k", label="diverged"))
    if handles:
        ax.legend(handles=handles, fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0))


def short(key: str | None) -> str:
    """``lr`` and ``batch`` for the two usual axes, else the key's last part."""
    names = {AXIS_KEYS["lr"]: "lr", AXIS_KEYS["batch_size"]: "batch"}
    return names.get(key or "", (key or "").split(".")[-1])


def divergence_point(seeds: list[Job], curve: list[float]) -> tuple[float, float] | None:
    """Where a diverged setting stopped: a single job's last epoch and the val loss of the
    parameters it kept (the last finite ones), else the end of the (mean) curve; None when
    neither is known."""
    value = seeds[0].results.get("val_loss") if len(seeds) == 1 else None
    epoch = seeds[0].results.get("epochs") if len(seeds) == 1 else None
    if not (isinstance(value, int | float) and math.isfinite(value) and value > 0):
        value = curve[-1] if curve else None
    epoch = epoch or len(curve)
    return None if value is None or not epoch else (epoch, value)


def _setting_label(seeds: list[Job], varied: list[str]) -> str:
    """``lr=0.1,batch_size=8 (3 seeds)``: the varied overrides other than the seed."""
    shown = [f"{k.split('.')[-1]}={seeds[0].overrides.get(k)}" for k in varied]
    return f"{','.join(shown) or 'all'} ({len(seeds)} seeds)"


def key_colours(values: list[Any]) -> tuple[Any, Normalize | None]:
    """value -> colour on one plasma scale (logarithmic across decades), and that scale."""
    numbers = sorted({v for v in values if is_number(v)})
    if len(numbers) < 2:
        return (lambda value: CURVE_COLOURS(0.1)), None
    norm = (
        LogNorm(numbers[0], numbers[-1])
        if spans_decades(numbers)
        else Normalize(numbers[0], numbers[-1])
    )
    return (
        lambda value: CURVE_COLOURS(float(norm(value))) if value in numbers else CURVE_COLOURS(0.0)
    ), norm


def _label(value: Any) -> str:
    if value is None:
        return "full"
    return f"{value:g}" if isinstance(value, float) else str(value)
