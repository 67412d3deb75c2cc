"""Poisson's equation around a circular hole, with a closed form in r."""

import math

import torch

from ..base import Problem
from ..conditions import Dirichlet
from ..registry import register
from ..shapes import Annulus

#: u = 1 - r² + B ln r solves -Δu = 4 for any B; this B makes u = 0 on r = 1/2 and on r = 1
B = 3 / (4 * math.log(2))


def ring_solution(x, y):
    r2 = x * x + y * y
    return 1 - r2 + 0.5 * B * torch.log(r2)


@register("poisson_ring")
class PoissonRing(Problem):
    """-Δu = 4 on the annulus 1/2 < r < 1, u = exact on the boundary; exact 1 - r² + B ln r.

    B = 3 / (4 ln 2) makes u vanish on both circles. The closed form solves the equation on any
    domain that leaves out the centre, so a ``[domain]`` table (a plate with a hole, a mesh) keeps
    it as the reference, with u = the closed form on its boundary."""

    domain = Annulus((0.0, 0.0), inner=0.5, outer=1.0)
    fields = ("u",)

    def residual(self, x, f, p):
        return -f.lap("u") - 4.0

    def conditions(self, p):
        return [Dirichlet("boundary", lambda x, p: ring_solution(x.x, x.y))]

    def exact(self, x, p):
        return ring_solution(x.x, x.y)
