"""The report's figures for sweeps that are not an lr × batch grid (``linlab.report.kinds``).

``line_figure``: the value over one numeric key, one line per combination of the other varied
keys, each point the mean over seeds with its 95% interval as a band; a settings whose jobs
did not all finish ``ok`` is marked by a red cross on the axis, as the heatmap marks its cell.
``scatter_figure``: a search's trials, the value over each searched key, coloured by another
searched key. Axes are logarithmic where the values span decades.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

from matplotlib import colormaps
from matplotlib.cm import ScalarMappable
from matplotlib.colors import LogNorm, Normalize
from matplotlib.figure import Figure

from linlab.report import aggregate
from linlab.report.kinds import Kind, distinct, spans_decades
from linlab.report.value import order

if TYPE_CHECKING:
    from linlab.report.jobs import Job

COLOURS = colormaps["plasma"]
LEGEND_MAX = 8  # more lines than this get a colour bar instead of a legend


def value_label(value: str) -> str:
    return f"final {value.replace('_', ' ')}"


def key_norm(values: list[float]) -> Normalize:
    """A colour scale over a key's values: logarithmic across decades."""
    low, high = min(values), max(values)
    if high <= low:
        return Normalize(low - 0.5, low + 0.5)
    return LogNorm(low, high) if spans_decades(values) else Normalize(low, high)


def scale_axes(ax: Any, xs: list[float], ys: list[float]) -> None:
    if spans_decades(xs):
        ax.set_xscale("log")
    if spans_decades(ys):
        ax.set_yscale("log")


def mark_unfinished(ax: Any, xs: list[float], statuses: list[str]) -> None:
    """A red cross on the x axis at each setting without an ``ok`` value, its status named."""
    if not xs:
        return
    ax.plot(xs, [0.0] * len(xs), "X", color="red", mec="k", ms=8, clip_on=False,
            transform=ax.get_xaxis_transform(),
            label="not ok: " + ", ".join(sorted(set(statuses))))  # fmt: skip


def line_figure(jobs: list[Job], kind: Kind, value: str) -> Figure:
    """``value`` over ``kind.axes[0]``, a line per combination of ``kind.others``."""
    x_key = kind.axes[0]
    lines: dict[tuple, list[Job]] = {}
    for job in jobs:
        lines.setdefault(tuple(job.overrides.get(k) for k in kind.others), []).append(job)
    names = sorted(lines, key=lambda combo: tuple(map(order, combo)))
    colour_key = kind.others[0] if len(kind.others) == 1 else None
    colour_values = [c[0] for c in names if colour_key and isinstance(c[0], int | float)]
    use_bar = len(names) > LEGEND_MAX and len(colour_values) == len(names)
    norm = key_norm(colour_values) if use_bar else None
    fig = Figure(figsize=(7.0 if use_bar or len(names) <= 1 else 8.5, 4.4), layout="constrained")
    ax = fig.add_subplot()
    all_x, all_y, bad_x, bad_status = [], [], [], []
    for index, combo in enumerate(names):
        by_x: dict[Any, list[Job]] = {}
        for job in lines[combo]:
            by_x.setdefault(job.overrides.get(x_key), []).append(job)
        points = []
        for x in sorted(by_x, key=order):
            summary, status = aggregate.cell(by_x[x], value)
            if status != "ok":
                bad_x.append(x)
                bad_status.append(status)
            elif summary is not None:
                width = 0.0 if math.isnan(summary.half_width) else summary.half_width
                points.append((x, summary.mean, width))
        if norm is not None:
            colour = COLOURS(0.85 * float(norm(combo[0])))
        else:
            colour = COLOURS(0.85 * index / max(len(names) - 1, 1)) if len(names) > 1 else "C0"
        label = ", ".join(f"{k}={v}" for k, v in zip(kind.others, combo, strict=True)) or None
        xs, ys = [p[0] for p in points], [p[1] for p in points]
        ax.plot(xs, ys, "o-", color=colour, ms=4, label=label)
        if any(p[2] > 0 for p in points):
            ax.fill_between(xs, [p[1] - p[2] for p in points], [p[1] + p[2] for p in points],
                            color=colour, alpha=0.25, lw=0)  # fmt: skip
        all_x += xs
        all_y += ys
    scale_axes(ax, [float(x) for x in distinct(jobs, x_key)], all_y)
    mark_unfinished(ax, bad_x, bad_status)
    ax.set_xlabel(x_key)
    ax.set_ylabel(value_label(value))
    seeds = {len(v) for v in aggregate.by_setting(jobs).values()}
    ax.set_title(
        f"{value_label(value)} over {x_key}" + (" (mean, 95% band)" if max(seeds) > 1 else "")
    )
    if norm is not None:
        fig.colorbar(ScalarMappable(norm, COLOURS), ax=ax, label=colour_key)
        if bad_x:
            ax.legend(fontsize=7, loc="best")
    elif len(names) > 1 or bad_x:
        columns = math.ceil((len(names) + 1) / 16)
        ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0), ncols=columns)
    return fig


def scatter_figure(jobs: list[Job], kind: Kind, value: str) -> Figure:
    """One panel per searched key: each ok job's ``value`` over that key, coloured by the next
    searched key; jobs without an ok value as red crosses on the axis."""
    keys = kind.axes
    cols = min(len(keys), 3)
    rows = math.ceil(len(keys) / cols)
    fig = Figure(figsize=(4.6 * cols + 1.0, 3.8 * rows), layout="constrained")
    ok = [
        (j, v) for j in jobs if j.status == "ok" and (v := aggregate.metric(j, value)) is not None
    ]
    for index, key in enumerate(keys):
        ax = fig.add_subplot(rows, cols, index + 1)
        other = keys[(index + 1) % len(keys)] if len(keys) > 1 else None
        xs = [float(j.overrides[key]) for j, _ in ok]
        ys = [v for _, v in ok]
        if other is not None and ok:
            shades = [float(j.overrides[other]) for j, _ in ok]
            norm = key_norm(shades)
            points = ax.scatter(xs, ys, c=shades, cmap=COLOURS, norm=norm, s=22, edgecolors="k",
                                linewidths=0.3)  # fmt: skip
            fig.colorbar(points, ax=ax, label=other)
        else:
            ax.scatter(xs, ys, s=22, edgecolors="k", linewidths=0.3)
        bad = [j for j in jobs if j.status != "ok"]
        scale_axes(ax, [float(j.overrides[key]) for j in jobs], ys)
        mark_unfinished(ax, [j.overrides[key] for j in bad], [j.status for j in bad])
        if bad:
            ax.legend(fontsize=7, loc="best")
        ax.set_xlabel(key)
        ax.set_ylabel(value_label(value))
    return fig
