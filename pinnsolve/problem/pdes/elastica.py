"""The elastica (pendulum) boundary-value problem u'' + λ sin u = 0, u(0) = u(1) = 0: the trivial
solution and a pair ±u_k of k-hump solutions for every k with kπ < √λ (five solutions at λ = 60).

The reference solutions are closed-form: u'' + λ sin u = 0 is the pendulum equation with time x
and frequency √λ, and its solution through u(0) = 0 is u = 2 arcsin(√m sn(√λ x | m)), of half
period 2K(m)/√λ. Fitting k half periods into [0, 1] means K(m) = √λ / (2k), which has a root
m ∈ (0, 1) exactly when λ > (kπ)² (K ≥ K(0) = π/2). The amplitude is max |u| = 2 arcsin √m and the
initial slope u'(0) = 2√(mλ). Evaluated through m1 = 1 − m (see :func:`jacobi_amplitude`) this is
accurate to ~1e-14 (checked against mpmath at 50 digits and against shooting), also near the
separatrix (m → 1, large λ) where shooting on u'(0) is hopelessly ill-conditioned.

Each solution is stored as a Chebyshev series evaluated in torch, so that it can be evaluated
at any point in the input's dtype and on its device, and differentiated by autograd (a test
evaluates the problem's own residual on it).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import torch
from scipy.optimize import brentq
from scipy.special import ellipkm1
from torch import Tensor

from ...derivatives.fields import Coords
from ..base import Problem
from ..conditions import Dirichlet
from ..geometry import Interval
from ..params import Param, Params
from ..registry import register
from ..symmetry import Symmetry
from .chebyshev import ChebyshevSeries

#: Largest λ with reference solutions: the closed form's rounding noise grows with λ (~1e-13 at
#: λ = 3000) and beyond about 1500 keeps the Chebyshev fit from converging to 1e-14.
REFERENCE_MAX_LAMBDA = 1000.0


@dataclass(frozen=True, eq=False)
class ElasticaBranch:
    """One nontrivial solution: ``humps`` half periods, ``sign`` ±1 of the first hump."""

    humps: int
    sign: int
    slope: float  #: u'(0)
    amplitude: float  #: max |u|
    u: ChebyshevSeries


def jacobi_amplitude(tau: np.ndarray, m1: float) -> np.ndarray:
    """φ = am(τ | m) by the arithmetic-geometric mean (Abramowitz & Stegun 16.4), taking the
    complementary parameter m1 = 1 − m: it starts from b₀ = √m1, so the quarter period stays
    exact as m → 1, where scipy's ellipj (given m itself) loses all digits of m1 to rounding."""
    a, b, c = [1.0], [math.sqrt(m1)], [math.sqrt(1.0 - m1)]
    # c falls quadratically; near convergence rounding can keep a and b a few ulps apart for
    # ever, so stop at 1e-15, where the next step would change nothing
    while c[-1] > 1e-15 * a[-1]:
        a.append((a[-1] + b[-1]) / 2)
        b.append(math.sqrt(a[-2] * b[-1]))
        c.append((a[-2] - b[-2]) / 2)
    phi = 2 ** (len(a) - 1) * a[-1] * np.asarray(tau, dtype=float)
    for j in range(len(a) - 1, 0, -1):
        phi = (phi + np.arcsin(c[j] / a[j] * np.sin(phi))) / 2
    return phi


def elastica_m1(lam: float, humps: int) -> float:
    """1 − m for the k-hump solution: the root of K(m) = √λ / (2k) (needs λ > (kπ)²).

    Solved for log(1 − m) with ellipkm1(1 − m) = K(m): near the separatrix (large λ) 1 − m is
    exponentially small, and m itself would round to 1."""
    target = math.sqrt(lam) / (2 * humps)
    return math.exp(brentq(lambda q: ellipkm1(math.exp(q)) - target, -700.0, 0.0, xtol=1e-15))


def elastica_closed_form(x: np.ndarray, lam: float, m1: float) -> np.ndarray:
    """u = 2 arcsin(√m sn(√λ x | m)), written as 2 atan2(√m sin φ, dn) with φ = am(√λ x) and
    dn = hypot(cos φ, √m1 sin φ): both arguments are accurate in absolute terms, where arcsin
    and dn = √(1 − m sn²) would lose digits at the crests for m near 1."""
    phi = jacobi_amplitude(math.sqrt(lam) * np.asarray(x), m1)
    s = np.sin(phi)
    return 2 * np.arctan2(math.sqrt(1.0 - m1) * s, np.hypot(np.cos(phi), math.sqrt(m1) * s))


@lru_cache(maxsize=32)
def elastica_branches(lam: float) -> tuple[ElasticaBranch, ...]:
    """The nontrivial solutions at λ, by increasing number of humps, + before −."""
    branches = []
    humps = 1
    while humps * math.pi < math.sqrt(lam):
        m1 = elastica_m1(lam, humps)
        u = ChebyshevSeries.interpolate(lambda x, m1=m1: elastica_closed_form(x, lam, m1))
        slope = 2 * math.sqrt(lam * (1.0 - m1))
        amplitude = 2 * math.atan2(math.sqrt(1.0 - m1), math.sqrt(m1))  # 2 arcsin √m
        for sign in (1, -1):
            series = ChebyshevSeries(sign * u.coef, u.lo, u.hi)
            branches.append(ElasticaBranch(humps, sign, sign * slope, amplitude, series))
        humps += 1
    return tuple(branches)


@register("elastica1d")
class Elastica1D(Problem):
    """u'' + λ sin u = 0 on (0,1), u(0) = u(1) = 0: u = 0 and ±k-hump solutions for λ > (kπ)².

    At the default λ = 60 there are five: u = 0, ± one hump (max |u| ≈ 2.9742) and ± two humps
    (max |u| ≈ 1.7471). Reference solutions are given for λ ≤ 1000 (21 of them at λ = 1000).
    """

    domain = Interval(0.0, 1.0)
    fields = ("u",)
    params = {
        "lam": Param(60.0, "load λ (a ± pair of k-hump solutions for each λ > (kπ)²)", min=0.0)
    }

    def residual(self, x, f, p):
        return f.d("u", "x", "x") + p.lam * torch.sin(f.u)

    def conditions(self, p):
        return [Dirichlet("boundary", 0.0)]

    def symmetries(self, p):
        """sin is odd, and the interval is symmetric about x = ½."""
        return [
            Symmetry("u -> -u", fields={"u": -1.0}),
            Symmetry("x -> 1 - x", matrix=[[-1.0]], offset=[1.0]),
        ]

    def exact(self, x: Coords, p: Params) -> list[Tensor] | None:
        """Every solution at λ: the trivial one, then by increasing humps, + before − (None
        above :data:`REFERENCE_MAX_LAMBDA`)."""
        if p.lam > REFERENCE_MAX_LAMBDA:
            return None
        return [torch.zeros_like(x.x), *(b.u(x.x) for b in elastica_branches(p.lam))]
