"""Same config and seed, same numbers: alone, again, and as a later job of a multirun."""

from __future__ import annotations

import json

from conftest import QUIET, run_cli, train_run

from linlab.results import TIMING_KEYS

SMALL = ["data.n_samples=200", "trainer.max_epochs=3", "data.batch_size=16"]


def without_timing(results: dict) -> dict:
    return {k: v for k, v in results.items() if k not in TIMING_KEYS}


def test_multirun_job_equals_the_same_single_run(tmp_path):
    """Earlier jobs (other seeds, other optimisers) must not change a later job's numbers."""
    sweep = tmp_path / "sweep"
    run_cli(
        [
            "-m",
            *QUIET,
            *SMALL,
            "seed=1,0",
            "optimizer=adam,sgd",
            f"hydra.sweep.dir={sweep}",
            "hydra.sweep.subdir=${hydra.job.num}",
        ],
        cwd=tmp_path,
    )
    last_job = json.loads((sweep / "3" / "results.json").read_text())
    assert (last_job["seed"], last_job["optimizer"]) == (0, "sgd")
    single = train_run([*SMALL, "seed=0", "optimizer=sgd"], tmp_path / "single")
    again = train_run([*SMALL, "seed=0", "optimizer=sgd"], tmp_path / "again")
    assert without_timing(last_job) == without_timing(single) == without_timing(again)
