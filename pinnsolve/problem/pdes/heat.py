"""The heat equation in one space dimension."""

import math

import torch

from ..base import Problem
from ..conditions import Dirichlet, Initial
from ..geometry import Interval, SpaceTime
from ..params import Param
from ..registry import register


@register("heat1d")
class Heat1D(Problem):
    """u_t = α u_xx on (0,1)×(0,1), u(0,t) = u(1,t) = 0, u(x,0) = sin πx; exact e^{-απ²t} sin πx."""

    domain = SpaceTime(Interval(0.0, 1.0), t=(0.0, 1.0))
    fields = ("u",)
    params = {"alpha": Param(1.0, "diffusivity α", min=0.0)}

    def residual(self, x, f, p):
        return f.d("u", "t") - p.alpha * f.d("u", "x", "x")

    def conditions(self, p):
        return [
            Dirichlet("boundary", 0.0),
            Initial(target=lambda x, p: torch.sin(math.pi * x.x)),
        ]

    def exact(self, x, p):
        return torch.exp(-p.alpha * math.pi**2 * x.t) * torch.sin(math.pi * x.x)
