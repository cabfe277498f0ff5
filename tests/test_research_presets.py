"""The two research presets against their papers, and the report as a research figure.

Fast checks use the library directly (closed-form min-norm solutions, a plain PyTorch SGD
loop); each preset also runs once through the real CLI as a shrunk multirun, over two seeds,
and ``linlab-report`` aggregates those seeds and draws the stability boundary."""

from __future__ import annotations

import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from linlab import tags, theory
from linlab.data.synthetic import gaussian
from linlab.report.cli import main
from linlab.report.figures import curves_figure, heatmap_figure
from linlab.report.jobs import load_jobs

SRC = Path(__file__).parents[1] / "src"
N, SIGNAL, NOISE = 600, 1.0, 0.5


def min_norm_excess_risk(d: int, seed: int, n: int = N) -> float:
    """(w − β)ᵀΣ(w − β) of NumPy's min-norm least squares on the double-descent design."""
    data = gaussian(n_samples=n, n_features=d, signal_norm=SIGNAL, noise=NOISE, seed=seed)
    w = np.linalg.lstsq(data.x.numpy(), data.y.numpy(), rcond=None)[0]
    return float(np.sum((w - np.array(data.true_weights)) ** 2))  # Σ = I


@pytest.mark.parametrize("gamma", [0.5, 0.7, 2.0, 3.0])
def test_min_norm_risk_matches_hastie_et_al(gamma):
    """Hastie, Montanari, Rosset & Tibshirani 2019, isotropic: σ²γ/(1 − γ) for γ < 1,
    r²(1 − 1/γ) + σ²/(γ − 1) for γ > 1; measured at n = 600 over 8 seeds, within 10%."""
    measured = np.mean([min_norm_excess_risk(round(gamma * N), seed) for seed in range(8)])
    if gamma < 1:
        predicted = NOISE**2 * gamma / (1 - gamma)
    else:
        predicted = SIGNAL**2 * (1 - 1 / gamma) + NOISE**2 / (gamma - 1)
    assert measured == pytest.approx(predicted, rel=0.10)
    assert theory.min_norm_excess_risk_isotropic(gamma, SIGNAL**2, NOISE**2) == pytest.approx(
        predicted, rel=1e-12
    )


def test_min_norm_risk_peaks_at_d_equal_n():
    features = [50, 150, 190, 200, 210, 250, 400]
    risks = [np.mean([min_norm_excess_risk(d, s, n=200) for s in range(3)]) for d in features]
    assert features[int(np.argmax(risks))] == 200


def largest_stable_and_best_lr(x, y, batch, lrs, steps=64):
    """A plain PyTorch SGD loop on the MSE from zero, one model per learning rate: the
    largest lr whose loss stayed below its start, and the lr with the lowest final loss."""
    n, d = x.shape
    w = torch.zeros(len(lrs), d, dtype=torch.float64)
    order = torch.randperm(n, generator=torch.Generator().manual_seed(1))
    for step in range(steps):
        index = order[(step * batch) % n : (step * batch) % n + batch]
        residual = w @ x[index].T - y[index]
        w = w - lrs[:, None] * (2 / batch) * (residual @ x[index])
    loss = torch.nan_to_num(((w @ x.T - y) ** 2).mean(1), nan=math.inf)
    start = float((y**2).mean())
    return float(lrs[loss < start].max()), float(lrs[loss.argmin()])


def test_critical_batch_matches_ma_bassily_belkin():
    """The best and the largest stable lr grow ~linearly with the batch up to m* = β/λ₁, then
    saturate near the full-batch bound; m* from the measured lrs within 2× of the prediction."""
    data = gaussian(n_samples=1024, n_features=64, covariance="power_law", covariance_decay=0.5,
                    signal_norm=1.0, noise_kind="none", noise=0.0)  # fmt: skip
    x, y = data.x, data.y
    second_moment = (x.T @ x / len(y)).numpy()
    eigenvalues = np.linalg.eigvalsh(second_moment)
    lam, beta = eigenvalues[-1], eigenvalues.sum() + 2 * eigenvalues[-1]
    predicted = beta / lam
    assert theory.critical_batch(lam, beta) == pytest.approx(predicted)
    lrs = torch.tensor([2 ** (k / 4) for k in range(-28, 6)], dtype=torch.float64)
    stable, best = zip(
        *(largest_stable_and_best_lr(x, y, b, lrs) for b in (1, 2, 1024)), strict=True
    )
    assert stable[1] / stable[0] == pytest.approx(2, rel=0.25)  # linear below m*
    assert best[1] / best[0] == pytest.approx(2, rel=0.35)
    for measured in (stable[2] / stable[0], best[2] / best[0]):
        assert predicted / 2 <= measured <= predicted * 2
    assert stable[2] == pytest.approx(1 / lam, rel=0.2)  # full batch: 2/λmax(H), H = 2S
    assert stable[0] == pytest.approx(theory.minibatch_max_lr(1, lam, beta, 2.0), rel=0.35)


