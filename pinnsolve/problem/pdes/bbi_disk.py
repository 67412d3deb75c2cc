"""A semilinear Dirichlet problem on the unit disk with two known radial solutions: the
manufactured u* = sin²(20 r²) and a second, strongly negative one that the forcing admits too.

Radial solutions u(r) = g(ρ) are functions of ρ = r², smooth at the centre; in ρ the Laplacian is
Δu = 4(ρ g')', so the radial equation u'' + u'/r = u² − f becomes 4(ρ g')' = g² − f(ρ). The second
solution is found by shooting on a = g(0), with g'(0) = (a² − f(0))/4 forced by regularity: a
two-term series carries g from 0 to ρ₀ = 10⁻⁶ past the singular point, DOP853 (tolerances 1e-13)
to ρ = 1, and brentq solves g(1; a) = sin²(20). It is stored as a Chebyshev series in ρ (torch,
differentiable) so that it is accurate to ~1e-11 at any point of the disk.
"""

from __future__ import annotations

import math
from functools import lru_cache
from types import ModuleType

import numpy as np
import torch
from scipy.integrate import solve_ivp
from scipy.optimize import brentq
from torch import Tensor

from ...derivatives.fields import Coords
from ..base import Problem
from ..conditions import Dirichlet
from ..geometry import Disk
from ..params import Params
from ..registry import register
from .chebyshev import ChebyshevSeries

#: The boundary value u*(1) = sin²(20).
BOUNDARY_VALUE = math.sin(20.0) ** 2

#: Values of u(0) whose shooting misses g(1) − sin²(20) differ in sign around the second solution.
SECOND_BRACKET = (-10.5, -10.0)

#: Where the series start hands over to the integrator (r = 10⁻³).
_RHO0 = 1e-6

#: df/dρ at ρ = 0: −3200 − 80·40 (the sin⁴ term is O(ρ⁴)).
_DF0 = -6400.0


def forcing(r2, lib: ModuleType = torch):
    """f = −Δu* + u*² for u* = sin²(20ρ), ρ = r²: with g = sin²(20ρ), g' = 20 sin 40ρ and
    g'' = 800 cos 40ρ, Δu* = 4(ρ g'' + g') = 3200 ρ cos 40ρ + 80 sin 40ρ. Written in ρ it is
    smooth at r = 0; ``lib`` is torch (residual) or numpy (shooting)."""
    w = 40 * r2
    return -3200 * r2 * lib.cos(w) - 80 * lib.sin(w) + lib.sin(w / 2) ** 4


def radial_profile(a: float, rho: np.ndarray) -> np.ndarray:
    """g(ρ) of the regular radial solution with g(0) = a, at the points ``rho`` in [0, 1].

    g = a + c₁ρ + c₂ρ² near 0 with 4c₁ = a² − f(0) and 16c₂ = 2ac₁ − f'(0) (matching powers of
    ρ in 4(ρg')' = g² − f); integrated from ρ₀ on."""
    c1 = (a * a - forcing(0.0, np)) / 4
    c2 = (2 * a * c1 - _DF0) / 16
    rho = np.asarray(rho, dtype=float)
    out = a + c1 * rho + c2 * rho**2
    far = rho > _RHO0
    order = np.argsort(rho[far])
    sol = solve_ivp(
        lambda q, y: [y[1], (y[0] ** 2 - forcing(q, np) - 4 * y[1]) / (4 * q)],
        (_RHO0, 1.0),
        [a + c1 * _RHO0 + c2 * _RHO0**2, c1 + 2 * c2 * _RHO0],
        method="DOP853",
        rtol=1e-13,
        atol=1e-13,
        t_eval=rho[far][order],
    )
    values = np.empty(order.size)
    values[order] = sol.y[0]
    out[far] = values
    return out


@lru_cache(maxsize=1)
def second_solution() -> tuple[float, ChebyshevSeries]:
    """u(0) of the second radial solution and its profile g(ρ) as a Chebyshev series in ρ."""
    a = brentq(
        lambda a: radial_profile(a, np.array([1.0]))[0] - BOUNDARY_VALUE,
        *SECOND_BRACKET,
        xtol=1e-13,
    )
    return a, ChebyshevSeries.interpolate(lambda rho: radial_profile(a, rho), tol=1e-12)


@register("bbi_disk")
class BBIDisk(Problem):
    """−Δu + u² = f(r) on the unit disk, u = sin²(20) on r = 1: two radial solutions known.

    f is manufactured from u* = sin²(20 r²), one exact solution; a second radial solution has
    u(0) ≈ −10.2258 (:func:`second_solution`, by shooting). The second solution oscillates
    (a dozen extrema along a radius, from −10.23 at the centre up to 0.83 at the rim), so export
    it on a fine mesh: a point spacing of at most 0.005, i.e. ``[output] resolution`` ≥ 400 (the
    disk's mesh has rings 2R / resolution apart).
    """

    domain = Disk()
    fields = ("u",)

    def residual(self, x, f, p):
        return -f.lap("u") + f.u**2 - forcing(x.x**2 + x.y**2)

    def terms(self, x, f, p):
        """The forcing reaches 3 200 near the rim: the residual is measured against it."""
        return f.lap("u"), f.u**2, forcing(x.x**2 + x.y**2)

    def conditions(self, p):
        return [Dirichlet("circle", BOUNDARY_VALUE)]

    def exact(self, x: Coords, p: Params) -> list[Tensor]:
        """[u*, the second solution] at the points, through ρ = x² + y²."""
        r2 = x.x**2 + x.y**2
        return [torch.sin(20 * r2) ** 2, second_solution()[1](r2)]
