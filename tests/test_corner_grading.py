"""Collocation points graded toward the corners (``[sampling] corner_share``): where they lie, how
densely, how a domain's corners share them, and that the objective and the run take them."""

import numpy as np
import pytest
import torch

from pinnsolve import Dirichlet, Disk, Integral, Problem, Rectangle
from pinnsolve.objective import PinnObjective
from pinnsolve.problem.graded import CornerGrading, corner_samples
from pinnsolve.problem.pdes.lshape import L_SHAPE

F64 = torch.float64


def test_graded_points_lie_inside_and_near_a_corner():
    points = corner_samples(L_SHAPE, 3000, CornerGrading(0.3, 0.2, 1.0), "sobol", 0)
    assert points.shape == (3000, 2)
    assert L_SHAPE.contains(points).all()
    d = np.linalg.norm(points[:, None] - L_SHAPE.corners()[None], axis=2).min(axis=1)
    assert (d <= 0.2).all() and (d > 0).all()


@pytest.mark.parametrize("a", [0.0, 1.0, 1.5])
def test_the_density_falls_off_as_the_distance_to_the_power_minus_a(a):
    # P(d <= R/2) = (1/2)^(2 - a): 1/4 for even points, 1/2 for a = 1
    points = corner_samples(L_SHAPE, 4000, CornerGrading(0.3, 0.2, a), "sobol", 1)
    d = np.linalg.norm(points[:, None] - L_SHAPE.corners()[None], axis=2).min(axis=1)
    assert np.mean(d <= 0.1) == pytest.approx(0.5 ** (2 - a), abs=0.02)


def test_each_corner_gets_points_in_proportion_to_its_interior_angle():
    points = corner_samples(L_SHAPE, 8000, CornerGrading(0.3, 0.2, 1.0), "sobol", 2)
    near = np.linalg.norm(points[:, None] - L_SHAPE.corners()[None], axis=2).argmin(axis=1)
    counts = np.bincount(near, minlength=len(L_SHAPE.corners()))
    reentrant = int(np.argmin(np.linalg.norm(L_SHAPE.corners(), axis=1)))  # (0, 0), 270°
    assert counts[reentrant] / len(points) == pytest.approx(3 / 8, abs=0.02)  # 3 of 5 · 1 + 3


def test_samples_are_reproducible_and_domains_without_corners_get_none():
    g = CornerGrading(0.25)
    assert np.array_equal(corner_samples(L_SHAPE, 50, g, "halton", 4),
                          corner_samples(L_SHAPE, 50, g, "halton", 4))  # fmt: skip
    assert g.count(1000, L_SHAPE) == 250 and g.count(1000, Disk()) == 0
    with pytest.raises(ValueError, match="no corners"):
        corner_samples(Disk(), 10, g, "sobol", 0)


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"share": 1.0}, "share"), ({"radius": 0.0}, "radius"), ({"grading": 2.0}, "grading"),
])  # fmt: skip
def test_settings_out_of_range_are_refused(kwargs, message):
    with pytest.raises(ValueError, match=message):
        CornerGrading(**kwargs)


class Mean(Problem):
    """Δu = 0 on the unit square with a mean value: an integral condition on the interior."""

    domain = Rectangle((0.0, 1.0), (0.0, 1.0))
    fields = ("u",)

    def residual(self, x, f, p):
        return f.lap("u")

    def conditions(self, p):
        return [Dirichlet("xmin", 0.0), Integral(target=1.0)]


def test_the_objective_holds_the_graded_points_and_integrals_keep_the_even_ones():
    grading = CornerGrading(0.25, 0.1, 1.0)
    objective = PinnObjective.sampled(Mean(), 400, 8, "sobol", 0, F64, "cpu", grading=grading)
    even = Mean().geometry().sample_interior(300, "sobol", 0)
    interior = objective.interior.numpy()
    assert interior.shape == (400, 2)
    assert np.array_equal(interior[:300], even)  # the even points are the ungraded set's first
    d = Mean().geometry().corner_distance(objective.interior[300:])
    assert (d <= 0.1).all()
    (integral,) = [c for c in objective.conditions if c.label.startswith("integral")]
    assert np.array_equal(integral.points.numpy(), even)


def test_a_run_draws_the_graded_points_from_the_sampling_section():
    from pinnsolve.build import validate
    from pinnsolve.io.config import from_dict
    from pinnsolve.io.progress import Progress
    from pinnsolve.parallel.distributed import SINGLE
    from pinnsolve.run import Run

    sampling = {"interior": 200, "boundary": 8, "corner_share": 0.5, "corner_radius": 0.1}
    config = from_dict({"problem": {"name": "laplace_lshape"}, "model": {"hidden": [4]},
                        "sampling": sampling})  # fmt: skip
    problem, extra = validate(config)
    run = Run(problem, extra, config, torch.device("cpu"), F64, None, Progress(quiet=True), SINGLE)
    interior = run.objective.interior
    assert len(interior) == 200
    assert int((problem.geometry().corner_distance(interior) <= 0.1).sum()) >= 100
