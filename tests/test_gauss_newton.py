"""Gauss–Newton polish: the stacked residual, its Jacobian, the LM step, and the polish in a run."""

import numpy as np
import pytest
import torch
from torch.func import functional_call
from torch.nn.utils import parameters_to_vector

import pinnsolve as ps
from pinnsolve.ansatz import build_mlp
from pinnsolve.build import build_constraints
from pinnsolve.constraints import ConstraintSet, ConstraintSpec
from pinnsolve.explore.deflation import DeflatedResiduals, Deflation
from pinnsolve.io.config import from_dict
from pinnsolve.objective import PinnObjective
from pinnsolve.optim.gauss_newton import (
    Bound,
    GaussNewtonError,
    LevenbergMarquardt,
    StackedResiduals,
    choose_linear_solver,
)

F64 = torch.float64


def test_energy_residuals_square_to_the_primal_energy():
    specs = [
        ConstraintSpec("eq", n=5),
        ConstraintSpec("le", n=4, kind="le", damping=3.0, scale=2.0),
        ConstraintSpec("ge_mean", n=6, kind="ge", multiplier="scalar"),
        ConstraintSpec("pen", n=3, method="penalty", weight=7.0),
        ConstraintSpec("pen_ge", n=3, kind="ge", method="penalty", weight=2.0),
    ]
    cons = ConstraintSet(specs, dtype=F64)
    gen = torch.Generator().manual_seed(0)
    cons.load_state_dict({"multipliers": {
        k: torch.rand(v.shape, generator=gen, dtype=F64) for k, v in cons.multipliers.items()
    }})  # fmt: skip
    g = {s.name: torch.randn(s.n, generator=gen, dtype=F64) for s in specs}
    f = torch.tensor(0.37, dtype=F64)
    stacked = sum(r.square().sum() for r in cons.energy_residuals(g))
    torch.testing.assert_close(f + stacked, cons.primal_energy(f, g), rtol=1e-13, atol=0)


class Poisson(ps.Problem):
    """Poisson on the unit square with every kind of condition the Jacobian must see through."""

    domain = ps.Rectangle((0.0, 1.0), (0.0, 1.0))

    def residual(self, x, f, p):
        return -f.lap("u") + torch.sin(f.u) * f.d("u", "x", "y") - 1.0

    def conditions(self, p):
        return [
            ps.Dirichlet("ymin", 0.0),
            ps.Neumann("ymax", 0.5),
            ps.Robin("xmin", 1.0, a=2.0, b=1.0),
            ps.Periodic("xmin", other="xmax", derivative=1, name="periodic_dx"),
            ps.Integral(target=0.2),
            ps.Inequality(target=0.1, op="<=", name="upper"),
        ]


def _setup(method="mdmm"):
    problem = Poisson()
    objective = PinnObjective.sampled(problem, 24, 5, "sobol", 0, F64, torch.device("cpu"))
    config = from_dict({"problem": {"name": "unused"}, "constraints": {"method": method}})
    cons = build_constraints(config, objective, F64, torch.device("cpu"))
    gen = torch.Generator().manual_seed(3)
    cons.load_state_dict({"multipliers": {
        k: torch.rand(v.shape, generator=gen, dtype=F64) for k, v in cons.multipliers.items()
    }})  # fmt: skip
    model = build_mlp(2, 1, [8, 8], "tanh", "xavier_normal", problem.geometry().bounds(), 0, F64,
                      torch.device("cpu"))  # fmt: skip
    return StackedResiduals(objective, cons, model, column_chunk=32), objective, cons, model


@pytest.mark.parametrize("method", ["mdmm", "penalty"])
def test_jacobian_equals_autograd_rows(method):
    stacked, objective, cons, model = _setup(method)
    r, ev = stacked.residual()
    torch.testing.assert_close(r.square().sum(), cons.primal_energy(ev.objective, ev.g))
    jac = stacked.jacobian()
    params = list(model.parameters())
    rows = []
    for i in range(len(r)):
        grads = torch.autograd.grad(r[i], params, retain_graph=True, allow_unused=True)
        rows.append(torch.cat([
            (g if g is not None else torch.zeros_like(p)).reshape(-1)
            for g, p in zip(grads, params, strict=True)
        ]))  # fmt: skip
    reference = torch.stack(rows)
    assert jac.shape == reference.shape == (len(r), stacked.n_params)
    assert (jac - reference).abs().max().item() <= 1e-12 * max(1.0, reference.abs().max().item())


class Nonlocal(ps.Problem):
    """Pure second derivatives only (the Jacobian's jets then carry the Hessian's diagonal), and
    residuals that couple the points: a mean over all of them."""

    domain = ps.Rectangle((0.0, 1.0), (0.0, 1.0))

    def residual(self, x, f, p):
        return -f.lap("u") + f.u - f.u.mean() + (f.d("u", "x") * f.u).mean() - 1.0

    def conditions(self, p):
        return [ps.Dirichlet("ymin", 0.0), ps.Integral(target=0.2)]


