"""What a run writes besides its plots (:mod:`.plots`): meshes (VTU / XDMF, and a ParaView
collection), summary.json, history.csv.

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
from xml.sax.saxutils import quoteattr

import meshio
import numpy as np

from ..problem.geometry import EvalMesh
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
                writer.write_data(float(t), point_data=_slice(data, j, n))

    atomic_write(path, write)
    return path


def write_time_slices(folder: Path, mesh: EvalMesh, solution: Solution) -> list[Path]:
    """A time-dependent solution's slices as one VTU each (``folder/tNN.vtu``): what a ParaView
    collection can list (it cannot list an XDMF file's steps). Returns the paths in time order."""
    data, n = point_data(solution), mesh.n_space
    points = _as_3d(mesh.points[:n, :-1])
    paths = []
    for j in range(len(mesh.times)):
        m = meshio.Mesh(points, mesh.cells, point_data=_slice(data, j, n))
        path = folder / f"t{j:02d}.vtu"
        atomic_write(path, lambda tmp, m=m: meshio.write(tmp, m, file_format="vtu"))
        paths.append(path)
    return paths


def write_collection(path: Path, datasets: list[tuple[float, int, str, str]]) -> None:
    """A ParaView collection (``.pvd``): one file that opens every solution. ``datasets`` are
    ``(timestep, part, name, file)`` with ``file`` relative to ``path``'s folder."""
    lines = ['<?xml version="1.0"?>', '<VTKFile type="Collection" version="0.1">', "  <Collection>"]
    for timestep, part, name, file in datasets:
        lines.append(f"    <DataSet timestep={quoteattr(f'{timestep:g}')} part=\"{part}\" "
                     f"name={quoteattr(name)} file={quoteattr(file)}/>")  # fmt: skip
    lines += ["  </Collection>", "</VTKFile>", ""]
    write_text(path, "\n".join(lines))


def _slice(data: dict[str, np.ndarray], j: int, n: int) -> dict[str, np.ndarray]:
    """Time slice ``j`` of point data stored slice by slice, ``n`` points each."""
    return {k: v[j * n : (j + 1) * n] for k, v in data.items()}


def _as_3d(points: np.ndarray) -> np.ndarray:
    """VTK stores 3-D points; pad 1-D and 2-D coordinates with zeros."""
    return np.pad(points, ((0, 0), (0, 3 - points.shape[1])))


#: row keys for the progress display only, not history.csv
DISPLAY_ONLY = ("phase_total", "phase_step")


def write_history_csv(path: Path, rows: list[dict]) -> None:
    columns: list[str] = []
    for row in rows:
        columns += [k for k in row if k not in columns and k not in DISPLAY_ONLY]
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=columns, extrasaction="ignore")
    writer.writeheader()
    writer.writerows(rows)
    write_text(path, buf.getvalue())
