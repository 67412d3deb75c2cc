"""A bifurcation diagram's files: ``diagram.csv``, ``diagram.png`` and one ParaView ``.pvd``
collection per branch (a user scrubs along a branch as if the parameter were time).

What the diagram holds is plain data (:class:`Diagram`: points, each a solution at one value on
one branch, and where branches ended), so it travels in a checkpoint and is written again after
every value: an interrupted sweep keeps the diagram so far.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from xml.sax.saxutils import quoteattr

from matplotlib.figure import Figure

from .export import write_text
from .plots import save_png
from .results import Solution


@dataclass
class DiagramPoint:
    """One solution of the diagram: on branch ``branch`` at parameter ``value``, with the
    diagram's functional of it and the solution as evaluated on the export mesh."""

    value: float
    branch: int
    functional: float
    solution: Solution

    def row(self, functional_name: str) -> dict[str, Any]:
        s = self.solution
        return {"value": self.value, "branch": self.branch, functional_name: self.functional,
                "residual_rms": s.residual_rms, "max_infeasibility": s.max_infeasibility,
                "rel_l2_error": "" if s.rel_l2_error is None else s.rel_l2_error,
                "file": s.file}  # fmt: skip


@dataclass
class Diagram:
    """What a sweep found: ``values`` done so far (in order), every solution as a
    :class:`DiagramPoint`, and ``ends``: where a branch stopped between two values (after the
    refinement, ``found``: the nearest value it was found at, ``missing``: the nearest it was not,
    ``estimate``: their midpoint, the fold where the branch turns)."""

    parameter: str
    functional_name: str
    values: list[float] = field(default_factory=list)
    points: list[DiagramPoint] = field(default_factory=list)
    ends: list[dict[str, Any]] = field(default_factory=list)
    status: str = "running"
    run_dir: Path | None = None

    def ordered(self) -> list[DiagramPoint]:
        """The points in the order of the values, by branch at each (a branch found late is
        continued back through the values done, so its points come in later)."""
        index = {v: i for i, v in enumerate(self.values)}
        return sorted(self.points, key=lambda p: (index.get(p.value, len(index)), p.branch))

    def branches(self) -> dict[int, list[DiagramPoint]]:
        """Branch id → its points, in the order of the values."""
        out: dict[int, list[DiagramPoint]] = {}
        for p in sorted(self.ordered(), key=lambda p: p.branch):
            out.setdefault(p.branch, []).append(p)
        return out

    def at(self, value: float) -> list[DiagramPoint]:
        """The solutions found at ``value``, by branch."""
        return [p for p in self.ordered() if p.value == value]

    def counts(self) -> list[int]:
        """How many solutions each value of :attr:`values` has."""
        return [len(self.at(v)) for v in self.values]

    def summary(self) -> dict[str, Any]:
        """``summary.json``'s diagram part: per branch its values and files, and the ends."""
        return {
            "parameter": self.parameter, "functional": self.functional_name,
            "values": self.values, "counts": self.counts(),
            "branches": [{"id": b, "values": [p.value for p in pts],
                          "files": [p.solution.file for p in pts],
                          "rel_l2_error_max": _worst([p.solution.rel_l2_error for p in pts])}
                         for b, pts in self.branches().items()],
            "ends": self.ends,
        }  # fmt: skip


def _worst(errors: list[float | None]) -> float | None:
    known = [e for e in errors if e is not None]
    return max(known) if known else None


def value_folder(value: float) -> str:
    """The folder name of one value's solutions (``sweep/<value>/``)."""
    return f"{value:.6g}"


def write_diagram(run_path: Path, diagram: Diagram, plots: bool = True) -> None:
    """``diagram.csv``, ``diagram.png`` (with ``plots``) and ``sweep/branch_NN.pvd``."""
    buf = io.StringIO()
    columns = ["value", "branch", diagram.functional_name, "residual_rms", "max_infeasibility",
               "rel_l2_error", "file"]  # fmt: skip
    writer = csv.DictWriter(buf, fieldnames=columns)
    writer.writeheader()
    writer.writerows(p.row(diagram.functional_name) for p in diagram.ordered())
    write_text(run_path / "diagram.csv", buf.getvalue())
    for branch, points in diagram.branches().items():
        write_pvd(
            run_path / "sweep" / f"branch_{branch:02d}.pvd",
            [(p.value, str(Path(p.solution.file).relative_to("sweep"))) for p in points],
        )
    if plots:
        plot_diagram(run_path / "diagram.png", diagram)


def write_pvd(path: Path, entries: list[tuple[float, str]]) -> None:
    """A ParaView collection: each file (relative to ``path``'s folder) at its parameter value
    as its time step."""
    lines = ['<?xml version="1.0"?>', '<VTKFile type="Collection" version="0.1">', "  <Collection>"]
    lines += [f'    <DataSet timestep="{value!r}" part="0" file={quoteattr(file)}/>'
              for value, file in entries]  # fmt: skip
    lines += ["  </Collection>", "</VTKFile>", ""]
    write_text(path, "\n".join(lines))


def plot_diagram(path: Path, diagram: Diagram) -> None:
    """The functional against the parameter, one colour per branch; where a branch ended, a
    dotted line at the estimate of its end (a fold)."""
    fig = Figure(figsize=(6.4, 4.4))
    ax = fig.add_subplot()
    for branch, points in diagram.branches().items():
        ax.plot([p.value for p in points], [p.functional for p in points], "o-", ms=3,
                label=f"branch {branch}")  # fmt: skip
    for i, end in enumerate(diagram.ends):
        ax.axvline(end["estimate"], color="gray", ls=":", lw=0.8,
                   label="a branch ends" if i == 0 else None)  # fmt: skip
    ax.set_xlabel(diagram.parameter)
    name = diagram.functional_name
    ax.set_ylabel(f"max |{name[8:]}|" if name.startswith("max_abs_") else name)
    ax.set_title(f"{len(diagram.branches())} branch(es) over {len(diagram.values)} value(s)")
    if diagram.points:
        ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    save_png(fig, path)
