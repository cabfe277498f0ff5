"""Per-job cost of a sweep's configs: Hydra's ``load_sweep_config`` against ``JobComposer``.

A stacked sweep of 1,000s of jobs must not pay Hydra's full composition per job. Both are
timed in this run on the same jobs (``optimizer.lr`` x ``seed`` x ``data.batch_size`` x a dict
override of ``model.init``); the ratio is what to quote::

    PYTHONPATH=$PWD/src python scripts/bench_compose.py --jobs 1000
"""

from __future__ import annotations

import argparse
import itertools
import json
import time

from hydra._internal.hydra import Hydra
from hydra._internal.utils import create_automatic_config_search_path
from hydra.core.global_hydra import GlobalHydra
from hydra.types import RunMode

from linlab.sweeps.compose import JobComposer
from linlab.train import config_dir


def sweep_jobs(n: int) -> list[list[str]]:
    grid = itertools.product(
        range(1, 1 + n), (0, 1), (8, 16), ("{bias:0.0}", "{bias:0.5}"), ("sgd", "adam")
    )
    return [
        [
            f"optimizer={opt}",
            f"optimizer.lr={lr / 1000}",
            f"seed={seed}",
            f"data.batch_size={batch}",
            f"model.init={init}",
        ]
        for lr, seed, batch, init, opt in itertools.islice(grid, n)
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=1000, help="jobs through JobComposer")
    parser.add_argument("--hydra-jobs", type=int, default=40, help="jobs through Hydra")
    args = parser.parse_args()
    search_path = create_automatic_config_search_path(None, None, str(config_dir()))
    GlobalHydra.instance().clear()
    hydra = Hydra.create_main_hydra2(task_name="train", config_search_path=search_path)
    master = hydra.compose_config("train", ["hydra/launcher=stacked"], run_mode=RunMode.MULTIRUN)
    jobs = sweep_jobs(args.jobs)

    start = time.perf_counter()
    for job in jobs[: args.hydra_jobs]:
        hydra.config_loader.load_sweep_config(master, job)
    hydra_s = (time.perf_counter() - start) / min(args.hydra_jobs, len(jobs))

    composer = JobComposer(hydra.config_loader, master)
    start = time.perf_counter()
    for job in jobs:
        composer.compose(job)
    composer_s = (time.perf_counter() - start) / len(jobs)
    GlobalHydra.instance().clear()
    print(
        json.dumps(
            {
                "jobs": len(jobs),
                "hydra_ms_per_job": round(1000 * hydra_s, 2),
                "composer_ms_per_job": round(1000 * composer_s, 2),
                "hydra_over_composer": round(hydra_s / composer_s, 1),
            }
        )
    )


if __name__ == "__main__":
    main()
