"""Pseudo-arclength continuation: the corrector's equations and Jacobian, resumable paths, the
`continuation` strategy finding bratu1d's upper branch around the fold, and its config errors."""

import copy
import json
import math

import pytest
import torch
from bratu_case import BRATU, F64, bratu_setup
from torch.nn.utils import parameters_to_vector, vector_to_parameters

from pinnsolve import solve
from pinnsolve.errors import ConfigError
from pinnsolve.explore.continuation import (
    ArclengthSystem,
    ParameterPath,
    PathSettings,
    parameter_value,
)
from pinnsolve.optim.gauss_newton import StackedResiduals
from pinnsolve.problem.pdes.bratu import LAMBDA_CRITICAL

SETTINGS = PathSettings("lam", 1.0, 0.0, 11.0, 0.05, 10, 1e-3, 1e-3)


def continuation_toml(extra: str) -> str:
    """The explorer tests' bratu file with the continuation strategy and ``extra`` keys."""
    text = BRATU.format(strategy="continuation", attempts=4)
    return text.replace("patience = 2", f"patience = 2\n{extra}")


def test_parameter_value_is_seen_by_the_residual_and_restored():
    objective, constraints, model = bratu_setup()
    problem = objective.problem
    stacked = StackedResiduals(objective, constraints, model)
    with torch.no_grad():
        r1 = stacked.residual()[0]
        with parameter_value(problem, "lam", 2.0):
            assert problem.p.lam == 2.0
            r2 = stacked.residual()[0]
        assert problem.p.lam == 1.0
    n = objective.interior.shape[0]
    # R's equation part is (u'' + λ eᵘ)/√N: it moved by exactly eᵘ/√N
    eu = torch.exp(model(objective.interior)).reshape(-1) / math.sqrt(n)
    torch.testing.assert_close(r2[:n] - r1[:n], eu, rtol=1e-12, atol=1e-14)
    torch.testing.assert_close(r2[n:], r1[n:], rtol=0, atol=0)


def test_arclength_jacobian_matches_central_differences():
    objective, constraints, model = bratu_setup()
    points = objective.interior
    stacked = StackedResiduals(objective, constraints, model)

    def z():
        return model(points).reshape(-1) / math.sqrt(points.shape[0])

    gen = torch.Generator().manual_seed(0)
    with torch.no_grad():
        path = {"z": z() + 0.01, "value": 0.9, "length": 0.7,
                "d_z": torch.randn(points.shape[0], generator=gen, dtype=F64) * 0.1,
                "d_value": 0.3}  # fmt: skip
    system = ArclengthSystem(stacked, objective.problem, SETTINGS, z, path, 0.05, 1.1)
    params = list(model.parameters())
    unknowns = [*params, system.value]
    x0 = parameters_to_vector(unknowns).detach().clone()
    got = system.jacobian()

    def f(x):
        vector_to_parameters(x, unknowns)
        with torch.no_grad():
            return system.residual()

    h = 1e-6
    columns = []
    for i in range(x0.numel()):
        e = torch.zeros_like(x0)
        e[i] = h
        columns.append((f(x0 + e) - f(x0 - e)) / (2 * h))
    vector_to_parameters(x0, unknowns)
    expected = torch.stack(columns, dim=1)
    assert got.shape == expected.shape == (stacked.residual()[0].numel() + 1, x0.numel())
    torch.testing.assert_close(got, expected, rtol=0, atol=1e-6 * float(expected.abs().max()))


def _trained_bratu():
    """A small network polished onto the lower bratu branch at λ = 1."""
    from pinnsolve.train import StopRule, Tolerances, Trainer

    objective, constraints, model = bratu_setup()
    stacked = StackedResiduals(objective, constraints, model)

    def loss_fn():
        ev = objective.evaluate(model)
        return constraints.lagrangian(ev.objective, ev.g), ev

    trainer = Trainer(model, loss_fn, outer_step=constraints.method_of_multipliers_step)
    trainer.gauss_newton(stacked, StopRule(200), Tolerances(1e-9, 1e-9))
    return objective, constraints, model, trainer


def test_a_path_is_resumed_exactly_from_its_state_dict():
    objective, constraints, model, trainer = _trained_bratu()

    def make():
        return ParameterPath(model, lambda: StackedResiduals(objective, constraints, model),
                             objective.problem, objective.interior, SETTINGS)  # fmt: skip

    path = make()
    path.start(direction=1)
    for _ in range(3):
        path.step()
    saved, model_saved = copy.deepcopy(path.state_dict()), copy.deepcopy(model.state_dict())
    path.step()
    path.step()
    straight = (path.state["path"]["value"], parameters_to_vector(model.parameters()).clone())
    model.load_state_dict(model_saved)
    resumed = make()
    resumed.load_state_dict(saved)
    resumed.step()
    resumed.step()
    assert resumed.state["path"]["value"] == pytest.approx(straight[0], abs=1e-12)
    torch.testing.assert_close(parameters_to_vector(model.parameters()), straight[1])
    # the first steps move λ up, and every path point solves the problem at its λ
    assert straight[0] > 1.0
    assert resumed.last["event"] is None
    assert objective.problem.p.lam == 1.0  # restored after every evaluation


