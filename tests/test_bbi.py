"""BBI (pinnsolve.optim.bbi): energy bookkeeping, bounces, reproducibility, batching, the
torch.optim wrapper, and the global-search behaviour on Ackley and a two-well function."""

import copy
import math

import pytest
import torch

from pinnsolve.optim.bbi import (
    BBI,
    BBIConfig,
    bbi_diagnostics,
    bbi_energy,
    bbi_init,
    bbi_resync_energy,
    bbi_step,
    bounce_directions,
    member_seeds,
)

F64 = torch.float64


# --- test functions: value [K] and gradient [K, P] of a batch of points x [K, P] -------------


def bowl(x):
    """0.1 + ½ Σ w_i x_i² with w = (1, 4, ...): smooth, minimum 0.1 (so V stays > 0)."""
    w = torch.arange(1, x.shape[1] + 1, dtype=x.dtype) ** 2
    return 0.1 + 0.5 * (w * x * x).sum(1), w * x


def rosenbrock(x):
    """Σ (1 − x_i)² + 10 (x_{i+1} − x_i²)², minimum 0 at (1, ..., 1)."""
    a, b = x[:, :-1], x[:, 1:]
    f = ((1 - a) ** 2 + 10 * (b - a * a) ** 2).sum(1)
    g = torch.zeros_like(x)
    g[:, :-1] += -2 * (1 - a) - 40 * a * (b - a * a)
    g[:, 1:] += 20 * (b - a * a)
    return f, g


def ackley(x, a=20.0, b=0.2, c=2 * math.pi):
    """Standard Ackley: −a exp(−b sqrt(mean x²)) − exp(mean cos cx) + a + e; 0 at the origin."""
    p = x.shape[1]
    r = torch.sqrt((x * x).mean(1))
    e1, e2 = torch.exp(-b * r), torch.exp(torch.cos(c * x).mean(1))
    f = -a * e1 - e2 + a + math.e
    g = (a * b * e1 / (p * r.clamp_min(1e-300)))[:, None] * x
    return f, g + e2[:, None] * c * torch.sin(c * x) / p


def two_well(x):
    """((x − 1)(x + 1.5))²: zero minima at x = 1 and x = −1.5, barrier 2.44 at x = −0.25."""
    u = (x - 1) * (x + 1.5)
    return (u * u)[:, 0], 2 * u * (2 * x + 0.5)


def run(fn, x, config, seeds, steps):
    """``steps`` BBI steps of a batch; returns the final points and state."""
    f, g = fn(x)
    state = bbi_init(x, f, g, config, seeds)
    for _ in range(steps):
        f, g = fn(x)
        x, state = bbi_step(x, f, g, state, config)
    return x, state


# --- energy ------------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_energy_conserved_with_resync(dtype):
    """Over 10⁴ steps the energy the particle arrives with at each point,
    sqrt(V (V + |π|²)), stays within 1e-6 of E: the re-sync removes each step's
    discretisation error before it accumulates; E, V and |π|² are float64 bookkeeping even for
    float32 parameters. Without re-sync the same measure drifts (printed, not asserted)."""
    x0 = torch.tensor([[-1.2, 1.0], [0.5, -0.8]], dtype=dtype)
    steps = 10_000 if dtype == torch.float64 else 2_000
    worst = {}
    for conserve in (True, False) if dtype == torch.float64 else (True,):
        config = BBIConfig(lr=3e-4, delta_energy=1.0, n_fixed_bounces=0, threshold=None,
                           conserve_energy=conserve)  # fmt: skip
        x = x0.clone()
        f, g = bowl(x)
        state = bbi_init(x, f, g, config, member_seeds(0, 2))
        e0 = state.energy.clone()
        err = torch.zeros(2, dtype=F64)
        for _ in range(steps):
            f, g = bowl(x)
            err = torch.maximum(err, (bbi_energy(f, state, config) - state.energy).abs() / e0)
            x, state = bbi_step(x, f, g, state, config)
        worst[conserve] = err.max().item()
        assert torch.equal(state.energy, e0)  # E itself never re-defined
        assert state.n_resync.sum().item() == 0
    without = f", without {worst[False]:.2e}" if False in worst else ""
    print(f"\nBBI energy, {steps} steps, {dtype}: max |E_measured − E|/E with re-sync "
          f"{worst[True]:.2e}{without}")  # fmt: skip
    assert worst[True] <= 1e-6


