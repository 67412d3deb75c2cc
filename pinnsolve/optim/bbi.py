"""BBI: Born–Infeld energy-conserving descent with random momentum bounces.

De Luca & Silverstein, "Born-Infeld (BI) for AI: Energy-Conserving Descent (ECD) for
Optimization", ICML 2022 (arXiv 2201.11137). The parameters θ move as a frictionless particle in
the potential ``V(θ) = g(F(θ) − v0)`` (F the loss, ``g(V) = V**eta``, plain BBI: eta = 1) with the
Born–Infeld Hamiltonian, whose energy

    E = sqrt( V (V + |π|²) )

is conserved. Hamilton's equations give

    dπ/dt = −½ (V/E + E/V) ∇V,        dθ/dt = (V/E) π,

so the speed ``|dθ/dt| = sqrt(V − V³/E²)`` goes to zero where V does: the particle slows down in
low regions and never stays in a high local minimum (it keeps its energy), while a minimum with
V = 0 is approached asymptotically and ends the trajectory. Random *bounces* (the direction of π
redrawn, its size kept) make the motion chaotic, so trajectories that differ only in their bounce
seeds fan out over different low basins.

Two layers:

* a functional core on K independent trajectories ("members") stacked as ``theta`` [K, P]:
  :func:`bbi_init`, :func:`bbi_step`, :func:`bbi_resync_energy`, :func:`bbi_energy`,
  :func:`bbi_diagnostics`, with explicit state (:class:`BBIState`). Every per-member scalar is a
  [K] tensor, every norm is per member, E, V and |π|² are float64 whatever the parameter dtype,
  and a step never reads a value back to the host (no ``.item()``, no Python branch on tensor
  values): bounces and stops are selected with masks, so a step can be captured in a CUDA graph;
* :class:`BBI`, a ``torch.optim.Optimizer`` for one trajectory (K = 1) over any list of
  parameters, driven by a closure as L-BFGS is.

Bounce randomness is counter-based: the direction of member k's n-th bounce is a fixed function
of (seed_k, n, component index), computed by a SplitMix64 hash in int64 tensor arithmetic (see
:func:`bounce_directions`). Hence no generator objects: a batched K-member step equals K single
steps, checkpoints need only the counters, and the same seed reproduces a run bit for bit.

One module (about 600 lines) on purpose: the BBI algorithm (``../shared/algorithms/bbi.md``),
its functional core on ``[K, P]`` and the ``torch.optim`` wrapper that users drop into their own
loops are one method, kept in one readable file.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, fields, replace
from numbers import Integral
from typing import Any

import torch
from torch import Tensor

__all__ = [
    "BBI",
    "V_FLOOR",
    "BBIConfig",
    "BBIState",
    "bbi_diagnostics",
    "bbi_energy",
    "bbi_init",
    "bbi_resync_energy",
    "bbi_step",
    "bounce_directions",
    "member_seeds",
]

V_FLOOR = 1e-40
"""Smallest g(V) a member moves at (the reference's eps2); V/E and E/V stay finite above it."""


@dataclass(frozen=True)
class BBIConfig:
    """Hyper-parameters of BBI (names follow the reference where it has one).

    Attributes:
        lr: time step dt of the discretised flow.
        v0: offset of the potential, V = F − v0; it should not exceed min F (V must stay > 0).
            With a non-negative loss (a PINN loss), v0 = 0 makes a zero-loss solution a V = 0
            minimum that the particle falls into and stops at.
        delta_energy: δE ≥ 0, the energy above V at the start (E = g(V(θ0)) + δE). With 0 the
            particle starts at rest and accelerates along −∇V; a larger δE lets it climb
            barriers up to E.
        threshold0: T0, period of the fixed bounces: they fire at steps T0, 2·T0, …, N_b·T0.
        n_fixed_bounces: N_b, how many fixed bounces in total (0: none).
        threshold: T1, a progress bounce fires after this many steps without a new best loss;
            ``None`` switches progress bounces off.
        conserve_energy: rescale π at each step so that |π|² = E²/V − V exactly (E conserved
            despite the discretisation).
        eta: use g(V) = V**eta as the potential; eta > 1 sharpens the slow-down near minima.
        v_stop: a member whose V = F − v0 is at or below this is "solved" and does not move.
        auto_lower_v0: when v0 > 0 was set too high (F − v0 ≤ v_stop although F/2 > v_stop),
            lower that member's v0 to F/2, so V = F/2: the particle keeps falling towards F = 0
            instead of stopping (the slides' adaptive ΔV; it assumes a non-negative loss). The
            energy is then re-derived (counted as a resync). With F/2 ≤ v_stop the member is
            solved and stops.
    """

    lr: float
    v0: float = 0.0
    delta_energy: float = 0.0
    threshold0: int = 1000
    n_fixed_bounces: int = 1
    threshold: int | None = 3000
    conserve_energy: bool = True
    eta: float = 1.0
    v_stop: float = 1e-12
    auto_lower_v0: bool = True

    def __post_init__(self) -> None:
        def finite(name: str) -> float:
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise ValueError(f"BBIConfig.{name} must be a number, got {value!r}")
            if not math.isfinite(value):
                raise ValueError(f"BBIConfig.{name} must be finite, got {value!r}")
            return float(value)

        def count(name: str, minimum: int) -> None:
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, Integral) or value < minimum:
                raise ValueError(f"BBIConfig.{name} must be an integer >= {minimum}, got {value!r}")

        if finite("lr") <= 0:
            raise ValueError(f"BBIConfig.lr (the time step dt) must be > 0, got {self.lr!r}")
        finite("v0")
        if finite("delta_energy") < 0:
            raise ValueError(f"BBIConfig.delta_energy must be >= 0, got {self.delta_energy!r}")
        count("threshold0", 1)
        count("n_fixed_bounces", 0)
        if self.threshold is not None:
            count("threshold", 1)
        if finite("eta") <= 0:
            raise ValueError(f"BBIConfig.eta (g(V) = V**eta) must be > 0, got {self.eta!r}")
        if finite("v_stop") < 0:
            raise ValueError(f"BBIConfig.v_stop must be >= 0, got {self.v_stop!r}")
        for name in ("conserve_energy", "auto_lower_v0"):
            if not isinstance(getattr(self, name), bool):
                raise ValueError(f"BBIConfig.{name} must be a bool, got {getattr(self, name)!r}")


