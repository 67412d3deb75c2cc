"""Everything a run writes: meshes (VTU / XDMF), PNG plots, summary.json, history.csv.

Every file is written to a temporary name in its folder and renamed into place, so a reader (or
a run killed mid-write) never sees a half-written file.
"""

from __future__ import annotations

import csv
import io
import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import meshio
import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.tri import Triangulation

from ..problem.geometry import EvalMesh
from ..problem.planar import cells_as_triangles
from .results import Solution


def atomic_write(path: Path, write: Callable[[Path], None]) -> None:
    """Call ``write(tmp)`` on a temporary path beside ``path``, then rename it onto ``path``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.stem}.tmp{os.getpid()}{path.suffix}")
    try:
        write(tmp)
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def write_text(path: Path, text: str) -> None:
    atomic_write(path, lambda tmp: tmp.write_text(text, encoding="utf-8"))


def write_json(path: Path, data: Any) -> None:
    write_text(path, json.dumps(data, indent=2, default=_json_default) + "\n")


def _json_default(obj):
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")


def point_data(solution: Solution) -> dict[str, np.ndarray]:
    """Arrays written per mesh point: each field, the residual(s), and the closest exact solution
    with the pointwise error where one is known."""
    data = dict(solution.values)
    data.update(solution.residuals)
    for f, v in (solution.exact or {}).items():
        data[f"{f}_exact"] = v
        data[f"{f}_error"] = solution.values[f] - v
    return data


def write_solution_mesh(path: Path, mesh: EvalMesh, solution: Solution) -> Path:
    """VTU for a steady problem; for a time-dependent one an XDMF time series (XML data, one file)
    with the spatial mesh and one set of point data per time slice. Returns the path written."""
    data = point_data(solution)
    if mesh.times is None:
        points = _as_3d(mesh.points)
        m = meshio.Mesh(points, mesh.cells, point_data=data)
        atomic_write(path, lambda tmp: meshio.write(tmp, m, file_format="vtu"))
        return path
    path = path.with_suffix(".xdmf")
    n = mesh.n_space
    space_points = _as_3d(mesh.points[:n, :-1])

    def write(tmp: Path) -> None:
        with meshio.xdmf.TimeSeriesWriter(tmp, data_format="XML") as writer:
            writer.write_points_cells(space_points, mesh.cells)
            for j, t in enumerate(mesh.times):
                writer.write_data(
                    float(t), point_data={k: v[j * n : (j + 1) * n] for k, v in data.items()}
                )

    atomic_write(path, write)
    return path


def _as_3d(points: np.ndarray) -> np.ndarray:
    """VTK stores 3-D points; pad 1-D and 2-D coordinates with zeros."""
    return np.pad(points, ((0, 0), (0, 3 - points.shape[1])))


def write_history_csv(path: Path, rows: list[dict]) -> None:
    columns: list[str] = []
    for row in rows:
        columns += [k for k in row if k not in columns and k != "phase_total"]
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=columns, extrasaction="ignore")
    writer.writeheader()
    writer.writerows(rows)
    write_text(path, buf.getvalue())


def _save(fig: Figure, path: Path) -> None:
    FigureCanvasAgg(fig)
    atomic_write(path, lambda tmp: fig.savefig(tmp, format="png", dpi=110))


def plot_solutions(path: Path, mesh: EvalMesh, solutions: list[Solution], fields) -> None:
    """1-D: every solution overlaid (exact dashed). 2-D, 1-D + time, 3-D (mid-plane slice): one
    colour panel per solution and field."""
    pts = mesh.points
    if pts.shape[1] == 1:
        fig = Figure(figsize=(6.4, 4.2))
        ax = fig.add_subplot()
        order = np.argsort(pts[:, 0])
        for s in solutions:
            for f in fields:
                ax.plot(pts[order, 0], s.values[f][order], label=f"{s.name}: {f}")
                if s.exact is not None:
                    ax.plot(pts[order, 0], s.exact[f][order], "k--", lw=0.8)
        ax.set_xlabel(mesh.coords[0])
        ax.legend()
        ax.grid(alpha=0.3)
        _save(fig, path)
        return
    mask = np.ones(len(pts), bool)
    if pts.shape[1] == 3:  # a slice at the middle of the last axis
        levels = np.unique(pts[:, 2])
        mask = pts[:, 2] == levels[len(levels) // 2]
    x, y = pts[mask, 0], pts[mask, 1]
    # the plane mesh's own triangles, so that a notch or a hole stays empty (else Delaunay)
    own = cells_as_triangles(mesh.cells) if mesh.times is None and pts.shape[1] == 2 else []
    tri = Triangulation(x, y, own if len(own) else None)
    panels = [(s, f) for s in solutions for f in fields]
    cols = min(3, len(panels))
    rows = (len(panels) + cols - 1) // cols
    fig = Figure(figsize=(4.2 * cols, 3.6 * rows))
    for i, (s, f) in enumerate(panels):
        ax = fig.add_subplot(rows, cols, i + 1)
        im = ax.tripcolor(tri, s.values[f][mask], shading="gouraud", cmap="viridis")
        fig.colorbar(im, ax=ax)
        ax.set_title(f"{s.name}: {f}")
        ax.set_xlabel(mesh.coords[0])
        ax.set_ylabel(mesh.coords[1])
        ax.set_aspect("equal" if mesh.times is None else "auto")
    fig.tight_layout()
    _save(fig, path)


def plot_history(path: Path, rows: list[dict], labels: list[str]) -> None:
    fig = Figure(figsize=(6.4, 4.2))
    ax = fig.add_subplot()
    steps = [r["step"] for r in rows]
    ax.semilogy(steps, [r["loss"] for r in rows], label="loss")
    ax.semilogy(steps, [r["residual_mse"] for r in rows], label="residual MSE")
    for label in labels:
        ax.semilogy(steps, [r[f"{label}_max"] for r in rows], label=f"max |g| {label}", lw=0.8)
    for i in range(1, len(rows)):
        if rows[i]["phase"] != rows[i - 1]["phase"]:
            ax.axvline(rows[i]["step"], color="gray", ls=":", lw=0.8)
    ax.set_xlabel("step")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3, which="both")
    _save(fig, path)
