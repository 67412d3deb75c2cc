"""The explorer: deflation (factor, exact Jacobian), the catalogue, and several solutions of
bratu1d from one initialization."""

import json
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import torch
from bratu_case import BRATU, F64, bratu_setup

from pinnsolve import solve
from pinnsolve.ansatz import build_mlp
from pinnsolve.errors import ConfigError
from pinnsolve.explore.catalogue import Catalogue, Found
from pinnsolve.explore.deflation import DeflatedResiduals, Deflation, relative_distance
from pinnsolve.io.config import ExploreSection
from pinnsolve.io.results import exact_errors
from pinnsolve.optim.gauss_newton import StackedResiduals


def test_deflation_factor_is_the_product_formula():
    _, _, model = bratu_setup()
    points = torch.linspace(0, 1, 17, dtype=F64).reshape(-1, 1)
    deflation = Deflation(points, power=3.0, shift=0.5)
    assert float(deflation.factor(model)) == 1.0
    known = [torch.full((17, 1), 0.3, dtype=F64), torch.zeros(17, 1, dtype=F64)]
    for k in known:
        deflation.add(k)
    u = model(points).detach()
    expected = 1.0
    for k in known:
        expected *= float((u - k).square().mean().sqrt()) ** -3.0 + 0.5
    assert float(deflation.factor(model).detach()) == pytest.approx(expected, rel=1e-12)


def test_deflated_jacobian_equals_autograd():
    objective, constraints, model = bratu_setup()
    deflation = Deflation(objective.interior, power=2.0, shift=1.0)
    deflation.add(torch.sin(3 * objective.interior))
    deflated = DeflatedResiduals(StackedResiduals(objective, constraints, model), deflation)
    params = list(model.parameters())
    full = deflation.factor(model) * deflated.stacked.residual()[0]
    expected = torch.stack([
        torch.cat([g.reshape(-1) for g in torch.autograd.grad(row, params, retain_graph=True)])
        for row in full
    ])  # fmt: skip
    got = deflated.jacobian()
    assert got.shape == expected.shape
    assert torch.allclose(got, expected, rtol=0, atol=1e-10 * float(expected.abs().max()))
    assert torch.allclose(deflated.residual()[0], full.detach(), rtol=1e-13, atol=0)


def test_relative_distance_and_catalogue_dedup():
    a = torch.ones(10, 1, dtype=F64)
    assert relative_distance(a, 1.0005 * a, 1e-6) == pytest.approx(0.0005 / 1.0005, rel=1e-9)
    zero, tiny = torch.zeros(10, 1, dtype=F64), torch.full((10, 1), 1e-9, dtype=F64)
    assert relative_distance(zero, tiny, 1e-6) == pytest.approx(1e-3)  # the floor decides
    catalogue = Catalogue(distance=1e-3, floor=1e-6)
    for values in (a, -a, zero):
        catalogue.entries.append(Found({}, values, {}, 0.0, 0.0))
    assert catalogue.match(1.0001 * a) == 0
    assert catalogue.match(-1.0001 * a) == 1
    assert catalogue.match(tiny / 10) == 2
    assert catalogue.match(1.01 * a) is None
    # a stable order: by norm, then by mean (the trivial solution first, −u before +u)
    assert [float(e.values.mean()) for e in catalogue.sorted()] == [0.0, -1.0, 1.0]


def test_a_near_zero_candidate_is_a_duplicate_of_the_trivial_solution():
    """Measured on elastica1d: a search that slid back towards u = 0, polished to residual RMS
    4e-4, left a function of RMS 2.4e-6; with the default floor it is the trivial solution."""
    settings = ExploreSection()
    catalogue = Catalogue(settings.distance, settings.distance_floor)
    x = torch.linspace(0, 1, 129, dtype=F64).reshape(-1, 1)
    catalogue.entries.append(Found({}, 2e-9 * torch.sin(torch.pi * x), {}, 0.0, 0.0))
    assert catalogue.match(3.4e-6 * torch.sin(2 * torch.pi * x)) == 0  # RMS 2.4e-6
    assert catalogue.match(3.4e-3 * torch.sin(2 * torch.pi * x)) is None  # RMS 2.4e-3


