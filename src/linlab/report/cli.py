"""``linlab-report <sweep folder>``: which settings won, which diverged or failed.

    linlab-report multirun/2026-11-23_10-00-00_a1b2c3

Reads every job's ``results.json`` (a job still running has none yet and is listed as
``running``; a planned job of ``sweep.json`` without a folder as ``pending``; a
results.json that cannot be read as ``unreadable``, with the reason), prints a table sorted
by the sweep's value (``report.value``: final val loss unless a preset names another;
``--value`` picks another; past 30 rows the console shows the first 30 and the files hold
all; past 100 jobs with a problem it names the first 100 and ``report.md`` every one) with
the best ``ok`` job named, and writes into the sweep folder ``report.csv``,
``report.md``, ``report_curves.png`` (loss curves from the TensorBoard events; past 100
settings a panel draws 25 of them, evenly spaced, and the best) and the figure that what
varied calls for (``linlab.report.kinds``):
``report_heatmap.png`` over lr × batch size, ``report_line.png`` over one numeric key or
``report_scatter.png`` for a search. A varied ``seed`` is aggregated (a table of mean ± 95%
interval per setting, mean cells, points and curves with bands: ``linlab.report.aggregate``);
a sweep over ``data.n_features`` on a Gaussian design also gets ``report_risk.png``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from matplotlib.figure import Figure

from linlab.report import value as chosen
from linlab.report.jobs import ReportError, best_line, load_jobs, ranked, status_counts, varied_keys
from linlab.report.kinds import Kind, kind_of
from linlab.report.tables import (
    PROBLEMS_MAX,
    console_table,
    first_lines,
    markdown_table,
    table_rows,
    write_csv,
)


def report(sweep_dir: Path, value: str | None = None) -> str:
    """Write the report files into ``sweep_dir``; return the text printed to the console.
    ``value`` defaults to the sweep's ``report.value``."""
    from linlab.report import aggregate, risk_curve
    from linlab.report.study import optuna_view

    jobs = load_jobs(sweep_dir)
    value = chosen.shown(value or chosen.of_sweep(sweep_dir), [j.results for j in jobs])
    check_value(jobs, value)
    keys = varied_keys(jobs)
    kind = kind_of(jobs, keys)
    rows = table_rows(ranked(jobs, value, keys), keys, value)
    write_csv(sweep_dir / "report.csv", ranked(jobs, value, keys), keys, value)
    figures, captions, grouping = draw(sweep_dir, jobs, kind, value)
    if risk_curve.applies(jobs, keys):
        risk_curve.risk_figure(jobs).savefig(sweep_dir / "report_risk.png", dpi=110)
        figures.append("report_risk.png")
        captions.append("excess population risk over d/n")
    seeds = aggregate.table_rows(jobs, keys, value) if aggregate.SEED_KEY in keys else []
    over_seeds = [f"over seeds: {value}, mean ± 95% interval (t) per setting", ""] if seeds else []
    head = [
        f"sweep {sweep_dir}: {len(jobs)} jobs ({status_counts(jobs)})",
        f"varied: {', '.join(keys) or 'nothing'}",
        best_line(jobs, value),
        grouping,
    ]
    markdown = [
        f"# Sweep report: {sweep_dir.name}",
        "",
        *(f"- {line}" for line in head[1:]),
        "",
        markdown_table(rows),
        "",
    ]
    for name, caption in zip(figures, captions, strict=True):
        markdown += [f"![{caption}]({name})", ""]
    if seeds:
        markdown += [f"## {over_seeds[0]}", "", markdown_table(seeds), ""]
        over_seeds += [console_table(seeds, "settings", str(sweep_dir / "report.md")), ""]
    problems = [f"{job.name}: {job.problem}" for job in jobs if job.problem]
    if problems:
        markdown += ["## Jobs with a problem", "", *(f"- {p}" for p in problems), ""]
    (sweep_dir / "report.md").write_text("\n".join(markdown))
    written = "wrote " + ", ".join(
        str(sweep_dir / n) for n in ("report.csv", "report.md", *figures)
    )
    problems = first_lines(
        problems, PROBLEMS_MAX, "jobs with a problem", str(sweep_dir / "report.md")
    )
    table = console_table(rows, "jobs", str(sweep_dir / "report.csv"))
    lines = [head[0], head[1], "", table, "", *problems, *over_seeds, *head[2:]]
    return "\n".join([*lines, written, *optuna_view(sweep_dir)])


