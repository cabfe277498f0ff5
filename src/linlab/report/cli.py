"""``linlab-report <sweep folder>``: which settings won, which diverged or failed.

    linlab-report multirun/2026-11-23_10-00-00_a1b2c3

Reads every job's ``results.json`` (a job still running has none yet and is listed as
``running``; a planned job of ``sweep.json`` without a folder as ``pending``; a
results.json that cannot be read as ``unreadable``, with the reason), prints a table sorted
by final validation loss with the best ``ok`` job named, and writes into the sweep folder
``report.csv``, ``report.md``, ``report_heatmap.png`` (final val loss over lr × batch size)
and ``report_curves.png`` (val-loss curves from the TensorBoard events). Keys varied besides
lr, batch size and seed split the figures into panels; a varied ``seed`` is aggregated (a
table of mean ± 95% interval per setting, mean cells and curves with bands:
``linlab.report.aggregate``). ``--value steps_to_target`` (or another of
``aggregate.VALUES``) picks what the heatmap shows; a sweep over ``data.n_features`` on a
Gaussian design also gets ``report_risk.png`` (double descent).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from linlab.report.aggregate import VALUES
from linlab.report.jobs import ReportError, best_line, load_jobs, ranked, status_counts, varied_keys
from linlab.report.tables import format_table, markdown_table, table_rows, write_csv


def report(sweep_dir: Path, value: str = "val_loss") -> str:
    """Write the report files into ``sweep_dir``; return the text printed to the console."""
    from linlab.report import aggregate, risk_curve
    from linlab.report.figures import curves_figure, facet_keys, heatmap_figure
    from linlab.report.study import optuna_view

    jobs = load_jobs(sweep_dir)
    keys = varied_keys(jobs)
    facets = facet_keys(keys)
    rows = table_rows(ranked(jobs), keys)
    write_csv(sweep_dir / "report.csv", jobs, keys)
    heatmap_figure(jobs, facets, value).savefig(sweep_dir / "report_heatmap.png", dpi=110)
    curves_figure(jobs, facets).savefig(sweep_dir / "report_curves.png", dpi=110)
    figures = ["report_heatmap.png", "report_curves.png"]
    if risk_curve.applies(jobs, keys):
        risk_curve.risk_figure(jobs).savefig(sweep_dir / "report_risk.png", dpi=110)
        figures.append("report_risk.png")
    seeds = aggregate.table_rows(jobs, keys, value) if aggregate.SEED_KEY in keys else []
    over_seeds = [f"over seeds: {value}, mean ± 95% interval (t) per setting", ""] if seeds else []
    grouping = (
        f"figures: one panel per value of {' × '.join(facets)} (varied besides lr × batch size)"
        if facets
        else "figures: one panel (only lr and batch size varied)"
    )
    head = [
        f"sweep {sweep_dir}: {len(jobs)} jobs ({status_counts(jobs)})",
        f"varied: {', '.join(keys) or 'nothing'}",
        best_line(jobs),
        grouping,
    ]
    markdown = [
        f"# Sweep report: {sweep_dir.name}",
        "",
        *(f"- {line}" for line in head[1:]),
        "",
        markdown_table(rows),
        "",
        "![final val loss over lr × batch size](report_heatmap.png)",
        "",
        "![val loss curves](report_curves.png)",
        "",
    ]
    if "report_risk.png" in figures:
        markdown += ["![excess population risk over d/n](report_risk.png)", ""]
    if seeds:
        markdown += [f"## {over_seeds[0]}", "", markdown_table(seeds), ""]
        over_seeds += [format_table(seeds), ""]
    (sweep_dir / "report.md").write_text("\n".join(markdown))
    written = "wrote " + ", ".join(
        str(sweep_dir / n) for n in ("report.csv", "report.md", *figures)
    )
    problems = [f"{job.name}: {job.problem}" for job in jobs if job.problem]
    lines = [head[0], head[1], "", format_table(rows), "", *problems, *over_seeds, *head[2:]]
    return "\n".join([*lines, written, *optuna_view(sweep_dir)])


def main(argv: list[str] | None = None) -> None:
    """Console entry point ``linlab-report``; exit 2 with one line on bad input."""
    parser = argparse.ArgumentParser(prog="linlab-report", description=__doc__.splitlines()[0])
    parser.add_argument("sweep_dir", type=Path, help="a sweep folder written by linlab-train -m")
    parser.add_argument(
        "--value",
        choices=VALUES,
        default="val_loss",
        help="what the heatmap and the over-seeds table show (default: val_loss)",
    )
    args = parser.parse_args(argv)
    try:
        print(report(args.sweep_dir, args.value))
    except ReportError as error:
        print(f"linlab-report: {error}", file=sys.stderr)
        raise SystemExit(2) from None


if __name__ == "__main__":
    main()
