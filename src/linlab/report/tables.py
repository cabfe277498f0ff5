"""The report's tables: fixed-width text for the console, Markdown and CSV for files."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

from linlab.report.jobs import Job

METRIC_COLUMNS = ("val_loss", "test_loss", "param_distance", "status", "epochs", "wall_time_s")
CSV_EXTRA = ("train_loss", "steps", "lr", "batch_size", "message")
CLASSIFIER_COLUMNS = ("val_accuracy", "val_margin")  # shown when a job has them
CONSOLE_ROWS = 30  # more rows than this: the console shows the first (best) ones, files all
PROBLEMS_MAX = 100  # more jobs with a problem than this: the console names the first ones


def metric_columns(jobs: list[Job], value: str) -> list[str]:
    """The sweep's value first (when it is not one of the usual columns), then the usual, with
    a classifier's accuracy and margin after the losses when a job has them."""
    extra = [c for c in CLASSIFIER_COLUMNS if any(job.value(c) is not None for job in jobs)]
    usual = [*METRIC_COLUMNS[:2], *extra, *METRIC_COLUMNS[2:]]
    return usual if value in usual else [value, *usual]


def table_rows(jobs: list[Job], keys: list[str], value: str = "val_loss") -> list[dict[str, Any]]:
    columns = [*keys, *metric_columns(jobs, value)]
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


def console_table(rows: list[dict[str, Any]], what: str, where: str) -> str:
    """``format_table`` of the first ``CONSOLE_ROWS`` rows (the best: rows come ranked) and a
    line saying how many more ``what`` the file ``where`` holds: a sweep of thousands of jobs
    keeps its console output one screen long."""
    table = format_table(rows[:CONSOLE_ROWS])
    if len(rows) <= CONSOLE_ROWS:
        return table
    return f"{table}\n{more_line(len(rows) - CONSOLE_ROWS, what, where)}"


def first_lines(lines: list[str], most: int, what: str, where: str) -> list[str]:
    """``lines``, or past ``most`` the first ``most`` and the line that says where the rest are."""
    if len(lines) <= most:
        return lines
    return [*lines[:most], more_line(len(lines) - most, what, where)]


def more_line(count: int, what: str, where: str) -> str:
    return f"... {count:,} more {what} in {where}"


def markdown_table(rows: list[dict[str, Any]]) -> str:
    header = list(rows[0])
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(_cell(row[c]) for c in header) + " |" for row in rows]
    return "\n".join(lines)


def write_csv(path: Path, jobs: list[Job], keys: list[str], value: str = "val_loss") -> None:
    """The jobs in the order given, every number as written in results.json (``repr`` keeps
    all digits)."""
    columns = ["job", *keys, *metric_columns(jobs, value), *CSV_EXTRA]
    with path.open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(columns)
        for job in jobs:
            row = [job.name, *(job.value(c) for c in columns[1:])]
            writer.writerow(["" if v is None else v for v in row])


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)
