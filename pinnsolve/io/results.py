"""What a run returns: the catalogue of solutions and their metrics."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..problem.geometry import EvalMesh

#: where a solution's metrics are measured (the explorer's log measures on the collocation points)
MEASURED_ON = {
    "residual_rms": "evaluation mesh (the exported points)",
    "max_infeasibility": "validation points (fresh, per condition; not the training points)",
    "rel_l2_error": "evaluation mesh",
}


@dataclass
class Solution:
    """One solution evaluated on the export mesh.

    ``values`` and ``residuals`` are arrays over the mesh points; ``conditions`` maps each
    condition's name to ``{"rms": ..., "max": ...}`` of its ``|g|`` on a validation point set;
    ``rel_l2_to_exact`` lists the relative L2 distance to each known exact solution (empty when none
    is known), ``rel_l2_error`` is the smallest of them and ``exact`` holds that closest exact
    solution on the mesh.
    """

    name: str
    values: dict[str, np.ndarray]
    residuals: dict[str, np.ndarray]
    residual_rms: float
    max_infeasibility: float
    conditions: dict[str, dict[str, float]]
    rel_l2_to_exact: list[float] = field(default_factory=list)
    exact: dict[str, np.ndarray] | None = None
    norms: dict[str, dict[str, float]] = field(default_factory=dict)
    #: signed statistics per field (min, max, mean, value at the centre point), which tell a
    #: ``±u`` pair apart where the norms cannot
    stats: dict[str, dict[str, float]] = field(default_factory=dict)
    #: the mesh point nearest the centre of the domain's bounding box (``stats``' ``centre``)
    centre: dict[str, float] = field(default_factory=dict)
    file: str | None = None
    #: where the explorer found it: strategy, attempt, history step (None: plain training)
    provenance: dict[str, Any] | None = None
    model_state: dict[str, Any] | None = None

    @property
    def rel_l2_error(self) -> float | None:
        return min(self.rel_l2_to_exact) if self.rel_l2_to_exact else None

    @property
    def exact_branch(self) -> int | None:
        """Index of the exact solution this one is closest to."""
        return int(np.argmin(self.rel_l2_to_exact)) if self.rel_l2_to_exact else None

    def summary(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "file": self.file,
            "residual_rms": self.residual_rms,
            "max_infeasibility": self.max_infeasibility,
            "measured_on": MEASURED_ON,
            "rel_l2_error": self.rel_l2_error,
            "rel_l2_to_exact": self.rel_l2_to_exact,
            "exact_branch": self.exact_branch,
            "conditions": self.conditions,
            "norms": self.norms,
            "stats": self.stats,
            "centre": self.centre,
            "provenance": self.provenance,
        }


@dataclass
class Result:
    """A finished (or interrupted) run: solutions, history, summary, and where it was saved."""

    solutions: list[Solution]
    mesh: EvalMesh
    history: list[dict]
    summary: dict[str, Any]
    run_dir: Path | None = None

    @property
    def status(self) -> str:
        return self.summary.get("status", "unknown")


def signed_stats(
    values: dict[str, np.ndarray], points: np.ndarray, coords: tuple[str, ...]
) -> tuple[dict[str, dict[str, float]], dict[str, float]]:
    """Per field: min, max, mean and the value at the mesh point nearest the centre of the
    points' bounding box; and that point's coordinates."""
    middle = (points.min(axis=0) + points.max(axis=0)) / 2
    i = int(np.argmin(np.square(points - middle).sum(axis=1)))
    stats = {
        f: {"min": float(v.min()), "max": float(v.max()), "mean": float(v.mean()),
            "centre": float(v[i])}
        for f, v in values.items()
    }  # fmt: skip
    return stats, {c: float(x) for c, x in zip(coords, points[i], strict=True)}


def relative_l2(a: dict[str, np.ndarray], b: dict[str, np.ndarray], floor: float = 1e-12) -> float:
    """``‖a − b‖ / max(‖b‖, floor)`` over all fields of ``b`` stacked, on shared points."""
    diff = np.concatenate([np.ravel(a[k] - b[k]) for k in b])
    ref = np.concatenate([np.ravel(b[k]) for k in b])
    return float(np.linalg.norm(diff) / max(np.linalg.norm(ref), floor))


def exact_errors(
    values: dict[str, np.ndarray], branches: list[dict[str, np.ndarray]]
) -> list[float]:
    """Relative L2 distance of ``values`` to each known solution. A solution that is zero (the
    trivial branch of elastica1d) has no scale of its own: the distance to it is measured
    relative to the largest known solution's norm instead of blowing up; when every known
    solution is zero (elastica1d below λ = π²), it is the RMS of ``values`` itself, in the
    fields' units (there is no scale to be relative to)."""
    norms = [float(np.linalg.norm(np.concatenate([np.ravel(v) for v in b.values()])))
             for b in branches]  # fmt: skip
    scale = max(norms, default=0.0)
    if branches and scale == 0.0:
        stacked = np.concatenate([np.ravel(values[k]) for k in branches[0]])
        return [float(np.sqrt(np.mean(np.square(stacked))))] * len(branches)
    return [
        relative_l2(values, branch, floor=scale if norm <= 1e-12 * scale else 1e-12)
        for branch, norm in zip(branches, norms, strict=True)
    ]
