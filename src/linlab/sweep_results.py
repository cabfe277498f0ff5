"""A sweep folder in Python: ``sweep = linlab.load_sweep("multirun/<sweep>")``.

Read through the report's reader (``linlab.report.jobs.load_jobs``), so a killed sweep's
jobs are there too: ``running``/``interrupted`` ones that started, ``pending`` ones planned
in ``sweep.json`` that did not. The figures are the report's (``linlab.report.figures``).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from linlab.report.jobs import Job, load_jobs, ranked, varied_keys
from linlab.report.tables import METRIC_COLUMNS
from linlab.runs import Run, pandas

if TYPE_CHECKING:
    import pandas as pd
    from matplotlib.figure import Figure


class Sweep:
    """One sweep folder: ``table``, ``best``, ``runs``, ``heatmap()``, ``curves()``."""

    def __init__(self, folder: str | Path) -> None:
        self.folder = Path(folder)

    def __repr__(self) -> str:
        return f"Sweep({str(self.folder)!r}, jobs={len(self.jobs)})"

    @property
    def jobs(self) -> list[Job]:
        """The jobs as the report reads them, best first (``linlab.report.jobs.ranked``)."""
        return ranked(load_jobs(self.folder))

    @property
    def table(self) -> pd.DataFrame:
        """One row per job, best first: the swept keys, then status and final metrics."""
        pd = pandas()
        jobs = self.jobs
        keys = varied_keys(jobs)
        rows = [{c: job.value(c) for c in (*keys, *METRIC_COLUMNS)} for job in jobs]
        return pd.DataFrame(rows, index=pd.Index([job.name for job in jobs], name="job"))

    @property
    def runs(self) -> list[Run]:
        """Every job that has a folder, best first."""
        return [Run(job.folder) for job in self.jobs if job.folder.is_dir()]

    @property
    def best(self) -> Run | None:
        """The ``ok`` job with the lowest final val loss (None if no job finished so)."""
        ok = [j for j in self.jobs if j.status == "ok" and j.val_loss is not None]
        return Run(ok[0].folder) if ok else None

    def heatmap(self, value: str = "val_loss") -> Figure:
        """Final ``value`` over lr × batch size, as ``linlab-report`` draws it."""
        from linlab.notebook import show_figures_inline
        from linlab.report.figures import facet_keys, heatmap_figure

        show_figures_inline()
        jobs = self.jobs
        return heatmap_figure(jobs, facet_keys(varied_keys(jobs)), value)

    def curves(self) -> Figure:
        """The jobs' val-loss curves, as ``linlab-report`` draws them."""
        from linlab.notebook import show_figures_inline
        from linlab.report.figures import curves_figure, facet_keys

        show_figures_inline()
        jobs = self.jobs
        return curves_figure(jobs, facet_keys(varied_keys(jobs)))


def load_sweep(folder: str | Path) -> Sweep:
    """A sweep folder as a :class:`Sweep`; a folder without jobs is refused here."""
    sweep = Sweep(folder)
    load_jobs(sweep.folder)
    return sweep
