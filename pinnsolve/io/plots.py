"""The run's PNG plots: the solutions (``plots/solutions.png``) and the convergence history
(``plots/history.png``), made to be read without the JSON: titles with the problem and its
parameters, axis labels, colour bars, and each solution named with where it came from and how
good it is."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.tri import Triangulation

from ..problem.geometry import EvalMesh
from ..problem.planar import cells_as_triangles
from .export import atomic_write
from .results import Solution


def save_png(fig: Figure, path: Path) -> None:
    """Write ``fig`` as a PNG atomically (no pyplot state: a figure made from the class)."""
    FigureCanvasAgg(fig)
    atomic_write(path, lambda tmp: fig.savefig(tmp, format="png", dpi=110))


def origin(s: Solution) -> str:
    """``s01 (deflation, attempt 1)``: which solution and where it came from."""
    if not s.provenance:
        return s.name
    return f"{s.name} ({s.provenance['strategy']}, attempt {s.provenance['attempt']})"


def quality(s: Solution) -> str:
    """``rel L2 1.6e-07``, or the residual RMS on the evaluation mesh when no exact solution is
    known."""
    if s.rel_l2_error is not None:
        return f"rel L2 {s.rel_l2_error:.1e}"
    return f"residual RMS {s.residual_rms:.1e} (evaluation mesh)"


def legend_name(s: Solution) -> str:
    """``s01 (deflation, attempt 1), rel L2 1.6e-07``."""
    return f"{origin(s)}, {quality(s)}"


def plot_solutions(path: Path, mesh: EvalMesh, solutions: list[Solution], fields,
                   title: str = "") -> None:  # fmt: skip
    """``plots/solutions.png``: :func:`solutions_figure`."""
    save_png(solutions_figure(mesh, solutions, fields, title), path)


def solutions_figure(mesh: EvalMesh, solutions: list[Solution], fields, title: str = "") -> Figure:
    """1-D: every solution overlaid with the exact solution dashed, and below, on a log scale,
    ``|u − u_exact|`` (``|residual|`` when no exact solution is known). 2-D, 1-D + time and 3-D
    (the middle slice of the last axis): per solution and field a colour panel of the field and
    one of its error (or residual) beside it."""
    if mesh.points.shape[1] == 1:
        return _line_figure(mesh, solutions, fields, title)
    return _panel_figure(mesh, solutions, fields, title)


def _line_figure(mesh: EvalMesh, solutions: list[Solution], fields, title: str) -> Figure:
    x = mesh.points[:, 0]
    order = np.argsort(x)
    x = x[order]
    fig = Figure(figsize=(7.2, 6.4))
    top, bottom = fig.add_subplot(2, 1, 1), fig.add_subplot(2, 1, 2, sharex=None)
    exact_drawn = False
    for s in solutions:
        for f in fields:
            name = legend_name(s) + (f": {f}" if len(fields) > 1 else "")
            (line,) = top.plot(x, s.values[f][order], label=name)
            if s.exact is not None:
                top.plot(x, s.exact[f][order], "k--", lw=0.8,
                         label=None if exact_drawn else "exact")  # fmt: skip
                exact_drawn = True
                gap = np.abs(s.values[f] - s.exact[f])[order]
            else:
                gap = np.abs(next(iter(s.residuals.values())))[order]
            bottom.semilogy(x, np.where(gap > 0, gap, np.nan), color=line.get_color(), lw=0.9,
                            label=s.name)  # fmt: skip
    top.set_ylabel(", ".join(fields))
    top.set_title(title or "solutions", fontsize=10)
    top.legend(fontsize=7)
    known = any(s.exact is not None for s in solutions)
    bottom.set_ylabel(f"|{fields[0]} − {fields[0]}_exact|" if known else "|residual|")
    bottom.set_title("error against the exact solution" if known
                     else "residual on the evaluation mesh", fontsize=9)  # fmt: skip
    bottom.legend(fontsize=7)
    for ax in (top, bottom):
        ax.set_xlabel(mesh.coords[0])
        ax.grid(alpha=0.3, which="both")
    fig.tight_layout()
    return fig


def _panel_figure(mesh: EvalMesh, solutions: list[Solution], fields, title: str) -> Figure:
    pts = mesh.points
    mask = np.ones(len(pts), bool)
    where = ""
    if pts.shape[1] == 3:  # a slice at the middle of the last axis
        levels = np.unique(pts[:, 2])
        mask = pts[:, 2] == levels[len(levels) // 2]
        where = f" at {mesh.coords[2]} = {levels[len(levels) // 2]:g}"
    # the plane mesh's own triangles, so that a notch or a hole stays empty (else Delaunay)
    own = cells_as_triangles(mesh.cells) if mesh.times is None and pts.shape[1] == 2 else []
    tri = Triangulation(pts[mask, 0], pts[mask, 1], own if len(own) else None)
    panels = [(s, f) for s in solutions for f in fields]
    fig = Figure(figsize=(8.6, 3.6 * len(panels) + 0.5))
    for i, (s, f) in enumerate(panels):
        if s.exact is not None:
            second, what = s.values[f] - s.exact[f], f"{s.name}: {f} − {f}_exact"
        else:
            second, what = next(iter(s.residuals.values())), f"{s.name}: residual"
        for j, (data, label, cmap) in enumerate((
            (s.values[f], f"{origin(s)}: {f}", "viridis"),
            (second, f"{what} ({quality(s)})", "coolwarm"),
        )):  # fmt: skip
            ax = fig.add_subplot(len(panels), 2, 2 * i + j + 1)
            span = float(np.abs(data[mask]).max()) if j else None  # the error centred on 0
            im = ax.tripcolor(tri, data[mask], shading="gouraud", cmap=cmap,
                              vmin=-span if j else None, vmax=span)  # fmt: skip
            fig.colorbar(im, ax=ax)
            ax.set_title(label + where, fontsize=8)
            ax.set_xlabel(mesh.coords[0])
            ax.set_ylabel(mesh.coords[1])
            ax.set_aspect("equal" if mesh.times is None else "auto")
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return fig


def plot_history(path: Path, rows: list[dict], labels: list[str], title: str = "",
                 attempts: list[dict] = ()) -> None:  # fmt: skip
    """``plots/history.png``: :func:`history_figure`."""
    save_png(history_figure(rows, labels, title, attempts), path)


def history_figure(rows: list[dict], labels: list[str], title: str = "",
                   attempts: list[dict] = ()) -> Figure:  # fmt: skip
    """Convergence on a step axis (wall time on the top axis): the loss, the residual MSE, each
    condition's largest violation and, when an exact solution is known, the relative L2 error;
    the phases shaded and named. The explorer's rows get their own panel (its deflated searches
    reach losses far above training's and would squash its curves).

    The loss of a run with multipliers is the MDMM Lagrangian, which can be negative; a log axis
    cannot show those rows, and the legend says how many there were. ``attempts`` (the explorer's
    log) marks where each attempt ended, with its number and outcome.
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
        if explore:
            _mark_attempts(ax, attempts)
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


def _mark_attempts(ax, attempts: list[dict]) -> None:
    """A dotted line where attempts ended, labelled ``a1 new, a2 dup, a3 –`` (``–``: its search
    did not converge; the attempts of a round often end at one step)."""
    short = {"new": "new", "duplicate": "dup", "rejected": "rej"}
    ends: dict[int, list[str]] = {}
    for a in attempts:
        if "step" in a:  # (a log from before attempts recorded their step has none)
            ends.setdefault(a["step"], []).append(f"a{a['attempt']} {short.get(a['outcome'], '–')}")
    for step, said in ends.items():
        ax.axvline(step, color="k", lw=0.6, ls=":")
        ax.annotate(", ".join(said), (step, 1), xycoords=("data", "axes fraction"), rotation=90,
                    fontsize=6, va="top", ha="right")  # fmt: skip


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
