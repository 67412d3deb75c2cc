"""Laplace's equation on the L-shape, whose re-entrant corner makes the solution singular."""

import math

import torch

from ..base import Problem
from ..conditions import Dirichlet
from ..registry import register
from ..shapes import Polygon

#: (-1, 1)² without the quadrant x > 0, y < 0; the two edges at the corner (0, 0) form `notch`
L_SHAPE = Polygon(
    [(0.0, 0.0), (1.0, 0.0), (1.0, 1.0), (-1.0, 1.0), (-1.0, -1.0), (0.0, -1.0)],
    ["notch", "outer", "outer", "outer", "outer", "notch"],
)


def corner_solution(x, y):
    """r^(2/3) sin(2θ/3) with θ in [0, 3π/2] measured from the edge y = 0, x > 0: harmonic, zero
    on both edges of the notch, and its gradient grows like r^(-1/3) at the corner."""
    theta = torch.remainder(torch.atan2(y, x), 2 * math.pi)
    return torch.hypot(x, y) ** (2 / 3) * torch.sin(2 * theta / 3)


@register("laplace_lshape")
class LaplaceLShape(Problem):
    """-Δu = 0 on the L-shape (-1,1)² minus [0,1]×[-1,0], u = r^(2/3) sin(2θ/3) on the boundary."""

    domain = L_SHAPE
    fields = ("u",)

    def residual(self, x, f, p):
        return -f.lap("u")

    def conditions(self, p):
        return [Dirichlet("boundary", lambda x, p: corner_solution(x.x, x.y))]

    def exact(self, x, p):
        return corner_solution(x.x, x.y)
