"""MDMM constraints: known optima and multipliers, sign conventions, the bounded-below energy,
penalties, checkpoints, shape checks and the absence of host syncs.

Multiplier values follow from stationarity of ``L = f + s·mean_i ψ(q_i, λ_i)`` at ``q = 0``:
``∇f + (s/n) Σ_i λ_i ∇q_i = 0`` (``q = g`` for "eq", ``h`` for "le"/"ge").
"""

from __future__ import annotations

import copy
import textwrap
from collections.abc import Callable

import pytest
import torch
from torch import Tensor

from pinnsolve import constraints
from pinnsolve.constraints import ConstraintError, ConstraintSet, ConstraintSpec
from pinnsolve.errors import ConfigError

F64 = torch.float64

#: The primal/dual schedule that reaches 1e-6 (in fact ~1e-12) on every problem below, in float64:
#: Adam at lr 0.1 for HOLD steps, where the coupled flow settles (Adam's step is bounded by its
#: lr, so a far start must first arrive; meanwhile λ winds up and has to unwind), then a geometric
#: decay of the lr to 1e-8 over DECAY steps that removes Adam's residual jitter. The dual rate
#: η = 0.1 is annealed with the same factor: a frozen primal cannot cancel the last violation,
#: which a live dual would integrate without bound. AMSGrad, because plain Adam at a constant lr
#: bursts once the gradient reaches round-off (its second moment decays, steps grow back to ~lr:
#: seen here going from 1e-13 back to 1e-2), so where the decay starts would decide the result.
LR, HOLD, DECAY, ETA, LR_END = 0.1, 1000, 500, 0.1, 1e-8


def solve(
    theta0: list[float],
    f: Callable[[Tensor], Tensor],
    g: Callable[[Tensor], dict[str, Tensor]],
    specs: list[ConstraintSpec],
) -> tuple[Tensor, ConstraintSet]:
    """Adam on θ (minimising the Lagrangian) + dual_step on λ, with the schedule above."""
    theta = torch.tensor(theta0, dtype=F64, requires_grad=True)
    cons = ConstraintSet(specs, dual_lr=ETA, dtype=F64)
    opt = torch.optim.Adam([theta], lr=LR, amsgrad=True)
    gamma = (LR_END / LR) ** (1 / DECAY)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda k: gamma ** max(0, k - HOLD))
    for _ in range(HOLD + DECAY):
        values = g(theta)
        opt.zero_grad()
        cons.lagrangian(f(theta), values).backward()
        opt.step()
        sched.step()
        cons.dual_step(values, lr_factor=sched.get_last_lr()[0] / LR)
    return theta.detach(), cons


def assert_close(actual: Tensor, expected, tol: float = 1e-6) -> None:
    expected = torch.as_tensor(expected, dtype=actual.dtype).reshape(actual.shape)
    err = (actual - expected).abs().max()
    assert err <= tol, f"{actual} vs {expected}: error {err:.2e}"


# --- known optima ---------------------------------------------------------------------------


def test_equality_two_variables():
    # min x² + y² s.t. x + y = 1, g = x + y − 1: 2x + s λ = 0 at x = ½ ⇒ λ = −1/s (s = 1).
    theta, cons = solve(
        [0.0, 0.0],
        lambda t: t.square().sum(),
        lambda t: {"sum": t.sum() - 1},
        [ConstraintSpec("sum", 1)],
    )
    assert_close(theta, [0.5, 0.5])
    assert_close(cons.multipliers["sum"], [-1.0])


@pytest.mark.parametrize(
    ("kind", "bound", "x_star", "lam_star"),
    [
        ("le", 1.0, 1.0, 2.0),  # active: h = x − 1, 2(x − 2) + λ = 0 at x = 1
        ("le", 3.0, 2.0, 0.0),  # inactive: unconstrained minimum, λ = 0
        ("ge", 3.0, 3.0, 2.0),  # active: h = 3 − x, 2(x − 2) − λ = 0 at x = 3
        ("ge", 1.0, 2.0, 0.0),  # inactive
    ],
)
def test_inequality(kind, bound, x_star, lam_star):
    # min (x − 2)² s.t. x ≤ bound / x ≥ bound; g = value − bound whatever the kind.
    theta, cons = solve(
        [0.0],
        lambda t: (t - 2).square().sum(),
        lambda t: {"x": t[0] - bound},
        [ConstraintSpec("x", 1, kind=kind)],
    )
    assert_close(theta, [x_star])
    assert_close(cons.multipliers["x"], [lam_star])
    assert (cons.multipliers["x"] >= 0).all()