@dataclass(frozen=True)
class BBIState:
    """State of K BBI trajectories; every field is a tensor with the member index first.

    Attributes:
        energy: E [K] float64, the conserved energy.
        pi: momentum π [K, P] in the parameter dtype.
        v0: per-member offset [K] float64 (starts at ``config.v0``; lowered by auto_lower_v0).
        v: g(V) [K] float64 at the point of the last step (or of the start).
        best_loss: lowest loss F seen [K] float64 (V_min + v0 of the reference; F does not
            depend on v0, so lowering v0 does not fake progress).
        step: steps taken while active [K] int64 (bounce steps included).
        since_best: steps since the last new best loss [K] int64 (reset by any bounce).
        n_fixed, n_progress: fixed and progress bounces done [K] int64.
        n_resync: times E was re-derived from V and π [K] int64: V > E at a step (an outside
            change of the loss the caller did not announce, or a discretisation overshoot),
            a v0 lowering, or :func:`bbi_resync_energy`.
        n_v0_lowered: times v0 was lowered [K] int64.
        active: whether the member was live at its last step [K] bool: false at V ≤ v_stop,
            g(V) ≤ V_FLOOR, or a non-finite loss or gradient. Recomputed at every step, so a
            stopped member resumes if an outside change of the loss raises its V again.
        seed: the member's bounce seed [K] int64 (see :func:`member_seeds`).
    """

    energy: Tensor
    pi: Tensor
    v0: Tensor
    v: Tensor
    best_loss: Tensor
    step: Tensor
    since_best: Tensor
    n_fixed: Tensor
    n_progress: Tensor
    n_resync: Tensor
    n_v0_lowered: Tensor
    active: Tensor
    seed: Tensor

    def state_dict(self) -> dict[str, Tensor]:
        """The fields by name (references, as ``nn.Module.state_dict``; the core never mutates)."""
        return {f.name: getattr(self, f.name) for f in fields(self)}

    @classmethod
    def from_state_dict(
        cls, state: dict[str, Tensor], device: torch.device | str | None = None
    ) -> BBIState:
        """Rebuild from :meth:`state_dict`, optionally onto ``device`` (dtypes are kept)."""
        names = {f.name for f in fields(cls)}
        if set(state) != names:
            raise ValueError(
                f"BBIState.from_state_dict: expected keys {sorted(names)}, got {sorted(state)}"
            )
        return cls(**{k: torch.as_tensor(v).to(device) for k, v in state.items()})


