"""Residual weights near a box's corners (``[sampling] corner_layer``): the distance to the
nearest corner or edge, the weights it gives, and that they reach the objective, the Gauss–Newton
residual vector and the reported residual RMS."""

import math

import numpy as np
import pytest
import torch

from pinnsolve import Box, Dirichlet, Disk, Interval, Problem, Rectangle
from pinnsolve.build import build_constraints
from pinnsolve.io.config import Config
from pinnsolve.objective import PinnObjective
from pinnsolve.optim.gauss_newton import StackedResiduals

F64 = torch.float64


def test_corner_distance_of_a_rectangle_is_to_the_nearest_corner():
    rect = Rectangle((0.0, 2.0), (0.0, 1.0))
    points = torch.tensor([[0.1, 0.1], [1.0, 0.5], [1.9, 0.95], [0.0, 0.5]], dtype=F64)
    expected = [math.hypot(0.1, 0.1), math.hypot(1.0, 0.5), math.hypot(0.1, 0.05), 0.5]
    assert rect.corner_distance(points).tolist() == pytest.approx(expected, abs=1e-15)


def test_corner_distance_of_a_box_is_to_the_nearest_edge():
    box = Box([0, 0, 0], [1, 1, 1])
    # near the edge x = 0, y = 0 (any z), far from the others
    points = torch.tensor([[0.1, 0.2, 0.5], [0.5, 0.5, 0.5]], dtype=F64)
    assert box.corner_distance(points).tolist() == pytest.approx(
        [math.hypot(0.1, 0.2), math.hypot(0.5, 0.5)], abs=1e-15
    )


def test_smooth_or_one_dimensional_domains_have_no_corners():
    points = torch.zeros(3, 2, dtype=F64)
    assert Disk().corner_distance(points) is None
    assert Interval(0.0, 1.0).corner_distance(torch.zeros(3, 1, dtype=F64)) is None


class Constant(Problem):
    """Δu + 1 = 0 on the unit square: a residual of 1 everywhere at u = 0."""

    domain = Rectangle((0.0, 1.0), (0.0, 1.0))
    fields = ("u",)

    def residual(self, x, f, p):
        return f.lap("u") + 1.0

    def conditions(self, p):
        return [Dirichlet("boundary", 0.0)]


class Zero(torch.nn.Module):
    """u = 0 (a network with no parameters would break the Gauss–Newton probe: one unused)."""

    def __init__(self):
        super().__init__()
        self.w = torch.nn.Parameter(torch.zeros(1, dtype=F64))

    def forward(self, x):
        return 0.0 * self.w * x[:, :1]


@pytest.mark.parametrize("layer", [0.0, 0.2])
def test_the_weights_reach_the_objective(layer):
    points = torch.tensor([[0.5, 0.5], [0.05, 0.0], [0.1, 0.1]], dtype=F64)
    objective = PinnObjective(Constant(), points, [], corner_layer=layer)
    ev = objective.evaluate(Zero())
    w = np.array([1.0, 0.05 / 0.2, math.hypot(0.1, 0.1) / 0.2]) if layer else np.ones(3)
    assert ev.residuals[0].detach().numpy() == pytest.approx(w, abs=1e-14)
    assert float(ev.objective) == pytest.approx(float(np.mean(w**2)), abs=1e-14)
    # the raw residual is unchanged: the weights are a measure, not a new equation
    assert objective.residuals_at(Zero(), points)[0].detach().numpy() == pytest.approx(1.0)


def test_the_weights_reach_the_gauss_newton_rows_and_its_precision_copy():
    from pinnsolve.ansatz import build_mlp

    objective = PinnObjective.sampled(Constant(), 64, 8, "sobol", 0, F64, "cpu",
                                      corner_layer=0.25)  # fmt: skip
    model = build_mlp(2, 1, [4], "tanh", "xavier_normal", Constant().geometry().bounds(), 0,
                      F64, "cpu")  # fmt: skip
    constraints = build_constraints(Config(), objective, F64, "cpu")
    r, ev = StackedResiduals(objective, constraints, model).residual()
    w = objective.weights(objective.interior)
    assert (w < 1).any() and (w > 0).all()
    raw = objective.residuals_at(model, objective.interior)[0].detach()
    assert r[:64].detach() == pytest.approx((w * raw / 8.0).numpy(), abs=1e-13)
    assert objective.to(torch.float32).corner_layer == 0.25


class Scaled(Constant):
    """Δu + c = 0: the same residual at any scale c, with its terms declared."""

    c = 1.0

    def residual(self, x, f, p):
        return f.lap("u") + self.c

    def terms(self, x, f, p):
        return f.lap("u"), self.c * torch.ones_like(f.u)


@pytest.mark.parametrize(("c", "measured"), [(1000.0, 1.0), (4.0, 1.0), (0.5, 0.5), (1e-9, 1e-9)])
def test_a_problem_with_terms_is_measured_relative_to_its_largest_term(c, measured):
    """At u = 0 the residual is c everywhere and the largest term is c: measured 1 whatever c
    above 1, absolutely below (where every term may vanish, as at a trivial solution); without
    terms the measure is the RMS itself."""
    points = torch.tensor([[0.5, 0.5], [0.3, 0.6]], dtype=F64)
    problem = Scaled()
    problem.c = c
    ev = PinnObjective(problem, points, []).evaluate(Zero())
    assert ev.residual_rms() == pytest.approx(c)
    assert ev.measured_residual() == pytest.approx(measured)
    plain = PinnObjective(Constant(), points, []).evaluate(Zero())
    assert plain.scale is None and plain.measured_residual() == pytest.approx(1.0)