def test_integral_scalar_constraint():
    # min mean_i (θ_i − a_i)² s.t. mean θ = c, one number (shape []):
    # 2(θ_i − a_i)/N + λ/N = 0 ⇒ θ_i = a_i − λ/2, mean θ = c ⇒ θ = a + (c − ā), λ = 2(ā − c).
    a = torch.tensor([0.3, -1.2, 2.0, 0.5], dtype=F64)
    c = 0.1
    theta, cons = solve(
        [0.0] * 4,
        lambda t: (t - a).square().mean(),
        lambda t: {"integral": t.mean() - c},
        [ConstraintSpec("integral", 1)],
    )
    assert_close(theta, a + (c - a.mean()))
    assert_close(cons.multipliers["integral"], [2 * (a.mean() - c)])


A = torch.tensor(
    [[1.0, 0.0, 1.0, 0.0, 0.0], [0.0, 1.0, 0.0, 1.0, 0.0], [0.0, 0.0, 1.0, -1.0, 1.0]], dtype=F64
)
B = torch.tensor([1.0, -0.5, 0.25], dtype=F64)
TARGET = torch.tensor([0.2, 0.4, -0.3, 1.0, -0.6], dtype=F64)


def test_pointwise_multipliers_each_reach_their_own_value():
    # min ½|θ − a|² s.t. Aθ = b, one multiplier per row (m = 3 points):
    # θ − a + (s/m) Aᵀλ = 0, Aθ = b ⇒ λ = (m/s)(AAᵀ)⁻¹(Aa − b), θ = a − (s/m) Aᵀλ.
    m = A.shape[0]
    lam_star = m * torch.linalg.solve(A @ A.T, A @ TARGET - B)
    theta, cons = solve(
        [0.0] * 5,
        lambda t: 0.5 * (t - TARGET).square().sum(),
        lambda t: {"rows": A @ t - B},
        [ConstraintSpec("rows", m)],
    )
    assert_close(theta, TARGET - A.T @ lam_star / m)
    assert_close(cons.multipliers["rows"], lam_star)
    assert len(set(lam_star.tolist())) == m  # distinct values: nothing is shared between points


def test_scalar_mode_constrains_only_the_signed_mean():
    # Same g = Aθ − b, one λ for mean_i g_i = 0 (ā = mean of A's rows): θ − a + s λ ā = 0
    # ⇒ θ = a − λ ā, mean(Aθ − b) = 0 ⇒ λ = (ā·a − b̄) / |ā|².
    a_bar = A.mean(dim=0)
    lam_star = (a_bar @ TARGET - B.mean()) / (a_bar @ a_bar)
    theta, cons = solve(
        [0.0] * 5,
        lambda t: 0.5 * (t - TARGET).square().sum(),
        lambda t: {"rows": A @ t - B},
        [ConstraintSpec("rows", 3, multiplier="scalar")],
    )
    assert_close(theta, TARGET - lam_star * a_bar)
    assert_close(cons.multipliers["rows"], [lam_star])
    metrics = cons.metrics({"rows": A @ theta - B})
    assert metrics["rows_max"] <= 1e-6  # the constrained quantity is the mean, not each point


def test_module_docstring_example_runs():
    """The plain-PyTorch example in the module docstring, executed as written."""
    doc = constraints.__doc__
    example = textwrap.dedent(doc[doc.index("import torch") - 4 :])
    namespace: dict = {}
    exec(compile(example, "constraints-example", "exec"), namespace)
    assert_close(namespace["xy"].detach(), [0.5, 0.5], tol=1e-5)
    assert_close(namespace["cons"].multipliers["sum"], [-1.0], tol=1e-5)


