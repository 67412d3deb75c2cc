"""A short solve on each new kind of domain (polygon, annulus, set operation, mesh file) lands
near the closed form; the mesh file's solution is exported on exactly the file's points and cells.

The bounds are loose (small networks, few steps) but far below what a wrong normal, a wrong
part or points outside the domain give (a relative L2 error of order 1)."""

from pathlib import Path

import meshio
import numpy as np
import pytest
import torch

import pinnsolve as ps
from pinnsolve.build import build_problem
from pinnsolve.derivatives.fields import AutogradFields, Coords
from pinnsolve.io.config import from_dict
from pinnsolve.problem.pdes.ring import PoissonRing

PLATE = Path(__file__).resolve().parent.parent / "problems" / "plate.msh"


def quick(problem: str, **extra) -> dict:
    return {
        "problem": {"name": problem},
        "model": {"hidden": [12, 12]},
        "sampling": {"interior": 300, "boundary": 24},
        "training": {"optimizer": "adam", "steps": 300, "lr": 1e-2},
        "polish": {"method": "gauss_newton", "gauss_newton_steps": 40},
        "output": {"plots": False, "resolution": 31},
        **extra,
    }


def solve(data: dict, out: Path):
    config = from_dict(data)
    (sol,) = ps.solve(build_problem(config), config, out=out).solutions
    return sol


def test_lshape_polygon(tmp_path):
    assert solve(quick("laplace_lshape"), tmp_path).rel_l2_error <= 3e-2


def test_annulus(tmp_path):
    assert solve(quick("poisson_ring"), tmp_path).rel_l2_error <= 2e-2


def test_set_operation_from_python(tmp_path):
    class PlateWithHole(PoissonRing):
        domain = ps.Rectangle((-1.0, 1.0), (-1.0, 1.0)) - ps.Disk((0.0, 0.0), 0.5)

    config = from_dict(quick("poisson_ring"))
    (sol,) = ps.solve(PlateWithHole(), config, out=tmp_path).solutions
    assert sol.rel_l2_error <= 2e-2


def test_mesh_file_solution_is_exported_on_the_files_mesh(tmp_path):
    sol = solve(quick("poisson_ring", domain={"mesh": str(PLATE)}), tmp_path)
    assert sol.rel_l2_error <= 2e-2
    written, read = meshio.read(tmp_path / sol.file), meshio.read(PLATE)
    np.testing.assert_array_equal(written.points, read.points)
    assert [b.type for b in written.cells] == [b.type for b in read.cells]
    for a, b in zip(written.cells, read.cells, strict=True):
        np.testing.assert_array_equal(a.data, b.data)
    assert np.abs(written.point_data["u_error"]).max() == pytest.approx(
        np.abs(sol.values["u"] - sol.exact["u"]).max()
    )


@pytest.mark.parametrize("name", ["laplace_lshape", "poisson_ring"])
def test_the_references_solve_their_problems(name):
    """The closed forms satisfy the problem's own residual (autograd) inside and are zero where
    they should be: on the L's notch, on both circles of the annulus."""
    problem = ps.get_problem(name)()
    geom = problem.geometry()
    points = torch.as_tensor(geom.sample_interior(200, "halton", 0)).requires_grad_(True)
    x = Coords(points, geom.coords)
    (u,) = [b["u"] for b in problem.exact_solutions(x)]
    (r,) = problem.residuals(
        x, AutogradFields(points, u[:, None], problem.fields, x.names, x.names)
    )
    assert r.abs().max() < 1e-10
    zero_on = ["notch"] if name == "laplace_lshape" else ["outer", "inner"]
    for part in zero_on:
        s = torch.as_tensor(geom.sample_part(part, 50, "sobol", 0).points)
        (u,) = [b["u"] for b in problem.exact_solutions(Coords(s, geom.coords))]
        assert u.abs().max() < 1e-14


class Poisson3D(ps.Problem):
    """−Δu = −6 with u = x² + y² + z² on the boundary: the solution is u itself."""

    domain = ps.Box((0.0, 0.0, 0.0), (1.0, 1.0, 1.0)) - ps.Box((0.5, 0.5, 0.5), (1.5, 1.5, 1.5))
    fields = ("u",)

    def residual(self, x, f, p):
        return -f.lap("u") + 6.0

    def conditions(self, p):
        return [ps.Dirichlet("boundary", lambda x, p: x.x**2 + x.y**2 + x.z**2)]

    def exact(self, x, p):
        return x.x**2 + x.y**2 + x.z**2


def test_a_solid_set_operation_solves_and_exports_tetrahedra(tmp_path):
    """A notched cube (a box minus a box): the solve lands near the closed form and the VTU holds
    the tetrahedra of the evaluation mesh."""
    data = quick("poisson_ring")
    data["sampling"] = {"interior": 400, "boundary": 40}
    data["output"]["resolution"] = 9
    config = from_dict(data)
    (sol,) = ps.solve(Poisson3D(), config, out=tmp_path).solutions
    assert sol.rel_l2_error <= 2e-2
    mesh = meshio.read(tmp_path / sol.file)
    assert [block.type for block in mesh.cells] == ["tetra"]
    assert len(mesh.points) > 100