# ---------------------------------------------------------------------------------------------
# Counter-based randomness: SplitMix64 in int64 tensor arithmetic.
#
# torch has no uint64 arithmetic, so the 64-bit words live in int64: addition and multiplication
# wrap modulo 2**64 exactly as unsigned ones do (two's complement), but ``>>`` is arithmetic
# (it copies the sign bit), so a logical shift masks the high bits off afterwards.

_U64 = 1 << 64


def _i64(x: int) -> int:
    """The int64 with the same 64 bits as the unsigned ``x`` (mod 2**64)."""
    x %= _U64
    return x - _U64 if x >= 1 << 63 else x


_GAMMA = _i64(0x9E3779B97F4A7C15)  # SplitMix64 increment (2**64 / golden ratio, odd)
_MUL1 = _i64(0xBF58476D1CE4E5B9)
_MUL2 = _i64(0x94D049BB133111EB)
_SALT_RUN = _i64(0x243F6A8885A308D3)  # digits of π: run seeds are not used as stream keys raw


def _shr(x: Tensor, s: int) -> Tensor:
    """Logical right shift of int64 words by ``s`` bits."""
    return (x >> s) & ((1 << (64 - s)) - 1)


def _mix64(z: Tensor) -> Tensor:
    """SplitMix64's output function (Stafford's mix13): a bijection of 64-bit words whose
    every output bit depends on every input bit."""
    z = (z ^ _shr(z, 30)) * _MUL1
    z = (z ^ _shr(z, 27)) * _MUL2
    return z ^ _shr(z, 31)


def _stream(key: Tensor, index: Tensor) -> Tensor:
    """Word ``index`` (0-based) of the SplitMix64 stream that starts at state ``key``."""
    return _mix64(key + (index + 1) * _GAMMA)


def member_seeds(run_seed: int, k: int, device: torch.device | str | None = None) -> Tensor:
    """Bounce seeds [k] int64 of trajectories 0..k−1 of a run: word i of the SplitMix64 stream
    keyed by the (salted, mixed) run seed, so a member's stream depends only on (run seed, i)
    and runs with more members extend runs with fewer."""
    if k < 0:
        raise ValueError(f"member_seeds: k must be >= 0, got {k}")
    key = _mix64(torch.tensor(_i64(run_seed) ^ _SALT_RUN, dtype=torch.int64, device=device))
    return _stream(key, torch.arange(k, dtype=torch.int64, device=device))