@pytest.mark.parametrize(
    ("kind", "bound", "x_star", "lam_star"),
    [("eq", 1.0, 1.0, 2.0), ("le", 1.0, 1.0, 2.0), ("le", 3.0, 2.0, 0.0), ("ge", 3.0, 3.0, 2.0)],
)
def test_method_of_multipliers_with_an_exact_inner_solver(kind, bound, x_star, lam_star):
    # min (x − 2)² with L-BFGS to convergence at frozen λ, then λ ← λ + δq: for the active
    # constraint the error in λ shrinks by 2/(2 + δ) per outer step (δ = 10: 1/6).
    x = torch.zeros(1, dtype=F64, requires_grad=True)
    cons = ConstraintSet([ConstraintSpec("x", 1, kind=kind, damping=10.0)], dtype=F64)

    def closure() -> Tensor:
        x.grad = None
        loss = cons.lagrangian((x - 2).square().sum(), {"x": x[0] - bound})
        loss.backward()
        return loss

    for _ in range(15):  # a fresh L-BFGS per outer step: its history is of the previous L
        inner = torch.optim.LBFGS([x], tolerance_grad=1e-14, tolerance_change=0.0)
        inner.step(closure)
        cons.method_of_multipliers_step({"x": x[0].detach() - bound})
    assert_close(x.detach(), [x_star], tol=1e-9)
    assert_close(cons.multipliers["x"], [lam_star], tol=1e-9)


def test_stiffen_speeds_the_multipliers_and_keeps_their_fixed_point():
    # Same problem as above with the eq constraint (x* = 1, λ* = 2): the λ error shrinks by
    # 2/(2 + δ) per outer step, so 4 steps at δ = 1 leave (2/3)⁴ ≈ 0.2 of it; stiffened to δ = 1e4
    # they end at the same fixed point to 1e-9.
    def solve(stiff: float | None) -> tuple[Tensor, Tensor]:
        x = torch.zeros(1, dtype=F64, requires_grad=True)
        cons = ConstraintSet([ConstraintSpec("x", 1, damping=1.0)], dtype=F64)
        if stiff is not None:
            cons.stiffen(stiff)

        def closure() -> Tensor:
            x.grad = None
            loss = cons.lagrangian((x - 2).square().sum(), {"x": x[0] - 1.0})
            loss.backward()
            return loss

        for _ in range(4):
            torch.optim.LBFGS([x], tolerance_grad=1e-14, tolerance_change=0.0).step(closure)
            cons.method_of_multipliers_step({"x": x[0].detach() - 1.0})
        return x.detach(), cons.multipliers["x"]

    x, lam = solve(None)
    assert float((lam - 2.0).abs()) > 0.1
    x, lam = solve(1e4)
    assert_close(x, [1.0], tol=1e-9)
    assert_close(lam, [2.0], tol=1e-9)


def test_stiffen_raises_only_smaller_mdmm_dampings():
    cons = ConstraintSet([
        ConstraintSpec("a", 3, damping=10.0),
        ConstraintSpec("b", 3, damping=1e6),
        ConstraintSpec("c", 3, method="penalty", damping=10.0),
    ])  # fmt: skip
    cons.stiffen(1e4)
    assert [s.damping for s in cons.specs] == [1e4, 1e6, 10.0]


# --- sign conventions -----------------------------------------------------------------------


def test_sign_convention_equality():
    # value 1.5 > target 1.0 ⇒ g = +0.5; ascent moves λ by +η s g; L adds s(λ g + δ/2 g²).
    spec = ConstraintSpec("c", 1, scale=2.0, damping=3.0, dual_lr=0.25)
    cons = ConstraintSet([spec], dtype=F64)
    g = {"c": torch.tensor(1.5, dtype=F64) - 1.0}
    assert cons.metrics(g)["c_max"] == 0.5
    cons.dual_step(g)
    assert cons.multipliers["c"].item() == 0.25 * 2.0 * 0.5
    lam = cons.multipliers["c"].item()
    assert cons.lagrangian(torch.zeros((), dtype=F64), g).item() == pytest.approx(
        2.0 * (lam * 0.5 + 1.5 * 0.25)
    )
    cons.dual_step({"c": torch.tensor(-1.0, dtype=F64)})  # value below target: λ goes down
    assert cons.multipliers["c"].item() == pytest.approx(lam - 0.5)
    cons.method_of_multipliers_step(g)  # the augmented-Lagrangian update: λ += δ g
    assert cons.multipliers["c"].item() == pytest.approx(lam - 0.5 + 3.0 * 0.5)


