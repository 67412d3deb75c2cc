"""Reference solutions of the 2D bundled problems bratu2d and allen_cahn2d (Chebyshev collocation
and deflated Newton, pinnsolve.problem.pdes.chebyshev), pushed through each problem's own
residual by autograd."""

import numpy as np
import pytest
import torch

from pinnsolve import get_problem
from pinnsolve.derivatives.fields import AutogradFields, Coords
from pinnsolve.problem.base import Problem
from pinnsolve.problem.pdes.allen_cahn2d import (
    AllenCahn2D,
    allen_cahn_solutions,
    catalogue_key,
)
from pinnsolve.problem.pdes.bratu2d import (
    GUESSES,
    LAMBDA_CRITICAL,
    Bratu2D,
    bratu2d_solutions,
)
from pinnsolve.problem.pdes.chebyshev import (
    ChebyshevSeries2D,
    Semilinear,
    lobatto_points,
    sine_mode,
    solve_semilinear,
)

#: Bratu's residual, over max λeᵘ, at points ≥ BRATU_MARGIN from the boundary. The corners'
#: r² log r terms keep the tensor-product interpolant's second derivatives off along whole
#: strips next to the edges (1e-4 to 3e-2 within 0.01 of them), not only near the corners;
#: measured on 20 000 random points with this margin: 1.4e-5 at λ = 6, 4.7e-5 at λ = 1 (the
#: upper solution's spike, everywhere), 8.3e-6 at λ = 6.8.
BRATU_MARGIN = 0.05
BRATU_TOLERANCE = 1e-4

#: Allen–Cahn's residual (its terms are O(1)) anywhere inside: measured 3.4e-7 on 20 000 random
#: points (4.2e-8 beyond 0.01 from the edges); its solutions are analytic up to the boundary.
ALLEN_CAHN_TOLERANCE = 1e-6


def bratu(lam: float) -> Semilinear:
    """Δu + λeᵘ = 0 for :func:`solve_semilinear`."""

    def source(u: np.ndarray) -> np.ndarray:
        return lam * np.exp(u)

    return Semilinear(1.0, source, source)


def interior(n: int, margin: float = 0.0) -> torch.Tensor:
    """``n`` random points of the unit square at least ``margin`` from its edges."""
    rng = np.random.default_rng(0)
    return torch.tensor(rng.uniform(margin, 1 - margin, size=(n, 2)))


def boundary(n: int) -> torch.Tensor:
    """``n`` points on each edge of the unit square, the corners included."""
    t = torch.linspace(0.0, 1.0, n, dtype=torch.float64)
    zero, one = torch.zeros_like(t), torch.ones_like(t)
    edges = [(t, zero), (t, one), (zero, t), (one, t)]
    return torch.cat([torch.stack(edge, dim=1) for edge in edges])


def solutions(problem: Problem, points: torch.Tensor) -> list[torch.Tensor]:
    return [s["u"] for s in problem.exact_solutions(Coords(points, ("x", "y")))]


def residuals(problem: Problem, points: torch.Tensor) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """The problem's own residual on each reference solution (autograd), with the solution."""
    x = Coords(points.detach().clone().requires_grad_(True), ("x", "y"))
    out = []
    for branch in problem.exact_solutions(x):
        f = AutogradFields(x.tensor, branch["u"][:, None], problem.fields, x.names, x.names)
        (r,) = problem.residuals(x, f)
        out.append((r.detach(), branch["u"].detach()))
    return out


def assert_pairwise_distinct(sols: list[torch.Tensor]) -> None:
    """Relative L2 distances (RMS over the points, over the larger RMS) above 1e-2."""
    rms = [float(u.square().mean().sqrt()) for u in sols]
    for i in range(len(sols)):
        for j in range(i):
            gap = float((sols[i] - sols[j]).square().mean().sqrt()) / max(rms[i], rms[j])
            assert gap > 1e-2, (i, j, gap)


def test_problems_are_registered():
    assert get_problem("bratu2d") is Bratu2D
    assert get_problem("allen_cahn2d") is AllenCahn2D
    assert Bratu2D.description().startswith("Δu + λ eᵘ = 0 on the unit square")
    assert Bratu2D().p.lam == 6.0 and AllenCahn2D().p.eps == 0.12