@pytest.fixture(scope="module")
def deflation_run(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("explore")
    f = tmp / "bratu.toml"
    f.write_text(BRATU.format(strategy="deflation", attempts=4))
    return solve(f, out=tmp / "out")


def test_deflation_finds_both_bratu_branches_from_one_initialization(deflation_run):
    result = deflation_run
    assert result.status == "finished"
    assert len(result.solutions) == 2
    branches = sorted(s.exact_branch for s in result.solutions)
    assert branches == [0, 1]
    for s in result.solutions:
        assert s.rel_l2_error <= 1e-4
        assert s.max_infeasibility <= 1e-6
    # the catalogue is sorted by norm: the lower branch first
    assert [s.exact_branch for s in result.solutions] == [0, 1]


def test_explore_summary_lists_attempts_and_provenance(deflation_run):
    summary = json.loads((deflation_run.run_dir / "summary.json").read_text())
    explore = summary["explore"]
    assert explore["strategy"] == "deflation" and explore["found"] == 2
    attempts = explore["attempts"]
    assert attempts[0]["strategy"] == "training" and attempts[0]["outcome"] == "new"
    assert any(a["strategy"] == "deflation" and a["outcome"] == "new" for a in attempts)
    assert all(a["outcome"] != "new" for a in attempts[-2:])  # stopped by patience
    listed = summary["solutions"]
    assert [s["file"] for s in listed] == ["solutions/s00.vtu", "solutions/s01.vtu"]
    assert {s["provenance"]["strategy"] for s in listed} == {"training", "deflation"}
    for s in listed:
        assert (deflation_run.run_dir / s["file"]).exists()


def test_restarts_in_rounds_of_two_give_what_one_at_a_time_gives(tmp_path):
    """Restarts depend only on their attempt number: split into rounds, the attempts and the
    catalogue are the same (the judging follows attempt order)."""
    logs = []
    for k in (1, 2):
        f = tmp_path / f"bratu{k}.toml"
        f.write_text(BRATU.format(strategy="restarts", attempts=2).replace(
            "patience = 2", f"patience = 0\ntrajectories = {k}"))  # fmt: skip
        solve(f, out=tmp_path / f"out{k}")
        summary = json.loads((tmp_path / f"out{k}" / "summary.json").read_text())
        logs.append([(a["attempt"], a["outcome"], a["residual_rms"], a.get("duplicate_of"))
                     for a in summary["explore"]["attempts"]])  # fmt: skip
    assert [a[0] for a in logs[0]] == [0, 1, 2]
    assert logs[1] == logs[0]


def test_continuation_refuses_rounds(tmp_path):
    f = tmp_path / "bratu.toml"
    f.write_text(BRATU.format(strategy="continuation", attempts=2).replace(
        "patience = 2", 'patience = 2\ntrajectories = 3\nparameter = "lam"'))  # fmt: skip
    with pytest.raises(ConfigError, match=r"\[explore\] trajectories.*set trajectories = 1"):
        solve(f, out=tmp_path / "out")


def test_restarts_strategy_runs_the_same_pipeline(tmp_path):
    f = tmp_path / "bratu.toml"
    f.write_text(BRATU.format(strategy="restarts", attempts=1))
    result = solve(f, out=tmp_path / "out")
    log = json.loads((tmp_path / "out" / "summary.json").read_text())["explore"]["attempts"]
    assert [a["attempt"] for a in log] == [0, 1]
    assert log[1]["strategy"] == "restarts" and log[1]["search_steps"] > 0
    assert 1 <= len(result.solutions) <= 2
    for s in result.solutions:
        assert s.rel_l2_error <= 1e-4


def test_restarts_keep_the_fourier_frequencies_of_the_first_network(tmp_path):
    """A restart draws new weights, not a new architecture: with Fourier features every
    solution found carries θ₀'s frequencies."""
    f = tmp_path / "bratu.toml"
    f.write_text(BRATU.format(strategy="restarts", attempts=3).replace(
        "hidden = [16, 16]", "hidden = [16, 16]\nfourier_features = 4").replace(
        "patience = 2", "patience = 0\ninit_scale = 3.0"))  # fmt: skip
    result = solve(f, out=tmp_path / "out")
    first = build_mlp(1, 1, [16, 16], "tanh", "xavier_normal", ((0.0,), (1.0,)), 0, F64, "cpu",
                      4, 1.0).net[0].weight  # fmt: skip
    assert {s.provenance["strategy"] for s in result.solutions} == {"training", "restarts"}
    for s in result.solutions:
        assert torch.equal(s.model_state["net.0.weight"], first)


def test_explore_rejects_a_fourth_order_problem_before_training(tmp_path):
    module = tmp_path / "beam.py"
    module.write_text(
        "from pinnsolve.problem import Problem\n"
        "from pinnsolve.problem.geometry import Interval\n"
        "from pinnsolve.problem.conditions import Dirichlet\n"
        "class Beam(Problem):\n"
        "    '''u'''' = 1'''\n"
        "    domain = Interval(0.0, 1.0)\n"
        "    fields = ('u',)\n"
        "    def residual(self, x, f, p):\n"
        "        return f.d('u', 'x', 'x', 'x', 'x') - 1.0\n"
        "    def conditions(self, p):\n"
        "        return [Dirichlet('boundary', 0.0)]\n"
    )
    f = tmp_path / "beam.toml"
    f.write_text(
        '[problem]\nname = "beam.py:Beam"\n[polish]\nmethod = "lbfgs"\n'
        '[explore]\nstrategy = "deflation"\n'
    )
    with pytest.raises(ConfigError, match=r"\[explore\] strategy"):
        solve(f, out=tmp_path / "out")


def test_sigkill_inside_the_explorer_then_resume_gives_the_same_catalogue(deflation_run, tmp_path):
    """Killed inside a search (after a solution was catalogued), resumed: the same solutions."""
    f = tmp_path / "bratu.toml"
    f.write_text(
        BRATU.format(strategy="deflation", attempts=4).replace(
            "[output]", "[output]\ncheckpoint_every = 3"
        )
    )
    out = tmp_path / "out"
    command = [sys.executable, "-m", "pinnsolve", "solve", str(f), "--out", str(out), "-q"]
    proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    ckpt, deadline = out / "checkpoints" / "latest.pt", time.monotonic() + 600
    while True:
        assert proc.poll() is None, "the run ended before the explorer's second attempt"
        assert time.monotonic() < deadline, "no checkpoint inside the explorer appeared"
        if ckpt.exists():
            state = torch.load(ckpt, weights_only=False)
            explorer = state.get("explorer")
            if explorer and explorer["attempt"] >= 1 and state["phase_state"]:
                break
        time.sleep(0.2)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    resumed = solve(f, out=out, resume=True)
    assert len(resumed.solutions) == len(deflation_run.solutions) == 2
    for a, b in zip(resumed.solutions, deflation_run.solutions, strict=True):
        np.testing.assert_allclose(a.values["u"], b.values["u"], rtol=0, atol=1e-8)


def test_error_to_a_zero_solution_is_relative_to_the_largest_known_one():
    x = np.linspace(0, 1, 11)
    trivial, hump = {"u": 0 * x}, {"u": 2 * np.sin(np.pi * x)}
    near_zero = {"u": 1e-6 * np.sin(np.pi * x)}
    errors = exact_errors(near_zero, [trivial, hump])
    assert errors[0] == pytest.approx(0.5e-6)
    assert errors[1] == pytest.approx(1 - 0.5e-6)
    assert exact_errors(hump, [trivial, hump]) == [1.0, 0.0]
    # zero the only known solution (elastica1d below π²): the RMS, not inf
    assert exact_errors(near_zero, [trivial]) == [pytest.approx(1e-6 * np.sqrt(0.5), rel=0.1)]
    assert exact_errors(trivial, [trivial]) == [0.0]


def test_an_unaccepted_training_result_is_still_exported(tmp_path):
    f = tmp_path / "bratu.toml"
    text = BRATU.format(strategy="deflation", attempts=0)
    f.write_text(text.replace("patience = 2", "patience = 2\naccept_residual = 1e-30"))
    result = solve(f, out=tmp_path / "out")
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert [a["outcome"] for a in summary["explore"]["attempts"]] == ["rejected"]
    assert summary["explore"]["found"] == 0
    assert len(result.solutions) == 1
    assert result.solutions[0].provenance["accepted"] is False
    assert result.solutions[0].rel_l2_error <= 1e-4  # it is the trained lower branch


def test_a_kick_leaves_the_solution_and_its_end_is_judged(tmp_path):
    """Without the potential's floor BBI would not move at a solution (its speed goes as √V);
    with it the particle leaves, and the end of the kick is polished and judged."""
    f = tmp_path / "bratu.toml"
    f.write_text(BRATU.format(strategy="kick", attempts=1))
    result = solve(f, out=tmp_path / "out")
    log = json.loads((tmp_path / "out" / "summary.json").read_text())["explore"]["attempts"]
    assert [a["strategy"] for a in log] == ["training", "kick"]
    assert log[1]["search_steps"] == 300 and log[1]["polish_steps"] > 0
    assert log[1]["outcome"] in ("new", "duplicate", "rejected")
    kick = [r for r in result.history if r["phase"] == "bbi"]
    assert max(r["loss"] for r in kick) > 1e-6  # the solution it started at: ~1e-12
    assert kick[0]["bbi_bounces"] >= 1  # the momentum was turned at once


def test_rejected_candidates_are_exported_with_why(tmp_path):
    """A tolerance no candidate can meet: every candidate is rejected, exported under
    ``rejected/`` with its metrics and the failed test, and the trained result is still s00."""
    f = tmp_path / "bratu.toml"
    f.write_text(
        BRATU.format(strategy="deflation", attempts=1).replace(
            "patience = 2", "patience = 2\naccept_residual = 1e-14"
        )
    )
    result = solve(f, out=tmp_path / "out")
    rejected = result.summary["rejected"]
    assert [r["name"] for r in rejected][:1] == ["r00"]
    assert (
        "residual" in rejected[0]["provenance"]["why"]
        and "1e-14" in rejected[0]["provenance"]["why"]
    )
    assert (tmp_path / "out" / rejected[0]["file"]).is_file()
    assert rejected[0]["rel_l2_error"] < 1e-3  # the lower branch, solved but held to 1e-14
    assert result.solutions[0].provenance["accepted"] is False
    assert result.summary["explore"]["attempts"][0]["why"].startswith("residual")


def test_the_terminal_says_how_far_each_search_and_polish_got():
    from pinnsolve.explore.explorer import _progress

    record = {"search_steps": 93, "search_stop": "no_improvement", "polish_steps": 401}
    assert _progress(record) == "; search 93 steps (no_improvement); polish 401 steps"
    trained = {"search_steps": 0, "search_stop": None, "polish_steps": 120}
    assert _progress(trained) == "; polish 120 steps"
    assert _progress({"search_steps": 0, "search_stop": None, "polish_steps": 0}) == ""
