"""Plane geometry on arrays, shared by polygons, annuli, set operations and meshes read from files.

Two measure-preserving maps from the unit cube let a domain draw exact, low-discrepancy points
without rejection: :class:`Segments` maps ``u ∈ [0, 1]`` to a chain of straight segments by arc
length (a polygon's edges, a mesh's boundary facets), and :class:`Triangles` maps
``(u, v) ∈ [0, 1]²`` to a set of triangles by area (an ear-clipped polygon, a mesh's cells). The
first coordinate picks the segment or triangle and, rescaled within its share, also places the
point, so Sobol points stay well spread on every piece.

:func:`clipped_mesh` builds an evaluation mesh of any domain that can tell inside from outside
(in the plane, and in space for set operations of boxes): Delaunay on its outline plus a grid,
dropping the simplices whose centroid lies outside.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from scipy.spatial import Delaunay, cKDTree


class Segments:
    """Straight segments ``a[i] → b[i]`` (``[n, 2]`` each) with a unit normal each (``[n, 2]``)."""

    def __init__(self, a: np.ndarray, b: np.ndarray, normals: np.ndarray):
        self.a, self.b, self.normals = a, b, normals
        lengths = np.linalg.norm(b - a, axis=1)
        self.length = float(lengths.sum())
        self._ends = np.cumsum(lengths) / self.length

    def map(self, u: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Points at arc-length fractions ``u`` (``[n]``) and their normals."""
        i = np.minimum(np.searchsorted(self._ends, u, side="right"), len(self.a) - 1)
        start = np.concatenate([[0.0], self._ends[:-1]])[i]
        s = np.clip((u - start) / (self._ends[i] - start), 0.0, 1.0)[:, None]
        return self.a[i] + s * (self.b[i] - self.a[i]), self.normals[i]


class Triangles:
    """Triangles with corners ``corners[i] = (a, b, c)`` (``[n, 3, 2]``), sampled by area."""

    def __init__(self, corners: np.ndarray):
        self.corners = corners
        areas = triangle_areas(corners)
        self.area = float(areas.sum())
        self._ends = np.cumsum(areas) / self.area

    def map(self, u: np.ndarray) -> np.ndarray:
        """Points for unit-square points ``u`` (``[n, 2]``): triangle by ``u[:, 0]``, then the
        square root map, which is uniform on a triangle."""
        i = np.minimum(np.searchsorted(self._ends, u[:, 0], side="right"), len(self.corners) - 1)
        start = np.concatenate([[0.0], self._ends[:-1]])[i]
        s = np.clip((u[:, 0] - start) / (self._ends[i] - start), 0.0, 1.0)
        r = np.sqrt(s)[:, None]
        t = u[:, 1:2]
        a, b, c = self.corners[i, 0], self.corners[i, 1], self.corners[i, 2]
        return (1 - r) * a + r * (1 - t) * b + r * t * c


def cells_as_triangles(cells: list[tuple[str, np.ndarray]]) -> np.ndarray:
    """The triangle and quad cells of meshio-style blocks as triangles (a quad cut along its
    diagonal), ``[n, 3]`` point indices; other blocks (lines, vertices) are left out."""
    out = [np.asarray(data) for kind, data in cells if kind == "triangle"]
    out += [np.asarray(q)[:, idx] for kind, q in cells if kind == "quad"
            for idx in ([0, 1, 2], [0, 2, 3])]  # fmt: skip
    return np.concatenate(out) if out else np.zeros((0, 3), dtype=int)


def triangle_areas(corners: np.ndarray) -> np.ndarray:
    """Unsigned areas of triangles ``[n, 3, 2]``."""
    return 0.5 * np.abs(_cross(corners[:, 1] - corners[:, 0], corners[:, 2] - corners[:, 0]))


def simplex_measures(corners: np.ndarray) -> np.ndarray:
    """Unsigned areas of triangles ``[n, 3, 2]`` or volumes of tetrahedra ``[n, 4, 3]``."""
    if corners.shape[-1] == 2:
        return triangle_areas(corners)
    edges = corners[:, 1:] - corners[:, :1]
    return np.abs(np.linalg.det(edges)) / 6.0


def _cross(p: np.ndarray, q: np.ndarray) -> np.ndarray:
    return p[..., 0] * q[..., 1] - p[..., 1] * q[..., 0]


def signed_area(vertices: np.ndarray) -> float:
    """Shoelace area: positive when the vertices run counter-clockwise."""
    return 0.5 * float(_cross(vertices, np.roll(vertices, -1, axis=0)).sum())


