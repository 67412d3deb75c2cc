"""Symmetries of a problem: maps that take a solution to a solution.

A problem whose equation and domain are symmetric has its solutions in orbits: u and −u when the
nonlinearity is odd, a solution and its mirror image when the domain is symmetric. A deflated
search finds any one member of an orbit no more easily than a new solution, while the image of a
solution found is one short polish away (measured on Allen–Cahn 2D: the deflated searches found
one of the four mixed-mode solutions, not the other three, which are its images). A problem
declares its symmetries (:meth:`pinnsolve.problem.base.Problem.symmetries`); the explorer
polishes and judges the image of every solution it finds under each of them (``[explore]
symmetries``).

A symmetry is ``v(x) = S · u(A x + c)``: an affine map of the points (``matrix`` A, ``offset`` c)
and a factor per field (S, diagonal). The point map must take the domain onto itself, which
:meth:`Symmetry.check` verifies on sampled points; that the map takes solutions to solutions is
the declaring problem's claim (an image is polished and judged like any candidate, so one that
is not a solution is kept only if its polish reaches one).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from ..errors import PinnsolveError
from .domain import Geometry

#: how many sampled interior points :meth:`Symmetry.check` maps
CHECK_POINTS = 512


@dataclass(frozen=True)
class Symmetry:
    """``v(x) = S · u(A x + c)`` takes a solution u to a solution v (see the module docstring).

    ``name``: how logs and provenance call it (e.g. ``"u -> -u"``); ``matrix``: A, one row per
    coordinate (time included), the identity when omitted; ``offset``: c, zero when omitted;
    ``fields``: the factor S of each field that changes (the others keep factor 1).

    Examples on the unit square with fields ``("u",)``::

        Symmetry("u -> -u", fields={"u": -1})
        Symmetry("x -> 1 - x", matrix=[[-1, 0], [0, 1]], offset=[1, 0])
        Symmetry("x <-> y", matrix=[[0, 1], [1, 0]])
    """

    name: str
    matrix: Sequence[Sequence[float]] | None = None
    offset: Sequence[float] | None = None
    fields: Mapping[str, float] = field(default_factory=dict)

    def point_map(self, dim: int) -> tuple[np.ndarray, np.ndarray]:
        """``(A, c)`` as float64 arrays of shapes ``[dim, dim]`` and ``[dim]``."""
        a = np.eye(dim) if self.matrix is None else np.asarray(self.matrix, dtype=np.float64)
        c = np.zeros(dim) if self.offset is None else np.asarray(self.offset, dtype=np.float64)
        return a, c

    def factors(self, names: Sequence[str]) -> np.ndarray:
        """S as one factor per field, in the order of ``names``."""
        return np.array([float(self.fields.get(n, 1.0)) for n in names])

    def check(self, geometry: Geometry, names: Sequence[str], where: str) -> None:
        """Raise :class:`~pinnsolve.errors.PinnsolveError` (one line, naming ``where`` and the
        symmetry) when its shapes do not fit the domain, it names an unknown field, or its point
        map takes sampled points of the domain outside it."""
        dim, label = geometry.dim, f"{where}, symmetry {self.name!r}"
        try:
            a, c = self.point_map(dim)
        except (TypeError, ValueError) as err:
            raise PinnsolveError(f"{label}: matrix and offset must be numbers ({err})") from None
        if a.shape != (dim, dim) or c.shape != (dim,):
            raise PinnsolveError(
                f"{label}: expected a {dim}×{dim} matrix and {dim} offsets (coordinates "
                f"{', '.join(geometry.coords)}), got shapes {a.shape} and {c.shape}"
            )
        unknown = sorted(set(self.fields) - set(names))
        if unknown:
            raise PinnsolveError(f"{label}: unknown field(s) {unknown}; fields: {tuple(names)}")
        if not np.all(np.isfinite(a)) or not np.all(np.isfinite(c)):
            raise PinnsolveError(f"{label}: matrix and offset must be finite")
        if not np.all(np.isfinite(self.factors(names))):
            raise PinnsolveError(f"{label}: field factors must be finite")
        points = geometry.sample_interior(CHECK_POINTS, "uniform", 0)
        outside = ~geometry.contains(points @ a.T + c)
        if outside.any():
            point = points[np.argmax(outside)]
            raise PinnsolveError(
                f"{label}: does not map the domain onto itself ({np.round(point, 6).tolist()} "
                f"goes to {np.round(a @ point + c, 6).tolist()}, outside it)"
            )


#: the angle of the rotations :func:`rotations_about` returns: far from any fraction of a turn a
#: polygon's symmetry could have
PROBE_ANGLE = 1.0


def rotations_about(center: Sequence[float]) -> list[Symmetry]:
    """Rotations by :data:`PROBE_ANGLE` about ``center`` in each coordinate plane (in one
    dimension the reflection): a domain that every one of them maps onto itself is invariant
    under all rotations about ``center``, which is what a radial network needs."""
    center = np.asarray(center, dtype=np.float64)
    dim = len(center)
    if dim == 1:
        return [Symmetry("reflection", matrix=[[-1.0]], offset=(2 * center).tolist())]
    cos, sin = np.cos(PROBE_ANGLE), np.sin(PROBE_ANGLE)
    out = []
    for i in range(dim):
        for j in range(i + 1, dim):
            a = np.eye(dim)
            a[i, i], a[i, j], a[j, i], a[j, j] = cos, -sin, sin, cos
            name = f"rotation by {PROBE_ANGLE:g} rad (axes {i}, {j})"
            out.append(Symmetry(name, matrix=a.tolist(), offset=(center - a @ center).tolist()))
    return out
