"""Problems with several known solutions: elastica1d (closed form, 2k + 1 solutions) and bbi_disk
(manufactured u* plus a second radial solution found by shooting)."""

import math
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from scipy.integrate import solve_ivp

from pinnsolve.cli import main
from pinnsolve.derivatives.fields import AutogradFields, Coords
from pinnsolve.problem.base import Problem
from pinnsolve.problem.pdes.bbi_disk import BOUNDARY_VALUE, BBIDisk, forcing, second_solution
from pinnsolve.problem.pdes.elastica import Elastica1D, elastica_branches
from pinnsolve.problem.registry import registered

ROOT = Path(__file__).resolve().parents[1]

#: max |u| of the one- and two-hump solutions at λ = 60, from 2 arcsin √m with K(m) = √λ/(2k)
#: solved in mpmath at 50 digits (independent of the module's AGM evaluation).
AMPLITUDES_60 = (2.974188394209902, 1.747100404533469)

#: u(0) of bbi_disk's second solution: the module's shooting and a separate Chebyshev
#: collocation + Newton solve in ρ = r² agree on it to 1e-12.
SECOND_CENTRE = -10.2257671163673


def line(n: int, dtype=torch.float64) -> Coords:
    """``n`` evenly spaced points on [0, 1]."""
    return Coords(torch.linspace(0.0, 1.0, n, dtype=dtype)[:, None], ("x",))


def disk_points(n: int) -> torch.Tensor:
    """Points filling the unit disk, the centre and the rim included."""
    rng = np.random.default_rng(0)
    r = np.sqrt(rng.uniform(size=n))
    r[:2] = (0.0, 1.0)
    phi = rng.uniform(0, 2 * np.pi, size=n)
    return torch.tensor(np.stack([r * np.cos(phi), r * np.sin(phi)], axis=1))


def exact_residuals(problem: Problem, points: torch.Tensor) -> list[torch.Tensor]:
    """The problem's own residual on each exact solution, differentiated by autograd."""
    coords = problem.geometry().coords
    x = Coords(points.detach().requires_grad_(True), coords)
    out = []
    for branch in problem.exact_solutions(x):
        f = AutogradFields(x.tensor, branch["u"][:, None], problem.fields, coords, coords)
        (r,) = problem.residuals(x, f)
        out.append(r.detach())
    return out


def test_problems_are_registered_and_listed():
    assert {"elastica1d", "bbi_disk"} <= set(registered())
    result = CliRunner().invoke(main, ["problems"])
    assert result.exit_code == 0
    assert "elastica1d: u'' + λ sin u" in result.output and "bbi_disk: −Δu + u²" in result.output
    for name in ("elastica1d", "bbi_disk"):
        result = CliRunner().invoke(main, ["check", str(ROOT / "problems" / f"{name}.toml")])
        assert result.exit_code == 0 and result.output.startswith("ok:"), result.output


def test_elastica_five_solutions_at_default_lambda():
    problem = Elastica1D()
    assert problem.p.lam == 60.0
    sols = [s["u"] for s in problem.exact_solutions(line(20_001))]
    assert len(sols) == 5
    assert torch.equal(sols[0], torch.zeros_like(sols[0]))
    peaks = [float(u.abs().max()) for u in sols[1:]]
    assert peaks == pytest.approx([AMPLITUDES_60[0]] * 2 + [AMPLITUDES_60[1]] * 2, abs=1e-3)
    for plus, minus in (sols[1:3], sols[3:5]):
        assert plus.max() > 0 and torch.equal(minus, -plus)
    one, two = elastica_branches(60.0)[::2]
    assert (one.humps, two.humps) == (1, 2)
    assert (one.amplitude, two.amplitude) == pytest.approx(AMPLITUDES_60, rel=1e-13)


@pytest.mark.parametrize(("lam", "count"), [
    (0.0, 1), (9.8, 1), (math.pi**2, 1), (10.0, 3), (60.0, 5), (100.0, 7), (1000.0, 21),
])  # fmt: skip
def test_elastica_solution_count(lam, count):
    """A ± pair of k-hump solutions exists exactly for λ > (kπ)²."""
    sols = Elastica1D(lam=lam).exact_solutions(line(1010))
    assert len(sols) == count
    for k, b in enumerate(elastica_branches(lam)):
        assert b.humps == k // 2 + 1 and b.sign == (1, -1)[k % 2]


def test_elastica_reference_matches_shooting():
    """Integrating u'' = −λ sin u from u(0) = 0, u'(0) = s with tight tolerances lands on u(1) = 0
    and reproduces each series (an independent check of the closed form)."""
    lam = 60.0
    x = np.linspace(0.0, 1.0, 1010)
    for b in elastica_branches(lam):
        sol = solve_ivp(
            lambda t, y: [y[1], -lam * np.sin(y[0])], (0.0, 1.0), [0.0, b.slope],
            method="DOP853", rtol=1e-13, atol=1e-13, dense_output=True,
        )  # fmt: skip
        assert abs(sol.y[0, -1]) < 1e-10
        np.testing.assert_allclose(b.u(torch.tensor(x)).numpy(), sol.sol(x)[0], atol=1e-10)


@pytest.mark.parametrize("lam", [60.0, 1000.0])
def test_elastica_exact_solutions_satisfy_the_problem(lam):
    problem = Elastica1D(lam=lam)
    points = line(500).tensor
    for r in exact_residuals(problem, points):
        assert float(r.abs().max()) <= 1e-6 * lam
    for s in problem.exact_solutions(line(2)):
        assert float(s["u"].abs().max()) < 1e-12


def test_exact_follows_the_input_dtype_and_stops_past_the_reference_range():
    for s in Elastica1D().exact_solutions(line(11, torch.float32)):
        assert s["u"].dtype == torch.float32
    pts = Coords(disk_points(8).float(), ("x", "y"))
    assert all(s["u"].dtype == torch.float32 for s in BBIDisk().exact_solutions(pts))
    assert Elastica1D(lam=1500.0).exact_solutions(line(11)) == []


def test_bbi_disk_exact_solutions_satisfy_the_problem():
    problem = BBIDisk()
    points = disk_points(2000)
    scale = float(forcing(points.square().sum(dim=1)).abs().max())
    residuals = exact_residuals(problem, points)
    assert len(residuals) == 2
    assert float(residuals[0].abs().max()) <= 1e-12 * scale  # u* is exact up to rounding
    assert float(residuals[1].abs().max()) <= 1e-6 * scale


def test_bbi_disk_second_solution():
    a, _ = second_solution()
    assert a == pytest.approx(SECOND_CENTRE, abs=1e-8)
    problem = BBIDisk()
    phi = torch.linspace(0, 2 * math.pi, 50, dtype=torch.float64)
    rim = Coords(torch.stack([torch.cos(phi), torch.sin(phi)], dim=1), ("x", "y"))
    for s in problem.exact_solutions(rim):
        torch.testing.assert_close(s["u"], torch.full_like(phi, BOUNDARY_VALUE), atol=1e-9, rtol=0)
    centre = Coords(torch.zeros(1, 2, dtype=torch.float64), ("x", "y"))
    star, second = (s["u"].item() for s in problem.exact_solutions(centre))
    assert star == 0.0 and second == pytest.approx(SECOND_CENTRE, abs=1e-9)
