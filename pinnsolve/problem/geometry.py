"""The simple domains: boxes (intervals, rectangles), disks, and space-time cylinders over a domain.

They implement :class:`~pinnsolve.problem.domain.Geometry` (re-exported here with the other base
names): parts ``xmin``/``xmax``/… on boxes, ``circle`` on a disk, ``initial`` on a space-time
cylinder; the name ``boundary`` means every spatial part together. Polygons and annuli are in
:mod:`pinnsolve.problem.shapes`, meshes read from files in :mod:`pinnsolve.problem.mesh_domain`.

A geometry also builds the evaluation mesh that solutions are exported on (line cells in 1D, quads
or triangles in 2D, hexahedra in 3D, one copy of the spatial mesh per time slice for time-dependent
problems).
"""

from __future__ import annotations

import math

import numpy as np
import torch
from scipy.spatial import Delaunay
from torch import Tensor

from .domain import ALL_PARTS, BoundarySample, Chain, EvalMesh, Geometry
from .planar import circle_points, polyline_points

__all__ = [
    "ALL_PARTS", "BoundarySample", "Box", "Disk", "EvalMesh", "Geometry", "Interval", "Rectangle",
    "SpaceTime",
]  # fmt: skip


class Box(Geometry):
    """An axis-aligned box in 1, 2 or 3 dimensions; parts ``<coord>min`` and ``<coord>max``."""

    def __init__(self, lo, hi, coords: tuple[str, ...] | None = None):
        self.lo = np.atleast_1d(np.asarray(lo, dtype=float))
        self.hi = np.atleast_1d(np.asarray(hi, dtype=float))
        if self.lo.shape != self.hi.shape or self.lo.ndim != 1 or not 1 <= len(self.lo) <= 3:
            raise ValueError("a box needs lo and hi of equal length 1, 2 or 3")
        if np.any(self.hi <= self.lo):
            raise ValueError(f"a box needs lo < hi on every axis, got lo={self.lo}, hi={self.hi}")
        self.coords = tuple(coords or ("x", "y", "z")[: len(self.lo)])
        if len(self.coords) != len(self.lo):
            raise ValueError(f"coords {self.coords} do not match the box dimension {len(self.lo)}")

    def __repr__(self) -> str:
        spans = ", ".join(
            f"{c} in [{a:g}, {b:g}]" for c, a, b in zip(self.coords, self.lo, self.hi, strict=True)
        )
        return f"{type(self).__name__}({spans})"

    @property
    def parts(self) -> tuple[str, ...]:
        return tuple(f"{c}{side}" for c in self.coords for side in ("min", "max"))

    def bounds(self):
        return self.lo.copy(), self.hi.copy()

    def measure(self):
        return float(np.prod(self.hi - self.lo))

    def part_length(self, part):
        axis = self.parts.index(part) // 2
        return float(np.prod(np.delete(self.hi - self.lo, axis)))

    def contains(self, points):
        return np.all((points >= self.lo) & (points <= self.hi), axis=1)

    def corners(self):
        if self.dim != 2:
            return np.zeros((0, self.dim))
        (x0, y0), (x1, y1) = self.lo, self.hi
        return np.array([[x0, y0], [x1, y0], [x1, y1], [x0, y1]])

    def outline(self, h):
        """The rectangle's loop, counter-clockwise from ``lo`` (plane boxes only)."""
        if self.dim != 2:
            raise TypeError("only a plane box (a rectangle) can enter a set operation")
        points, edge = polyline_points(self.corners(), h)
        normals = np.array([[0.0, -1.0], [1.0, 0.0], [0.0, 1.0], [-1.0, 0.0]])[edge]
        return [Chain(points, normals, True)]

    def opposite(self, part):
        if part not in self.parts:
            return None
        axis, side = divmod(self.parts.index(part), 2)
        return self.parts[2 * axis + 1 - side]

    def translate_to(self, part, points):
        axis, side = divmod(self.parts.index(part), 2)
        moved = np.array(points, dtype=float)
        moved[:, axis] = self.hi[axis] if side else self.lo[axis]
        return moved

    def map_interior(self, u):
        return self.lo + u * (self.hi - self.lo)

    def corner_distance(self, points: Tensor) -> Tensor | None:
        """The distance to the nearest corner (2D) or edge (3D): where two faces meet, the
        nearest point with two coordinates at their bounds."""
        if self.dim < 2:
            return None
        lo = torch.as_tensor(self.lo, dtype=points.dtype, device=points.device)
        hi = torch.as_tensor(self.hi, dtype=points.dtype, device=points.device)
        gap = torch.minimum(points - lo, hi - points)  # to the nearer face, per axis
        pairs = [torch.hypot(gap[:, i], gap[:, j])
                 for i in range(self.dim) for j in range(i + 1, self.dim)]  # fmt: skip
        return torch.stack(pairs).amin(dim=0)

    def part_dim(self, part):
        return self.dim - 1

    def map_part(self, part, u):
        axis, side = divmod(self.parts.index(part), 2)
        free = [a for a in range(self.dim) if a != axis]
        points = np.empty((len(u), self.dim))
        points[:, free] = self.lo[free] + u * (self.hi[free] - self.lo[free])
        points[:, axis] = self.hi[axis] if side else self.lo[axis]
        normals = np.zeros_like(points)
        normals[:, axis] = 1.0 if side else -1.0
        return BoundarySample(points, normals)

    def eval_mesh(self, resolution, time_slices=11):
        n = max(2, int(resolution))
        axes = [np.linspace(a, b, n) for a, b in zip(self.lo, self.hi, strict=True)]
        grid = np.stack(np.meshgrid(*axes, indexing="ij"), axis=-1).reshape(-1, self.dim)
        index = np.arange(n**self.dim).reshape((n,) * self.dim)
        if self.dim == 1:
            cells = [("line", np.stack([index[:-1], index[1:]], axis=1))]
        elif self.dim == 2:
            quad = [index[:-1, :-1], index[1:, :-1], index[1:, 1:], index[:-1, 1:]]
            cells = [("quad", np.stack([c.ravel() for c in quad], axis=1))]
        else:
            corners = [
                index[:-1, :-1, :-1], index[1:, :-1, :-1], index[1:, 1:, :-1], index[:-1, 1:, :-1],
                index[:-1, :-1, 1:], index[1:, :-1, 1:], index[1:, 1:, 1:], index[:-1, 1:, 1:],
            ]  # fmt: skip
            cells = [("hexahedron", np.stack([c.ravel() for c in corners], axis=1))]
        return EvalMesh(grid, cells, self.coords)


