"""One stacked group of many members on a GPU against one run of one job there.

    python scripts/bench_gpu.py                      # 4096 members, the issue's target
    python scripts/bench_gpu.py --members 256        # a quick check

Both are whole ``linlab-train`` commands in fresh processes on the default problem
(``data.n_samples=1000``, d=5, ``trainer=gpu``): the group is
``-m hydra/launcher=stacked optimizer.lr=<members values>``, so every member shares the data
and the group trains as one stacked model on the device. The ratio is the group's wall time
over the median of ``--repeats`` single runs, measured in the same invocation; the target is
``<= 3x``.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

TARGET = 3.0


def linlab_train(args: list[str], workdir: Path, limit_s: float) -> float:
    """Wall seconds of ``python -m linlab.train <args>`` in a fresh process (inf past limit_s)."""
    started = time.perf_counter()
    try:
        proc = subprocess.run(
            [sys.executable, "-m", "linlab.train", *args, "trainer=gpu"],
            cwd=workdir,
            capture_output=True,
            text=True,
            timeout=limit_s,
        )
    except subprocess.TimeoutExpired:
        return float("inf")
    wall = time.perf_counter() - started
    if proc.returncode != 0:
        raise RuntimeError(f"linlab-train {' '.join(args[:3])} … failed:\n{proc.stderr[-3000:]}")
    return wall


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--members", type=int, nargs="+", default=[4096])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--limit-s", type=float, default=1800, help="give up on a group after")
    args = parser.parse_args()
    import torch

    print(f"# {torch.cuda.get_device_name()}, torch {torch.__version__}, {os.cpu_count()} CPUs")
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        singles = []
        for i in range(args.repeats):
            singles.append(linlab_train([f"hydra.run.dir={workdir / f'one{i}'}"], workdir, 600))
        one = statistics.median(singles)
        each = ", ".join(f"{s:.2f}" for s in singles)
        print(f"one run (median of {args.repeats}): {one:.2f} s  [{each}]", flush=True)
        for members in args.members:
            lrs = ",".join(f"{0.1 * (i + 1) / members:.6g}" for i in range(members))
            sweep = workdir / f"group{members}"
            grid = [f"optimizer.lr={lrs}", f"hydra.sweep.dir={sweep}"]
            group = linlab_train(["-m", "hydra/launcher=stacked", *grid], workdir, args.limit_s)
            finished = sum(1 for _ in sweep.glob("*/results.json"))
            ratio = group / one
            verdict = "ok" if ratio <= TARGET and finished == members else "MISSED"
            took = f"{group:.2f} s" if group < float("inf") else f"over {args.limit_s:g} s"
            print(
                f"stacked group of {members} members: {took} ({finished} results.json),"
                f" {ratio:.2f}x one run (target <= {TARGET:g}x) {verdict}",
                flush=True,
            )


if __name__ == "__main__":
    main()
