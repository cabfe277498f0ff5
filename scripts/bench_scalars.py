"""Reading a sweep's TensorBoard scalars: ``linlab.scalars.read_scalars`` against TensorBoard's
``EventAccumulator``, on every job folder of a sweep, alternating per folder in this run; both
must read the same points. The ratio is what to quote::

    PYTHONPATH=$PWD/src python scripts/bench_scalars.py multirun/<sweep> --jobs 1000
"""

from __future__ import annotations

import argparse
import math
import time
from pathlib import Path

from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from linlab import tags
from linlab.scalars import read_scalars


def accumulated(folder: Path) -> dict[str, dict[int, float]]:
    """TensorBoard's reading, as ``read_scalars`` returns it."""
    events = EventAccumulator(str(folder), size_guidance={"scalars": 0})
    events.Reload()
    curves: dict[str, dict[int, float]] = {}
    for tag in events.Tags()["scalars"]:
        curves.setdefault(tags.current(tag), {}).update(
            (e.step, e.value) for e in events.Scalars(tag)
        )
    return {tag: dict(sorted(curve.items())) for tag, curve in curves.items()}


def same(a: dict, b: dict) -> bool:
    """Equal tags, steps and values (NaN equal to NaN: a diverged run logs them)."""

    def equal(x: float, y: float) -> bool:
        return x == y or (math.isnan(x) and math.isnan(y))

    return list(a) == list(b) and all(
        list(a[t]) == list(b[t]) and all(map(equal, a[t].values(), b[t].values())) for t in a
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("sweep_dir", type=Path)
    parser.add_argument("--jobs", type=int, default=1000, help="job folders read (at most)")
    args = parser.parse_args()
    folders = sorted({p.parent for p in args.sweep_dir.glob("*/*tfevents*")})[: args.jobs]
    read_scalars(folders[0]), accumulated(folders[0])  # imports and tables, outside the clock
    ours = theirs = 0.0
    points = 0
    for folder in folders:
        started = time.perf_counter()
        expected = accumulated(folder)
        middle = time.perf_counter()
        got = read_scalars(folder)
        ours += time.perf_counter() - middle
        theirs += middle - started
        if not same(expected, got):
            raise SystemExit(f"{folder}: read_scalars differs from EventAccumulator")
        points += sum(map(len, got.values()))
    print(
        f"{len(folders)} job folders, {points:,} points, the same from both; "
        f"EventAccumulator {theirs:.2f} s, read_scalars {ours:.2f} s, "
        f"{theirs / ours:.1f}x faster ({1000 * ours / len(folders):.2f} ms a folder)"
    )


if __name__ == "__main__":
    main()
