"""Bratu's problem on the unit square, Δu + λ eᵘ = 0 with u = 0 on the boundary: a lower and an
upper solution for 0 < λ < λc ≈ 6.80812, one at the fold, none above.

There is no closed form; the reference solutions come from Chebyshev–Lobatto collocation and
Newton (:func:`~pinnsolve.problem.pdes.chebyshev.solve_semilinear`). The lower branch is plain
Newton from u = 0; the upper one deflated Newton from 2·sin(πx)·sin(πy) with the lower deflated,
which reached it at every λ tried in [0.5, 6.8] (on the 25² search grid). Plain Newton from
α·sin(πx)·sin(πy) reaches it only from a window of α that narrows as λ falls (α in steps of ½:
2 ≤ α ≤ 7 at λ = 6, 4 ≤ α ≤ 5.5 at λ = 1; below, the lower solution, above, nothing).

Accuracy: f(0) = λ ≠ 0 contradicts u = 0 at the corners, where the solution has r² log r terms,
so the convergence in the degree N is algebraic there; for small λ the upper solution is a tall
spike (max u ≈ 6.55 at λ = 1) that also needs many points. With N = 56 (57² points), doubling N
(a Newton–Krylov solve at N = 112) changes the solutions by, in relative L2 on a 201² grid:
1.7e-9 / 6.9e-10 (lower / upper) at λ = 6, 2.8e-9 / 1.7e-7 at λ = 1, 1.2e-9 / 1.1e-9 at λ = 6.8;
N = 48 would miss 1e-6 at λ = 1 (1.1e-6). Hence references only for λ ≥ 1 (below it the spike
needs more points). The problem's own residual on the series (autograd), over max λeᵘ, is below
5e-5 at distance ≥ 0.05 from the edges (the upper spike at λ = 1; 1.4e-5 at λ = 6), but up to
3e-2 within 0.01 of them: the tensor-product interpolant of the corner terms errs along whole
strips next to the edges. Each λ takes about a second on one core, once (cached).

Measured (max u is u(½, ½), the solutions having the square's symmetries):

=====  ==============  ==============
λ      max u, lower    max u, upper
=====  ==============  ==============
1      0.0781010227    6.548937
6      0.7971090628    2.2399105291
6.8    1.3234520210    1.4622682885
=====  ==============  ==============

The fold, as the largest λ along the branch parametrised by u(½, ½) (Newton on the collocation
equations plus λ, Brent on u(½, ½)), is λc = 6.8081244226 at u(½, ½) = 1.39166, the same to
1e-10 for N from 24 to 56 (the literature's 6.80812). At λ = 6.8 both solutions are found; at
λ = 6.808 the search finds the lower one only (the two are too close for deflation to part them),
hence references up to λ = 6.8; at λ = 6.82 Newton finds none.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import torch
from torch import Tensor

from ...derivatives.fields import Coords
from ..base import Problem
from ..conditions import Dirichlet
from ..geometry import Rectangle
from ..params import Param, Params
from ..registry import register
from .chebyshev import ChebyshevSeries2D, Semilinear, sine_mode, solve_semilinear

#: The fold of the reference discretisation (see the module docstring).
LAMBDA_CRITICAL = 6.8081244226

#: References are given for REFERENCE_MIN_LAMBDA ≤ λ ≤ REFERENCE_MAX_LAMBDA: below, the upper
#: solution's spike needs a finer grid; above, up to λc, deflation cannot tell the two apart.
REFERENCE_MIN_LAMBDA = 1.0
REFERENCE_MAX_LAMBDA = 6.8

#: Degree per direction of the reference series, and of the grid the solutions are searched on.
DEGREE = 56
SEARCH_DEGREE = 24

#: u = 0 leads Newton to the lower solution; then, deflated, the bump to the upper one.
GUESSES = (sine_mode(1, 1, 0.0), sine_mode(1, 1, 2.0))


@lru_cache(maxsize=16)
def bratu2d_solutions(lam: float) -> tuple[ChebyshevSeries2D, ...]:
    """The lower and the upper solution at λ (REFERENCE_MIN_LAMBDA ≤ λ ≤ REFERENCE_MAX_LAMBDA)."""

    def source(u: np.ndarray) -> np.ndarray:
        return lam * np.exp(u)

    found = solve_semilinear(Semilinear(1.0, source, source), GUESSES, DEGREE, SEARCH_DEGREE)
    if len(found) != 2:
        raise RuntimeError(f"bratu2d: found {len(found)} solutions at λ = {lam:g}, expected 2")
    return tuple(sorted(found, key=centre_value))


def centre_value(u: ChebyshevSeries2D) -> float:
    """u(½, ½), where the solutions peak: lower below upper."""
    return float(np.polynomial.chebyshev.chebval2d(0.0, 0.0, u.coef))


@register("bratu2d")
class Bratu2D(Problem):
    """Δu + λ eᵘ = 0 on the unit square, u = 0 on the boundary: two solutions for 0 < λ < 6.80812.

    At the default λ = 6 the lower solution peaks at u(½, ½) ≈ 0.7971, the upper at ≈ 2.2399.
    Reference solutions are given for 1 ≤ λ ≤ 6.8 (Chebyshev collocation, see the module).
    """

    domain = Rectangle((0.0, 1.0), (0.0, 1.0))
    fields = ("u",)
    params = {
        "lam": Param(
            6.0, "Bratu parameter λ (two solutions for 0 < λ < λc ≈ 6.80812, none above)", min=0.0
        )
    }

    def residual(self, x, f, p):
        return f.lap("u") + p.lam * torch.exp(f.u)

    def terms(self, x, f, p):
        return f.lap("u"), p.lam * torch.exp(f.u)

    def conditions(self, p):
        return [Dirichlet("boundary", 0.0)]

    def exact(self, x: Coords, p: Params) -> list[Tensor] | None:
        """The lower then the upper solution (None outside [REFERENCE_MIN_LAMBDA,
        REFERENCE_MAX_LAMBDA])."""
        if not REFERENCE_MIN_LAMBDA <= p.lam <= REFERENCE_MAX_LAMBDA:
            return None
        return [u(x.x, x.y) for u in bratu2d_solutions(p.lam)]