def test_diagnostics_speed_is_the_step_length():
    config = BBIConfig(lr=1e-3, delta_energy=5.0)
    x, state = run(rosenbrock, torch.tensor([[-1.2, 1.0, 0.3]], dtype=F64), config,
                   member_seeds(0, 1), 300)  # fmt: skip
    f, g = rosenbrock(x)
    x_new, state = bbi_step(x, f, g, state, config)
    d = bbi_diagnostics(state)
    torch.testing.assert_close(d["speed"], (x_new - x).norm(dim=1) / config.lr)
    assert d["speed"].item() <= math.sqrt(d["v"].item())
    assert d["pi_norm"].item() > 0 and d["bounces"].item() == 0 and d["resyncs"].item() == 0


def test_v_above_e_redefines_energy_and_keeps_momentum():
    """A loss that jumps above E (an MDMM multiplier update not announced to BBI) re-defines
    E ← sqrt(V (V + |π|²)) with the momentum kept, counted in n_resync."""
    config = BBIConfig(lr=1e-3, delta_energy=0.5)
    x, state = run(bowl, torch.tensor([[1.0, 0.5]], dtype=F64), config, member_seeds(0, 1), 50)
    f, g = bowl(x)
    f_jump, g_jump = 10.0 * f + 5.0, 10.0 * g
    assert (f_jump > state.energy).all()
    x_new, new = bbi_step(x, f_jump, g_jump, state, config)
    v, pi2 = f_jump, state.pi.square().sum(1)
    torch.testing.assert_close(new.energy, torch.sqrt(v * (v + pi2)), rtol=1e-14, atol=0)
    assert new.n_resync.item() == 1
    kick = 0.5 * config.lr * (v / new.energy + new.energy / v)
    torch.testing.assert_close(new.pi, state.pi - kick[:, None] * g_jump, rtol=1e-13, atol=0)
    torch.testing.assert_close(x_new, x + config.lr * (v / new.energy)[:, None] * new.pi)
    assert torch.isfinite(new.pi).all()


def test_resync_energy_after_outside_change():
    """bbi_resync_energy re-derives E from the new loss, keeps π, and conservation then holds
    for the new function with no further re-definitions; ``mask`` limits it to some members."""
    config = BBIConfig(lr=1e-3, delta_energy=0.5, n_fixed_bounces=0)
    x, state = run(bowl, torch.tensor([[1.0, 0.5], [-0.7, 0.2]], dtype=F64), config,
                   member_seeds(3, 2), 100)  # fmt: skip

    def changed(x):  # the loss after an outside change (e.g. multipliers): V jumps
        f, g = bowl(x)
        return 3.0 * f + 1.0, 3.0 * g

    f, _ = changed(x)
    only_first = bbi_resync_energy(state, f, config, mask=torch.tensor([True, False]))
    assert only_first.n_resync.tolist() == [1, 0]
    assert only_first.energy[1] == state.energy[1]
    state = bbi_resync_energy(state, f, config)
    torch.testing.assert_close(state.energy, bbi_energy(f, state, config), rtol=1e-15, atol=0)
    assert torch.equal(state.n_resync, torch.tensor([1, 1]))
    e1 = state.energy.clone()
    err = torch.zeros(2, dtype=F64)
    for _ in range(500):
        f, g = changed(x)
        err = torch.maximum(err, (bbi_energy(f, state, config) - e1).abs() / e1)
        x, state = bbi_step(x, f, g, state, config)
    assert torch.equal(state.energy, e1) and state.n_resync.tolist() == [1, 1]
    assert err.max().item() < 1e-4


