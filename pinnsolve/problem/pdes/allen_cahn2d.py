"""The steady Allen–Cahn equation on the unit square, ε²Δu + u − u³ = 0 with u = 0 on the
boundary: u = 0, and a branch of solutions for each mode (m, k) of the Laplacian with
ε²π²(m² + k²) < 1, plus mixed ones where two modes share an eigenvalue.

At the default ε = 0.12 the modes (1, 1), (1, 2) and (2, 1) have left u = 0 ((2, 2) would need
ε < 1/(π√8) ≈ 0.1125), and the reference finds 11 solutions; :meth:`AllenCahn2D.exact` lists
them by RMS over the square (then mean and first moments, see :func:`catalogue_key`):

- u = 0;
- ± the mixed (1, 2) + (2, 1) and ± the mixed (1, 2) − (2, 1) solutions, one nodal line along a
  diagonal (the double eigenvalue's other branches): RMS 0.346250, max |u| 0.695038;
- ± the (1, 2) and ± the (2, 1) solutions, one nodal line y = ½ or x = ½: RMS 0.375026,
  max |u| 0.682524;
- ± the (1, 1) solution, one sign throughout: RMS 0.641506, max |u| = |u(½, ½)| 0.974177

(max |u| on a 2001² grid).

They come from deflated Newton (:func:`~pinnsolve.problem.pdes.chebyshev.solve_semilinear`, on
a 25² grid, then polished on the reference's) from u = 0, from ±a·sin(mπx)·sin(kπy) for each
bifurcated mode, at the one-mode Galerkin amplitude a = (4/3)·√(1 − ε²π²(m² + k²)), and from
±(a/2)·(sin(mπx)·sin(kπy) ± sin(kπx)·sin(mπy)) for each pair of modes sharing an eigenvalue.
Single modes do not reach the mixed solutions, and fixed amplitudes miss the small solutions
near a bifurcation (343 guesses at amplitudes ±0.5 and ±1 found 5 of the 11 at ε = 0.14). With
the 11 deflated, a wider search from 378 guesses (sin products with m, k ≤ 3 at amplitudes ±0.2,
±0.5, ±1; the sums and differences of two of them, scaled to a peak of ±0.3 or ±0.8; cos
products with m, k ≤ 2 at ±0.5, ±1) found nothing more at ε = 0.113, 0.12, 0.13 and 0.14. The
guesses above find all 11 at every ε tried from 0.113 to 0.1423 (just before (1, 2) bifurcates),
3 from 0.143 to 0.225, and u = 0 alone beyond 1/(π√2) ≈ 0.2251. Below ε = 0.113 more modes and
their mixtures appear, which these guesses do not aim at: no reference there.

Accuracy: f(u) = u − u³ is odd and f(0) = 0, so a solution continues by odd reflection across
the edges to a solution on the whole plane, analytic: collocation converges spectrally. With
N = 40 (41² points), doubling N (a Newton–Krylov solve at N = 80) changes every solution by at
most 2.4e-10 in relative L2 on a 201² grid at ε = 0.12 (N = 32: 2.2e-8; N = 24: 2.1e-6), and the
residual of the series, through autograd, stays below 4e-7 anywhere inside the square (the
terms are O(1)).
"""

from __future__ import annotations

import math
from functools import lru_cache

import numpy as np
from numpy.polynomial import chebyshev, legendre
from torch import Tensor

from ...derivatives.fields import Coords
from ..base import Problem
from ..conditions import Dirichlet
from ..geometry import Rectangle
from ..params import Param, Params
from ..registry import register
from ..symmetry import Symmetry
from .chebyshev import ChebyshevSeries2D, Guess, Semilinear, sine_mode, solve_semilinear

#: The smallest ε with a reference: just above where the (2, 2) mode bifurcates.
REFERENCE_MIN_EPS = 0.113

#: Degree per direction of the reference series, and of the grid the solutions are searched on.
DEGREE = 40
SEARCH_DEGREE = 24


def growth(eps: float, m: int, k: int) -> float:
    """μ = 1 − ε²π²(m² + k²): the growth rate of the mode (m, k) at u = 0, positive once its
    branch has bifurcated."""
    return 1 - (eps * math.pi) ** 2 * (m * m + k * k)


def bifurcated_modes(eps: float) -> list[tuple[int, int]]:
    """The modes (m, k) with μ > 0 (m, k < 1/(επ))."""
    top = int(1 / (eps * math.pi)) + 1
    return [(m, k) for m in range(1, top + 1) for k in range(1, top + 1) if growth(eps, m, k) > 0]


