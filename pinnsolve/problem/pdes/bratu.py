"""Bratu's problem: the classic nonlinear two-point problem with two solutions for 0 < λ < λc."""

import math

import torch
from scipy.optimize import brentq

from ..base import Problem
from ..conditions import Dirichlet
from ..geometry import Interval
from ..params import Param
from ..registry import register

#: The fold: two solutions for λ below it, one at it, none above.
LAMBDA_CRITICAL = 3.513830719125162


def bratu_thetas(lam: float) -> list[float]:
    """Roots θ of θ = √(2λ) cosh(θ/4), lower branch first (empty above the fold).

    The closed form is u(x) = −2 ln[cosh((x − ½)θ/2) / cosh(θ/4)]. F(θ) = θ − √(2λ) cosh(θ/4) is
    concave with its maximum at θ* = 4 asinh(4/√(2λ)); each side of θ* holds one root.
    """
    if lam <= 0:
        return [0.0] if lam == 0 else []
    a = math.sqrt(2 * lam)

    def F(t):
        return t - a * math.cosh(t / 4)

    peak = 4 * math.asinh(4 / a)
    if F(peak) < 0:
        return []
    if F(peak) == 0:
        return [peak]
    hi = peak
    while F(hi) > 0:
        hi *= 2
    return [brentq(F, 0.0, peak, xtol=1e-15), brentq(F, peak, hi, xtol=1e-15)]


@register("bratu1d")
class Bratu1D(Problem):
    """u'' + λ eᵘ = 0 on (0,1), u(0) = u(1) = 0: two solutions for 0 < λ < 3.5138 (closed form)."""

    domain = Interval(0.0, 1.0)
    fields = ("u",)
    params = {"lam": Param(1.0, "Bratu parameter λ (two solutions below 3.5138)", min=0.0)}

    def residual(self, x, f, p):
        return f.d("u", "x", "x") + p.lam * torch.exp(f.u)

    def conditions(self, p):
        return [Dirichlet("boundary", 0.0)]

    def exact(self, x, p):
        return [
            -2 * torch.log(torch.cosh((x.x - 0.5) * theta / 2) / math.cosh(theta / 4))
            for theta in bratu_thetas(p.lam)
        ]
