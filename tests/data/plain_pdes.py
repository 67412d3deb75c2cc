"""Problems without conditions of their own: the tests add every condition from TOML."""

import math

import torch

from pinnsolve import Interval, Problem, SpaceTime


class Helmholtz(Problem):
    """u'' − u = 0 on (0, 1)."""

    domain = Interval(0.0, 1.0)

    def residual(self, x, f, p):
        return f.d("u", "x", "x") - f.u

    def exact(self, x, p):
        return torch.exp(x.x)


class PeriodicPoisson(Problem):
    """−u'' = 4π² sin(2πx) on (0, 1): periodic, unique up to a constant."""

    domain = Interval(0.0, 1.0)

    def residual(self, x, f, p):
        return -f.d("u", "x", "x") - 4 * math.pi**2 * torch.sin(2 * math.pi * x.x)

    def exact(self, x, p):
        return torch.sin(2 * math.pi * x.x)


class Wave(Problem):
    """u_tt = u_xx on (0, 1) × (0, 0.5)."""

    domain = SpaceTime(Interval(0.0, 1.0), t=(0.0, 0.5))

    def residual(self, x, f, p):
        return f.d("u", "t", "t") - f.d("u", "x", "x")

    def exact(self, x, p):
        return torch.sin(math.pi * x.x) * torch.cos(math.pi * x.t)


class Projection(Problem):
    """u = sin 2πx pointwise (an algebraic 'PDE'), for the obstacle u ≥ 0."""

    domain = Interval(0.0, 1.0)

    def residual(self, x, f, p):
        return f.u - torch.sin(2 * math.pi * x.x)
