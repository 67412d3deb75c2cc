"""Batched ensembles: K BBI searches in one batched step equal K single searches, resume exactly,
and the explorer runs a round's bbi searches as one ensemble with the single searches' result."""

import copy
import json

import pytest
import torch
from bratu_case import BRATU, F64, bratu_setup

from pinnsolve import solve
from pinnsolve.ansatz import build_mlp
from pinnsolve.derivatives.forward import ForwardEngine
from pinnsolve.optim.bbi import BBI, BBIConfig, member_seeds
from pinnsolve.optim.ensemble import EnsembleBBI, EnsembleEnergy

SEEDS = (11, 22, 33)
#: energy to spare and three fixed bounces within the steps, so the members' streams matter
CONFIG = BBIConfig(lr=1e-3, delta_energy=1.0, threshold0=20, n_fixed_bounces=3)


def _case():
    objective, constraints, model = bratu_setup()
    objective.engine = ForwardEngine(strict=True)
    bounds = objective.problem.geometry().bounds()
    starts = [build_mlp(1, 1, [6, 6], "tanh", "xavier_normal", bounds, s, F64, "cpu").state_dict()
              for s in range(len(SEEDS))]  # fmt: skip
    return objective, constraints, model, starts


def _single(objective, constraints, model, start, seed, steps):
    """One search as the trainer runs it: BBI on the MDMM energy, a dual step after each step."""
    model.load_state_dict(start)
    opt = BBI(model.parameters(), seed=seed, **vars(CONFIG))
    latest = {}

    def closure():
        opt.zero_grad()
        latest["ev"] = ev = objective.evaluate(model)
        energy = constraints.primal_energy(ev.objective, ev.g)
        energy.backward()
        return energy

    for _ in range(steps):
        opt.step(closure)
        constraints.dual_step({k: v.detach() for k, v in latest["ev"].g.items()})
        opt.resync_energy()
    return torch.cat([p.detach().reshape(-1) for p in model.parameters()])


def _ensemble(objective, constraints, model, starts):
    energy = EnsembleEnergy(model, objective, constraints)
    theta = torch.stack([energy.layout.flatten(s) for s in starts])
    lam = {k: torch.stack([v] * len(starts)) for k, v in constraints.multipliers.items()}
    seeds = torch.stack([member_seeds(s, 1)[0] for s in SEEDS])
    return EnsembleBBI(energy, theta, lam, seeds, CONFIG, dual=True)


def test_a_batched_step_is_k_single_searches():
    objective, constraints, model, starts = _case()
    initial = constraints.state_dict()
    ensemble = _ensemble(objective, constraints, model, starts)
    for _ in range(60):
        ensemble.step()
    assert int(ensemble.diagnostics()["bounces"]) == 3
    for i, (start, seed) in enumerate(zip(starts, SEEDS, strict=True)):
        constraints.load_state_dict(initial)
        single = _single(objective, constraints, model, start, seed, 60)
        assert torch.allclose(ensemble.theta[i], single, rtol=0, atol=1e-12)
        lam = constraints.multipliers["dirichlet_boundary"]
        assert torch.allclose(ensemble.multipliers["dirichlet_boundary"][i], lam, atol=1e-12)


def test_an_ensemble_resumes_exactly_from_its_state_dict():
    objective, constraints, model, starts = _case()
    ensemble = _ensemble(objective, constraints, model, starts)
    for _ in range(30):
        ensemble.step()
    saved = copy.deepcopy(ensemble.state_dict())
    for _ in range(30):
        ensemble.step()
    resumed = _ensemble(objective, constraints, model, starts)
    resumed.load_state_dict(saved)
    for _ in range(30):
        resumed.step()
    assert torch.equal(resumed.theta, ensemble.theta)


@pytest.mark.parametrize("strategy", ["bbi", "kick"])
def test_explorer_rounds_of_bbi_searches_run_as_one_ensemble(tmp_path, strategy):
    """Three searches in one round (one ensemble) against one at a time: the same outcomes. The
    searches end equal to rounding; each candidate's 100 Levenberg–Marquardt steps then end at
    the residual's floor, where rounding shows at ~1e-5 relative (measured 2.3e-5)."""
    logs = []
    for k in (1, 3):
        f = tmp_path / f"{strategy}{k}.toml"
        f.write_text(BRATU.format(strategy=strategy, attempts=3).replace(
            "patience = 2", f"patience = 0\ntrajectories = {k}").replace(
            "steps = 300", "steps = 150"))  # fmt: skip
        solve(f, out=tmp_path / f"out{k}")
        summary = json.loads((tmp_path / f"out{k}" / "summary.json").read_text())
        logs.append(summary["explore"]["attempts"])
    one, together = logs
    assert [a["outcome"] for a in together] == [a["outcome"] for a in one]
    assert [a["search_steps"] for a in together] == [a["search_steps"] for a in one]
    for a, b in zip(together, one, strict=True):
        assert a["residual_rms"] == pytest.approx(b["residual_rms"], rel=1e-3)