@pytest.mark.parametrize(
    ("kind", "g", "violation"),
    [("le", 0.5, 0.5), ("le", -0.5, 0.0), ("ge", -0.5, 0.5), ("ge", 0.5, 0.0)],
)
def test_sign_convention_inequalities(kind, g, violation):
    # "le": value − bound = g > 0 violates (h = g); "ge": value below bound, g < 0, violates
    # (h = −g). Violated ⇒ λ rises by η s h; satisfied ⇒ the projection keeps λ at 0.
    cons = ConstraintSet([ConstraintSpec("c", 1, kind=kind, dual_lr=0.5)], dtype=F64)
    values = {"c": torch.tensor([g], dtype=F64)}
    assert cons.metrics(values)["c_max"].item() == violation
    assert cons.max_infeasibility(values).item() == violation
    cons.dual_step(values)
    assert cons.multipliers["c"].item() == 0.5 * violation
    cons.method_of_multipliers_step(values)  # λ += δ h (δ = 1), then projected
    assert cons.multipliers["c"].item() == 1.5 * violation
    # the primal is pushed towards feasibility: ∂L/∂value has the sign that lowers h
    value = torch.tensor([g], dtype=F64, requires_grad=True)
    cons.lagrangian(torch.zeros((), dtype=F64), {"c": value}).backward()
    if violation:
        assert value.grad.item() * (1.0 if kind == "le" else -1.0) > 0


# --- the bounded-below energy ---------------------------------------------------------------


def test_primal_energy_has_the_lagrangians_gradient_and_is_nonnegative():
    torch.manual_seed(0)
    specs = [
        ConstraintSpec("eq", 7, damping=0.7, scale=2.0),
        ConstraintSpec("le", 5, kind="le", damping=1.3),
        ConstraintSpec("ge", 6, kind="ge", damping=0.4, scale=0.5),
        ConstraintSpec("mean", 4, multiplier="scalar", damping=2.0),
        ConstraintSpec("pen", 3, method="penalty", weight=5.0),
    ]
    cons = ConstraintSet(specs, dtype=F64)
    lam = {
        "eq": 3 * torch.randn(7, dtype=F64),
        "le": 2 * torch.rand(5, dtype=F64),  # inequality multipliers are ≥ 0
        "ge": 2 * torch.rand(6, dtype=F64),
        "mean": torch.randn(1, dtype=F64),
    }
    cons.load_state_dict({"multipliers": lam})
    theta = torch.randn(25, dtype=F64, requires_grad=True)

    def evaluate(t: Tensor) -> tuple[Tensor, dict[str, Tensor]]:
        values = {"eq": t[:7] ** 3 - 0.2, "le": torch.sin(t[7:12]), "ge": t[12:18] * t[:6]}
        values |= {"mean": t[18:22].exp() - 1, "pen": t[22:] - 0.1}
        return (t**2).mean(), values

    f, values = evaluate(theta)
    lagrangian = cons.lagrangian(f, values)
    energy = cons.primal_energy(f, values)
    (grad_l,) = torch.autograd.grad(lagrangian, theta, retain_graph=True)
    (grad_v,) = torch.autograd.grad(energy, theta)
    assert (grad_l - grad_v).abs().max() <= 1e-12
    assert energy >= 0 and energy >= f
    # V − L = Σ_c s_c mean λ²/(2δ_c), independent of θ (the completed square's constant)
    shift = sum(s.scale * (lam[s.name] ** 2 / (2 * s.damping)).mean() for s in specs[:4])
    assert (energy - lagrangian - shift).abs() <= 1e-12
    # both branches of max(0, h + λ/δ) are exercised
    h_le = values["le"] + lam["le"] / 1.3
    assert (h_le > 0).any() and (h_le < 0).any()


# --- penalty method -------------------------------------------------------------------------