def test_chebyshev_series_2d_interpolates_and_differentiates():
    x = lobatto_points(24)
    u = ChebyshevSeries2D.from_grid(np.exp(x)[:, None] * np.sin(2 * x)[None, :])
    pts = interior(50).requires_grad_(True)
    px, py = pts[:, 0], pts[:, 1]
    value = u(px, py)
    (grad,) = torch.autograd.grad(value.sum(), pts)
    assert torch.allclose(value, torch.exp(px) * torch.sin(2 * py), rtol=0, atol=1e-13)
    assert torch.allclose(grad[:, 1], 2 * torch.exp(px) * torch.cos(2 * py), rtol=0, atol=1e-11)
    low = pts.detach().float()
    assert u(low[:, 0], low[:, 1]).dtype == torch.float32


def test_deflation_finds_every_solution_from_one_guess():
    # ε = 0.2: only the (1, 1) mode has bifurcated, so u = 0 and ±u₁₁ are all the solutions
    problem = Semilinear(0.04, lambda u: u - u**3, lambda u: 1 - 3 * u**2)
    found = solve_semilinear(problem, [sine_mode(1, 1, 0.5)] * 4, 12)
    centres = [float(np.polynomial.chebyshev.chebval2d(0.0, 0.0, u.coef)) for u in found]
    assert centres == pytest.approx([0.59714, 0.0, -0.59714], abs=1e-5)


@pytest.mark.parametrize(
    ("lam", "centres"), [(6.0, (0.7971090628, 2.2399105291)), (1.0, (0.0781010227, 6.548937))]
)
def test_bratu2d_two_solutions_solve_the_problem(lam, centres):
    problem = Bratu2D(lam=lam)
    found = residuals(problem, interior(400, BRATU_MARGIN))
    assert len(found) == 2
    for r, u in found:
        assert float(r.abs().max() / (lam * torch.exp(u)).max()) <= BRATU_TOLERANCE
    assert all(float(u.abs().max()) <= 1e-10 for u in solutions(problem, boundary(50)))
    centre = torch.tensor([[0.5, 0.5]], dtype=torch.float64)
    peaks = [float(u) for u in solutions(problem, centre)]
    assert peaks == pytest.approx(centres, abs=5e-6)  # lower first
    pts = interior(200)
    sols = solutions(problem, pts)
    assert_pairwise_distinct(sols)
    for images in (pts.flip(1), torch.stack([1 - pts[:, 0], pts[:, 1]], dim=1)):
        for u, v in zip(sols, solutions(problem, images), strict=True):  # y ↔ x, x ↔ 1 − x
            assert float((u - v).abs().max()) <= 1e-10 * float(u.abs().max())


@pytest.mark.parametrize("lam", [0.5, 6.805, LAMBDA_CRITICAL, 6.82, 7.0, 50.0])
def test_bratu2d_no_reference_below_one_and_near_or_past_the_fold(lam):
    assert Bratu2D(lam=lam).exact_solutions(Coords(interior(5), ("x", "y"))) == []


def test_bratu2d_newton_finds_nothing_past_the_fold():
    # the reference's guesses on a 17² grid, whose fold (6.80812441) is 1.1e-8 below its own
    counts = [len(solve_semilinear(bratu(lam), GUESSES, 16)) for lam in (6.8, 6.82)]
    assert counts == [2, 0]
    assert len(bratu2d_solutions(6.8)) == 2


def test_allen_cahn2d_eleven_solutions_solve_the_problem():
    problem = AllenCahn2D()
    found = residuals(problem, interior(400))
    assert len(found) == 11
    for r, _ in found:
        assert float(r.abs().max()) <= ALLEN_CAHN_TOLERANCE
    assert all(float(u.abs().max()) <= 1e-10 for u in solutions(problem, boundary(50)))
    sols = [u for _, u in found]
    assert_pairwise_distinct(sols)
    for u in sols:  # ± pairs (u = 0 its own)
        assert min(float((u + v).abs().max()) for v in sols) <= 1e-8
    centre = solutions(problem, torch.tensor([[0.5, 0.5]], dtype=torch.float64))
    assert [float(u) for u in centre[-2:]] == pytest.approx([-0.974177, 0.974177], abs=1e-6)


def test_allen_cahn2d_catalogue_order():
    keys = [catalogue_key(u) for u in allen_cahn_solutions(0.12)]
    assert keys == sorted(keys)
    assert [k[0] for k in keys] == pytest.approx(
        [0.0] + [0.34625] * 4 + [0.375026] * 4 + [0.641506] * 2, abs=1e-6
    )


@pytest.mark.parametrize(("eps", "count"), [(0.2, 3), (0.3, 1)])
def test_allen_cahn2d_fewer_solutions_at_larger_eps(eps, count):
    assert len(solutions(AllenCahn2D(eps=eps), interior(5))) == count


def test_allen_cahn2d_no_reference_below_the_verified_range():
    assert AllenCahn2D(eps=0.1).exact_solutions(Coords(interior(5), ("x", "y"))) == []
