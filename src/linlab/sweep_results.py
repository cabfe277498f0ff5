"""A sweep folder in Python: ``sweep = linlab.load_sweep("multirun/<sweep>")``.

Read through the report's reader (``linlab.report.jobs.load_jobs``), so a killed sweep's
jobs are there too: ``running``/``interrupted`` ones that started, ``pending`` ones planned
in ``sweep.json`` that did not. The figures are the report's (``linlab.report.figures``).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from linlab.report import value as values
from linlab.report.jobs import Job, load_jobs, ranked, varied_keys
from linlab.report.tables import metric_columns
from linlab.runs import Run, pandas

if TYPE_CHECKING:
    import pandas as pd
    from matplotlib.figure import Figure


class Sweep:
    """One sweep folder: ``table``, ``best``, ``runs``, ``figures()``, ``heatmap()``,
    ``curves()``."""

    def __init__(self, folder: str | Path) -> None:
        self.folder = Path(folder)

    def __repr__(self) -> str:
        return f"Sweep({str(self.folder)!r}, jobs={len(self.jobs)})"

    def _read(self) -> tuple[list[Job], str]:
        """The jobs, best first, and the sweep's value, from one read of the folder (each
        property reads it afresh, so a running sweep shows its progress)."""
        jobs = load_jobs(self.folder)
        value = values.shown(values.of_sweep(self.folder), [j.results for j in jobs])
        return ranked(jobs, value, varied_keys(jobs)), value

    @property
    def value(self) -> str:
        """What the sweep is about: its ``report.value`` (val_loss unless a preset says)."""
        return self._read()[1]

    @property
    def jobs(self) -> list[Job]:
        """The jobs as the report reads them, best first (``linlab.report.jobs.ranked``)."""
        return self._read()[0]

    @property
    def table(self) -> pd.DataFrame:
        """One row per job, best first: the swept keys, then status and final metrics."""
        pd = pandas()
        jobs, value = self._read()
        keys = varied_keys(jobs)
        columns = (*keys, *metric_columns(jobs, value))
        rows = [{c: job.value(c) for c in columns} for job in jobs]
        return pd.DataFrame(rows, index=pd.Index([job.name for job in jobs], name="job"))

    @property
    def runs(self) -> list[Run]:
        """Every job that has a folder, best first."""
        return [Run(job.folder) for job in self.jobs if job.folder.is_dir()]

    @property
    def best(self) -> Run | None:
        """The ``ok`` job with the best final ``value`` (None if no job finished so)."""
        jobs, value = self._read()
        ok = [j for j in jobs if j.status == "ok" and values.number(j.results, value) is not None]
        return Run(ok[0].folder) if ok else None

    def figures(self, value: str | None = None) -> dict[str, Figure]:
        """``linlab-report``'s figures for what varied, by file name (``report_heatmap.png``
        for lr × batch size, ``report_line.png`` for one numeric key, ``report_scatter.png`` for
        a search, and ``report_curves.png``)."""
        from linlab.notebook import show_figures_inline
        from linlab.report.cli import figures
        from linlab.report.kinds import kind_of

        show_figures_inline()
        jobs, default = self._read()
        drawn, _ = figures(jobs, kind_of(jobs, varied_keys(jobs)), value or default)
        return {name: figure for name, (_, figure) in drawn.items()}

    def heatmap(self, value: str | None = None) -> Figure:
        """Final ``value`` (the sweep's own by default) over lr × batch size."""
        from linlab.notebook import show_figures_inline
        from linlab.report.figures import heatmap_figure
        from linlab.report.kinds import kind_of

        show_figures_inline()
        jobs, default = self._read()
        kind = kind_of(jobs, varied_keys(jobs))
        others = kind.others if kind.name == "heatmap" else []
        return heatmap_figure(jobs, others, value or default)

    def curves(self) -> Figure:
        """The jobs' loss curves, as ``linlab-report`` draws them."""
        return self.figures()["report_curves.png"]


def load_sweep(folder: str | Path) -> Sweep:
    """A sweep folder as a :class:`Sweep`; a folder without jobs is refused here."""
    sweep = Sweep(folder)
    load_jobs(sweep.folder)
    return sweep
