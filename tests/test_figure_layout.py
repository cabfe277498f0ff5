"""What a person checks on the PNGs: labels there, nothing clipped, markings that tell apart.

"Nothing clipped": after drawing with the Agg renderer, every visible text's window extent lies
inside the figure's box.
"""

from __future__ import annotations

import itertools
import math
import warnings
from pathlib import Path

import numpy as np
import pytest
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.colors import to_rgba
from matplotlib.text import Text
from torch.utils.tensorboard import SummaryWriter

from linlab import plots, tags
from linlab.report.figures import MARKED, curves_figure, heatmap_figure
from linlab.report.jobs import Job, varied_keys
from linlab.report.kinds import kind_of
from linlab.report.value_plots import line_figure, scatter_figure


def drawn_texts(figure) -> list[tuple[Text, object]]:
    """Every text drawn (tick labels only of ticks inside the view), with its extent on the
    drawn canvas."""
    if not isinstance(figure.canvas, FigureCanvasAgg):
        FigureCanvasAgg(figure)
    figure.canvas.draw()
    renderer = figure.canvas.get_renderer()
    tick_labels, shown = set(), []
    for ax in figure.axes:
        for axis in (ax.xaxis, ax.yaxis):
            low, high = sorted(axis.get_view_interval())
            for tick in axis.get_major_ticks() + axis.get_minor_ticks():
                labels = (tick.label1, tick.label2)
                tick_labels |= {id(label) for label in labels}
                span = (high - low) * 1e-9
                if low - span <= tick.get_loc() <= high + span:
                    shown += [label for label in labels if label.get_visible()]
    shown += [t for t in figure.findobj(Text) if id(t) not in tick_labels and t.get_visible()]
    return [(t, t.get_window_extent(renderer)) for t in shown if t.get_text().strip()]


def assert_nothing_clipped(figure, texts=None) -> None:
    box = figure.bbox
    for text, extent in texts or drawn_texts(figure):
        assert (
            extent.x0 >= box.x0 - 1
            and extent.y0 >= box.y0 - 1
            and extent.x1 <= box.x1 + 1
            and extent.y1 <= box.y1 + 1
        ), f"{text.get_text()!r} at {extent} outside {box}"


def test_curves_with_huge_values_keep_labels_integer_epochs_and_true_values():
    epochs = list(range(0, 11))
    loss = [10.0 ** (3 * e) for e in epochs]  # up to 1e30: a diverging run
    params = {"w0": [-2.4e6 * e for e in epochs], "b": [1.5e6 * e for e in epochs]}
    figure = plots.curves_figure(
        epochs, {"train": (epochs, loss)}, params, truth={"w0": -3.0, "b": 0.5}
    )
    assert_nothing_clipped(figure)
    loss_ax, param_ax = figure.axes
    assert param_ax.get_ylabel() == "value" and loss_ax.get_xlabel() == "epoch"
    for ax in figure.axes:  # whole epochs only
        ticks = [t for t in ax.get_xticks() if ax.get_xlim()[0] <= t <= ax.get_xlim()[1]]
        assert ticks and all(float(t).is_integer() for t in ticks), ticks
    # a dashed reference line at each true value, in its parameter's colour
    colours = {line.get_label(): line.get_color() for line in param_ax.get_lines()[::2]}
    flat = [ln for ln in param_ax.get_lines() if len(set(ln.get_ydata())) == 1]
    assert {(ln.get_ydata()[0], ln.get_linestyle()) for ln in flat} == {(-3.0, "--"), (0.5, "--")}
    assert {ln.get_ydata()[0]: ln.get_color() for ln in flat} == {
        -3.0: colours["w0"],
        0.5: colours["b"],
    }


def test_short_curves_get_integer_epoch_ticks():
    figure = plots.curves_figure([0, 1, 2, 3], {"train": ([0, 1, 2, 3], [4.0, 2.0, 1.0, 0.5])})
    figure.canvas.draw()
    ax = figure.axes[0]
    assert all(float(t).is_integer() for t in ax.get_xticks())


