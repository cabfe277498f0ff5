"""The theoretical stability boundary drawn over the lr × batch-size heatmap.

Every job of a sweep on the same data records the constants of its training design in
``results.json`` (``theory``): λ₁ of the second moment S = X̃ᵀX̃/N
(``second_moment_eig_max``), β = tr S + 2λ₁ (``fourth_moment_beta``) and the full-batch bound
2/λmax(H) (``max_stable_lr``), with H = c·S. The largest stable learning rate at batch m is
``linlab.theory.minibatch_max_lr``: 2m/(c(β + (m − 1)λ₁)), linear in m below the critical
batch m* = β/λ₁ and saturating at the full-batch bound above it. Cells to its right (larger
learning rates) are the ones expected to diverge.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from linlab import theory

if TYPE_CHECKING:
    from linlab.report.jobs import Job


@dataclass
class Boundary:
    lambda_max: float  # λ₁ of S
    beta: float
    curvature: float  # c: H = c·S
    full_batch_lr: float  # 2/λmax(H) = 2/(cλ₁)

    @property
    def critical_batch(self) -> float:
        return theory.critical_batch(self.lambda_max, self.beta)

    def max_lr(self, batch: int | None) -> float:
        """The bound at batch ``batch`` (None: full batch, the bound 2/λmax(H))."""
        if batch is None:
            return self.full_batch_lr
        return theory.minibatch_max_lr(batch, self.lambda_max, self.beta, self.curvature)


def boundary_of(jobs: list[Job]) -> Boundary | None:
    """The boundary from the first job recording the constants (they depend on the data and
    the loss only; a sweep varying either gets one from its first job)."""
    for job in jobs:
        t: dict[str, Any] = job.results.get("theory") or {}
        keys = ("second_moment_eig_max", "fourth_moment_beta", "hessian_eig_max")
        if all(isinstance(t.get(k), int | float) and t[k] > 0 for k in keys):
            curvature = t["hessian_eig_max"] / t["second_moment_eig_max"]
            lam = t["second_moment_eig_max"]
            return Boundary(lam, t["fourth_moment_beta"], curvature, 2 / t["hessian_eig_max"])
    return None


def draw(ax: Any, bound: Boundary, sizes: list[Any], y_centres: list[float]) -> None:
    """The minibatch bound through the rows of the heatmap and the full-batch bound as a
    vertical line; the critical batch named in the legend."""
    xs = [bound.max_lr(size) for size in sizes]
    ax.plot(xs, y_centres, "-", color="crimson", lw=2, marker="o", ms=4,
            label=f"stable-lr bound (m* = {bound.critical_batch:.3g})")  # fmt: skip
    ax.axvline(bound.full_batch_lr, color="crimson", ls="--", lw=1.2, label="full batch 2/λmax")
    ax.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.3), ncols=2, frameon=False)