class Interval(Box):
    """``[a, b]`` with parts ``xmin`` (at a) and ``xmax`` (at b)."""

    def __init__(self, a: float, b: float, coord: str = "x"):
        super().__init__([a], [b], (coord,))


class Rectangle(Box):
    """``[x0, x1] × [y0, y1]`` with parts ``xmin``, ``xmax``, ``ymin``, ``ymax``."""

    def __init__(self, x: tuple[float, float], y: tuple[float, float], coords=("x", "y")):
        super().__init__([x[0], y[0]], [x[1], y[1]], tuple(coords))


class Disk(Geometry):
    """A disk with one boundary part, ``circle``; points are area-uniform (r = R·√u)."""

    def __init__(self, center=(0.0, 0.0), radius: float = 1.0, coords=("x", "y")):
        self.center = np.asarray(center, dtype=float)
        self.radius = float(radius)
        if self.center.shape != (2,) or self.radius <= 0:
            raise ValueError("a disk needs a 2D centre and a positive radius")
        self.coords = tuple(coords)

    def __repr__(self) -> str:
        x, y = self.center
        return f"Disk(center=({x:g}, {y:g}), radius={self.radius:g})"

    @property
    def parts(self):
        return ("circle",)

    def bounds(self):
        return self.center - self.radius, self.center + self.radius

    def measure(self):
        return math.pi * self.radius**2

    def part_length(self, part):
        return 2 * math.pi * self.radius

    def contains(self, points):
        return np.linalg.norm(points - self.center, axis=1) <= self.radius * (1 + 1e-12)

    def outline(self, h):
        points = circle_points(self.center, self.radius, h)
        return [Chain(points, (points - self.center) / self.radius, True)]

    def map_interior(self, u):
        r = self.radius * np.sqrt(u[:, 0])
        phi = 2 * np.pi * u[:, 1]
        return self.center + np.stack([r * np.cos(phi), r * np.sin(phi)], axis=1)

    def part_dim(self, part):
        return 1

    def map_part(self, part, u):
        phi = 2 * np.pi * u[:, 0]
        normals = np.stack([np.cos(phi), np.sin(phi)], axis=1)
        return BoundarySample(self.center + self.radius * normals, normals)

    def eval_mesh(self, resolution, time_slices=11):
        """Concentric rings with spacing ``2R / resolution``, Delaunay-triangulated (convex)."""
        rings = max(2, int(resolution) // 2)
        h = self.radius / rings
        points = [np.zeros((1, 2))]
        for k in range(1, rings + 1):
            m = max(6, math.ceil(2 * np.pi * k))
            phi = 2 * np.pi * (np.arange(m) + 0.5 * (k % 2)) / m
            points.append(k * h * np.stack([np.cos(phi), np.sin(phi)], axis=1))
        pts = np.concatenate(points)
        tri = Delaunay(pts).simplices
        return EvalMesh(self.center + pts, [("triangle", tri)], self.coords)


class SpaceTime(Geometry):
    """``space × [t0, t1]``: the spatial parts extend over time, plus the ``initial`` part (t = t0).

    ``boundary`` still means the spatial parts only: initial data is a separate condition.
    """

    def __init__(self, space: Geometry, t: tuple[float, float] = (0.0, 1.0), coord: str = "t"):
        if t[1] <= t[0]:
            raise ValueError(f"time interval needs t0 < t1, got {t}")
        if coord in space.coords:
            raise ValueError(f"time coordinate {coord!r} clashes with a spatial coordinate")
        if not space.maps_unit_cube:
            raise ValueError(f"{space!r} samples by rejection; a space-time domain cannot use it")
        self.space = space
        self.t0, self.t1 = float(t[0]), float(t[1])
        self.coords = (*space.coords, coord)

    def __repr__(self) -> str:
        return f"SpaceTime({self.space!r}, t in [{self.t0:g}, {self.t1:g}])"

    @property
    def parts(self):
        return (*self.space.parts, "initial")

    def spatial_parts(self):
        return self.space.parts

    def bounds(self):
        lo, hi = self.space.bounds()
        return np.append(lo, self.t0), np.append(hi, self.t1)

    def measure(self):
        return self.space.measure() * (self.t1 - self.t0)

    def opposite(self, part):
        return None if part == "initial" else self.space.opposite(part)

    def translate_to(self, part, points):
        moved = np.array(points, dtype=float)
        moved[:, :-1] = self.space.translate_to(part, moved[:, :-1])
        return moved

    def _time(self, u):
        return self.t0 + u * (self.t1 - self.t0)

    def map_interior(self, u):
        return np.column_stack([self.space.map_interior(u[:, :-1]), self._time(u[:, -1])])

    def part_dim(self, part):
        return self.space.dim if part == "initial" else self.space.part_dim(part) + 1

    def map_part(self, part, u):
        if part == "initial":
            points = np.column_stack([self.space.map_interior(u), np.full(len(u), self.t0)])
            normals = np.zeros_like(points)
            normals[:, -1] = -1.0
            return BoundarySample(points, normals)
        s = self.space.map_part(part, u[:, :-1])
        t = self._time(u[:, -1])
        return BoundarySample(
            np.column_stack([s.points, t]), np.column_stack([s.normals, np.zeros(len(u))])
        )

    def eval_mesh(self, resolution, time_slices: int = 11):
        space = self.space.eval_mesh(resolution)
        times = np.linspace(self.t0, self.t1, max(2, int(time_slices)))
        n = len(space.points)
        points = np.concatenate([np.column_stack([space.points, np.full(n, t)]) for t in times])
        return EvalMesh(points, space.cells, self.coords, times)