def test_a_lost_path_offers_a_switch_at_its_last_point_but_one():
    """Where a path is lost (at a fold, most likely) the switch starts from the point before the
    last, heading along the last secant with the fields moving by one unit of RMS per unit."""
    objective, constraints, model, _ = _trained_bratu()
    path = ParameterPath(model, lambda: StackedResiduals(objective, constraints, model),
                         objective.problem, objective.interior, SETTINGS)  # fmt: skip
    path.start(direction=1)
    assert path.switch_at_end() is None  # no step yet: no secant to follow
    path.step()
    first = (parameters_to_vector(model.parameters()).clone(), path.state["path"]["value"])
    with torch.no_grad():
        fields = model(objective.interior).clone()
    path.step()
    last = parameters_to_vector(model.parameters()).clone()
    switch = path.switch_at_end()
    torch.testing.assert_close(switch["theta"], first[0], rtol=0, atol=1e-14)
    assert switch["value"] == pytest.approx(first[1], abs=1e-14)
    assert switch["at"] == path.state["path"]["value"] > switch["value"]
    torch.testing.assert_close(switch["fields"], fields, rtol=0, atol=1e-14)
    torch.testing.assert_close(parameters_to_vector(model.parameters()), last)  # left as it was
    vector_to_parameters(first[0] + 1e-4 * switch["direction"], model.parameters())
    with torch.no_grad():
        moved = model(objective.interior) - fields
    rms = float(moved.square().mean().sqrt())
    assert rms == pytest.approx(1e-4, rel=0.05)  # one unit of fields' RMS per unit of direction
    assert switch["deflated"] == [] and not path.lost


@pytest.fixture(scope="module")
def continuation_run(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("continuation")
    f = tmp / "bratu.toml"
    f.write_text(continuation_toml('parameter = "lam"\npath_steps = 60'))
    return solve(f, out=tmp / "out")


def test_continuation_finds_the_upper_bratu_branch_around_the_fold(continuation_run):
    result = continuation_run
    assert result.status == "finished"
    assert sorted(s.exact_branch for s in result.solutions) == [0, 1]
    for s in result.solutions:
        assert s.rel_l2_error <= 1e-4
        assert s.max_infeasibility <= 1e-6
    summary = json.loads((result.run_dir / "summary.json").read_text())
    attempts = summary["explore"]["attempts"]
    crossing = next(a for a in attempts if a["outcome"] == "new" and a["attempt"] > 0)
    assert crossing["search_stop"].startswith("continuation: crossed lam = 1")
    # the path went around the fold: its largest λ is just below the critical value
    rows = [r for r in result.history if r["phase"] == "continuation"]
    top = max(r["continuation_param"] for r in rows)
    assert 3.3 < top < LAMBDA_CRITICAL
    # the critical eigenvalue crosses zero at the fold, which is not taken for a bifurcation
    assert "branch_switch" not in {r["phase"] for r in result.history}


def test_a_path_lost_before_the_fold_switches_and_comes_back_on_the_upper_branch(
    tmp_path, monkeypatch
):
    """A path that no corrector takes beyond λ = 2.5 (as if the fold were there) is lost; the
    switch from its last point but one finds the upper branch beside it, and the path from there
    brings it back to λ = 1."""
    original = ParameterPath._try

    def blocked(self, stacked, path, ds):
        corrected = original(self, stacked, path, ds)
        return None if corrected is not None and corrected[1] > 2.5 else corrected

    monkeypatch.setattr(ParameterPath, "_try", blocked)
    f = tmp_path / "bratu.toml"
    text = continuation_toml('parameter = "lam"\npath_steps = 60\nbranch_switching = false')
    f.write_text(text.replace("patience = 2", "patience = 3"))
    result = solve(f, out=tmp_path / "out")
    assert sorted(s.exact_branch for s in result.solutions) == [0, 1]
    upper = next(s for s in result.solutions if s.exact_branch == 1)
    assert upper.rel_l2_error <= 1e-4
    attempts = json.loads((result.run_dir / "summary.json").read_text())["explore"]["attempts"]
    # up: lost; down from the first solution: out of the range; the switch and its path: the
    # upper branch; the switch again, deflating both: nothing
    assert attempts[1]["search_stop"].startswith("continuation: lost")
    assert attempts[3]["outcome"] == "new"
    assert attempts[3]["search_stop"].startswith("continuation: crossed lam = 1")
    assert "branch_switch" in {r["phase"] for r in result.history}


def test_continuation_needs_a_declared_parameter(tmp_path):
    f = tmp_path / "bratu.toml"
    for extra, message in (("", "it is not set"), ('parameter = "lamb"', "did you mean 'lam'")):
        f.write_text(continuation_toml(extra))
        with pytest.raises(ConfigError, match=r"\[explore\] parameter") as err:
            solve(f, out=tmp_path / "out")
        assert message in str(err.value)