def bounce_directions(
    seeds: Tensor, counts: Tensor, size: int, dtype: torch.dtype = torch.float64
) -> Tensor:
    """Unit vectors [K, size]: row k is the direction of member k's bounce number ``counts[k]``.

    Isotropic: components are independent standard normals (normalised), so the direction is
    uniform on the sphere — unlike the reference's uniform noise in [−½, ½]^P, which prefers the
    cube's diagonals. Member k's n-th bounce reads the SplitMix64 stream keyed by word n of the
    stream of seed_k; word j gives u1 ∈ (0, 1) (high 32 bits) and u2 ∈ [0, 1) (low 32 bits),
    and Box–Muller turns them into the normals sqrt(−2 ln u1)·(cos 2πu2, sin 2πu2) of components
    2j and 2j+1. 32-bit uniforms cut the normal's tails at 6.7σ, irrelevant for a direction.
    Only int64/float64 tensor arithmetic on the seeds' device, no generator state.
    """
    key = _stream(seeds, counts)[:, None]  # [K, 1]: one stream per (member, bounce)
    words = _stream(key, torch.arange((size + 1) // 2, dtype=torch.int64, device=seeds.device))
    radius = torch.sqrt(-2.0 * torch.log((_shr(words, 32).to(torch.float64) + 0.5) * 2.0**-32))
    angle = (words & 0xFFFFFFFF).to(torch.float64) * (2.0 * math.pi * 2.0**-32)
    z = torch.stack((radius * torch.cos(angle), radius * torch.sin(angle)), dim=2)
    z = z.reshape(len(seeds), -1)[:, :size]
    z = z / torch.linalg.vector_norm(z, dim=1, keepdim=True).clamp_min(1e-300)
    return z.to(dtype)


# ---------------------------------------------------------------------------------------------
# Functional core.


def _check_shapes(theta: Tensor, loss: Tensor, grad: Tensor) -> None:
    if theta.ndim != 2 or grad.shape != theta.shape or loss.shape != theta.shape[:1]:
        raise ValueError(
            "BBI expects theta [K, P], loss [K] and grad [K, P]; got "
            f"{tuple(theta.shape)}, {tuple(loss.shape)}, {tuple(grad.shape)}"
        )


def _potential(
    loss: Tensor, v0: Tensor, config: BBIConfig
) -> tuple[Tensor, Tensor, Tensor, Tensor, Tensor]:
    """V = F − v0 after the optional v0 lowering, and g(V) = V**eta with g'(V).

    Returns (v0, V, g(V), g'(V), lowered), all [K] float64 (lowered: bool). Values are raw:
    members that cannot move (V ≤ v_stop) are masked by the caller, never branched on.
    """
    f = loss.to(torch.float64)
    if config.auto_lower_v0 and config.v0 > 0:  # v0 only ever decreases: ≤ 0 stays ≤ 0
        # F − v0 ≤ v_stop < F/2 implies F/2 < v0: lowering to F/2 only ever lowers.
        lowered = (v0 > 0) & (f - v0 <= config.v_stop) & (0.5 * f > config.v_stop)
        v0 = torch.where(lowered, 0.5 * f, v0)
    else:
        lowered = torch.zeros_like(f, dtype=torch.bool)
    v = f - v0
    if config.eta == 1.0:
        return v0, v, v, torch.ones_like(v), lowered
    vpos = v.clamp_min(0.0)
    return v0, v, vpos**config.eta, config.eta * vpos ** (config.eta - 1.0), lowered


def _can_move(v: Tensor, gv: Tensor, grad: Tensor, config: BBIConfig) -> Tensor:
    """[K] bool: V above v_stop, g(V) above V_FLOOR, loss and gradient finite."""
    finite = torch.isfinite(gv) & torch.isfinite(grad).all(dim=1)
    return finite & (v > config.v_stop) & (gv > V_FLOOR)


def _norm2(x: Tensor) -> Tensor:
    """Per-member |x|² [K] accumulated in float64 (a float32 sum over P drifts)."""
    return torch.linalg.vector_norm(x, dim=1, dtype=torch.float64).square()


def _col(x: Tensor, dtype: torch.dtype) -> Tensor:
    """A [K] float64 coefficient as a [K, 1] column in the parameter dtype."""
    return x.to(dtype)[:, None]


@torch.no_grad()
def bbi_init(
    theta: Tensor, loss: Tensor, grad: Tensor, config: BBIConfig, seeds: Tensor
) -> BBIState:
    """Start K trajectories at ``theta`` [K, P] with loss F [K] and gradient ∇F [K, P].

    E = g(V) + δE and π = −(∇V/|∇V|)·sqrt(E²/V − V), with one norm over all P parameters of a
    member (the reference normalises each tensor separately, which gives the wrong |π|). With
    δE = 0 the momentum is zero; a zero gradient leaves π = 0. ``seeds`` [K] int64 (see
    :func:`member_seeds`) key the members' bounce streams.
    """
    _check_shapes(theta, loss, grad)
    k = theta.shape[0]
    if seeds.shape != (k,) or seeds.dtype != torch.int64:
        raise ValueError(f"bbi_init: seeds must be int64 of shape ({k},), got {seeds.dtype} "
                         f"{tuple(seeds.shape)}")  # fmt: skip
    v0 = torch.full((k,), float(config.v0), dtype=torch.float64, device=theta.device)
    v0, v, gv, _, lowered = _potential(loss, v0, config)
    active = _can_move(v, gv, grad, config)
    gv_safe = torch.where(active, gv, 1.0)
    energy = gv_safe + config.delta_energy
    size = (energy.square() / gv_safe - gv_safe).clamp_min(0.0).sqrt()
    gnorm = torch.linalg.vector_norm(grad, dim=1, dtype=torch.float64)  # ∇g(V) ∥ ∇F, g' > 0
    coef = torch.where(active & (gnorm > 0), -size / gnorm.clamp_min(1e-300), 0.0)
    zeros = torch.zeros(k, dtype=torch.int64, device=theta.device)
    return BBIState(
        energy=torch.where(active, energy, gv),
        pi=_col(coef, theta.dtype) * grad,
        v0=v0,
        v=gv,
        best_loss=loss.to(torch.float64),
        step=zeros,
        since_best=zeros,
        n_fixed=zeros,
        n_progress=zeros,
        n_resync=zeros,
        n_v0_lowered=lowered.to(torch.int64),
        active=active,
        seed=seeds.to(theta.device),
    )


@torch.no_grad()
def bbi_step(
    theta: Tensor, loss: Tensor, grad: Tensor, state: BBIState, config: BBIConfig
) -> tuple[Tensor, BBIState]:
    """One BBI step of all K members; out of place: returns (new theta, new state).

    ``loss`` [K] and ``grad`` [K, P] are F and ∇F at ``theta``. For each member that can move
    (V > v_stop, finite values; others keep θ, π and their counters):

    1. energy bookkeeping: if V > E (|π|²* = E²/V − V < 0 — the loss changed from outside, or a
       discrete overshoot) or v0 was just lowered, re-define E ← sqrt(V (V + |π|²)) keeping π
       (counted in ``n_resync``); else with ``conserve_energy`` rescale π so that
       |π|² = E²/V − V exactly (no-op when π = 0). Re-definitions during plain stepping, with
       no outside change, mean dt is too large: each raises E and they can run away to
       overflow (the member then stops as non-finite) — watch ``n_resync``;
    2. a new best loss resets ``since_best``;
    3. a bounce — fixed (every T0 steps, N_b in all) or progress (T1 steps without a new best) —
       keeps θ and replaces π by |π| times a fresh isotropic direction;
    4. otherwise π ← π − (dt/2)(V/E + E/V) ∇V, then θ ← θ + dt (V/E) π.

    Everything is masks and ``torch.where``: no host synchronisation, so the step is graph-
    capturable. When bounces are configured, the bounce direction is computed for every member
    at every step (O(K·P) integer work, about as much as the rest of the step) and selected
    where a bounce fires.
    """
    _check_shapes(theta, loss, grad)
    dtype = theta.dtype
    v0, v, gv, dg, lowered = _potential(loss, state.v0, config)
    active = _can_move(v, gv, grad, config)
    gv_s = torch.where(active, gv, 1.0)  # safe denominators for members that do not move
    pi2 = _norm2(state.pi)

    resync = active & (lowered | (state.energy < gv_s))
    energy = torch.where(resync, torch.sqrt(gv_s * (gv_s + pi2)), state.energy)
    e_s = torch.where(active, energy, 1.0)
    pi = state.pi
    if config.conserve_energy:
        target = (e_s.square() / gv_s - gv_s).clamp_min(0.0)
        rescale = active & (pi2 > 0)
        pi = pi * _col(torch.where(rescale, torch.sqrt(target / pi2.clamp_min(1e-300)), 1.0), dtype)
        pi2 = torch.where(rescale, target, pi2)

    f = loss.to(torch.float64)
    improved = active & (f < state.best_loss)
    best_loss = torch.where(improved, f, state.best_loss)
    since_best = torch.where(improved, 0, state.since_best + active.to(torch.int64))

    step = state.step + active.to(torch.int64)
    fixed = active & (state.n_fixed < config.n_fixed_bounces) & (step % config.threshold0 == 0)
    if config.threshold is None:
        progress = torch.zeros_like(fixed)
    else:
        progress = active & ~fixed & (since_best >= config.threshold)
    bounce = fixed | progress
    since_best = torch.where(bounce, 0, since_best)

    kick = 0.5 * config.lr * (gv_s / e_s + e_s / gv_s) * dg
    pi_move = pi - _col(kick, dtype) * grad
    theta_move = theta + _col(config.lr * gv_s / e_s, dtype) * pi_move
    moves = active & ~bounce
    new_theta = torch.where(moves[:, None], theta_move, theta)
    new_pi = torch.where(moves[:, None], pi_move, state.pi)
    if config.n_fixed_bounces > 0 or config.threshold is not None:  # static: bounces can fire
        done = state.n_fixed + state.n_progress
        direction = bounce_directions(state.seed, done, pi.shape[1], dtype)
        new_pi = torch.where(bounce[:, None], direction * _col(pi2.sqrt(), dtype), new_pi)
    return new_theta, replace(
        state,
        energy=energy,
        pi=new_pi,
        v0=torch.where(active, v0, state.v0),
        v=gv,
        best_loss=best_loss,
        step=step,
        since_best=since_best,
        n_fixed=state.n_fixed + fixed.to(torch.int64),
        n_progress=state.n_progress + progress.to(torch.int64),
        n_resync=state.n_resync + resync.to(torch.int64),
        n_v0_lowered=state.n_v0_lowered + (lowered & active).to(torch.int64),
        active=active,
    )


@torch.no_grad()
def bbi_energy(loss: Tensor, state: BBIState, config: BBIConfig) -> Tensor:
    """Measured energy [K] float64 of the particle at a point with loss F and momentum
    ``state.pi``: sqrt(V (V + |π|²)), V = g(F − v0) (v0 as it stands, without lowering)."""
    gv = _potential(loss, state.v0, replace(config, auto_lower_v0=False))[2]
    return torch.sqrt(gv * (gv + _norm2(state.pi)))


@torch.no_grad()
def bbi_resync_energy(
    state: BBIState, loss: Tensor, config: BBIConfig, mask: Tensor | None = None
) -> BBIState:
    """Re-define E ← sqrt(V (V + |π|²)) from the loss F [K] at the current θ, keeping π.

    Call it after changing the loss function from outside the optimizer (an MDMM multiplier
    update, new collocation points): V jumps, and with E kept the bookkeeping would break
    (V > E: no valid |π|). Re-deriving E keeps the momentum and makes the next step's
    conservation exact again. ``mask`` [K] bool restricts it to some members. The v0 lowering
    of ``auto_lower_v0`` applies, as at a step. Counted in ``n_resync``.
    """
    v0, _, gv, _, lowered = _potential(loss, state.v0, config)
    redo = torch.isfinite(gv) if mask is None else mask & torch.isfinite(gv)
    energy = torch.sqrt(gv.clamp_min(0.0) * (gv.clamp_min(0.0) + _norm2(state.pi)))
    return replace(
        state,
        energy=torch.where(redo, energy, state.energy),
        v0=torch.where(redo, v0, state.v0),
        v=torch.where(redo, gv, state.v),
        n_resync=state.n_resync + redo.to(torch.int64),
        n_v0_lowered=state.n_v0_lowered + (redo & lowered).to(torch.int64),
    )


@torch.no_grad()
def bbi_diagnostics(state: BBIState) -> dict[str, Tensor]:
    """Per-member [K] diagnostics, device tensors (copy them to the host when logging).

    ``v`` is g(V) at the last step's point, ``energy`` E, ``pi_norm`` |π| after that step and
    ``speed`` (V/E)|π| = |dθ/dt| (after a moving step exactly |Δθ|/dt; in the continuous flow
    sqrt(V − V³/E²) ≤ sqrt(V)); plus ``bounces`` (fixed + progress), ``resyncs``,
    ``best_loss``, ``v0`` and ``active``.
    """
    pi_norm = _norm2(state.pi).sqrt()
    return {
        "v": state.v,
        "energy": state.energy,
        "pi_norm": pi_norm,
        "speed": state.v / state.energy.clamp_min(V_FLOOR) * pi_norm,
        "bounces": state.n_fixed + state.n_progress,
        "resyncs": state.n_resync,
        "best_loss": state.best_loss,
        "v0": state.v0,
        "active": state.active,
    }


# ---------------------------------------------------------------------------------------------
# torch.optim interface.


class BBI(torch.optim.Optimizer):
    """BBI for one trajectory over any parameters, driven by a closure (like L-BFGS).

    All parameters form one vector θ (one global |π|, one energy), so they must share a dtype
    and device, and there is a single parameter group. ``step(closure)`` calls the closure,
    which must zero the gradients, compute the loss, call ``backward()`` and return the loss;
    then it takes one BBI step (the first call also starts the trajectory) and returns that
    loss, measured before the step. Hyper-parameters are those of :class:`BBIConfig` and are
    read from the parameter group at every step, so schedulers may change ``lr``. ``seed`` is
    the run seed; this trajectory is member 0 of :func:`member_seeds` (seed), the same stream as
    member 0 of a batched run with that seed.
    """

    def __init__(
        self,
        params: Iterable[Tensor] | Iterable[dict[str, Any]],
        lr: float,
        *,
        v0: float = 0.0,
        delta_energy: float = 0.0,
        threshold0: int = 1000,
        n_fixed_bounces: int = 1,
        threshold: int | None = 3000,
        conserve_energy: bool = True,
        eta: float = 1.0,
        v_stop: float = 1e-12,
        auto_lower_v0: bool = True,
        seed: int = 0,
    ):
        config = BBIConfig(
            lr=lr, v0=v0, delta_energy=delta_energy, threshold0=threshold0,
            n_fixed_bounces=n_fixed_bounces, threshold=threshold,
            conserve_energy=conserve_energy, eta=eta, v_stop=v_stop, auto_lower_v0=auto_lower_v0,
        )  # fmt: skip
        super().__init__(params, {**asdict(config), "seed": int(seed)})
        if len(self.param_groups) != 1:
            raise ValueError("BBI takes a single parameter group (one trajectory, one |π|)")
        ps = self.param_groups[0]["params"]
        if len({(p.dtype, p.device) for p in ps}) > 1:
            raise ValueError("BBI needs all parameters on one device with one dtype")
        self._bbi: BBIState | None = None
        self._resync_pending = False

    def _config(self) -> BBIConfig:
        group = self.param_groups[0]
        return BBIConfig(**{f.name: group[f.name] for f in fields(BBIConfig)})

    def resync_energy(self) -> None:
        """Announce that the loss function changed (multipliers, collocation points): the next
        ``step`` re-derives E from the new loss at the current point before moving
        (:func:`bbi_resync_energy`), so no extra evaluation is needed."""
        self._resync_pending = self._bbi is not None

    @torch.no_grad()
    def step(self, closure: Callable[[], Tensor | float] | None = None) -> Tensor | float:
        """Evaluate ``closure`` (loss and gradients at the current θ) and take one BBI step."""
        if closure is None:
            raise ValueError("BBI.step needs a closure that computes the loss and its gradients")
        with torch.enable_grad():
            loss = closure()
        config = self._config()
        params = self.param_groups[0]["params"]
        theta = torch.cat([p.reshape(-1) for p in params])[None]
        grads = [torch.zeros_like(p) if p.grad is None else p.grad for p in params]
        grad = torch.cat([g.reshape(-1) for g in grads])[None]
        f = torch.as_tensor(loss).detach().to(device=theta.device, dtype=torch.float64).reshape(1)
        if self._bbi is None:
            seeds = member_seeds(self.param_groups[0]["seed"], 1, device=theta.device)
            self._bbi = bbi_init(theta, f, grad, config, seeds)
        elif self._resync_pending:
            self._bbi = bbi_resync_energy(self._bbi, f, config)
        self._resync_pending = False
        theta, self._bbi = bbi_step(theta, f, grad, self._bbi, config)
        offset = 0
        for p in params:
            p.copy_(theta[0, offset : offset + p.numel()].view_as(p))
            offset += p.numel()
        return loss

    def diagnostics(self) -> dict[str, Tensor]:
        """:func:`bbi_diagnostics` of the trajectory as 0-d device tensors ({} before a step)."""
        if self._bbi is None:
            return {}
        return {k: v[0] for k, v in bbi_diagnostics(self._bbi).items()}

    def state_dict(self) -> dict[str, Any]:
        """torch's optimizer state plus the BBI state (E, π, counters, seed) and a pending resync.

        The BBI tensors are kept outside ``state``, so ``load_state_dict`` does not cast the
        float64 bookkeeping to the parameter dtype."""
        out = super().state_dict()
        out["bbi"] = None if self._bbi is None else self._bbi.state_dict()
        out["bbi_resync_pending"] = self._resync_pending
        return out

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Restore :meth:`state_dict`; the trajectory continues exactly as it would have."""
        state_dict = dict(state_dict)
        bbi = state_dict.pop("bbi")
        pending = state_dict.pop("bbi_resync_pending")
        super().load_state_dict(state_dict)
        device = self.param_groups[0]["params"][0].device
        self._bbi = None if bbi is None else BBIState.from_state_dict(bbi, device)
        self._resync_pending = bool(pending)
