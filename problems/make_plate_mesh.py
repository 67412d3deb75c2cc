"""Write plate.msh: the square [-1, 1]² with a hole of radius 1/2, as 384 triangles.

Rings of points blend the hole's circle into the square (ring k of K at s = k/K:
(1 − s)·circle + s·square, in 32 directions); each quad between rings is cut into two triangles.
Gmsh physical groups: lines ``outer`` (the square) and ``inner`` (the hole), surface ``plate``.
Run from anywhere: ``python problems/make_plate_mesh.py``; pinnsolve only reads the result.
"""

from pathlib import Path

import meshio
import numpy as np

DIRECTIONS, RINGS, HOLE = 32, 6, 0.5


def plate() -> meshio.Mesh:
    phi = 2 * np.pi * np.arange(DIRECTIONS) / DIRECTIONS
    ray = np.stack([np.cos(phi), np.sin(phi)], axis=1)
    square = ray / np.abs(ray).max(axis=1, keepdims=True)
    s = np.linspace(0.0, 1.0, RINGS + 1)[:, None, None]
    points = ((1 - s) * HOLE * ray + s * square).reshape(-1, 2)
    index = np.arange(len(points)).reshape(RINGS + 1, DIRECTIONS)
    nxt = np.roll(index, -1, axis=1)
    a, b, c, d = index[:-1], index[1:], nxt[1:], nxt[:-1]  # counter-clockwise quads
    triangles = np.concatenate([np.stack([a, b, c], -1), np.stack([a, c, d], -1)]).reshape(-1, 3)
    inner = np.stack([nxt[0], index[0]], axis=1)  # along the hole, clockwise
    outer = np.stack([index[-1], nxt[-1]], axis=1)
    cells = [("line", inner), ("line", outer), ("triangle", triangles)]
    tags = [np.full(len(inner), 1), np.full(len(outer), 2), np.full(len(triangles), 3)]
    return meshio.Mesh(
        np.column_stack([points, np.zeros(len(points))]),
        cells,
        cell_data={"gmsh:physical": tags, "gmsh:geometrical": tags},
        field_data={
            "inner": np.array([1, 1]),
            "outer": np.array([2, 1]),
            "plate": np.array([3, 2]),
        },
    )


if __name__ == "__main__":
    meshio.write(Path(__file__).with_name("plate.msh"), plate(), file_format="gmsh22", binary=False)
