"""The sweep's live line on a terminal::

    3 done, 2 running, 59 left  0:00:12 elapsed  0:04:01 left

Redrawn twice a second by a thread of the launching process, whatever runs the jobs (in this
process, joblib workers, submitit tasks, a stacked group): it counts the sweep folder's job
folders, which every launcher writes the same way (``.hydra/`` when a job starts,
``results.json`` when it ends). Counting a folder of 10,000 jobs takes a while, so the folder is
read at most once a second and never for more than a twentieth of the time. Where the jobs'
own console lines go to log files (submitit tasks, Ray workers), the same count prints a line
for each job that ended in this launch (``report_job``), on a terminal or not: a job whose
``results.json`` an earlier launch wrote only once it is trained again (a re-run sweep's
failed jobs).
"""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import TextIO

from linlab.results import RESULTS_FILE

CLEAR = "\r\x1b[K"  # back to the line's start and erase it
REDRAW_S = 0.5


class LiveSweepLine:
    """``start()`` on a terminal draws the line until ``stop()``; ``above(text)`` prints a
    line of the sweep's console above it."""

    def __init__(
        self,
        sweep_dir: Path,
        total: int | None,
        report_job: Callable[[Path], str] | None = None,
        stream: TextIO | None = None,
    ) -> None:
        self.sweep_dir, self.total, self.report_job = sweep_dir, total, report_job
        self.stream = stream or sys.stdout  # the current one (a notebook's, a redirect)
        self.draw = bool(getattr(self.stream, "isatty", lambda: False)())
        self.reported: set[Path] = set()  # jobs that ended in this launch
        self.lock = threading.Lock()
        self.stopped = threading.Event()
        self.thread: threading.Thread | None = None
        self.started = time.perf_counter()
        self.done = self.running = 0
        self.at_start: dict[Path, int] | None = None  # results.json an earlier launch wrote
        self.next_count = 0.0

    def start(self) -> None:
        if not (self.draw or self.report_job):
            return
        self.thread = threading.Thread(target=self._draw_until_stopped, daemon=True)
        self.thread.start()

    def stop(self) -> None:
        """Erase the line and stop drawing it."""
        if self.thread is None:
            return
        self.stopped.set()
        self.thread.join()
        if self.report_job:
            self.count()  # the jobs that finished since the last count
        self.thread = None
        if self.draw:
            with self.lock:
                self.stream.write(CLEAR)
                self.stream.flush()

    def above(self, text: str) -> None:
        with self.lock:
            self.stream.write((CLEAR if self.draw and self.thread else "") + text + "\n")
            self.stream.flush()

    def text(self) -> str:
        """The line: jobs done, running and left, time elapsed and (at this launch's rate) left."""
        elapsed = time.perf_counter() - self.started
        left = max((self.total or 0) - self.done - self.running, 0)
        finished_now = len(self.reported)
        rate = finished_now / elapsed if finished_now and elapsed > 0 else None
        remaining = (left + self.running) / rate if rate else None
        return (
            f"{self.done} done, {self.running} running, {left if self.total else '?'} left  "
            f"{_clock(elapsed)} elapsed  {_clock(remaining)} left"
        )

    def count(self) -> None:
        """Jobs done (a ``results.json``) and running (a ``.hydra/`` and no results yet)."""
        began = time.perf_counter()
        finished = [f.parent for f in self.sweep_dir.glob(f"*/{RESULTS_FILE}")]
        started = sum(1 for _ in self.sweep_dir.glob("*/.hydra"))
        done = len(finished)
        self.done, self.running = done, max(started - done, 0)
        if self.at_start is None:  # not reported, unless a job trained again rewrites one
            self.at_start = {folder: _written(folder) for folder in finished}
        unseen = (f for f in finished if f not in self.reported)
        ended = [f for f in unseen if self.at_start.get(f) != _written(f)]
        for folder in sorted(ended, key=_written):
            self.reported.add(folder)
            if self.report_job:
                self.above(self.report_job(folder))
        took = time.perf_counter() - began
        self.next_count = time.perf_counter() + max(1.0, 20 * took)

    def _draw_until_stopped(self) -> None:
        while not self.stopped.is_set():
            if time.perf_counter() >= self.next_count:
                self.count()
            with self.lock:
                if self.draw and not self.stopped.is_set():
                    self.stream.write(CLEAR + self.text())
                    self.stream.flush()
            self.stopped.wait(REDRAW_S)


def _written(folder: Path) -> int:
    try:
        return (folder / RESULTS_FILE).stat().st_mtime_ns
    except OSError:
        return 0


def _clock(seconds: float | None) -> str:
    return "-:--:--" if seconds is None else str(timedelta(seconds=round(seconds)))
