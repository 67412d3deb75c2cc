"""Plane domains beyond boxes and disks: any simple polygon, and an annulus.

Both map the unit square exactly (no rejection): a polygon is ear-clipped into triangles and its
edges chained by arc length (:mod:`pinnsolve.problem.planar`), an annulus is area-uniform in
``r²``. Their evaluation meshes are Delaunay triangulations clipped to the domain, so a notch or a
hole stays empty. Either can enter the set operations of :mod:`pinnsolve.problem.domain`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from .domain import BoundarySample, Chain, EvalMesh, Geometry
from .planar import (
    Segments,
    Triangles,
    circle_points,
    clipped_mesh,
    ear_clip,
    inside_polygon,
    polyline_points,
    segments_cross,
    signed_area,
)


class _Plane(Geometry):
    """What the plane shapes share: one-dimensional parts and the clipped evaluation mesh."""

    def part_dim(self, part):
        return 1

    def eval_mesh(self, resolution, time_slices=11):
        lo, hi = self.bounds()
        h = float(np.max(hi - lo)) / max(1, resolution - 1)
        outline = np.concatenate([c.points for c in self.outline(h)])
        points, tri = clipped_mesh(outline, self.contains, (lo, hi), resolution)
        return EvalMesh(points, [("triangle", tri)], self.coords)


class Triangulated(_Plane):
    """A plane domain held as triangles (``_triangles``) and named boundary chains (``_parts``):
    its area, parts and samples come from them (polygons, and meshes read from files)."""

    _triangles: Triangles
    _parts: dict[str, Segments]

    @property
    def parts(self):
        return tuple(self._parts)

    def measure(self):
        return self._triangles.area

    def part_length(self, part):
        self.check_part(part)
        return self._parts[part].length

    def map_interior(self, u):
        return self._triangles.map(u)

    def map_part(self, part, u):
        return BoundarySample(*self._parts[part].map(u[:, 0]))


class Polygon(Triangulated):
    """A simple polygon given by its vertices (either orientation); edge ``i`` runs from vertex
    ``i`` to the next. ``edges`` names each edge's boundary part (edges with the same name form
    one part); by default edge ``i`` is the part ``edge<i>``."""

    def __init__(
        self,
        vertices: Sequence[Sequence[float]],
        edges: Sequence[str] | None = None,
        coords: tuple[str, str] = ("x", "y"),
    ):
        v = np.asarray(vertices, dtype=float)
        if v.ndim != 2 or v.shape[1] != 2 or len(v) < 3 or not np.all(np.isfinite(v)):
            raise ValueError("a polygon needs at least 3 vertices, each [x, y] (finite numbers)")
        names = [f"edge{i}" for i in range(len(v))] if edges is None else [str(e) for e in edges]
        if len(names) != len(v):
            raise ValueError(f"a polygon with {len(v)} vertices has {len(v)} edges to name, "
                             f"got {len(names)} names")  # fmt: skip
        _check_simple(v)
        if signed_area(v) < 0:  # counter-clockwise, so that (dy, -dx) points out
            n = len(v)
            v = v[::-1].copy()
            names = [names[(n - 2 - j) % n] for j in range(n)]
        self.vertices, self.edge_names = v, tuple(names)
        self.coords = tuple(coords)
        a, b = v, np.roll(v, -1, axis=0)
        d = b - a
        normals = np.stack([d[:, 1], -d[:, 0]], axis=1) / np.linalg.norm(d, axis=1)[:, None]
        self._normals = normals
        self._parts = {
            name: Segments(a[mask], b[mask], normals[mask])
            for name in dict.fromkeys(names)
            for mask in [np.array([e == name for e in names])]
        }
        self._triangles = Triangles(v[ear_clip(v)])

    def __repr__(self) -> str:
        return f"Polygon({len(self.vertices)} vertices)"

    def bounds(self):
        return self.vertices.min(axis=0), self.vertices.max(axis=0)

    def contains(self, points):
        return inside_polygon(self.vertices, points)

    def corners(self):
        before = self.vertices - np.roll(self.vertices, 1, axis=0)
        after = np.roll(self.vertices, -1, axis=0) - self.vertices
        turn = before[:, 0] * after[:, 1] - before[:, 1] * after[:, 0]
        return self.vertices[np.abs(turn) > 1e-12 * self.diameter() ** 2]

    def outline(self, h):
        points, edge = polyline_points(self.vertices, h)
        return [Chain(points, self._normals[edge], True)]


def _check_simple(v: np.ndarray) -> None:
    """Distinct consecutive vertices, no two edges crossing, some area."""
    n = len(v)
    ends = [(v[i], v[(i + 1) % n]) for i in range(n)]
    if any(np.array_equal(p, q) for p, q in ends):
        raise ValueError("a polygon's consecutive vertices must differ")
    for i in range(n):
        for j in range(i + 2, n):
            if i == 0 and j == n - 1:
                continue  # neighbours through the last vertex
            if segments_cross(*ends[i], *ends[j]):
                raise ValueError(f"the polygon crosses itself: edges {i} and {j} meet")
    if abs(signed_area(v)) == 0.0:
        raise ValueError("the polygon has no area")


class Annulus(_Plane):
    """``r_inner ≤ |x − center| ≤ r_outer``, with parts ``outer`` and ``inner`` (whose outward
    normal points to the centre); points are area-uniform (r² uniform)."""

    def __init__(self, center=(0.0, 0.0), inner: float = 0.5, outer: float = 1.0,
                 coords: tuple[str, str] = ("x", "y")):  # fmt: skip
        self.center = np.asarray(center, dtype=float)
        self.inner, self.outer = float(inner), float(outer)
        if self.center.shape != (2,) or not 0 < self.inner < self.outer:
            raise ValueError("an annulus needs a 2D centre and radii 0 < inner < outer, "
                             f"got inner={inner}, outer={outer}")  # fmt: skip
        self.coords = tuple(coords)

    def __repr__(self) -> str:
        return (f"Annulus(center=({self.center[0]:g}, {self.center[1]:g}), inner={self.inner:g}, "
                f"outer={self.outer:g})")  # fmt: skip

    @property
    def parts(self):
        return ("outer", "inner")

    def bounds(self):
        return self.center - self.outer, self.center + self.outer

    def measure(self):
        return math.pi * (self.outer**2 - self.inner**2)

    def part_length(self, part):
        self.check_part(part)
        return 2 * math.pi * (self.outer if part == "outer" else self.inner)

    def contains(self, points):
        r = np.linalg.norm(points - self.center, axis=1)
        return (r >= self.inner * (1 - 1e-12)) & (r <= self.outer * (1 + 1e-12))

    def outline(self, h):
        chains = []
        for radius, sign in ((self.outer, 1.0), (self.inner, -1.0)):
            points = circle_points(self.center, radius, h)
            chains.append(Chain(points, sign * (points - self.center) / radius, True))
        return chains

    def map_interior(self, u):
        r = np.sqrt(self.inner**2 + u[:, 0] * (self.outer**2 - self.inner**2))
        phi = 2 * np.pi * u[:, 1]
        return self.center + r[:, None] * np.stack([np.cos(phi), np.sin(phi)], axis=1)

    def map_part(self, part, u):
        phi = 2 * np.pi * u[:, 0]
        radial = np.stack([np.cos(phi), np.sin(phi)], axis=1)
        if part == "outer":
            return BoundarySample(self.center + self.outer * radial, radial)
        return BoundarySample(self.center + self.inner * radial, -radial)
