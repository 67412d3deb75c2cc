"""Bifurcations: the critical mode of the linearized problem against elastica's closed-form
spectrum, the detection rule, a path that meets a bifurcation, and continuation switching onto
the branch that leaves there."""

import json
import math

import numpy as np
import pytest
import torch

from pinnsolve import solve
from pinnsolve.ansatz import build_mlp
from pinnsolve.build import build_constraints
from pinnsolve.explore.bifurcation import (
    bifurcation_between,
    critical_mode,
    has_square_linearization,
)
from pinnsolve.explore.continuation import ParameterPath, PathSettings, parameter_value
from pinnsolve.io.config import Config
from pinnsolve.objective import PinnObjective
from pinnsolve.optim.gauss_newton import LevenbergMarquardt, StackedResiduals
from pinnsolve.problem.base import Problem
from pinnsolve.problem.conditions import Dirichlet
from pinnsolve.problem.geometry import Interval
from pinnsolve.problem.params import Param
from pinnsolve.problem.pdes.elastica import Elastica1D
from pinnsolve.train import Trainer

F64 = torch.float64


@pytest.fixture(scope="module")
def trivial():
    """A 2×32 network solving elastica's u'' + λ sin u = 0, u(0) = u(1) = 0 with u ≈ 0 (the
    trivial branch, a solution for every λ), by Levenberg–Marquardt from its initialization."""
    problem = Elastica1D(lam=60.0)
    objective = PinnObjective.sampled(problem, 128, 1, "uniform", 0, F64, "cpu")
    constraints = build_constraints(Config(), objective, F64, "cpu")
    model = build_mlp(1, 1, [32, 32], "tanh", "xavier_normal", problem.geometry().bounds(), 0,
                      F64, "cpu")  # fmt: skip
    stacked = StackedResiduals(objective, constraints, model)
    lm = LevenbergMarquardt(list(model.parameters()), lambda: stacked.residual()[0],
                            stacked.jacobian, 1e-3)  # fmt: skip
    for _ in range(60):
        lm.step()
    with torch.no_grad():
        assert float(model(objective.interior).abs().max()) < 1e-6
    return problem, objective, stacked


@pytest.mark.parametrize("lam", [60.0, 40.0, 30.0, 10.5])
def test_the_critical_mode_is_the_eigenvalue_of_u_xx_plus_lambda_closest_to_zero(trivial, lam):
    # on u = 0 the linearized operator is w'' + λ w with w(0) = w(1) = 0: eigenvalues λ − (kπ)²,
    # eigenfunctions sin(kπx)
    problem, objective, stacked = trivial
    with parameter_value(problem, "lam", lam):
        mode = critical_mode(stacked)
    eigenvalues = [lam - (k * math.pi) ** 2 for k in range(1, 6)]
    k = int(np.argmin(np.abs(eigenvalues))) + 1
    assert mode.value == pytest.approx(eigenvalues[k - 1], abs=0.05)
    x = objective.interior.reshape(-1)
    expected = torch.sin(k * math.pi * x)
    overlap = float(mode.fields @ expected) / float(mode.fields.norm() * expected.norm())
    assert abs(overlap) > 0.99
    assert float(mode.fields.square().mean()) == pytest.approx(1.0, rel=1e-12)
    # the parameter direction moves the fields along the eigenfunction (it is chosen to within
    # 1%, to first order)
    model = stacked.model
    params = {n: p.detach() for n, p in model.named_parameters()}
    jac = torch.func.jacrev(
        lambda q: torch.func.functional_call(model, q, (objective.interior,)).reshape(-1)
    )(params)
    tangent = torch.cat([jac[n].flatten(start_dim=1) for n in params], dim=1) @ mode.direction
    assert float((tangent - mode.fields).norm() / mode.fields.norm()) < 0.02


class Coupled(Problem):
    """u'' + λ v = 0, v'' + λ u = 0 on (0, 1), u = v = 0 at both ends: linear, so its
    linearization is itself, with eigenvalues −(kπ)² ± λ (eigenfunctions sin(kπx)·(1, ±1))."""

    domain = Interval(0, 1)
    fields = ("u", "v")
    params = {"lam": Param(5.0, "coupling")}

    def residual(self, x, f, p):
        return f.d("u", "x", "x") + p.lam * f.v, f.d("v", "x", "x") + p.lam * f.u

    def conditions(self, p):
        return [
            Dirichlet("boundary", 0.0, field="u", name="u_ends"),
            Dirichlet("boundary", 0.0, field="v", name="v_ends"),
        ]


class Underdetermined(Coupled):
    """One equation for two fields: no square linearization."""

    def residual(self, x, f, p):
        return f.d("u", "x", "x") + p.lam * f.v


def _residuals(problem):
    objective = PinnObjective.sampled(problem, 64, 1, "uniform", 0, F64, "cpu")
    constraints = build_constraints(Config(), objective, F64, "cpu")
    model = build_mlp(1, 2, [16, 16], "tanh", "xavier_normal", problem.geometry().bounds(), 0,
                      F64, "cpu")  # fmt: skip
    return StackedResiduals(objective, constraints, model)


def test_systems_have_a_critical_mode_when_square():
    stacked = _residuals(Coupled())
    assert has_square_linearization(stacked)
    mode = critical_mode(stacked)
    assert mode.value == pytest.approx(5.0 - math.pi**2, abs=0.1)
    u, v = mode.fields.reshape(2, -1)  # field by field
    assert float(u @ v) / float(u.norm() * v.norm()) == pytest.approx(1.0, abs=0.02)
    under = _residuals(Underdetermined())
    assert not has_square_linearization(under)
    assert critical_mode(under) is None


def _mode(value, fields):
    return value, torch.as_tensor(fields, dtype=F64)