def test_surface_title_clear_of_the_colour_bar():
    a, b = np.meshgrid(np.linspace(-3, 3, 21), np.linspace(-3, 3, 21))
    loss = 5e7 + 1e7 * (a**2 + b**2)  # colour-bar ticks in the 10⁷s: an exponent (1e8) used to sit
    path = np.array([[2.0, 2.0], [1.0, 1.0], [0.0, 0.0]])
    figure = plots.surface_figure(a, b, loss, ("w0", "b"), path, optimum=[0.0, 0.0])
    assert_nothing_clipped(figure)
    texts = drawn_texts(figure)
    title = next(extent for t, extent in texts if t.get_text() == "loss surface")
    others = [(t.get_text(), e) for t, e in texts if t.get_text() != "loss surface"]
    assert not [name for name, e in others if e.overlaps(title)], others
    colour_bar = figure.axes[1]
    assert colour_bar.yaxis.get_offset_text().get_text() == ""  # ticks written out in full


def make_job(root: Path, name: str, lr, batch, status, curve=(), **results) -> Job:
    folder = root / name
    folder.mkdir(parents=True)
    if curve:
        with SummaryWriter(str(folder)) as writer:
            for epoch, value in enumerate(curve, start=1):
                writer.add_scalar(tags.VAL_LOSS, value, epoch)
    val = curve[-1] if curve and status == "ok" else None
    data = {"lr": lr, "batch_size": batch, "status": status, "val_loss": val} | results
    return Job(folder, {"optimizer.lr": lr, "data.batch_size": batch}, data)


def test_heatmap_with_one_ok_job_and_interrupted_and_diverged_cells(tmp_path):
    jobs = [
        make_job(tmp_path, "a", 0.01, 8, "ok", [0.5, 0.25]),
        make_job(tmp_path, "b", 0.1, 8, "interrupted"),
        make_job(tmp_path, "c", 1.0, 8, "diverged", [3.0], diverged_at_step=87),
    ]
    figure = heatmap_figure(jobs, [])
    assert_nothing_clipped(figure)
    ax, colour_bar = figure.axes
    low, high = colour_bar.get_ylim()
    assert math.isfinite(low) and math.isfinite(high) and low < 0.25 < high
    patches = {p.get_hatch(): p for p in ax.patches}
    assert MARKED["interrupted"][1] in patches and MARKED["diverged"][1] in patches
    assert patches[MARKED["interrupted"][1]].get_facecolor() != to_rgba("white")
    labels = {t.get_text() for t in ax.texts}
    assert {"0.25", "interrupted", "diverged\nat step 87"} <= labels


def test_sweep_curves_colour_by_lr_style_by_batch_numeric_legend(tmp_path):
    jobs = []
    for lr in (0.1, 0.001, 0.01):
        for batch in (512, 8, 64):
            status = "diverged" if (lr, batch) == (0.1, 8) else "ok"
            curve = [1.0 / (1 + lr * batch * e) for e in range(3)]
            jobs.append(make_job(tmp_path, f"lr={lr},batch_size={batch}", lr, batch, status, curve))
    # diverged in its first epoch, before any validation: no curve, still a cross
    jobs.append(make_job(tmp_path, "fast", 1.0, 8, "diverged", epochs=1, val_loss=2.6e6))
    figure = curves_figure(jobs, [])
    assert_nothing_clipped(figure)
    ax = figure.axes[0]
    curves = [ln for ln in ax.get_lines() if ln.get_marker() == "."]
    assert [ln.get_label() for ln in curves] == [
        f"lr={lr}, batch {b}" for lr in ("0.001", "0.01", "0.1") for b in (8, 64, 512)
    ]
    by_lr, by_batch = {}, {}
    for line in curves:
        lr, batch = line.get_label().removeprefix("lr=").split(", batch ")
        by_lr.setdefault(lr, set()).add(to_rgba(line.get_color()))
        by_batch.setdefault(batch, set()).add(line.get_linestyle())
    assert all(len(c) == 1 for c in by_lr.values()) and len(set().union(*by_lr.values())) == 3
    assert all(len(s) == 1 for s in by_batch.values()) and len(set().union(*by_batch.values())) == 3
    crosses = {ln.get_label(): ln for ln in ax.get_lines() if ln.get_marker() == "X"}
    assert set(crosses) == {"lr=0.1, batch 8: diverged", "lr=1, batch 8: diverged"}
    assert all(to_rgba(ln.get_color()) == to_rgba("red") for ln in crosses.values())
    fast = crosses["lr=1, batch 8: diverged"]
    assert (list(fast.get_xdata()), list(fast.get_ydata())) == ([1], [2.6e6])
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    assert legend[:3] == ["lr=0.001, batch 8", "lr=0.001, batch 64", "lr=0.001, batch 512"]