def test_penalty_contributes_weighted_mean_square_and_has_no_multiplier():
    cons = ConstraintSet(
        [
            ConstraintSpec("eq", 3, method="penalty", weight=4.0),
            ConstraintSpec("le", 3, kind="le", method="penalty", weight=2.0),
        ],
        dtype=F64,
    )
    g = torch.tensor([1.0, -2.0, 0.5], dtype=F64)
    values = {"eq": g, "le": g}
    f = torch.tensor(0.25, dtype=F64)
    expected = 0.25 + 4.0 * g.square().mean() + 2.0 * g.clamp(min=0).square().mean()
    assert cons.lagrangian(f, values).item() == pytest.approx(expected.item(), rel=1e-15)
    assert cons.primal_energy(f, values).item() == pytest.approx(expected.item(), rel=1e-15)
    assert cons.multipliers == {} and cons.state_dict() == {"multipliers": {}}
    cons.dual_step(values)  # a no-op, not an error
    metrics = cons.metrics(values)
    assert "eq_lambda_rms" not in metrics
    assert metrics["le_penalty"].item() == pytest.approx(2.0 * (1.0 + 0.25) / 3)


# --- checkpoints, devices, shapes -----------------------------------------------------------


def _steps(theta: Tensor, opt: torch.optim.Optimizer, cons: ConstraintSet, n: int) -> None:
    for _ in range(n):
        values = {"rows": A @ theta - B, "pos": -theta[:2]}
        opt.zero_grad()
        cons.lagrangian(0.5 * (theta - TARGET).square().sum(), values).backward()
        opt.step()
        cons.dual_step(values)


def _pair() -> list[ConstraintSpec]:
    return [ConstraintSpec("rows", 3, dual_lr=0.2), ConstraintSpec("pos", 2, kind="le")]


def test_state_dict_round_trip_continues_identically():
    theta = torch.zeros(5, dtype=F64, requires_grad=True)
    opt = torch.optim.Adam([theta], lr=0.05)
    cons = ConstraintSet(_pair(), dtype=F64)
    _steps(theta, opt, cons, 50)
    saved = (theta.detach().clone(), copy.deepcopy(opt.state_dict()), cons.state_dict())
    _steps(theta, opt, cons, 50)

    theta2 = saved[0].clone().requires_grad_(True)
    opt2 = torch.optim.Adam([theta2], lr=0.05)
    opt2.load_state_dict(saved[1])
    cons2 = ConstraintSet(_pair(), dtype=F64)
    cons2.load_state_dict(saved[2])
    _steps(theta2, opt2, cons2, 50)
    assert torch.equal(theta2, theta)
    for name, lam in cons.multipliers.items():
        assert torch.equal(cons2.multipliers[name], lam)


def test_load_converts_dtype_and_to_moves():
    cons = ConstraintSet(_pair(), dtype=F64)
    cons.dual_step({"rows": torch.tensor([1.0, 2.0, 3.0]), "pos": torch.tensor([0.5, -1.0])})
    other = ConstraintSet(_pair(), dtype=torch.float32)
    other.load_state_dict(cons.state_dict())
    assert other.multipliers["rows"].dtype == torch.float32
    assert torch.allclose(other.multipliers["rows"].double(), cons.multipliers["rows"])
    other.to(dtype=F64)
    assert other.dtype == F64 and other.multipliers["pos"].dtype == F64


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_load_onto_another_device():
    cons = ConstraintSet(_pair(), dtype=F64)
    cons.dual_step({"rows": torch.tensor([1.0, 2.0, 3.0]), "pos": torch.tensor([0.5, -1.0])})
    gpu = ConstraintSet(_pair(), device="cuda", dtype=torch.float32)
    gpu.load_state_dict(cons.state_dict())
    assert gpu.multipliers["rows"].device.type == "cuda"
    back = ConstraintSet(_pair(), dtype=F64)
    back.load_state_dict(gpu.to("cpu", F64).state_dict())
    assert torch.allclose(back.multipliers["rows"], cons.multipliers["rows"])


def test_load_state_dict_mismatch_is_an_error_and_changes_nothing():
    cons = ConstraintSet(_pair(), dtype=F64)
    before = {k: v.clone() for k, v in cons.multipliers.items()}
    wrong_shape = {"multipliers": {"rows": torch.ones(4), "pos": torch.ones(2)}}
    with pytest.raises(ConstraintError, match=r"'rows'.*shape \[4\].*expected \[3\]"):
        cons.load_state_dict(wrong_shape)
    with pytest.raises(ConstraintError, match="saved multipliers are for constraints"):
        cons.load_state_dict({"multipliers": {"rows": torch.ones(3)}})
    with pytest.raises(ConstraintError, match="no 'multipliers'"):
        cons.load_state_dict({})
    for name, lam in cons.multipliers.items():
        assert torch.equal(lam, before[name])