def check_value(jobs: list, value: str) -> None:
    """Refuse a value no ok job recorded, naming the numbers they did record."""
    from linlab.report.aggregate import metric

    ok = [j for j in jobs if j.status == "ok"]
    if not ok or any(metric(j, value) is not None for j in ok):
        return
    recorded = sorted({k for j in ok for k in (*j.results, *(j.results.get("theory") or {}))
                       if metric(j, k) is not None})  # fmt: skip
    raise ReportError(f"--value {value}: no ok job recorded it; allowed: {', '.join(recorded)}")


def figures(jobs: list, kind: Kind, value: str) -> tuple[dict[str, tuple[str, Figure]], str]:
    """The figures ``kind`` calls for, by file name with their captions, and the console line
    that says how they are laid out (``linlab.Sweep`` draws the same)."""
    from linlab.report.figures import curve_tag, curves_figure, heatmap_figure
    from linlab.report.value_plots import line_figure, scatter_figure

    label = value.replace("_", " ")
    curves = f"{curve_tag(jobs)} curves"
    if kind.name == "heatmap":
        grouping = (
            f"figures: one panel per value of {' × '.join(kind.others)} "
            "(varied besides lr × batch size)"
            if kind.others
            else "figures: one panel (only lr and batch size varied)"
        )
        return {
            "report_heatmap.png": (
                f"final {label} over lr × batch size",
                heatmap_figure(jobs, kind.others, value),
            ),
            "report_curves.png": (curves, curves_figure(jobs, kind.others)),
        }, grouping
    x = kind.axes[0]
    if kind.name == "line":
        style = kind.others[0] if kind.others else None
        lines = f", one line per {' × '.join(kind.others)}" if kind.others else ""
        return {
            "report_line.png": (f"final {label} over {x}", line_figure(jobs, kind, value)),
            "report_curves.png": (curves, curves_figure(jobs, [], x, style)),
        }, f"figures: final {label} over {x}{lines}"
    return {
        "report_scatter.png": (
            f"final {label} over the searched keys",
            scatter_figure(jobs, kind, value),
        ),
        "report_curves.png": (curves, curves_figure(jobs, [], x, None)),
    }, f"figures: final {label} of each job over {', '.join(kind.axes)} (a search)"


def draw(sweep_dir: Path, jobs: list, kind: Kind, value: str) -> tuple[list, list, str]:
    """``figures`` saved into ``sweep_dir``: their files, captions and layout line."""
    drawn, grouping = figures(jobs, kind, value)
    for name, (_, figure) in drawn.items():
        save(figure, sweep_dir / name)
    return list(drawn), [caption for caption, _ in drawn.values()], grouping


def save(figure: Figure, path: Path) -> None:
    figure.savefig(path, dpi=110)


def main(argv: list[str] | None = None) -> None:
    """Console entry point ``linlab-report``; exit 2 with one line on bad input."""
    parser = argparse.ArgumentParser(prog="linlab-report", description=__doc__.splitlines()[0])
    parser.add_argument("sweep_dir", type=Path, help="a sweep folder written by linlab-train -m")
    parser.add_argument(
        "--value",
        default=None,
        help="a results.json number (val_loss, excess_population_risk, ...) the table is "
        "sorted by and the figures and the over-seeds table show (default: the sweep's "
        "report.value)",
    )
    args = parser.parse_args(argv)
    try:
        print(report(args.sweep_dir, args.value))
    except ReportError as error:
        print(f"linlab-report: {error}", file=sys.stderr)
        raise SystemExit(2) from None


if __name__ == "__main__":
    main()
