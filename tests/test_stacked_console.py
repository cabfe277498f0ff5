"""A stacked sweep's console holds the sweep's lines only; the jobs' log lines go to their
log files (``train.log``), as with Hydra's basic launcher."""

from __future__ import annotations

from conftest import run_cli


def test_a_stacked_sweeps_warnings_go_to_the_jobs_log_files(tmp_path):
    # lr 5 is above 2/λmax of the default data: the theory callback warns
    args = ["-m", "optimizer.lr=0.01,5.0", "hydra/launcher=stacked"]
    proc = run_cli([*args, "trainer.max_epochs=1", "hydra.sweep.dir=sweep"], tmp_path)
    shown = proc.stdout + proc.stderr
    assert "[2/2] lr=5.0" in proc.stdout, shown
    assert "WARNING" not in shown and "exceeds the largest stable" not in shown, shown
    log = (tmp_path / "sweep" / "lr=5.0" / "train.log").read_text()
    assert "[WARNING] - optimizer.lr=5 exceeds the largest stable" in log