def test_auto_lower_v0():
    """v0 set above the minimum: when F − v0 reaches v_stop the member's v0 drops to F/2 and
    it keeps moving; with auto_lower_v0=False it stops there."""
    lowered, stopped = BBIConfig(lr=1e-2, v0=0.1), BBIConfig(lr=1e-2, v0=0.1, auto_lower_v0=False)
    x = torch.tensor([[1.0, 0.0]], dtype=F64)

    def shifted(x):  # minimum 0.05 < v0
        f, g = bowl(x)
        return f - 0.05, g

    xa, a = run(shifted, x, lowered, member_seeds(0, 1), 600)
    xb, b = run(shifted, x, stopped, member_seeds(0, 1), 600)
    assert a.n_v0_lowered.item() >= 1 and a.v0.item() < 0.1 and a.active.item()
    assert shifted(xa)[0].item() < 0.1 - 1e-3
    assert b.v0.item() == 0.1 and not b.active.item() and shifted(xb)[0].item() >= 0.1 - 1e-6


# --- stopping and guards -----------------------------------------------------------------


def test_member_at_v_stop_stops_while_others_continue():
    """Member 0 starts next to a zero minimum and reaches V ≤ v_stop; from then on its θ, π
    and counters are frozen while member 1 keeps moving."""
    config = BBIConfig(lr=1e-2, delta_energy=1.0)
    x = torch.tensor([[1.0 + 1e-3], [-0.2]], dtype=F64)
    f, g = two_well(x)
    state = bbi_init(x, f, g, config, member_seeds(0, 2))
    for _ in range(2000):
        f, g = two_well(x)
        x, state = bbi_step(x, f, g, state, config)
        if not state.active[0]:
            break
    assert not state.active[0] and state.active[1]
    assert two_well(x)[0][0].item() <= config.v_stop
    frozen_x, frozen = x.clone(), state
    for _ in range(20):
        f, g = two_well(x)
        x, state = bbi_step(x, f, g, state, config)
    assert torch.equal(x[0], frozen_x[0]) and torch.equal(state.pi[0], frozen.pi[0])
    assert state.step[0] == frozen.step[0] and state.step[1] == frozen.step[1] + 20
    assert not torch.equal(x[1], frozen_x[1])


def test_tiny_v_stays_finite_in_float32():
    """V just above v_stop with E ~ 1 makes E/V ~ 1e11: float32 momentum and steps stay finite
    (the coefficients are formed in float64 and only then cast)."""
    config = BBIConfig(lr=1e-2, delta_energy=1.0)
    x = torch.tensor([[1.0 + 2e-6]], dtype=torch.float32)
    x, state = run(two_well, x, config, member_seeds(0, 1), 50)
    assert state.v.item() < 1e-10 and state.energy.item() > 1
    assert torch.isfinite(state.pi).all() and torch.isfinite(x).all()
    assert state.pi.abs().max().item() > 1e4


def test_non_finite_loss_member_does_not_move():
    config = BBIConfig(lr=1e-2, delta_energy=1.0)
    x = torch.tensor([[1.0, 0.5], [0.3, -0.4]], dtype=F64)
    f, g = bowl(x)
    state = bbi_init(x, f, g, config, member_seeds(0, 2))
    f = torch.tensor([math.nan, f[1].item()], dtype=F64)
    x_new, new = bbi_step(x, f, g, state, config)
    assert new.active.tolist() == [False, True]
    assert torch.equal(x_new[0], x[0]) and not torch.equal(x_new[1], x[1])
    assert torch.isfinite(new.energy).all() and torch.isfinite(new.pi).all()


# --- bounces and randomness --------------------------------------------------------------


def test_member_seeds_match_reference_splitmix64():
    """The int64 tensor hash (wrapping multiply, masked logical shifts) equals SplitMix64
    computed with Python's unbounded integers."""
    m = (1 << 64) - 1

    def mix(z):
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & m
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & m
        return z ^ (z >> 31)

    for run_seed in (0, 12345, 2**63 + 7):
        key = mix((run_seed ^ 0x243F6A8885A308D3) & m)
        expect = [mix((key + (i + 1) * 0x9E3779B97F4A7C15) & m) for i in range(5)]
        got = [v % (1 << 64) for v in member_seeds(run_seed, 5).tolist()]
        assert got == expect


