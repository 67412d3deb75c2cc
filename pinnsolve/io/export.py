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
    tri = Triangulation(x, y)
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


def plot_history(path: Path, rows: list[dict], labels: list[str], title: str = "") -> None:
    """``plots/history.png``: :func:`history_figure`."""
    _save(history_figure(rows, labels, title), path)


def history_figure(rows: list[dict], labels: list[str], title: str = "") -> Figure:
    """Convergence on a step axis (wall time on the top axis): the loss, the residual MSE, each
    condition's largest violation and, when an exact solution is known, the relative L2 error;
    the phases shaded and named. The explorer's rows get their own panel (its deflated searches
    reach losses far above training's and would squash its curves).

    The loss of a run with multipliers is the MDMM Lagrangian, which can be negative; a log axis
    cannot show those rows, and the legend says how many there were.
    """
    parts = [[r for r in rows if r.get("stage") != "explore"],
             [r for r in rows if r.get("stage") == "explore"]]  # fmt: skip
    parts = [part for part in parts if part]
    fig = Figure(figsize=(7.6, 3.8 * len(parts) + 0.6))
    steps = np.array([r["step"] for r in rows], float)
    times = np.maximum.accumulate(np.array([r["time_s"] for r in rows], float))
    for i, part in enumerate(parts):
        ax = fig.add_subplot(len(parts), 1, i + 1)
        explore = part[0].get("stage") == "explore"
        _history_panel(ax, part, labels)
        ax.set_title(("explorer" if explore else "training and polish")
                     + (f": {title}" if title and i == 0 else ""), fontsize=10)  # fmt: skip
        if part[0]["step"] == part[-1]["step"]:  # one step: no axis to map (nor a range)
            ax.set_xlim(part[0]["step"] - 1, part[0]["step"] + 1)
            continue
        top = ax.secondary_xaxis(
            "top",
            functions=(lambda s: np.interp(s, steps, times), lambda t: np.interp(t, times, steps)),
        )
        top.set_xlabel("wall time [s]", fontsize=8)
        top.tick_params(labelsize=8)
    fig.tight_layout()
    return fig


def _history_panel(ax, rows: list[dict], labels: list[str]) -> None:
    steps = np.array([r["step"] for r in rows], float)

    def column(key: str) -> np.ndarray:
        values = np.array([r.get(key, np.nan) for r in rows], float)
        return np.where(values > 0, values, np.nan)

    loss = np.array([r["loss"] for r in rows], float)
    negative = int(np.sum(loss <= 0))
    note = f" ({negative} rows ≤ 0 not drawn: the MDMM Lagrangian)" if negative else ""
    ax.semilogy(steps, column("loss"), label="loss" + note, lw=1.0)
    ax.semilogy(steps, column("residual_mse"), label="residual MSE", lw=1.0)
    for label in labels:
        ax.semilogy(steps, column(f"{label}_max"), label=f"max |g| {label}", lw=0.8)
    if any("rel_l2_error" in r for r in rows):
        ax.semilogy(steps, column("rel_l2_error"), "k", label="rel L2 error (vs exact)", lw=1.4)
    _shade_phases(ax, rows)
    ax.set_xlabel("step")
    ax.legend(fontsize=7, loc="best")
    ax.grid(alpha=0.3, which="both")


def _shade_phases(ax, rows: list[dict]) -> None:
    """Each phase as a shaded band, one colour (and legend name) per phase name; a phase run
    again right after itself (the explorer's polish of one candidate after another's) starts
    at a thin line."""
    colours: dict[str, str] = {}
    palette = ["#d9d9d9", "#c6dbef", "#fdd0a2", "#c7e9c0", "#dadaeb", "#fcbba1"]
    start = 0
    for j in range(1, len(rows) + 1):
        again = j < len(rows) and rows[j].get("phase_step", 1) <= rows[j - 1].get("phase_step", 0)
        if j < len(rows) and rows[j]["phase"] == rows[start]["phase"] and not again:
            continue
        name = rows[start]["phase"]
        new = name not in colours
        colours.setdefault(name, palette[len(colours) % len(palette)])
        lo = rows[start - 1]["step"] if start else rows[0]["step"]
        ax.axvspan(lo, rows[j - 1]["step"], color=colours[name], alpha=0.5, lw=0,
                   label=f"phase: {name}" if new else None)  # fmt: skip
        if start and rows[start]["phase"] == rows[start - 1]["phase"]:
            ax.axvline(lo, color="gray", lw=0.5)
        start = j
