"""The double-descent figure: excess population risk over γ = d/n, against the theory.

Drawn by ``linlab-report`` when a sweep varies ``data.n_features`` and its jobs recorded
``theory/excess_population_risk`` (Gaussian designs): the risk of the trained weights (mean
and 95% interval over seeds), that of the closed-form min-norm least-squares solution
(``w_opt_excess_population_risk``), and the isotropic limit of Hastie, Montanari, Rosset &
Tibshirani 2019 (``linlab.theory.min_norm_excess_risk_isotropic``) with the jobs' own ‖β‖², σ².
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from matplotlib.figure import Figure

from linlab import theory
from linlab.report import aggregate

if TYPE_CHECKING:
    from linlab.report.jobs import Job

FEATURES_KEY = "data.n_features"


def applies(jobs: list[Job], varied: list[str]) -> bool:
    return FEATURES_KEY in varied and any(
        aggregate.metric(j, "excess_population_risk") is not None and gamma(j) is not None
        for j in jobs
    )


def gamma(job: Job) -> float | None:
    t = job.results.get("theory") or {}
    n, d = t.get("n_train"), job.results.get("n_features")
    return d / n if n and d else None


def risk_points(jobs: list[Job], key: str) -> list[tuple[float, aggregate.Interval]]:
    """(γ, interval over seeds) of ``key`` per number of features, ordered by γ."""
    by_gamma: dict[float, list[float]] = {}
    for job in jobs:
        g, value = gamma(job), aggregate.metric(job, key)
        if job.status == "ok" and g is not None and value is not None:
            by_gamma.setdefault(g, []).append(value)
    return [(g, aggregate.interval(values)) for g, values in sorted(by_gamma.items())]


def risk_figure(jobs: list[Job]) -> Figure:
    fig = Figure(figsize=(6.4, 4.2), layout="constrained")
    ax = fig.add_subplot()
    trained = risk_points(jobs, "excess_population_risk")
    closed = risk_points(jobs, "w_opt_excess_population_risk")
    gammas = [g for g, _ in trained]
    means = [s.mean for _, s in trained]
    errors = [0.0 if s.n < 2 else s.half_width for _, s in trained]
    ax.errorbar(gammas, means, yerr=errors, fmt="o-", capsize=3, label="gradient descent from 0")
    if closed:
        ax.plot([g for g, _ in closed], [s.mean for _, s in closed], "s", mfc="none",
                label="min-norm closed form")  # fmt: skip
    t = next(
        (j.results["theory"] for j in jobs if "signal_norm_sq" in (j.results.get("theory") or {})),
        None,
    )
    if t is not None and gammas:
        grid = [min(gammas) * (max(gammas) / min(gammas)) ** (i / 400) for i in range(401)]
        grid = [g for g in grid if abs(g - 1) > 0.03]
        curve = [
            theory.min_norm_excess_risk_isotropic(g, t["signal_norm_sq"], t["noise_variance"])
            for g in grid
        ]
        for part in ([g < 1 for g in grid], [g > 1 for g in grid]):
            xs = [g for g, keep in zip(grid, part, strict=True) if keep]
            ys = [v for v, keep in zip(curve, part, strict=True) if keep]
            ax.plot(
                xs,
                ys,
                "k--",
                lw=1,
                label="Hastie et al. 2019 (n, d → ∞)" if xs and xs[0] < 1 else None,
            )
    ax.axvline(1.0, color="0.6", lw=0.8)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("γ = d / n (data.n_features / training samples)")
    ax.set_ylabel("excess population risk (w − β)ᵀΣ(w − β)")
    ax.legend(fontsize=8)
    return fig