def test_bounce_directions_are_unit_isotropic_and_deterministic():
    seeds = member_seeds(7, 4000)
    d = bounce_directions(seeds, torch.zeros(4000, dtype=torch.int64), 3)
    torch.testing.assert_close(d.norm(dim=1), torch.ones(4000, dtype=F64))
    assert d.mean(0).abs().max() < 0.05
    torch.testing.assert_close(d.T @ d / 4000, torch.eye(3, dtype=F64) / 3, atol=0.03, rtol=0)
    assert torch.equal(d, bounce_directions(seeds, torch.zeros(4000, dtype=torch.int64), 3))
    later = bounce_directions(seeds, torch.ones(4000, dtype=torch.int64), 3)
    assert (d * later).sum(1).abs().max() < 1  # the next bounce of a member is another one


def test_bounce_keeps_speed_and_position_and_turns_momentum():
    """A fixed bounce (step 5 here) keeps θ and |π| (= sqrt(E²/V − V) after the re-sync)
    and draws a new direction."""
    config = BBIConfig(lr=1e-3, delta_energy=1.0, threshold0=5, n_fixed_bounces=1, threshold=None)
    x, state = run(rosenbrock, torch.tensor([[-1.2, 1.0, 0.4]], dtype=F64), config,
                   member_seeds(1, 1), 4)  # fmt: skip
    f, g = rosenbrock(x)
    x_new, new = bbi_step(x, f, g, state, config)
    assert new.n_fixed.item() == 1 and torch.equal(x_new, x)
    torch.testing.assert_close(new.pi.square().sum(1), state.energy**2 / f - f, rtol=1e-12, atol=0)
    cos = (new.pi * state.pi).sum() / (new.pi.norm() * state.pi.norm())
    assert cos.item() < 0.99


def test_progress_bounce_after_patience():
    """A particle oscillating in a bowl stops setting new best losses: after T1 = 20 such steps
    a progress bounce fires (and resets the patience)."""
    config = BBIConfig(lr=0.05, delta_energy=2.0, n_fixed_bounces=0, threshold=20)
    x, state = run(bowl, torch.tensor([[1.0, 0.5]], dtype=F64), config, member_seeds(0, 1), 400)
    assert state.n_progress.item() > 0 and state.n_fixed.item() == 0
    assert state.since_best.item() < 20


def test_same_seed_reproduces_bitwise_and_other_seeds_differ():
    config = BBIConfig(lr=1e-3, delta_energy=2.0, threshold0=20, n_fixed_bounces=5, threshold=50)
    x0 = torch.tensor([[-1.2, 1.0, 0.3]], dtype=F64).expand(4, -1).clone()
    seeds = member_seeds(11, 4)
    xa, a = run(rosenbrock, x0, config, seeds, 300)
    xb, b = run(rosenbrock, x0, config, seeds, 300)
    assert torch.equal(xa, xb) and torch.equal(a.pi, b.pi) and torch.equal(a.energy, b.energy)
    assert (a.n_fixed == 5).all()
    assert len({tuple(row) for row in xa.tolist()}) == 4  # same θ0, different bounce seeds


def test_batched_step_equals_single_steps():
    config = BBIConfig(lr=2e-3, delta_energy=1.0, threshold0=15, n_fixed_bounces=3, threshold=40)
    x0 = torch.tensor([[-1.2, 1.0, 0.3], [0.5, 0.5, 0.5], [2.0, -1.0, 1.0]], dtype=F64)
    seeds = member_seeds(5, 3)
    xb, batched = run(rosenbrock, x0, config, seeds, 200)
    for k in range(3):
        xs, single = run(rosenbrock, x0[k : k + 1], config, seeds[k : k + 1], 200)
        torch.testing.assert_close(xb[k : k + 1], xs, rtol=1e-12, atol=1e-14)
        torch.testing.assert_close(batched.pi[k : k + 1], single.pi, rtol=1e-12, atol=1e-14)
        for name in ("energy", "n_fixed", "n_progress", "step", "best_loss"):
            torch.testing.assert_close(getattr(batched, name)[k], getattr(single, name)[0])


# --- global search -------------------------------------------------------------------------