@pytest.mark.parametrize(
    ("values", "match"),
    [
        ({"rows": torch.zeros(4), "pos": torch.zeros(2)}, r"'rows'.*shape \[3\].*got \[4\]"),
        ({"rows": torch.zeros(3, 1), "pos": torch.zeros(2)}, r"got \[3, 1\]"),
        ({"rows": torch.zeros(()), "pos": torch.zeros(2)}, r"got \[\]"),
        ({"rows": torch.zeros(3)}, r"missing \['pos'\]"),
        (
            {"rows": torch.zeros(3), "pos": torch.zeros(2), "x": torch.zeros(1)},
            r"unexpected \['x'\]",
        ),
        ({"rows": [0.0, 0.0, 0.0], "pos": torch.zeros(2)}, "must be a tensor"),
    ],
)
def test_values_that_do_not_match_are_errors(values, match):
    cons = ConstraintSet(_pair())
    for method in (cons.dual_step, cons.metrics, cons.max_infeasibility):
        with pytest.raises(ConstraintError, match=match):
            method(values)
    with pytest.raises(ConstraintError, match=match):
        cons.lagrangian(torch.zeros(()), values)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"name": "c", "n": 0},
        {"name": "c", "n": 2.0},
        {"name": "", "n": 1},
        {"name": "c", "n": 1, "kind": "lt"},
        {"name": "c", "n": 1, "method": "alm"},
        {"name": "c", "n": 1, "multiplier": "vector"},
        {"name": "c", "n": 1, "damping": 0.0},
        {"name": "c", "n": 1, "scale": float("inf")},
        {"name": "c", "n": 1, "dual_lr": -1.0},
        {"name": "c", "n": 1, "weight": True},
    ],
)
def test_invalid_specs_are_config_errors(kwargs):
    with pytest.raises(ConfigError):
        ConstraintSpec(**kwargs)


def test_duplicate_names_and_bad_dual_lr_are_config_errors():
    with pytest.raises(ConfigError, match="repeated"):
        ConstraintSet([ConstraintSpec("c", 1), ConstraintSpec("c", 2)])
    with pytest.raises(ConfigError, match="dual_lr"):
        ConstraintSet([ConstraintSpec("c", 1)], dual_lr=0.0)


# --- no host sync ---------------------------------------------------------------------------


def test_no_host_sync(monkeypatch):
    """Nothing reads a tensor back to Python: every conversion to a host number is forbidden."""
    cons = ConstraintSet(_pair() + [ConstraintSpec("pen", 2, method="penalty")])
    values = {"rows": torch.randn(3), "pos": torch.randn(2), "pen": torch.randn(2)}
    live = {name: lam for name, lam in cons.multipliers.items()}

    def forbidden(*args, **kwargs):
        raise AssertionError("host sync")

    for attr in ("item", "tolist", "__float__", "__int__", "__bool__", "numpy"):
        monkeypatch.setattr(Tensor, attr, forbidden)
    cons.dual_step(values)
    cons.dual_step(values, lr_factor=0.5)
    cons.method_of_multipliers_step(values)
    metrics = cons.metrics(values)
    worst = cons.max_infeasibility(values)
    cons.lagrangian(torch.zeros(()), values)
    cons.primal_energy(torch.zeros(()), values)
    monkeypatch.undo()

    assert all(isinstance(v, Tensor) and v.ndim == 0 for v in metrics.values())
    assert set(metrics) == {
        f"{name}_{m}" for name in ("rows", "pos", "pen") for m in ("rms", "max", "penalty")
    } | {"rows_lambda_rms", "pos_lambda_rms"}
    assert isinstance(worst, Tensor) and worst.ndim == 0
    for name, lam in cons.multipliers.items():
        assert lam is live[name]  # updated in place
        assert not lam.requires_grad and not isinstance(lam, torch.nn.Parameter)
    assert (cons.multipliers["pos"] >= 0).all()