def inside_polygon(vertices: np.ndarray, points: np.ndarray) -> np.ndarray:
    """Even-odd test (a point on an edge counts on one side, the same for all its neighbours);
    in chunks, since the work holds a number per point and edge."""
    step = max(1, 2**22 // len(vertices))
    return np.concatenate(
        [_inside(vertices, points[i : i + step]) for i in range(0, len(points), step)]
        or [np.zeros(0, dtype=bool)]
    )


def _inside(vertices: np.ndarray, points: np.ndarray) -> np.ndarray:
    a, b = vertices, np.roll(vertices, -1, axis=0)
    x, y = points[:, 0:1], points[:, 1:2]
    crosses = (a[:, 1] > y) != (b[:, 1] > y)
    with np.errstate(divide="ignore", invalid="ignore"):
        x_at = a[:, 0] + (y - a[:, 1]) * (b[:, 0] - a[:, 0]) / (b[:, 1] - a[:, 1])
    return (crosses & (x < x_at)).sum(axis=1) % 2 == 1


def segments_cross(p: np.ndarray, q: np.ndarray, r: np.ndarray, s: np.ndarray) -> bool:
    """Whether segments ``p→q`` and ``r→s`` share a point (touching counts)."""

    def orient(a, b, c):
        return np.sign(_cross(b - a, c - a))

    def on(a, b, c):  # c on segment a-b, given collinear
        return min(a[0], b[0]) <= c[0] <= max(a[0], b[0]) and min(a[1], b[1]) <= c[1] <= max(
            a[1], b[1]
        )

    o1, o2, o3, o4 = orient(p, q, r), orient(p, q, s), orient(r, s, p), orient(r, s, q)
    if o1 != o2 and o3 != o4:
        return True
    return any(
        o == 0 and on(*seg, c)
        for o, seg, c in ((o1, (p, q), r), (o2, (p, q), s), (o3, (r, s), p), (o4, (r, s), q))
    )


def ear_clip(vertices: np.ndarray) -> np.ndarray:
    """Triangles (``[n - 2, 3]`` vertex indices) of a simple counter-clockwise polygon.

    An ear is a convex corner whose triangle holds no other vertex; cutting one off leaves a
    simple polygon, and every simple polygon with more than three corners has two (Meisters), so
    the loop ends. O(n³) in the worst case, which is nothing for hand-written polygons."""
    left = list(range(len(vertices)))
    triangles = []
    while len(left) > 3:
        for k in range(len(left)):
            i, j, m = left[k - 1], left[k], left[(k + 1) % len(left)]
            a, b, c = vertices[i], vertices[j], vertices[m]
            if _cross(b - a, c - b) <= 0:
                continue  # reflex or straight corner
            others = [v for v in left if v not in (i, j, m)]
            if others and _in_triangle(vertices[others], a, b, c).any():
                continue
            triangles.append((i, j, m))
            left.pop(k)
            break
        else:  # only straight corners left: the rest has no area
            break
    if len(left) == 3:
        triangles.append(tuple(left))
    return np.asarray(triangles, dtype=int)


def _in_triangle(p: np.ndarray, a, b, c) -> np.ndarray:
    """Points in the closed counter-clockwise triangle ``a, b, c``."""
    return (_cross(b - a, p - a) >= 0) & (_cross(c - b, p - b) >= 0) & (_cross(a - c, p - c) >= 0)


def circle_points(center: np.ndarray, radius: float, h: float) -> np.ndarray:
    """Points around a circle, counter-clockwise, at most ``h`` apart."""
    m = max(8, int(np.ceil(2 * np.pi * radius / h)))
    phi = 2 * np.pi * np.arange(m) / m
    return center + radius * np.stack([np.cos(phi), np.sin(phi)], axis=1)


def polyline_points(vertices: np.ndarray, h: float) -> tuple[np.ndarray, np.ndarray]:
    """Points along a closed polygon (its vertices included), at most ``h`` apart, and the edge
    each lies on (edge ``i`` runs from vertex ``i`` to the next; a vertex starts its edge)."""
    points, edges = [], []
    for i, (a, b) in enumerate(zip(vertices, np.roll(vertices, -1, axis=0), strict=True)):
        m = max(1, int(np.ceil(np.linalg.norm(b - a) / h)))
        points.append(a + np.linspace(0.0, 1.0, m, endpoint=False)[:, None] * (b - a))
        edges.append(np.full(m, i))
    return np.concatenate(points), np.concatenate(edges)


def clipped_mesh(
    outline: np.ndarray,
    contains: Callable[[np.ndarray], np.ndarray],
    bounds: tuple[np.ndarray, np.ndarray],
    resolution: int,
) -> tuple[np.ndarray, np.ndarray]:
    """Points and simplices of a domain in the plane (triangles) or in space (tetrahedra): its
    outline (points on the boundary, spacing about ``h`` = the longer side of ``bounds`` over
    ``resolution - 1``) and the grid points of spacing ``h`` inside it that are not within
    ``h/3`` of the outline, Delaunay-triangulated; simplices whose centroid lies outside (across
    a notch or a hole) are dropped, and so are the flat ones Delaunay leaves along a straight
    edge or a flat face."""
    lo, hi = bounds
    dim = len(lo)
    h = float(np.max(hi - lo)) / max(1, resolution - 1)
    axes = [np.arange(a + h / 2, b, h) for a, b in zip(lo, hi, strict=True)]
    grid = np.stack(np.meshgrid(*axes, indexing="ij"), axis=-1).reshape(-1, dim)
    grid = grid[contains(grid)]
    if len(grid):
        far, _ = cKDTree(outline).query(grid)
        grid = grid[far > h / 3]
    points = np.concatenate([outline, grid])
    tri = Delaunay(points).simplices
    corners = points[tri]
    keep = contains(corners.mean(axis=1)) & (simplex_measures(corners) > 1e-9 * h**dim)
    tri = tri[keep]
    used = np.unique(tri)
    index = np.full(len(points), -1)
    index[used] = np.arange(len(used))
    return points[used], index[tri]
