"""Collocation points graded toward a domain's corners (``[sampling] corner_share``).

At a re-entrant corner the solution of an elliptic problem behaves like ``r^(π/ω)`` (ω the
interior angle, r the distance to the corner), with derivatives that blow up there. Points spread
evenly over the domain leave few of them where the network has most to learn, and the network fits
its points but not what lies between them (on the L-shape with 2048 even points the error
outside r < 0.2 was twice the error inside). Finite elements answer with meshes graded toward the
corner; this is the same idea for collocation points: a share of the interior points is drawn
around the corners with a density ``∝ d^(-grading)`` in the distance ``d`` to the corner, within
``radius`` of it.

Any geometry with :meth:`~pinnsolve.problem.domain.Geometry.corners` and
:meth:`~pinnsolve.problem.domain.Geometry.contains` works: the points are drawn in full disks
around the corners and those outside the domain are dropped (the first ``n`` kept, in sequence
order, as the set operations do), so each corner receives points in proportion to its interior
angle: a re-entrant corner of 270° three times as many as a right-angled one.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .domain import Geometry
from .sampling import unit_samples


@dataclass(frozen=True)
class CornerGrading:
    """How many interior points go near the corners, how far out, and how tightly packed."""

    #: the fraction of the interior points drawn near the corners (0: none; below 1)
    share: float = 0.0
    #: the radius of the disks around the corners the graded points lie in
    radius: float = 0.25
    #: the exponent a of the density ``∝ d^(-a)`` (0: even within the disks; below 2, where the
    #: density stops being integrable in the plane)
    grading: float = 1.0

    def __post_init__(self) -> None:
        if not 0.0 <= self.share < 1.0:
            raise ValueError(f"corner share must be in [0, 1), got {self.share}")
        if not self.radius > 0.0:
            raise ValueError(f"corner radius must be > 0, got {self.radius}")
        if not 0.0 <= self.grading < 2.0:
            raise ValueError(f"corner grading must be in [0, 2), got {self.grading}")

    def count(self, n: int, geom: Geometry) -> int:
        """How many of ``n`` interior points are graded: none where the domain has no corners
        (a disk, an annulus, an interval, a 3-D box, a space-time domain)."""
        if not self.share or not has_corners(geom):
            return 0
        return int(round(self.share * n))


def has_corners(geom: Geometry) -> bool:
    """Whether ``geom`` has corners in its own space (plane domains with vertices)."""
    corners = geom.corners()
    return len(corners) > 0 and corners.shape[1] == geom.dim


def corner_samples(
    geom: Geometry, n: int, grading: CornerGrading, method: str, seed: int
) -> np.ndarray:
    """``n`` points of ``geom`` (``[n, 2]``) within ``grading.radius`` of its corners, with
    density ``∝ d^(-grading.grading)`` in the distance ``d`` to the corner they are drawn
    around; reproducible from ``seed``.

    In the plane a density ``∝ r^(-a)`` has ``P(r ≤ ρ) = (ρ / R)^(2 - a)``, so ``r = R u^(1 / (2
    - a))`` from an even ``u``; the corner and the angle come from the other two coordinates."""
    corners = geom.corners()
    if n == 0:
        return np.zeros((0, geom.dim))
    if not has_corners(geom):
        raise ValueError(f"{geom!r} has no corners to grade points toward")
    m = 2 * n
    while True:
        u = unit_samples(m, 3, method, seed)
        which = np.minimum((u[:, 0] * len(corners)).astype(int), len(corners) - 1)
        r = grading.radius * u[:, 1] ** (1.0 / (2.0 - grading.grading))
        phi = 2.0 * np.pi * u[:, 2]
        points = corners[which] + r[:, None] * np.stack([np.cos(phi), np.sin(phi)], axis=1)
        inside = np.flatnonzero(geom.contains(points) & (r > 0))
        if len(inside) >= n:
            return points[inside[:n]]
        if m > 64 * n + 4096:  # a sliver at every corner: not a domain this can grade
            raise ValueError(f"too few points near the corners of {geom!r} fall inside it")
        m *= 2