@pytest.mark.parametrize("status", ["pending", "pruned", "unreadable"])
def test_every_status_without_a_loss_is_drawn(tmp_path, status):
    jobs = [make_job(tmp_path, "a", 0.01, 8, "ok", [0.5]), make_job(tmp_path, "b", 0.1, 8, status)]
    ax = heatmap_figure(jobs, []).axes[0]
    assert status in {t.get_text() for t in ax.texts}
    assert any(p.get_hatch() for p in ax.patches)


# Every figure kind of the report, at 1 to 40 values per key: readable, nothing clipped or
# overlapping, the plot not squashed by its legend, no matplotlib warning.


def assert_readable(drawn) -> None:
    """Nothing clipped; no two tick labels of an axis overlap; no legend covers a label or
    tick label; every plotting axes at least 1.5 in high."""
    figure, texts = drawn
    assert_nothing_clipped(figure, texts)
    renderer = figure.canvas.get_renderer()
    for ax in figure.axes:
        for axis in (ax.xaxis, ax.yaxis):
            ticks = {id(t) for t in axis.get_ticklabels(which="both")}
            labels = [e for t, e in texts if id(t) in ticks]
            overlaps = [(a, b) for i, a in enumerate(labels) for b in labels[i + 1 :]
                        if a.overlaps(b)]  # fmt: skip
            assert not overlaps, overlaps[:1]
        legend = ax.get_legend()
        if legend is not None:
            frame = legend.get_window_extent(renderer)
            names = {ax.xaxis.label, ax.yaxis.label, *ax.get_xticklabels(), *ax.get_yticklabels()}
            covered = [t.get_text() for t, e in texts if t in names and e.overlaps(frame)]
            assert not covered, covered
    plotting = [ax for ax in figure.axes if ax.get_label() != "<colorbar>"]
    assert all(ax.bbox.height >= 1.5 * figure.dpi for ax in plotting)