def _autograd_jacobian(stacked: StackedResiduals) -> torch.Tensor:
    """``∂R/∂θ`` by plain reverse-mode autograd through the residual vector as the optimizer
    evaluates it, one row at a time (``torch.autograd.functional.jacobian``)."""
    model = stacked.model
    names = [n for n, _ in model.named_parameters()]
    params = list(model.parameters())
    module = Bound(model, lambda: stacked.residual()[0])

    def residual(flat):
        views = torch.split(flat, [p.numel() for p in params])
        state = {f"model.{n}": v.view_as(p) for n, v, p in zip(names, views, params, strict=True)}
        return functional_call(module, state, ())

    return torch.autograd.functional.jacobian(residual, parameters_to_vector(params).detach())


@pytest.mark.parametrize("problem", [Poisson, Nonlocal])
def test_jacobian_equals_the_autograd_jacobian(problem):
    """Through the full Hessian (Poisson reads ∂²u/∂x∂y) and its diagonal alone (Nonlocal), with
    residuals that couple points and every kind of condition."""
    objective = PinnObjective.sampled(problem(), 24, 5, "sobol", 0, F64, torch.device("cpu"))
    cons = build_constraints(from_dict({"problem": {"name": "unused"}}), objective, F64, "cpu")
    gen = torch.Generator().manual_seed(3)
    cons.load_state_dict({"multipliers": {
        k: torch.rand(v.shape, generator=gen, dtype=F64) for k, v in cons.multipliers.items()
    }})  # fmt: skip
    model = build_mlp(2, 1, [8, 8], "tanh", "xavier_normal", problem.domain.bounds(), 0, F64,
                      "cpu")  # fmt: skip
    stacked = StackedResiduals(objective, cons, model, column_chunk=32, point_chunk=16)
    jac, reference = stacked.jacobian(), _autograd_jacobian(stacked)
    assert jac.shape == reference.shape == (stacked.n_rows, stacked.n_params)
    assert (jac - reference).abs().max() <= 1e-12 * reference.abs().max()


def test_a_read_the_setup_did_not_see_is_an_error():
    """The Jacobian differentiates what the residual read when it was set up; a residual that
    later reads something else must not get a Jacobian that misses it."""

    class Switching(Nonlocal):
        read_gradient = False

        def residual(self, x, f, p):
            return -f.lap("u") + (f.d("u", "y") if self.read_gradient else 0.0)

    problem = Switching()
    objective = PinnObjective.sampled(problem, 8, 3, "sobol", 0, F64, torch.device("cpu"))
    cons = build_constraints(from_dict({"problem": {"name": "unused"}}), objective, F64, "cpu")
    model = build_mlp(2, 1, [4], "tanh", "xavier_normal", None, 0, F64, "cpu")
    stacked = StackedResiduals(objective, cons, model)
    problem.read_gradient = True
    with pytest.raises(GaussNewtonError, match=r"d\('u', 'y'\) .* did not"):
        stacked.jacobian()


@pytest.mark.parametrize("method", ["mdmm", "penalty"])
def test_matrix_free_products_equal_the_dense_jacobian(method):
    """``J v`` (forward mode) and ``Jᵀ w`` (reverse mode) through every kind of condition."""
    stacked, *_ = _setup(method)
    jac = stacked.jacobian()
    jvp_fn, vjp_fn = stacked.linearize()
    gen = torch.Generator().manual_seed(1)
    for _ in range(3):
        v = torch.randn(jac.shape[1], generator=gen, dtype=F64)
        w = torch.randn(jac.shape[0], generator=gen, dtype=F64)
        for got, want in ((jvp_fn(v), jac @ v), (vjp_fn(w), jac.T @ w)):
            assert got.shape == want.shape
            assert (got - want).abs().max().item() <= 1e-10 * want.abs().max().item()


def test_auto_solves_densely_up_to_the_limit(monkeypatch):
    stacked, objective, _, model = _setup()
    assert stacked.n_rows == len(stacked.residual()[0])
    assert choose_linear_solver(stacked, "auto") == "dense"
    monkeypatch.setattr("pinnsolve.optim.gauss_newton.DENSE_LIMIT", min(stacked.n_rows, 100) - 1)
    assert choose_linear_solver(stacked, "auto") == "cg"
    monkeypatch.undo()
    monkeypatch.setattr("pinnsolve.optim.gauss_newton.DENSE_MEMORY", stacked.jacobian_bytes() - 1)
    assert choose_linear_solver(stacked, "auto") == "cg"
    deflated = DeflatedResiduals(stacked, Deflation(objective.interior))
    assert choose_linear_solver(deflated, "auto") == "dense"  # it has no matrix-free products
    with pytest.raises(GaussNewtonError, match="matrix-free"):
        choose_linear_solver(deflated, "cg")


def test_linear_solver_keys_are_validated():
    problem = {"problem": {"name": "bratu1d"}}
    with pytest.raises(ps.ConfigError, match=r"\[polish\] linear_solver: expected one of 'auto'"):
        from_dict({**problem, "polish": {"linear_solver": "lu"}})
    with pytest.raises(ps.ConfigError, match=r"\[polish\] cg_iterations: expected a value >= 1"):
        from_dict({**problem, "polish": {"cg_iterations": 0}})


