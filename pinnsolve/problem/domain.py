"""The :class:`Geometry` interface every domain implements, and the set operations on domains.

A geometry maps points of the unit hypercube (from :mod:`pinnsolve.problem.sampling`) onto its
interior and onto each named boundary part, with outward unit normals. Boundary parts have names a
TOML file can use; the name ``boundary`` means every spatial part together. A geometry also builds
the evaluation mesh solutions are exported on.

Plane domains, and boxes in space, can be combined: ``a | b`` (union), ``a - b`` (difference),
``a & b`` (intersection). The result has no map from the unit cube, so it samples by rejection:
interior points from its bounding box, boundary points from its operands' parts (edges in the
plane, faces in space). A point of an operand's
boundary with normal ``n`` lies on the result's boundary when exactly one of ``x ± εn`` is inside
the result, and the result's outward normal is ``n`` or ``−n`` accordingly; this one test covers
every operation, the edges a difference cuts (normals flipped) and the edges two operands share
(dropped). Part names survive: the result's parts are its operands' parts (the first operand's
when both name one), where they still bound it. The set operations live here, beside the
interface, because ``Geometry.__or__`` returns them.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import torch
from torch import Tensor

from .planar import clipped_mesh
from .sampling import unit_samples

ALL_PARTS = "boundary"


@dataclass(frozen=True)
class EvalMesh:
    """Points (``[n, dim]``, in the problem's coordinates) and meshio cell blocks.

    For time-dependent problems ``times`` holds the slice times and the points are stored slice by
    slice: slice ``j`` is ``points[j * n_space:(j + 1) * n_space]``, all sharing ``cells``.
    """

    points: np.ndarray
    cells: list[tuple[str, np.ndarray]]
    coords: tuple[str, ...]
    times: np.ndarray | None = None

    @property
    def n_space(self) -> int:
        return len(self.points) if self.times is None else len(self.points) // len(self.times)


@dataclass(frozen=True)
class BoundarySample:
    """Points on one boundary part with their outward unit normals (both ``[n, dim]``)."""

    points: np.ndarray
    normals: np.ndarray


@dataclass(frozen=True)
class Chain:
    """Boundary points in order along the boundary, with outward normals; ``closed`` when the
    last point is followed by the first (a whole loop)."""

    points: np.ndarray
    normals: np.ndarray
    closed: bool


class Geometry(ABC):
    """A domain with named boundary parts; see the module docstring."""

    coords: tuple[str, ...]
    #: False where points come by rejection (set operations): no map from the unit cube
    maps_unit_cube: ClassVar[bool] = True

    @property
    def dim(self) -> int:
        return len(self.coords)

    @property
    @abstractmethod
    def parts(self) -> tuple[str, ...]:
        """Names of the boundary parts a condition can be placed on."""

    @abstractmethod
    def bounds(self) -> tuple[np.ndarray, np.ndarray]:
        """Bounding box ``(lo, hi)``; the network rescales its inputs from it to ``[-1, 1]``."""

    def map_interior(self, u: np.ndarray) -> np.ndarray:
        """Map unit-cube points ``[n, dim]`` into the domain."""
        raise NotImplementedError(f"{type(self).__name__} has no map from the unit cube")

    @abstractmethod
    def part_dim(self, part: str) -> int:
        """Dimension of a boundary part's parametrisation (0 for an end point of an interval)."""

    def map_part(self, part: str, u: np.ndarray) -> BoundarySample:
        """Map unit-cube points ``[n, part_dim]`` onto boundary part ``part``."""
        raise NotImplementedError(f"{type(self).__name__} has no map from the unit cube")

    @abstractmethod
    def eval_mesh(self, resolution: int, time_slices: int = 11) -> EvalMesh:
        """A mesh with about ``resolution`` points along each axis (and ``time_slices`` times)."""

    def spatial_parts(self) -> tuple[str, ...]:
        """The parts that ``boundary`` stands for."""
        return self.parts

    @abstractmethod
    def measure(self) -> float:
        """Length, area or volume of the domain (space × time for a space-time domain)."""

    def part_length(self, part: str) -> float:
        """Length of a plane domain's boundary part (set operations share points out by it)."""
        raise TypeError(f"{type(self).__name__} does not measure its boundary parts")

    def contains(self, points: np.ndarray) -> np.ndarray:
        """Which points ``[n, dim]`` lie in the closed domain (set operations need it)."""
        raise TypeError(f"{type(self).__name__} cannot enter a set operation (| - &)")

    def outline(self, h: float) -> list[Chain]:
        """The boundary as chains of points at most ``h`` apart (plane domains)."""
        raise TypeError(f"{type(self).__name__} cannot enter a set operation (| - &)")

    def corners(self) -> np.ndarray:
        """Points ``[k, dim]`` where the boundary is not smooth (a polygon's vertices)."""
        return np.zeros((0, self.dim))

    def opposite(self, part: str) -> str | None:
        """The face a periodic condition pairs with ``part`` (None where there is none)."""
        return None

    def translate_to(self, part: str, points: np.ndarray) -> np.ndarray:
        """Points of the opposite face moved onto ``part`` (periodic conditions)."""
        raise ValueError(f"{type(self).__name__} has no periodic faces")

    def corner_distance(self, points: Tensor) -> Tensor | None:
        """Distance of each point to where the boundary is not smooth (:meth:`corners`), where
        the solution of an elliptic problem is singular in general; None when the boundary is
        smooth everywhere (or the domain is one-dimensional)."""
        corners = self.corners()
        if not len(corners):
            return None
        c = torch.as_tensor(corners, dtype=points.dtype, device=points.device)
        return torch.cdist(points, c).amin(dim=1)

    def sample_interior(self, n: int, method: str, seed: int) -> np.ndarray:
        return self.map_interior(unit_samples(n, self.dim, method, seed))

    def sample_part(self, part: str, n: int, method: str, seed: int) -> BoundarySample:
        """``n`` points on ``part`` (a single point for the end of an interval)."""
        self.check_part(part)
        k = self.part_dim(part)
        count = 1 if k == 0 else n
        return self.map_part(part, unit_samples(count, k, method, seed))

    def check_part(self, part: str) -> None:
        if part not in self.parts:
            known = ", ".join((*self.parts, ALL_PARTS))
            raise ValueError(f"unknown boundary part {part!r}; this domain has: {known}")

    def diameter(self) -> float:
        lo, hi = self.bounds()
        return float(np.linalg.norm(hi - lo))

    def __or__(self, other: Geometry) -> Geometry:
        return Union(self, other)

    def __sub__(self, other: Geometry) -> Geometry:
        return Difference(self, other)

    def __and__(self, other: Geometry) -> Geometry:
        return Intersection(self, other)


#: Unit-square points that estimate areas and part lengths of set operations (2^18: a relative
#: error of about 1e-5 on the areas of the bundled examples)
_ESTIMATE_POINTS = 2**18


class SetOperation(Geometry):
    """``a <op> b`` of two plane domains, or of two boxes in space; see the module docstring."""

    maps_unit_cube = False
    symbol: ClassVar[str]

    def __init__(self, a: Geometry, b: Geometry):
        for g in (a, b):
            if not isinstance(g, Geometry) or g.dim not in (2, 3):
                raise ValueError(f"set operations combine plane or solid domains, got {g!r}")
        if a.coords != b.coords:
            raise ValueError(f"coordinates differ: {a.coords} and {b.coords}")
        self.a, self.b = a, b
        self.coords = a.coords
        lo, hi = self._box()
        if np.any(hi <= lo):
            raise ValueError(f"empty {type(self).__name__.lower()}: {self!r}")
        self._lo, self._hi = lo, hi
        self._eps = 1e-9 * self.diameter()
        u = unit_samples(_ESTIMATE_POINTS, self.dim, "sobol", 0)
        self._fraction = float(self.contains(lo + u * (hi - lo)).mean())
        if self._fraction == 0.0:
            raise ValueError(f"empty {type(self).__name__.lower()}: {self!r}")
        named = dict.fromkeys((*a.parts, *b.parts))
        lengths = {p: self._estimate_length(p) for p in named}
        self._lengths = {p: length for p, length in lengths.items() if length > 0}
        self._corners: np.ndarray | None = None

    def __repr__(self) -> str:
        return f"({self.a!r} {self.symbol} {self.b!r})"

    @abstractmethod
    def _box(self) -> tuple[np.ndarray, np.ndarray]:
        """A box holding the result."""

    @abstractmethod
    def _combine(self, in_a: np.ndarray, in_b: np.ndarray) -> np.ndarray:
        """Membership in the result from membership in the operands."""

    @property
    def parts(self):
        return tuple(self._lengths)

    def bounds(self):
        return self._lo.copy(), self._hi.copy()

    def contains(self, points):
        return self._combine(self.a.contains(points), self.b.contains(points))

    def measure(self):
        return self._fraction * float(np.prod(self._hi - self._lo))

    def part_dim(self, part):
        return self.dim - 1

    def part_length(self, part):
        self.check_part(part)
        return self._lengths[part]

    def _owners(self, part: str) -> list[Geometry]:
        return [g for g in (self.a, self.b) if part in g.parts]

    def _on_boundary(self, g: Geometry, points: np.ndarray, normals: np.ndarray):
        """Which of operand ``g``'s boundary points bound the result, with the result's outward
        normals; where both operands' boundaries coincide, the first operand's points count."""
        step = self._eps * normals
        inner, outer = self.contains(points - step), self.contains(points + step)
        keep = inner != outer
        if g is self.b:  # the stretch both share is sampled from a
            keep &= self.a.contains(points - step) == self.a.contains(points + step)
        return keep, np.where(inner[:, None], normals, -normals)

    def _estimate_length(self, part: str) -> float:
        total = 0.0
        for g in self._owners(part):
            s = g.sample_part(part, 2048, "sobol", 0)
            keep, _ = self._on_boundary(g, s.points, s.normals)
            total += g.part_length(part) * float(keep.mean())
        return total

    def sample_interior(self, n, method, seed):
        m = math.ceil(1.2 * n / self._fraction) + 16
        while True:
            points = self._lo + unit_samples(m, self.dim, method, seed) * (self._hi - self._lo)
            points = points[self.contains(points)]
            if len(points) >= n:
                return points[:n]
            m *= 2

    def sample_part(self, part, n, method, seed):
        """Operands' points on ``part`` in proportion to their lengths, kept where they bound the
        result, then ``n`` of them picked at random (uniform in length, since every operand's
        points are)."""
        self.check_part(part)
        owners = self._owners(part)
        full = sum(g.part_length(part) for g in owners)
        m = math.ceil(1.2 * n * full / self._lengths[part]) + 16
        while True:
            points, normals = [], []
            for i, g in enumerate(owners):
                share = math.ceil(m * g.part_length(part) / full)
                s = g.sample_part(part, share, method, seed + 7 * i)
                keep, nrm = self._on_boundary(g, s.points, s.normals)
                points.append(s.points[keep])
                normals.append(nrm[keep])
            points, normals = np.concatenate(points), np.concatenate(normals)
            if len(points) >= n:
                pick = np.sort(np.random.default_rng(seed).choice(len(points), n, replace=False))
                return BoundarySample(points[pick], normals[pick])
            m *= 2

    def outline(self, h):
        chains = []
        for g in (self.a, self.b):
            for chain in g.outline(h):
                keep, normals = self._on_boundary(g, chain.points, chain.normals)
                chains += _runs(chain, keep, normals)
        return chains

    def eval_mesh(self, resolution, time_slices=11):
        h = float(np.max(self._hi - self._lo)) / max(1, resolution - 1)
        if self.dim == 3:
            surface = self._surface(h)
            points, tets = clipped_mesh(surface, self.contains, self.bounds(), resolution)
            return EvalMesh(points, [("tetra", tets)], self.coords)
        outline = np.concatenate([c.points for c in self.outline(h)])
        points, tri = clipped_mesh(outline, self.contains, self.bounds(), resolution)
        return EvalMesh(points, [("triangle", tri)], self.coords)

    def _surface(self, h: float) -> np.ndarray:
        """Points on a solid's boundary, about ``h`` apart: what its tetrahedra are built on."""
        parts = [self.sample_part(p, max(16, math.ceil(2 * self._lengths[p] / h**2)), "sobol", 0)
                 for p in self.parts]  # fmt: skip
        return np.concatenate([s.points for s in parts])

    def corners(self):
        """Where the result's boundary turns: the operands' corners and the points where their
        boundaries cross (found along their outlines, to a ten-thousandth of the diameter), kept
        where :meth:`_turns` says the boundary is not straight there."""
        if self.dim == 3:  # edges and vertices in space are not what corners() describes
            return np.zeros((0, 3))
        if self._corners is None:
            found = [c for g in (self.a, self.b) for c in g.corners()]
            h = 1e-4 * self.diameter()
            for g in (self.a, self.b):
                for chain in g.outline(h):
                    keep, _ = self._on_boundary(g, chain.points, chain.normals)
                    flip = keep != np.roll(keep, -1)
                    if not chain.closed:
                        flip[-1] = False
                    mid = 0.5 * (chain.points + np.roll(chain.points, -1, axis=0))
                    found += list(mid[flip])
            kept: list[np.ndarray] = []
            for c in found:  # once each (both operands find where they cross)
                far = all(np.linalg.norm(c - k) > 1e-3 * self.diameter() for k in kept)
                if far and self._turns(c):
                    kept.append(c)
            self._corners = np.asarray(kept).reshape(-1, 2)
        return self._corners

    def _turns(self, point: np.ndarray) -> bool:
        """Whether the boundary has a corner at ``point``: on a small circle around it, the
        share inside is neither 0 nor 1 (it is on the boundary) nor one half (a straight edge)."""
        phi = (np.arange(16) + 0.5) * np.pi / 8
        ring = point + 2e-3 * self.diameter() * np.stack([np.cos(phi), np.sin(phi)], axis=1)
        inside = int(self.contains(ring).sum())
        return inside not in (0, 8, 16)


def _runs(chain: Chain, keep: np.ndarray, normals: np.ndarray) -> list[Chain]:
    """The stretches of a chain where ``keep`` holds, as open chains (a closed one when all do)."""
    if keep.all():
        return [Chain(chain.points, normals, chain.closed)]
    edges = np.flatnonzero(np.diff(np.concatenate([[0], keep.astype(int), [0]])))
    return [
        Chain(chain.points[s:e], normals[s:e], False)
        for s, e in zip(edges[::2], edges[1::2], strict=True)
    ]


class Union(SetOperation):
    """``a | b``: points in either."""

    symbol = "|"

    def _box(self):
        (la, ha), (lb, hb) = self.a.bounds(), self.b.bounds()
        return np.minimum(la, lb), np.maximum(ha, hb)

    def _combine(self, in_a, in_b):
        return in_a | in_b


class Difference(SetOperation):
    """``a - b``: points of ``a`` not in ``b``; ``b``'s boundary inside ``a`` becomes a boundary
    part of the result, its normals turned to point out of the result (into ``b``)."""

    symbol = "-"

    def _box(self):
        return self.a.bounds()

    def _combine(self, in_a, in_b):
        return in_a & ~in_b


class Intersection(SetOperation):
    """``a & b``: points in both."""

    symbol = "&"

    def _box(self):
        (la, ha), (lb, hb) = self.a.bounds(), self.b.bounds()
        return np.maximum(la, lb), np.minimum(ha, hb)

    def _combine(self, in_a, in_b):
        return in_a & in_b