def test_a_bifurcation_is_a_sign_change_of_one_eigenvalue_off_the_path_direction():
    x = torch.linspace(0, 1, 101, dtype=F64)[1:-1]
    one, two = math.sqrt(2) * torch.sin(math.pi * x), math.sqrt(2) * torch.sin(2 * math.pi * x)
    still = torch.zeros_like(x)
    # the eigenvalue went from 3 to −1 along a path that moved λ alone: a quarter before the end
    for sign in (1, -1):  # an eigenfunction's sign is arbitrary
        fraction = bifurcation_between(_mode(3.0, one), _mode(-1.0, sign * one), still, 0.5)
        assert fraction == pytest.approx(0.75)
    # no sign change
    assert bifurcation_between(_mode(3.0, one), _mode(1.0, one), still, 0.5) is None
    # another eigenvalue became the closest to zero: not a crossing
    assert bifurcation_between(_mode(3.0, one), _mode(-1.0, two), still, 0.5) is None
    # the path runs along the eigenfunction: a fold, not a bifurcation
    along = 0.1 * one / math.sqrt(x.numel())
    assert bifurcation_between(_mode(3.0, one), _mode(-1.0, one), along, 0.01) is None


def test_a_path_along_the_trivial_branch_meets_the_bifurcation_at_four_pi_squared(trivial):
    problem, objective, stacked = trivial
    settings = PathSettings("lam", 45.0, 30.0, 60.0, 0.05, 10, 1e-3, 1e-3, branch_switching=True)
    path = ParameterPath(stacked.model, lambda: stacked, problem, objective.interior, settings)
    with parameter_value(problem, "lam", 45.0):
        path.start(direction=-1)
        switches = []
        for _ in range(4):
            path.step()
            switches += path.take_switches()
            if switches:
                break
    assert path.last["note"].startswith("continuation: bifurcation at lam ≈ 39.4")
    at = switches[0]["at"]
    assert at == pytest.approx(4 * math.pi**2, abs=0.01)
    # one switch on either side of it, each at a path point of the trivial branch
    values = sorted(s["value"] for s in switches)
    assert len(switches) == 2 and values[0] < at < values[1]
    for s in switches:
        assert float(s["fields"].abs().max()) < 1e-5
        assert s["direction"].shape == s["theta"].shape and s["deflated"] == []
    assert path.take_switches() == []


ELASTICA = """
[problem]
name = "elastica1d"
[problem.params]
lam = 60.0
[model]
hidden = [32, 32]
[sampling]
interior = 128
[training]
steps = 500
lr = 3e-3
log_every = 50
[polish]
method = "lbfgs+gauss_newton"
steps = 500
[explore]
strategy = "continuation"
parameter = "lam"
attempts = 3
patience = 0
# what the continuation finds by itself (its images under u -> -u would add the other two-hump)
symmetries = false
[output]
plots = false
resolution = 101
"""


@pytest.fixture(scope="module")
def elastica_run(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("switch")
    (tmp / "elastica.toml").write_text(ELASTICA)
    return solve(tmp / "elastica.toml", out=tmp / "out")


def test_continuation_switches_onto_the_two_hump_branch_and_follows_it_back(elastica_run):
    # training lands on u = 0; the way up and the way down along it meet bifurcations (the
    # way down at 4π² and π²); the first switch, beside 4π², lands on a two-hump solution and
    # its path crosses λ = 60 there
    result = elastica_run
    assert result.status == "finished"
    found = sorted(round(float(np.abs(s.values["u"]).max()), 2) for s in result.solutions)
    assert found == [0.0, 1.75]
    for s in result.solutions:
        assert s.rel_l2_error <= 1e-4
    attempts = json.loads((result.run_dir / "summary.json").read_text())["explore"]["attempts"]
    assert [a["outcome"] for a in attempts][1:] == ["search did not converge"] * 2 + ["new"]
    assert attempts[3]["search_stop"].startswith("continuation: crossed lam = 60")
    phases = {r["phase"] for r in result.history}
    assert {"branch_switch", "branch_polish", "continuation"} <= phases


def test_a_run_stopped_inside_a_branch_switch_resumes_there(elastica_run, tmp_path, monkeypatch):
    original = Trainer.gauss_newton

    def stopping(self, residuals, *args, name="gauss_newton", **kwargs):
        if name == "branch_switch":  # ask to stop after 30 residual evaluations
            count, evaluate = [0], residuals.residual

            def counted(*a, **k):
                count[0] += 1
                self.stop_requested = self.stop_requested or count[0] == 30
                return evaluate(*a, **k)

            residuals.residual = counted
        return original(self, residuals, *args, name=name, **kwargs)

    f = tmp_path / "elastica.toml"
    f.write_text(ELASTICA)
    monkeypatch.setattr(Trainer, "gauss_newton", stopping)
    stopped = solve(f, out=tmp_path / "out")
    assert stopped.status == "interrupted"
    assert stopped.history[-1]["phase"] == "branch_switch"
    monkeypatch.setattr(Trainer, "gauss_newton", original)
    resumed = solve(f, out=tmp_path / "out", resume=True)
    assert resumed.status == "finished"
    assert len(resumed.solutions) == len(elastica_run.solutions) == 2
    # it went on inside the switch: as many of its steps as the uninterrupted run took
    switch_steps = [sum(r["phase"] == "branch_switch" for r in run.history)
                    for run in (resumed, elastica_run)]  # fmt: skip
    assert switch_steps[0] == switch_steps[1] > 30
    for a, b in zip(resumed.solutions, elastica_run.solutions, strict=True):
        np.testing.assert_allclose(a.values["u"], b.values["u"], rtol=0, atol=1e-8)
