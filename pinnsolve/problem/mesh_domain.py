"""A plane domain given by a mesh file (Gmsh ``.msh`` or anything meshio reads).

The user's mesh is the domain: interior points are drawn in its cells in proportion to their
areas (exact, from the unit square, :class:`~pinnsolve.problem.planar.Triangles`), boundary parts
are its named groups of line cells (Gmsh physical lines, or meshio cell sets), with each facet's
normal pointing away from the cell it bounds, and the mesh itself, every point and cell block as
read, is the evaluation and export mesh: a solution opens in ParaView on the geometry it came
from.
"""

from __future__ import annotations

import io
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path

import meshio
import numpy as np

from .domain import EvalMesh
from .planar import Segments, Triangles, cells_as_triangles
from .shapes import Triangulated


class MeshDomain(Triangulated):
    """The domain of a plane mesh of triangles and/or quads; parts are its named line groups."""

    def __init__(self, path: str | Path, coords: tuple[str, str] = ("x", "y")):
        self.path = str(path)
        said = io.StringIO()  # meshio prints each reader's complaint, then exits when all fail
        try:
            with redirect_stdout(said), redirect_stderr(said):
                mesh = meshio.read(self.path)
        except (OSError, meshio.ReadError, ValueError, KeyError, IndexError) as err:
            raise ValueError(f"cannot read mesh {self.path}: {err}") from None
        except SystemExit:
            why = " ".join(said.getvalue().split()) or "no reader for it"
            raise ValueError(f"cannot read mesh {self.path}: {why}") from None
        points = np.asarray(mesh.points, dtype=float)
        if points.shape[1] == 3:
            if np.any(points[:, 2] != 0):
                raise ValueError(f"mesh {self.path} is not plane (its z coordinates are not 0)")
            points = points[:, :2]
        self.points, self.coords = points, tuple(coords)
        self.cells = [(block.type, np.asarray(block.data)) for block in mesh.cells]
        tri = cells_as_triangles(self.cells)
        if not len(tri):
            raise ValueError(f"mesh {self.path} has no triangle or quad cells")
        self._triangles = Triangles(points[tri])
        self._parts = {
            name: _facets(points, tri, lines, name, self.path)
            for name, lines in _line_groups(mesh).items()
        }
        if not self._parts:
            raise ValueError(
                f"mesh {self.path} has no boundary groups (named groups of line cells: Gmsh "
                "physical lines or cell sets), so no condition could be placed on it"
            )

    def __repr__(self) -> str:
        return f"MeshDomain({self.path!r})"

    def bounds(self):
        return self.points.min(axis=0), self.points.max(axis=0)

    def eval_mesh(self, resolution, time_slices=11):
        """The mesh as read (``resolution`` does not apply)."""
        return EvalMesh(self.points, list(self.cells), self.coords)


def _line_groups(mesh: meshio.Mesh) -> dict[str, np.ndarray]:
    """Named groups of line cells (``[n, 2]`` point indices): Gmsh physical lines (names from
    the file's physical names, else ``group<tag>``), then meshio cell sets."""
    groups: dict[str, list[np.ndarray]] = {}
    tags = mesh.cell_data.get("gmsh:physical")
    if tags is not None:
        names = {int(tag): n for n, (tag, dim) in mesh.field_data.items() if int(dim) == 1}
        for block, block_tags in zip(mesh.cells, tags, strict=True):
            if block.type == "line":
                for tag in np.unique(block_tags):
                    name = names.get(int(tag), f"group{int(tag)}")
                    groups.setdefault(name, []).append(block.data[block_tags == tag])
    for name, per_block in mesh.cell_sets.items():
        if name.startswith("gmsh:"):
            continue
        for block, index in zip(mesh.cells, per_block, strict=True):
            if block.type == "line" and index is not None and len(index):
                groups.setdefault(name, []).append(block.data[np.asarray(index)])
    return {name: np.concatenate(lines) for name, lines in groups.items()}


def _facets(
    points: np.ndarray, tri: np.ndarray, lines: np.ndarray, name: str, path: str
) -> Segments:
    """A group's facets with normals pointing away from the one cell each bounds."""
    opposite: dict[tuple[int, int], list[int]] = {}
    for a, b, c in tri:
        for p, q, r in ((a, b, c), (b, c, a), (c, a, b)):
            opposite.setdefault((min(p, q), max(p, q)), []).append(r)
    third = []
    for p, q in lines:
        cells = opposite.get((min(p, q), max(p, q)), [])
        if len(cells) != 1:
            where = "is no cell's edge" if not cells else "lies inside the mesh"
            raise ValueError(f"mesh {path}: boundary group {name!r} has a facet that {where}")
        third.append(cells[0])
    a, b, c = points[lines[:, 0]], points[lines[:, 1]], points[third]
    d = b - a
    normals = np.stack([d[:, 1], -d[:, 0]], axis=1) / np.linalg.norm(d, axis=1)[:, None]
    inward = ((c - a) * normals).sum(axis=1) > 0
    normals[inward] *= -1
    return Segments(a, b, normals)