def galerkin_amplitude(eps: float, m: int, k: int) -> float:
    """a in u ≈ a·φ, φ = sin(mπx)·sin(kπy): projecting the equation on the mode gives
    μ·∫φ² = a²·∫φ⁴, with ∫φ² = 1/4 and ∫φ⁴ = 9/64."""
    return 4 / 3 * math.sqrt(growth(eps, m, k))


def mode_pair(m: int, k: int, a: float, b: float) -> Guess:
    """a·sin(mπx)·sin(kπy) + b·sin(kπx)·sin(mπy)."""
    first, second = sine_mode(m, k, a), sine_mode(k, m, b)
    return lambda x, y: first(x, y) + second(x, y)


def allen_cahn_guesses(eps: float) -> list[Guess]:
    """u = 0, ± each bifurcated mode, ±(mode ± its transpose) for each pair sharing an
    eigenvalue (see the module docstring)."""
    modes = bifurcated_modes(eps)
    guesses = [sine_mode(1, 1, 0.0)]
    for m, k in modes:
        a = galerkin_amplitude(eps, m, k)
        guesses += [sine_mode(m, k, a), sine_mode(m, k, -a)]
    for m, k in modes:
        if m < k:
            a = galerkin_amplitude(eps, m, k) / 2
            guesses += [mode_pair(m, k, s * a, t * s * a) for t in (1, -1) for s in (1, -1)]
    return guesses


def catalogue_key(u: ChebyshevSeries2D) -> tuple[float, float, float, float]:
    """RMS, mean, ∫(x − ½)u and ∫(y − ½)u over the square, rounded to 6 digits: the explorer
    catalogue's order (RMS, then mean), with the first moments to order the solutions that tie
    on both (± a mode antisymmetric about a midline, a solution and its mirror image in x ↔ y).
    Gauss–Legendre with one more node than the degree integrates u² exactly."""
    t, w = legendre.leggauss(u.coef.shape[0] + 1)  # on [-1, 1], where t = 2x − 1
    values = chebyshev.chebgrid2d(t, t, u.coef)
    weights = np.outer(w, w) / 4
    moments = (
        math.sqrt(np.sum(weights * values**2)),
        np.sum(weights * values),
        np.sum(weights * values * t[:, None] / 2),
        np.sum(weights * values * t[None, :] / 2),
    )
    return tuple(round(float(v), 6) for v in moments)


@lru_cache(maxsize=16)
def allen_cahn_solutions(eps: float) -> tuple[ChebyshevSeries2D, ...]:
    """Every solution the guesses reach at ε (≥ REFERENCE_MIN_EPS), in :func:`catalogue_key`
    order."""

    def reaction(u: np.ndarray) -> np.ndarray:
        return u - u**3

    def slope(u: np.ndarray) -> np.ndarray:
        return 1 - 3 * u**2

    problem = Semilinear(eps**2, reaction, slope)
    found = solve_semilinear(problem, allen_cahn_guesses(eps), DEGREE, SEARCH_DEGREE)
    return tuple(sorted(found, key=catalogue_key))


@register("allen_cahn2d")
class AllenCahn2D(Problem):
    """ε²Δu + u − u³ = 0 on the unit square, u = 0 on the boundary: 11 solutions at ε = 0.12.

    u = 0, ± the (1, 1), (1, 2) and (2, 1) mode solutions and ± the mixed (1, 2) ± (2, 1) ones;
    reference solutions (Chebyshev collocation, see the module) are given for ε ≥ 0.113.
    """

    domain = Rectangle((0.0, 1.0), (0.0, 1.0))
    fields = ("u",)
    params = {
        "eps": Param(
            0.12, "interface width ε (mode (m, k) bifurcates from 0 below 1/(π√(m²+k²)))", min=0.0
        )
    }

    def residual(self, x, f, p):
        return p.eps**2 * f.lap("u") + f.u - f.u**3

    def terms(self, x, f, p):
        return p.eps**2 * f.lap("u"), f.u, f.u**3

    def conditions(self, p):
        return [Dirichlet("boundary", 0.0)]

    def symmetries(self, p):
        """u − u³ is odd and the square has the symmetries of its dihedral group (generated by
        the two mirror lines x = ½ and the diagonal; y = ½ is their product with it)."""
        return [
            Symmetry("u -> -u", fields={"u": -1.0}),
            Symmetry("x -> 1 - x", matrix=[[-1.0, 0.0], [0.0, 1.0]], offset=[1.0, 0.0]),
            Symmetry("x <-> y", matrix=[[0.0, 1.0], [1.0, 0.0]]),
        ]

    def exact(self, x: Coords, p: Params) -> list[Tensor] | None:
        """Every solution found, by RMS, mean and first moments (None below
        :data:`REFERENCE_MIN_EPS`)."""
        if p.eps < REFERENCE_MIN_EPS:
            return None
        return [u(x.x, x.y) for u in allen_cahn_solutions(p.eps)]
