"""An example of a user-defined PDE: a class in your own file, named from TOML as
``name = "my_pdes.py:CubicPoisson"`` (the path is relative to the TOML file)."""

import math

import torch

from pinnsolve import Dirichlet, Interval, Param, Problem


class CubicPoisson(Problem):
    """-u'' + κ u³ = f on (0,1), u = 0 at both ends, with f chosen so that u = sin πx."""

    domain = Interval(0.0, 1.0)
    fields = ("u",)
    params = {"kappa": Param(1.0, "strength κ of the cubic term", min=0.0)}

    def residual(self, x, f, p):
        s = torch.sin(math.pi * x.x)
        source = math.pi**2 * s + p.kappa * s**3
        return -f.d("u", "x", "x") + p.kappa * f.u**3 - source

    def conditions(self, p):
        return [Dirichlet("boundary", 0.0)]

    def exact(self, x, p):
        return torch.sin(math.pi * x.x)
