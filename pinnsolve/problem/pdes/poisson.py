"""Poisson's equation with a manufactured solution."""

import math

import torch

from ..base import Problem
from ..conditions import Dirichlet
from ..geometry import Rectangle
from ..registry import register


@register("poisson2d")
class Poisson2D(Problem):
    """-Δu = 2π² sin(πx) sin(πy) on the unit square, u = 0 on the boundary; exact sin·sin."""

    domain = Rectangle((0.0, 1.0), (0.0, 1.0))
    fields = ("u",)

    def residual(self, x, f, p):
        source = 2 * math.pi**2 * torch.sin(math.pi * x.x) * torch.sin(math.pi * x.y)
        return -f.lap("u") - source

    def conditions(self, p):
        return [Dirichlet("boundary", 0.0)]

    def exact(self, x, p):
        return torch.sin(math.pi * x.x) * torch.sin(math.pi * x.y)