def draw_quietly(make):
    """The figure ``make()`` returns and its drawn texts; failing on any warning on the way."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        figure = make()
        FigureCanvasAgg(figure)
        return figure, drawn_texts(figure)


def grid_jobs(root: Path, lrs, sizes, seeds=(0,), value=lambda lr, b, s: lr * b + s) -> list[Job]:
    """Jobs without folders (no curves) over lr × batch size × seed."""
    jobs = []
    for lr, batch, seed in itertools.product(lrs, sizes, seeds):
        overrides = {"optimizer.lr": lr, "data.batch_size": batch, "seed": seed}
        results = {
            "lr": lr,
            "batch_size": batch,
            "status": "ok",
            "val_loss": value(lr, batch, seed),
        }
        jobs.append(Job(root / f"lr={lr},batch_size={batch},seed={seed}", overrides, results))
    return jobs


@pytest.mark.parametrize(("n", "m"), [(1, 1), (5, 3), (13, 13), (40, 2), (2, 40)])
def test_heatmap_of_n_lrs_by_m_batch_sizes_is_readable(tmp_path, n, m):
    lrs = [round(1e-4 * 10 ** (4 * i / max(n - 1, 1)), 6) for i in range(n)]
    sizes = [8 * (i + 1) for i in range(m)]  # evenly spaced: unit cells, not log
    jobs = grid_jobs(tmp_path, lrs, sizes)
    jobs[-1].results |= {"status": "diverged", "val_loss": None, "diverged_at_step": 12}
    drawn = draw_quietly(lambda: heatmap_figure(jobs, []))
    assert_readable(drawn)
    figure = drawn[0]
    ax = figure.axes[0]
    assert len(ax.patches) == n * m
    renderer = figure.canvas.get_renderer()
    cells = [p.get_window_extent(renderer) for p in ax.patches]
    for text in ax.texts:  # each number inside its own cell
        extent = text.get_window_extent(renderer)
        assert any(c.x0 - 1 <= extent.x0 and extent.x1 <= c.x1 + 1 and c.y0 - 1 <= extent.y0
                   and extent.y1 <= c.y1 + 1 for c in cells), text.get_text()  # fmt: skip


def test_heatmap_numbers_are_drawn_over_the_stability_line(tmp_path):
    theory = {"second_moment_eig_max": 1.0, "fourth_moment_beta": 16.0, "hessian_eig_max": 2.0}
    jobs = grid_jobs(tmp_path, [0.01, 0.1, 1.0], [1, 16, 256])
    for job in jobs:
        job.results["theory"] = theory
    drawn = draw_quietly(lambda: heatmap_figure(jobs, []))
    assert_readable(drawn)
    figure = drawn[0]
    ax = figure.axes[0]
    bound = max(line.get_zorder() for line in ax.get_lines())
    assert ax.texts and all(t.get_zorder() > bound and t.get_bbox_patch() for t in ax.texts)


def line_jobs(root: Path, xs, others=(None,), seeds=(0, 1, 2)) -> list[Job]:
    jobs = []
    for x, other, seed in itertools.product(xs, others, seeds):
        overrides = {"data.n_features": x, "seed": seed} | ({"data.noise": other} if other else {})
        risk = 1.0 / (1 + abs(x - 20)) + 0.01 * seed + (other or 0)
        results = {"status": "ok", "theory": {"excess_population_risk": risk}}
        jobs.append(Job(root / f"x={x},o={other},s={seed}", overrides, results))
    return jobs


@pytest.mark.parametrize(("n", "lines"), [(2, 1), (11, 1), (40, 3), (12, 10)])
def test_line_over_one_key_is_readable_numeric_and_the_mean_over_seeds(tmp_path, n, lines):
    xs = [10 * (i + 1) for i in range(n)]
    others = [round(0.05 * (k + 1), 2) for k in range(lines)] if lines > 1 else [None]
    jobs = line_jobs(tmp_path, xs[::-1], others)  # given in reverse: drawn in numeric order
    kind = kind_of(jobs, varied_keys(jobs))
    assert (kind.name, kind.axes) == ("line", ["data.n_features"])
    drawn = draw_quietly(lambda: line_figure(jobs, kind, "excess_population_risk"))
    assert_readable(drawn)
    figure = drawn[0]
    ax = figure.axes[0]
    drawn = [ln for ln in ax.get_lines() if ln.get_marker() == "o"]
    assert len(drawn) == lines
    first = others[0] or 0
    expected = [
        np.mean([1.0 / (1 + abs(x - 20)) + 0.01 * s + first for s in (0, 1, 2)]) for x in xs
    ]
    assert list(drawn[0].get_xdata()) == xs
    np.testing.assert_allclose(drawn[0].get_ydata(), expected, rtol=1e-12)
    assert ax.get_xscale() == ("log" if n == 40 else "linear")  # 10..400 spans decades
    assert len(ax.collections) >= lines  # a band over the three seeds


def test_a_search_is_a_scatter_of_the_value_over_each_key(tmp_path):
    rng = np.random.default_rng(0)
    jobs = []
    for trial in range(40):
        lr, decay = float(10 ** rng.uniform(-4, 0)), float(rng.uniform(0, 0.1))
        status = "diverged" if lr > 0.5 else "ok"
        results = {"status": status, "val_loss": lr + decay if status == "ok" else None}
        overrides = {"optimizer.lr": lr, "optimizer.weight_decay": decay, "optuna_trial": trial}
        jobs.append(Job(tmp_path / f"trial={trial}", overrides, results))
    kind = kind_of(jobs, varied_keys(jobs))
    assert (kind.name, kind.axes) == ("scatter", ["optimizer.lr", "optimizer.weight_decay"])
    drawn = draw_quietly(lambda: scatter_figure(jobs, kind, "val_loss"))
    assert_readable(drawn)
    figure = drawn[0]
    lr_ax = figure.axes[0]
    assert lr_ax.get_xscale() == "log" and lr_ax.get_xlabel() == "optimizer.lr"
    ok = [j for j in jobs if j.status == "ok"]
    points = lr_ax.collections[0].get_offsets()
    expected = [(j.overrides["optimizer.lr"], j.results["val_loss"]) for j in ok]
    np.testing.assert_allclose(points, expected)
    colours = lr_ax.collections[0].get_array()  # coloured by the other key
    np.testing.assert_allclose(colours, [j.overrides["optimizer.weight_decay"] for j in ok])


@pytest.mark.parametrize("n", [1, 6, 40])
def test_curves_of_many_settings_keep_the_legend_inside(tmp_path, n):
    lrs = [round(10 ** (-3 + 3 * i / max(n - 1, 1)), 6) for i in range(n)]
    jobs = [make_job(tmp_path, f"{lr},{b}", lr, b, "ok", [1.0, 0.5 / (1 + lr)])
            for lr in lrs for b in (1, 16)]  # fmt: skip
    drawn = draw_quietly(lambda: curves_figure(jobs, []))
    assert_readable(drawn)
    figure = drawn[0]
    curves = [ln for ln in figure.axes[0].get_lines() if ln.get_marker() == "."]
    assert len(curves) == 2 * n
