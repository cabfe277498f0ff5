"""The figures of the research presets, drawn from a finished sweep folder:

    python -m linlab.research_figures implicit_bias <sweep folder> <out.png>
    python -m linlab.research_figures sgd_learning_curve <sweep folder> <out.png>

``implicit_bias``: ``theory/angle_to_max_margin`` over the step t (log scale), one line per
learning rate, with the rate c/log t of Soudry et al. (2018) drawn through the last point.
``sgd_learning_curve``: per batch size, the measured ``theory/population_risk`` over steps
(mean and 95% band over seeds) against the predicted ``theory/expected_risk`` (its mean over
the seeds, whose β and start differ).
"""

from __future__ import annotations

import math
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

from linlab import tags
from linlab.report import aggregate
from linlab.report.jobs import Job, load_jobs
from linlab.scalars import read_scalars


def scalar_curve(job: Job, tag: str) -> tuple[np.ndarray, np.ndarray]:
    """(steps, values) of one TensorBoard scalar of a job; empty when it has none."""
    curve = read_scalars(job.folder).get(tag, {})
    return np.array(list(curve), dtype=int), np.array(list(curve.values()), dtype=float)


def implicit_bias_figure(jobs: Sequence[Job]) -> Figure:
    fig = Figure(figsize=(6.4, 4.2), layout="constrained")
    ax = fig.add_subplot()
    last = None
    for job in sorted(jobs, key=lambda j: j.results.get("lr") or 0):
        steps, angles = scalar_curve(job, tags.theory("angle_to_max_margin"))
        keep = steps >= 1
        ax.plot(steps[keep], angles[keep], label=f"lr {job.results.get('lr'):g}")
        if keep.any():
            last = (steps[keep][-1], angles[keep][-1])
    if last is not None:
        t = np.geomspace(2, last[0], 200)
        c = last[1] * math.log(last[0])
        ax.plot(t, c / np.log(t), "k--", label="c / log t")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("gradient step t")
    ax.set_ylabel("angle to the max-margin direction (rad)")
    ax.set_title("GD on the logistic loss, separable data")
    ax.legend()
    return fig


def learning_curve_figure(jobs: Sequence[Job]) -> Figure:
    fig = Figure(figsize=(6.4, 4.2), layout="constrained")
    ax = fig.add_subplot()
    by_batch: dict[int, list[Job]] = {}
    for job in jobs:
        if job.status == "ok":
            by_batch.setdefault(job.results.get("batch_size"), []).append(job)
    for index, (batch, members) in enumerate(sorted(by_batch.items())):
        colour = f"C{index}"
        curves = [scalar_curve(job, tags.theory("population_risk")) for job in members]
        length = min(len(values) for _, values in curves)
        steps = curves[0][0][:length]
        values = np.stack([v[:length] for _, v in curves])
        bands = [aggregate.interval(list(column)) for column in values.T]
        mean = np.array([b.mean for b in bands])
        half = np.nan_to_num(np.array([b.half_width for b in bands]))
        ax.plot(steps, mean, color=colour, label=f"batch {batch}: measured")
        ax.fill_between(steps, mean - half, mean + half, color=colour, alpha=0.25, linewidth=0)
        expected_tag = tags.theory("expected_risk")
        expected = np.stack([scalar_curve(j, expected_tag)[1][:length] for j in members])
        ax.plot(steps, expected.mean(0), "--", color="k" if index == 0 else colour, lw=1)
    ax.plot([], [], "k--", lw=1, label="predicted E[risk]")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("SGD step")
    ax.set_ylabel("population risk")
    ax.set_title(f"one-pass SGD, {len({j.results.get('seed') for j in jobs})} seeds per batch")
    ax.legend()
    return fig


FIGURES = {"implicit_bias": implicit_bias_figure, "sgd_learning_curve": learning_curve_figure}


def main(argv: Sequence[str] | None = None) -> None:
    args = list(sys.argv[1:] if argv is None else argv)
    if len(args) != 3 or args[0] not in FIGURES:
        print(
            f"usage: python -m linlab.research_figures {{{','.join(FIGURES)}}} <sweep> <out.png>",
            file=sys.stderr,
        )
        raise SystemExit(2)
    name, sweep, out = args
    FIGURES[name](load_jobs(Path(sweep))).savefig(out, dpi=110)
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