def test_levenberg_marquardt_solves_rosenbrock():
    """min ‖(10(y − x²), 1 − x)‖² from the classic start (−1.2, 1) → (1, 1)."""
    xy = torch.tensor([-1.2, 1.0], dtype=F64, requires_grad=True)

    def residuals():
        return torch.stack([10 * (xy[1] - xy[0] ** 2), 1 - xy[0]])

    def jacobian():
        return torch.autograd.functional.jacobian(lambda v: torch.stack(
            [10 * (v[1] - v[0] ** 2), 1 - v[0]]), xy.detach())  # fmt: skip

    opt = LevenbergMarquardt([xy], residuals, jacobian)
    for _ in range(100):
        if opt.step() < 1e-28:
            break
    torch.testing.assert_close(xy.detach(), torch.ones(2, dtype=F64), rtol=0, atol=1e-12)
    state = opt.state_dict()
    again = LevenbergMarquardt([xy], residuals, jacobian, damping=0.5)
    again.load_state_dict(state)
    assert again.state["lm"] == opt.state["lm"]


def test_order_above_two_is_rejected_before_training(tmp_path):
    (tmp_path / "beam.py").write_text(
        "import pinnsolve as ps\n"
        "class Beam(ps.Problem):\n"
        "    domain = ps.Interval(0.0, 1.0)\n"
        "    def residual(self, x, f, p):\n"
        "        return f.d('u', 'x', 'x', 'x', 'x') - 1.0\n"
        "    def conditions(self, p):\n"
        "        return [ps.Dirichlet('boundary', 0.0)]\n"
    )
    toml = tmp_path / "beam.toml"
    toml.write_text('[problem]\nname = "beam.py:Beam"\n[polish]\nmethod = "gauss_newton"\n')
    with pytest.raises(ps.ConfigError, match=r"\[polish\] method.*order") as err:
        ps.solve(toml)
    assert str(toml) in str(err.value)
    with pytest.raises(GaussNewtonError):
        stacked_problem = PinnObjective.sampled(
            ps.get_problem(f"{tmp_path / 'beam.py'}:Beam")(), 4, 1, "grid", 0, F64, "cpu"
        )
        model = build_mlp(1, 1, [4], "tanh", "xavier_normal", None, 0, F64, "cpu")
        StackedResiduals(stacked_problem, ConstraintSet([ConstraintSpec("dirichlet_boundary", n=2)],
                         dtype=F64), model)  # fmt: skip


def test_float32_run_is_polished_in_float64_to_1e_6(in_tmp):
    """bratu1d (lower branch): Adam in float32, then L-BFGS and Levenberg–Marquardt in float64."""
    config = from_dict({
        "problem": {"name": "bratu1d", "params": {"lam": 1.0}},
        "model": {"hidden": [16, 16]},
        "sampling": {"interior": 64},
        "training": {"steps": 500, "lr": 3e-3},
        "polish": {"method": "lbfgs+gauss_newton", "steps": 300, "gauss_newton_steps": 100},
        "run": {"dtype": "float32"},
        "output": {"plots": False, "resolution": 101},
    })  # fmt: skip
    result = ps.solve(ps.get_problem("bratu1d")(lam=1.0), config, out=in_tmp / "run")
    assert [p["phase"] for p in result.summary["phases"]] == ["adam", "lbfgs", "gauss_newton"]
    sol = result.solutions[0]
    assert sol.rel_l2_error <= 1e-6, sol.rel_l2_error
    assert sol.max_infeasibility <= 1e-6
    assert "gauss_newton_mu" in result.history[-1]
    assert np.isfinite([r["loss"] for r in result.history]).all()


def test_cg_polish_reaches_the_dense_polish_error(in_tmp):
    """bratu1d: the matrix-free polish, each trial step at most 30 CGLS iterations (of a system
    of 66 rows), ends within a factor 2 of the dense polish's error (measured 3.31e-6 against
    3.39e-6; L-BFGS alone 5.3e-5)."""
    errors = {}
    for solver in ("dense", "cg"):
        config = from_dict({
            "problem": {"name": "bratu1d", "params": {"lam": 1.0}},
            "model": {"hidden": [16, 16]},
            "sampling": {"interior": 64},
            "training": {"steps": 300, "lr": 3e-3},
            "polish": {"method": "lbfgs+gauss_newton", "steps": 200, "gauss_newton_steps": 40,
                       "linear_solver": solver, "cg_iterations": 30},
            "output": {"plots": False, "resolution": 101},
        })  # fmt: skip
        result = ps.solve(ps.get_problem("bratu1d")(lam=1.0), config, out=in_tmp / solver)
        assert result.summary["phases"][-1]["phase"] == "gauss_newton"
        errors[solver] = result.solutions[0].rel_l2_error
    assert errors["dense"] <= 1e-5, errors
    assert errors["cg"] <= 2 * errors["dense"], errors