def sweep(args: list[str], folder: Path) -> subprocess.Popen:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(SRC)}
    command = [sys.executable, "-m", "linlab.train", "-m", *args, "hydra/launcher=stacked"]
    command.append(f"hydra.sweep.dir={folder}")
    return subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)


@pytest.fixture(scope="module")
def preset_sweeps(tmp_path_factory):
    """Both presets through the real CLI, shrunk, over two seeds, run side by side (the
    stacked launcher trains the jobs that differ only in seed and lr in one process)."""
    root = tmp_path_factory.mktemp("presets")
    runs = {
        "double_descent": [
            "experiment=double_descent", "data.n_samples=20", "data.n_features=10,20,40",
            "trainer.max_epochs=5", "seed=0,1",
        ],
        "critical_batch": [
            "experiment=critical_batch", "data.n_samples=320", "optimizer.lr=0.015,0.25",
            "data.batch_size=1,64", "seed=0,1",
        ],
    }  # fmt: skip
    procs = {name: sweep(args, root / name) for name, args in runs.items()}
    for name, proc in procs.items():
        out, err = proc.communicate(timeout=600)
        assert proc.returncode == 0, (name, out.decode()[-2000:], err.decode()[-2000:])
    return {name: root / name for name in runs}


def t_975(dof: int) -> float:
    """Student-t 97.5% quantile in closed form for 1 and 2 degrees of freedom."""
    return math.tan(0.475 * math.pi) if dof == 1 else 0.95 / math.sqrt(2 * 0.975 * 0.025)


def test_double_descent_preset_through_the_cli(preset_sweeps, capsys):
    folder = preset_sweeps["double_descent"]
    jobs = load_jobs(folder)
    assert len(jobs) == 6 and {j.status for j in jobs} == {"ok"}
    closed = {}
    for job in jobs:
        closed.setdefault(job.results["n_features"], []).append(
            job.results["theory"]["w_opt_excess_population_risk"]
        )
    assert max(closed, key=lambda d: np.mean(closed[d])) == 20  # the peak at d = n
    main([str(folder), "--value", "excess_population_risk"])
    out = capsys.readouterr().out
    assert (folder / "report_risk.png").read_bytes()[:4] == b"\x89PNG"
    for d in (10, 20, 40):  # mean ± t·s/√n over the two seeds, computed here
        values = [j.results["theory"]["excess_population_risk"] for j in jobs
                  if j.results["n_features"] == d]  # fmt: skip
        mean, s = np.mean(values), np.std(values, ddof=1)
        shown = f"{mean:.4g} ± {t_975(1) * s / math.sqrt(2):.2g}"
        row = next(line for line in out.splitlines() if line.startswith(f"{d} "))
        assert shown in row and row.split()[1] == "2", row  # and the number of seeds


def test_critical_batch_preset_through_the_cli(preset_sweeps, capsys):
    folder = preset_sweeps["critical_batch"]
    jobs = load_jobs(folder)
    assert len(jobs) == 8
    t = jobs[0].results["theory"]
    for job in jobs:  # right of the bound diverged, well left of it converging
        bound = theory.minibatch_max_lr(job.results["batch_size"], t["second_moment_eig_max"],
                                        t["fourth_moment_beta"], 2.0)  # fmt: skip
        if job.results["lr"] > 2 * bound:
            assert job.status == "diverged", job.name
        else:
            assert job.status == "ok" and job.results["lr"] < bound / 2, job.name
    assert {j.status for j in jobs} == {"ok", "diverged"}
    main([str(folder)])
    assert "over seeds: val_loss" in capsys.readouterr().out
    figure = heatmap_figure(jobs, [])
    ax = figure.axes[0]
    boundary = next(line for line in ax.get_lines() if len(line.get_xdata()) == 2)
    expected = [theory.minibatch_max_lr(b, t["second_moment_eig_max"], t["fourth_moment_beta"])
                for b in (1, 64)]  # fmt: skip
    np.testing.assert_allclose(boundary.get_xdata(), expected, rtol=1e-12)
    ok_cell = [j.results["val_loss"] for j in jobs if j.name.startswith("lr=0.015,batch_size=64")]
    texts = {text.get_text() for text in ax.texts}
    assert f"{np.mean(ok_cell):.3g}" in texts and "diverged" in texts  # the mean over seeds
    curves = curves_figure(jobs, []).axes[0]
    assert len(curves.collections) >= 1  # a 95% band around a mean over seeds
    seeds = [j for j in jobs if j.name.startswith("lr=0.015,batch_size=64")]
    per_seed = []
    for job in seeds:
        events = EventAccumulator(str(job.folder))
        events.Reload()
        per_seed.append([e.value for e in events.Scalars(tags.VAL_LOSS)])
    label = "lr=0.015,batch_size=64 (2 seeds)"
    mean_line = next(line for line in curves.get_lines() if line.get_label() == label)
    np.testing.assert_allclose(mean_line.get_ydata(), np.mean(per_seed, axis=0), rtol=1e-6)