def test_ackley_bbi_reaches_global_basin_where_gd_and_adam_stall():
    """Standard 2-D Ackley (a = 20, b = 0.2, c = 2π; not the reference's b = 0.02) from
    (−3.7, −2.6): gradient descent (lr 0.01) and Adam (lr 0.01, default betas) each stop, after
    3000 steps, in the local minimum near (−3.98, −2.98). BBI with lr 0.01, v0 = 0, δE = 0,
    eta = 2, T0 = 20, N_b = 4, T1 = 100 ends in |x| < 0.1 within 3000 steps for ≥ 80 % of 20
    bounce seeds (one batched K = 20 run; 99 % over 10 run seeds × 20); the same settings
    without bounces do not.

    eta = 2 because Ackley's minimum is a cone (V ∝ |x|): plain BBI moves at speed ~ sqrt(V)
    and reaches the apex in finite time, so it passes through the global minimum and leaves
    (it visits the basin but does not end there); g = V² turns the cone into a quadratic well,
    where the approach is asymptotic and the particle stays."""
    start = torch.tensor([[-3.7, -2.6]], dtype=F64)
    x = start.clone()
    for _ in range(3000):
        x = x - 0.01 * ackley(x)[1]
    assert x.norm() > 4 and ackley(x)[1].norm() < 1e-6
    p = start.clone().requires_grad_(True)
    adam = torch.optim.Adam([p], lr=0.01)
    for _ in range(3000):
        p.grad = ackley(p.detach())[1]
        adam.step()
    assert p.detach().norm() > 4 and ackley(p.detach())[0].item() > 8

    config = BBIConfig(lr=0.01, eta=2.0, threshold0=20, n_fixed_bounces=4, threshold=100)
    xb, state = run(ackley, start.expand(20, -1).clone(), config, member_seeds(0, 20), 3000)
    success = (xb.norm(dim=1) < 0.1).float().mean().item()
    print(f"\nBBI on Ackley from (−3.7, −2.6): {success:.0%} of 20 seeds in |x| < 0.1")
    assert success >= 0.8
    no_bounce = BBIConfig(lr=0.01, eta=2.0, n_fixed_bounces=0, threshold=None)
    xn, _ = run(ackley, start.clone(), no_bounce, member_seeds(0, 1), 3000)
    assert xn.norm() > 0.1


def test_two_well_seeds_end_in_both_wells():
    """From x = −0.2 (beside the barrier top) with δE = 1 > barrier − V(x0), one fixed bounce
    at step 5 decides the direction: different seeds end in each zero minimum and stop there
    (V ≤ v_stop). With δE = 0 (E below the barrier) every seed stays on the starting side."""
    x0 = torch.full((20, 1), -0.2, dtype=F64)
    config = BBIConfig(lr=0.01, delta_energy=1.0, threshold0=5, n_fixed_bounces=1, threshold=None)
    x, state = run(two_well, x0, config, member_seeds(0, 20), 1000)
    left, right = (x[:, 0] + 1.5).abs() < 1e-3, (x[:, 0] - 1).abs() < 1e-3
    assert left.sum() >= 3 and right.sum() >= 3 and (left | right).all()
    assert not state.active.any()
    x, _ = run(two_well, x0, BBIConfig(lr=0.01, threshold0=5, threshold=None),
               member_seeds(0, 20), 1000)  # fmt: skip
    assert ((x[:, 0] - 1).abs() < 1e-3).all()


# --- torch.optim wrapper ----------------------------------------------------------------


def _model_and_closure(dtype=torch.float64):
    """Two parameter tensors, loss = Rosenbrock of their concatenation."""
    torch.manual_seed(0)
    a = torch.nn.Parameter(torch.tensor([-1.2, 1.0], dtype=dtype))
    b = torch.nn.Parameter(torch.tensor([[0.3]], dtype=dtype))

    def make(opt):
        def closure():
            opt.zero_grad()
            loss = rosenbrock(torch.cat([a, b.reshape(-1)])[None])[0][0]
            loss.backward()
            return loss

        return closure

    return [a, b], make


