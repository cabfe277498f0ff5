"""``linlab-report <sweep folder>``: which settings won, which diverged or failed.

    linlab-report multirun/2026-11-23_10-00-00_a1b2c3

Reads every job's ``results.json`` (a job still running has none yet and is listed as
``running``), prints a table sorted by final validation loss with the best ``ok`` job named,
and writes into the sweep folder ``report.csv``, ``report.md``, ``report_heatmap.png`` (final
val loss over lr × batch size) and ``report_curves.png`` (val-loss curves from the
TensorBoard events). Keys varied besides lr, batch size and seed split the figures into
panels; a varied ``seed`` is aggregated (a table of mean ± 95% interval per setting, mean
cells and curves with bands: ``linlab.sweeps.aggregate``). ``--value steps_to_target`` (or
another of ``aggregate.VALUES``) picks what the heatmap shows; a sweep over
``data.n_features`` on a Gaussian design also gets ``report_risk.png`` (double descent).
"""

from __future__ import annotations

import argparse
import csv
import math
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hydra.core.override_parser.overrides_parser import OverridesParser
from omegaconf import OmegaConf

from linlab.results import RESULTS_FILE, read_results_if_any
from linlab.sweeps.aggregate import VALUES
from linlab.sweeps.hparams import param_distance

AXIS_KEYS = ("optimizer.lr", "data.batch_size")
METRIC_COLUMNS = ("val_loss", "test_loss", "param_distance", "status", "epochs", "wall_time_s")
CSV_EXTRA = ("train_loss", "steps", "lr", "batch_size", "message")


class ReportError(Exception):
    """Input the report cannot work from; the message is the one line the user sees."""


@dataclass
class Job:
    """One job folder of a sweep: its overrides and its results (empty while running)."""

    folder: Path
    overrides: dict[str, Any]
    results: dict[str, Any] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return self.folder.name

    @property
    def status(self) -> str:
        return self.results.get("status", "running")

    @property
    def val_loss(self) -> float | None:
        value = self.results.get("val_loss")
        return value if isinstance(value, int | float) and math.isfinite(value) else None

    def value(self, key: str) -> Any:
        """A table cell: a results.json entry, a varied override, or None."""
        if key == "status":
            return self.status
        if key in self.results:
            return self.results[key]
        if key == "param_distance":
            return param_distance(self.results)
        return self.overrides.get(key)


def load_jobs(sweep_dir: Path) -> list[Job]:
    """Every job folder (one holding Hydra's ``.hydra/`` or a ``results.json``)."""
    if not sweep_dir.is_dir():
        raise ReportError(f"no such sweep folder: {sweep_dir}")
    folders = {p.parent for p in sweep_dir.glob("*/.hydra")}
    folders |= {p.parent for p in sweep_dir.glob(f"*/{RESULTS_FILE}")}
    if not folders:
        raise ReportError(
            f"no jobs in {sweep_dir}: expected job folders holding {RESULTS_FILE} "
            "(pass the folder that `linlab-train -m` printed)"
        )
    return [Job(f, _overrides(f), read_results_if_any(f)) for f in sorted(folders)]


def varied_keys(jobs: list[Job]) -> list[str]:
    """Override keys whose value differs between jobs, in command-line order."""
    keys = list(dict.fromkeys(k for job in jobs for k in job.overrides))
    return [k for k in keys if len({repr(job.overrides.get(k, ...)) for job in jobs}) > 1]


def ranked(jobs: list[Job]) -> list[Job]:
    """``ok`` jobs by final val loss first, then pruned, diverged, failed and running ones."""
    order = {"ok": 0, "pruned": 1, "diverged": 2, "failed": 3, "running": 4}

    def key(job: Job) -> tuple:
        loss = job.val_loss
        return (order.get(job.status, 4), loss is None, loss or 0.0, job.name)

    return sorted(jobs, key=key)


def table_rows(jobs: list[Job], keys: list[str]) -> list[dict[str, Any]]:
    columns = [*keys, *METRIC_COLUMNS]
    return [{"job": job.name, **{c: job.value(c) for c in columns}} for job in jobs]


def format_table(rows: list[dict[str, Any]]) -> str:
    """A fixed-width text table."""
    header = list(rows[0])
    cells = [[_cell(row[c]) for c in header] for row in rows]
    widths = [max(len(h), *(len(r[i]) for r in cells)) for i, h in enumerate(header)]
    lines = [header, *cells]
    return "\n".join(
        "  ".join(c.ljust(w) for c, w in zip(line, widths, strict=True)).rstrip() for line in lines
    )


def markdown_table(rows: list[dict[str, Any]]) -> str:
    header = list(rows[0])
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(_cell(row[c]) for c in header) + " |" for row in rows]
    return "\n".join(lines)


def best_line(jobs: list[Job]) -> str:
    ok = [j for j in ranked(jobs) if j.status == "ok" and j.val_loss is not None]
    if not ok:
        return "best: none (no job finished with status ok and a validation loss)"
    return f"best: {ok[0].name} (val_loss {ok[0].val_loss:.6g})"


def status_counts(jobs: list[Job]) -> str:
    counts: dict[str, int] = {}
    for job in jobs:
        counts[job.status] = counts.get(job.status, 0) + 1
    return ", ".join(f"{n} {status}" for status, n in sorted(counts.items()))


def write_csv(path: Path, jobs: list[Job], keys: list[str]) -> None:
    """Every number as written in results.json (``repr`` keeps all digits)."""
    columns = ["job", *keys, *METRIC_COLUMNS, *CSV_EXTRA]
    with path.open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(columns)
        for job in ranked(jobs):
            row = [job.name, *(job.value(c) for c in columns[1:])]
            writer.writerow(["" if v is None else v for v in row])


def report(sweep_dir: Path, value: str = "val_loss") -> str:
    """Write the report files into ``sweep_dir``; return the text printed to the console."""
    from linlab.search.report import optuna_view
    from linlab.sweeps import aggregate, risk_curve
    from linlab.sweeps.report_plots import curves_figure, facet_keys, heatmap_figure

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
    lines = [head[0], head[1], "", format_table(rows), "", *over_seeds, *head[2:], written]
    return "\n".join([*lines, *optuna_view(sweep_dir)])


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


def _overrides(folder: Path) -> dict[str, Any]:
    """A job's task overrides, with values typed as Hydra read them (``1e-3`` → 0.001)."""
    path = folder / ".hydra" / "overrides.yaml"
    if not path.is_file():
        return {}
    overrides = OverridesParser.create().parse_overrides(list(OmegaConf.load(path)))
    return {o.key_or_group: o.value() for o in overrides}


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


if __name__ == "__main__":
    main()