def test_optimizer_matches_functional_core():
    params, make = _model_and_closure()
    opt = BBI(params, lr=2e-3, delta_energy=1.0, threshold0=10, n_fixed_bounces=2, seed=3)
    closure = make(opt)
    for _ in range(60):
        opt.step(closure)
    config = BBIConfig(lr=2e-3, delta_energy=1.0, threshold0=10, n_fixed_bounces=2)
    x, state = run(rosenbrock, torch.tensor([[-1.2, 1.0, 0.3]], dtype=F64), config,
                   member_seeds(3, 1), 60)  # fmt: skip
    torch.testing.assert_close(torch.cat([p.detach().reshape(-1) for p in params]), x[0])
    assert opt.diagnostics()["bounces"].item() == 2 == state.n_fixed.item()


def test_optimizer_state_dict_round_trip_continues_identically():
    params, make = _model_and_closure(torch.float32)
    kwargs = dict(lr=2e-3, delta_energy=1.0, threshold0=7, n_fixed_bounces=4, threshold=15)
    opt = BBI(params, seed=9, **kwargs)
    closure = make(opt)
    for _ in range(30):
        opt.step(closure)
    saved = copy.deepcopy(opt.state_dict())
    saved_params = [p.detach().clone() for p in params]
    for _ in range(40):
        opt.step(closure)
    expected = [p.detach().clone() for p in params]

    params2, make2 = _model_and_closure(torch.float32)
    with torch.no_grad():
        for p, s in zip(params2, saved_params, strict=True):
            p.copy_(s)
    opt2 = BBI(params2, seed=0, **kwargs)
    opt2.load_state_dict(saved)
    assert opt2._bbi.energy.dtype == F64  # not cast to the float32 parameter dtype
    closure2 = make2(opt2)
    for _ in range(40):
        opt2.step(closure2)
    for p, e in zip(params2, expected, strict=True):
        assert torch.equal(p.detach(), e)
    assert opt2.diagnostics()["bounces"].item() == opt.diagnostics()["bounces"].item() > 4


def test_optimizer_resync_energy_is_applied_at_next_step():
    params, make = _model_and_closure()
    opt = BBI(params, lr=1e-3, delta_energy=0.5)
    closure = make(opt)
    for _ in range(20):
        opt.step(closure)
    scale = 4.0

    def scaled():  # the loss function changed from outside
        opt.zero_grad()
        loss = scale * rosenbrock(torch.cat([params[0], params[1].reshape(-1)])[None])[0][0]
        loss.backward()
        return loss

    opt.resync_energy()
    loss = opt.step(scaled)
    d = opt.diagnostics()
    assert d["resyncs"].item() == 1
    assert d["energy"].item() >= loss.item()


def test_optimizer_rejects_bad_setups():
    a = torch.nn.Parameter(torch.zeros(2))
    with pytest.raises(ValueError, match="single parameter group"):
        BBI([{"params": [a]}, {"params": [torch.nn.Parameter(torch.zeros(1))]}], lr=1e-3)
    with pytest.raises(ValueError, match="one dtype"):
        BBI([a, torch.nn.Parameter(torch.zeros(2, dtype=F64))], lr=1e-3)
    with pytest.raises(ValueError, match="closure"):
        BBI([a], lr=1e-3).step(None)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        (dict(lr=0.0), "lr"),
        (dict(lr=math.nan), "finite"),
        (dict(lr=1e-3, delta_energy=-1.0), "delta_energy"),
        (dict(lr=1e-3, threshold0=0), "threshold0"),
        (dict(lr=1e-3, n_fixed_bounces=-1), "n_fixed_bounces"),
        (dict(lr=1e-3, threshold=0), "threshold"),
        (dict(lr=1e-3, threshold=2.5), "threshold"),
        (dict(lr=1e-3, eta=0.0), "eta"),
        (dict(lr=1e-3, v_stop=-1.0), "v_stop"),
        (dict(lr=1e-3, conserve_energy=1), "conserve_energy"),
        (dict(lr="0.1"), "number"),
    ],
)
def test_config_validation(kwargs, message):
    with pytest.raises(ValueError, match=message):
        BBIConfig(**kwargs)
