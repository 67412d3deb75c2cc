"""Constraints by the Modified Differential Method of Multipliers (MDMM), independent of PDEs.

Sign convention (the only one in pinnsolve)
-------------------------------------------
For every constraint ``c`` the caller passes the signed residual ``g_c = value − target`` (for an
inequality, ``target`` is the bound), a tensor of shape ``[n_c]`` (one entry per point) or ``[]``
(one number, e.g. an integral, declared with ``n = 1``). The constraint's *kind* says what is
wanted:

    "eq":  value = target,  g = value − target        = 0
    "le":  value ≤ bound,   h = value − bound  =  g   ≤ 0
    "ge":  value ≥ bound,   h = bound − value  = −g   ≤ 0

Why ``g`` and not ``(value, target)``: every source already has the one signed tensor (the PDE
objective returns ``g`` per condition; a periodic condition ``u(x) − u(x')`` has no separate
target), and with the orientation of inequalities fixed by the kind there is exactly one sign to get
right, once, here. Below, ``q`` is the constrained quantity: ``g`` for "eq", ``h`` for "le"/"ge",
pointwise or (multiplier mode "scalar") its mean over the points.

Formulation (Platt & Barr 1987, with an augmented-Lagrangian form for inequalities)
-----------------------------------------------------------------------------------
With damping ``δ_c > 0``, scale ``s_c > 0`` and multipliers ``λ_c`` (one per point of q)::

    L(θ, λ) = f(θ) + Σ_c s_c · mean_i ψ_c(q_ci, λ_ci)
    ψ_eq(q, λ) = λ q + (δ/2) q²                                        (λ free)
    ψ_in(q, λ) = (δ/2) max(0, q + λ/δ)² − λ²/(2δ)                        (λ ≥ 0)

The primal minimises L in θ; the multipliers take their own projected ascent step
``λ ← λ + η s q`` ("eq") or ``λ ← max(0, λ + η s q)`` (inequalities: projection, not slacks, so no
extra variables enter the primal). ``∂ψ/∂q = λ + δq`` (resp. ``max(0, λ + δq)``), so the primal
sees a proportional-plus-integral controller on q: the damping δ pulls q to 0 at once and makes
the constrained minimum an attractor instead of a saddle the flow orbits; λ integrates what is left.
At a fixed point q = 0 (or complementarity for inequalities) and ``∇f + s Σ_i λ_i ∇q_i / n = 0``:
δ changes the rate, never the location. The mean over points (and the update without 1/n) keeps
λ independent of how many points a part has when f is a mean too.

Energy-based optimizers (BBI) need a value bounded below; completing the square,
``ψ_eq = (δ/2)(q + λ/δ)² − λ²/(2δ)``, and dropping the θ-independent ``−λ²/(2δ)`` gives::

    V(θ) = f(θ) + Σ_c s_c · mean_i (δ_c/2) (q_ci + λ_ci/δ_c)²    (inequalities: max(0, ·) inside)

which has exactly the θ-gradient of L and is ≥ 0 whenever f ≥ 0 (:meth:`primal_energy`). It jumps
when λ changes: re-synchronise the optimizer's energy after :meth:`dual_step`.

A constraint with method "penalty" has no multiplier and contributes ``w · mean q²`` (inequalities:
``w · mean max(0, q)²``) to both L and V, so the same loop serves both methods.

One module (about 420 lines) on purpose: MDMM is one method, read best in one file (as the
``mdmm`` reference does): the constraint specs, the Lagrangian, the energy BBI sees and both
multiplier updates share one sign convention.

Use outside pinnsolve — minimise x² + y² subject to x + y = 1 (→ x = y = ½, λ = −1)::

    import torch
    from pinnsolve.constraints import ConstraintSet, ConstraintSpec

    xy = torch.zeros(2, requires_grad=True)
    cons = ConstraintSet([ConstraintSpec("sum", n=1)], dual_lr=0.1)
    opt = torch.optim.Adam([xy], lr=0.1)
    decay = torch.optim.lr_scheduler.LambdaLR(opt, lambda k: 0.98 ** max(0, k - 1000))
    for _ in range(1500):
        g = {"sum": xy.sum() - 1}  # g = value − target
        opt.zero_grad()
        cons.lagrangian(xy.square().sum(), g).backward()
        opt.step()
        decay.step()
        cons.dual_step(g, lr_factor=decay.get_last_lr()[0] / 0.1)  # own step, annealed with lr
    print(xy.detach(), cons.multipliers["sum"])  # ≈ [0.5, 0.5], ≈ [-1.0]

"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, replace
from typing import Any, Literal, Self

import torch
from torch import Tensor

from .errors import ConfigError, PinnsolveError

Kind = Literal["eq", "le", "ge"]
Method = Literal["mdmm", "penalty"]
MultiplierMode = Literal["pointwise", "scalar"]

#: δ: the quadratic term (δ/2)·q² has the weight of a mean-squared objective term when q is O(1)
#: after scaling, enough damping to make the constrained minimum an attractor without the
#: ill-conditioning of a large penalty (δ moves only the rate, never the solution).
DEFAULT_DAMPING = 1.0

#: η_λ: λ integrates the remaining violation at this rate per dual step, and must not outrun a
#: primal that can follow only so fast (Adam moves θ by about its lr per step, whatever the
#: force): on unit-scale problems (x² + y², x + y = 1, δ = 1) η ≤ 0.1 is stable for Adam lr from
#: 1e-3 to 1e-1 and η ≥ 0.3 oscillates without bound. 1e-2 keeps a margin; raise it if λ lags.
DEFAULT_DUAL_LR = 1e-2


class ConstraintError(PinnsolveError):
    """Constraint values or a saved state that do not match the declared constraints."""


@dataclass(frozen=True)
class ConstraintSpec:
    """One named constraint; the sign convention is the module's (``g = value − target``).

    ``n`` is the size of the constraint's point set: multipliers are allocated up front and values
    of any other size are an error, never a broadcast. ``multiplier`` "pointwise" gives every point
    its own λ (the default: a pointwise condition enforced through a non-negative aggregate such
    as ``mean g² = 0`` has a one-signed g, so its λ only drifts and MDMM degenerates into a slowly
    growing penalty); "scalar" constrains the signed mean of the points with one λ (an integral, a
    conserved quantity, or points that get resampled). For method "penalty" it selects whether
    ``q`` is pointwise or the mean. ``damping``, ``scale`` and ``dual_lr`` (None: the set's
    default) act on MDMM only; ``weight`` is the penalty's ``w`` only.
    """

    name: str
    n: int
    kind: Kind = "eq"
    method: Method = "mdmm"
    multiplier: MultiplierMode = "pointwise"
    damping: float = DEFAULT_DAMPING
    scale: float = 1.0
    dual_lr: float | None = None
    weight: float = 1.0

    def __post_init__(self) -> None:
        key = f"constraint {self.name!r}"
        if not isinstance(self.name, str) or not self.name:
            raise ConfigError(f"a constraint needs a non-empty name, got {self.name!r}")
        if isinstance(self.n, bool) or not isinstance(self.n, int) or self.n < 1:
            raise ConfigError(f"n (points) must be an integer ≥ 1, got {self.n!r}", key=key)
        for field_name, choices in (
            ("kind", ("eq", "le", "ge")),
            ("method", ("mdmm", "penalty")),
            ("multiplier", ("pointwise", "scalar")),
        ):
            if getattr(self, field_name) not in choices:
                raise ConfigError(
                    f"{field_name} must be one of {choices}, got {getattr(self, field_name)!r}",
                    key=key,
                )
        for field_name in ("damping", "scale", "weight", "dual_lr"):
            value = getattr(self, field_name)
            if value is None and field_name == "dual_lr":
                continue
            if not _positive(value):
                raise ConfigError(
                    f"{field_name} must be a finite number > 0, got {value!r}", key=key
                )

    @property
    def n_multipliers(self) -> int:
        """How many multipliers the constraint holds: one per point, one, or none (penalty)."""
        if self.method == "penalty":
            return 0
        return self.n if self.multiplier == "pointwise" else 1


def _positive(value: Any) -> bool:
    return (
        isinstance(value, int | float)
        and not isinstance(value, bool)
        and math.isfinite(value)
        and value > 0
    )


class ConstraintSet:
    """The multipliers of a set of constraints and everything computed from them.

    Multipliers are plain tensors, never ``nn.Parameter``: the primal optimizer must not see them,
    and they change only by :meth:`dual_step` or :meth:`load_state_dict`. ``values`` arguments map
    every constraint's name (all of them, no others) to its ``g``.
    """

    def __init__(
        self,
        specs: Iterable[ConstraintSpec],
        *,
        dual_lr: float = DEFAULT_DUAL_LR,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ):
        self.specs: tuple[ConstraintSpec, ...] = tuple(specs)
        names = [s.name for s in self.specs]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ConfigError(f"constraint names must be unique, repeated: {duplicates}")
        if not _positive(dual_lr):
            raise ConfigError(f"dual_lr must be a finite number > 0, got {dual_lr!r}")
        self.dual_lr = float(dual_lr)
        self.device = torch.device(device) if device is not None else torch.device("cpu")
        self.dtype = dtype if dtype is not None else torch.get_default_dtype()
        self._lam: dict[str, Tensor] = {
            s.name: torch.zeros(s.n_multipliers, device=self.device, dtype=self.dtype)
            for s in self.specs
            if s.method == "mdmm"
        }

    def stiffen(self, damping: float) -> None:
        """Raise every MDMM constraint's damping δ to at least ``damping``, from now on.

        For the second-order phases: δ sets how fast the method of multipliers converges, not
        where (its fixed point is the constrained solution for any δ > 0). A first-order optimizer
        needs a small δ (a large one makes its problem stiff); a Levenberg–Marquardt step solves
        the stiff problem exactly, and with δ small the multipliers lag: on Bratu 2D the boundary
        violation stalled at 2e-3 after 300 steps with δ = 100, against 6e-5 with δ = 1e4.
        """
        self.specs = tuple(
            replace(s, damping=max(s.damping, damping)) if s.method == "mdmm" else s
            for s in self.specs
        )

    @property
    def names(self) -> list[str]:
        return [s.name for s in self.specs]

    def spec(self, name: str) -> ConstraintSpec:
        """The spec of the constraint called ``name``."""
        return next(s for s in self.specs if s.name == name)

    @contextmanager
    def using(self, multipliers: Mapping[str, Tensor]) -> Iterator[None]:
        """Within the block, these multipliers instead of the set's own (one ensemble member's,
        inside ``vmap``: everything here then acts on that member; :meth:`dual_step` updates
        them in place)."""
        saved, self._lam = self._lam, dict(multipliers)
        try:
            yield
        finally:
            self._lam = saved

    @property
    def multipliers(self) -> dict[str, Tensor]:
        """The live multiplier tensors of the MDMM constraints (shape ``[n]`` or ``[1]``)."""
        return dict(self._lam)

    def lagrangian(self, f: Tensor, values: Mapping[str, Tensor]) -> Tensor:
        """``L = f + Σ_c s_c mean_i ψ_c(q_ci, λ_ci)`` (penalties: ``w mean q²``); for the primal."""
        total = f
        for spec, q in self._quantities(values):
            total = total + self._term(spec, q, energy=False)
        return total

    def primal_energy(self, f: Tensor, values: Mapping[str, Tensor]) -> Tensor:
        """``V = f + Σ_c s_c mean_i (δ_c/2)(q_ci + λ_ci/δ_c)²``: L's θ-gradient, ≥ 0 when f ≥ 0."""
        total = f
        for spec, q in self._quantities(values):
            total = total + self._term(spec, q, energy=True)
        return total

    def energy_residuals(self, values: Mapping[str, Tensor]) -> list[Tensor]:
        """Per constraint a vector whose squares sum to its term in :meth:`primal_energy`.

        ``√(s δ / 2m) · (q + λ/δ)`` (inequalities: ``max(0, ·)``; penalties ``√(w/m) · violation``)
        over the constraint's m values: with the objective's residuals scaled by ``1/√N`` these
        stack into the vector a Gauss–Newton step minimises, ``V = ‖R‖²`` with the multipliers
        frozen.
        """
        return [self._energy_rows(spec, q, slice(None), q.numel())
                for spec, q in self._quantities(values)]  # fmt: skip

    def energy_rows(self, name: str, g: Tensor, rows: slice | None = None) -> Tensor:
        """One constraint's part of :meth:`energy_residuals`: all of it (``rows`` None, from all
        its values), or rows ``rows`` of a pointwise constraint from its ``g`` at those points
        only (a rank's share: each row depends on its own point and multiplier alone)."""
        spec = self.spec(name)
        q = _quantity(spec, g)
        if rows is None:
            return self._energy_rows(spec, q, slice(None), q.numel())
        if spec.multiplier == "scalar":
            raise ConstraintError(f"constraint {name!r} constrains a mean: it needs all points")
        return self._energy_rows(spec, q, rows, spec.n)

    def _energy_rows(self, spec: ConstraintSpec, q: Tensor, rows: slice, m: int) -> Tensor:
        """``√(s δ / 2m) · (q + λ[rows]/δ)`` (inequalities: ``max(0, ·)``; penalties
        ``√(w/m) · violation``) for the values ``q`` of rows ``rows`` of ``m``."""
        if spec.method == "penalty":
            return math.sqrt(spec.weight / m) * _violation(spec, q)
        d = spec.damping
        shifted = q + self._lam[spec.name][rows] / d
        if spec.kind != "eq":
            shifted = shifted.clamp(min=0.0)
        return math.sqrt(spec.scale * d / (2 * m)) * shifted

    @torch.no_grad()
    def dual_step(self, values: Mapping[str, Tensor], lr_factor: float = 1.0) -> None:
        """Ascent on the multipliers, in place: ``λ += η s q``; inequalities then ``λ = max(0, λ)``.

        Its own step with its own rate ``η = lr_factor · dual_lr`` (the spec's, else the set's),
        taken after (or alongside) the primal step on the same ``values``; it never reads a value
        to the host. Anneal ``lr_factor`` with the primal's learning rate: a primal that has
        stopped moving cannot cancel the remaining violation, which the dual then integrates
        without bound (λ winds up).
        """
        for spec, q in self._quantities(values):
            if spec.method == "penalty":
                continue
            lam = self._lam[spec.name]
            rate = self.dual_lr if spec.dual_lr is None else spec.dual_lr
            lam.add_(q.to(lam.dtype), alpha=lr_factor * rate * spec.scale)
            if spec.kind != "eq":
                lam.clamp_(min=0.0)

    @torch.no_grad()
    def method_of_multipliers_step(self, values: Mapping[str, Tensor]) -> None:
        """The augmented-Lagrangian update ``λ ← λ + δ q`` (inequalities: ``max(0, ·)``), in place.

        For an inner solver (L-BFGS) that minimises L to convergence with λ frozen: at that
        minimum ``∇f + s Σ_i (λ_i + δ q_i) ∇q_i / n = 0``, so ``λ + δq`` is the multiplier
        estimate the inner problem implies. With a first-order primal use :meth:`dual_step`.
        """
        for spec, q in self._quantities(values):
            if spec.method == "penalty":
                continue
            lam = self._lam[spec.name]
            lam.add_(q.to(lam.dtype), alpha=spec.damping)
            if spec.kind != "eq":
                lam.clamp_(min=0.0)

    @torch.no_grad()
    def metrics(self, values: Mapping[str, Tensor]) -> dict[str, Tensor]:
        """Per constraint, as 0-d tensors (no host sync): ``<name>_rms`` and ``<name>_max`` of the
        violation (``|q|``, or ``max(0, q)`` for inequalities), ``<name>_lambda_rms`` (MDMM only)
        and ``<name>_penalty``, the constraint's term in :meth:`lagrangian`."""
        out: dict[str, Tensor] = {}
        for spec, q in self._quantities(values):
            v = _violation(spec, q)
            out[f"{spec.name}_rms"] = v.square().mean().sqrt()
            out[f"{spec.name}_max"] = v.max()
            if spec.method == "mdmm":
                out[f"{spec.name}_lambda_rms"] = self._lam[spec.name].square().mean().sqrt()
            out[f"{spec.name}_penalty"] = self._term(spec, q, energy=False)
        return out

    @torch.no_grad()
    def max_infeasibility(self, values: Mapping[str, Tensor]) -> Tensor:
        """The largest violation over all constraints (0-d tensor; 0 for an empty set)."""
        worst = [_violation(spec, q).max() for spec, q in self._quantities(values)]
        if not worst:
            return torch.zeros((), device=self.device, dtype=self.dtype)
        return torch.stack([w.to(self.dtype) for w in worst]).max()

    def state_dict(self) -> dict[str, Any]:
        """A copy of the multipliers (all the state there is: projection needs no slacks)."""
        return {"multipliers": {name: lam.detach().clone() for name, lam in self._lam.items()}}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restore multipliers onto this set's device and dtype; checks everything before changing
        anything, so a mismatched checkpoint leaves the set as it was."""
        saved = state.get("multipliers") if isinstance(state, Mapping) else None
        if not isinstance(saved, Mapping):
            raise ConstraintError("constraint state has no 'multipliers' mapping")
        if set(saved) != set(self._lam):
            raise ConstraintError(
                "saved multipliers are for constraints "
                f"{sorted(saved)}, this set has MDMM constraints {sorted(self._lam)}"
            )
        for name, lam in self._lam.items():
            shape = tuple(saved[name].shape) if isinstance(saved[name], Tensor) else None
            if shape != tuple(lam.shape):
                raise ConstraintError(
                    f"constraint {name!r}: saved multipliers have shape "
                    f"{list(shape) if shape is not None else type(saved[name]).__name__}, "
                    f"expected {list(lam.shape)}"
                )
        with torch.no_grad():
            for name, lam in self._lam.items():
                lam.copy_(saved[name])

    def to(
        self, device: torch.device | str | None = None, dtype: torch.dtype | None = None
    ) -> Self:
        """Move the multipliers and return ``self``; the tensors are replaced, so references
        taken earlier from :attr:`multipliers` no longer follow the set."""
        self.device = torch.device(device) if device is not None else self.device
        self.dtype = dtype if dtype is not None else self.dtype
        self._lam = {
            name: lam.to(device=self.device, dtype=self.dtype) for name, lam in self._lam.items()
        }
        return self

    def _quantities(self, values: Mapping[str, Tensor]) -> list[tuple[ConstraintSpec, Tensor]]:
        """Check ``values`` against the specs and return each constraint's ``q``, shape ``[m]``."""
        missing = [s.name for s in self.specs if s.name not in values]
        extra = sorted(set(values) - set(self.names))
        if missing or extra:
            raise ConstraintError(
                f"constraint values do not match the constraints: missing {missing}, "
                f"unexpected {extra}"
            )
        out = []
        for spec in self.specs:
            g = values[spec.name]
            if not isinstance(g, Tensor):
                raise ConstraintError(
                    f"constraint {spec.name!r}: values must be a tensor, got {type(g).__name__}"
                )
            if tuple(g.shape) != (spec.n,) and not (g.ndim == 0 and spec.n == 1):
                raise ConstraintError(
                    f"constraint {spec.name!r}: expected values of shape [{spec.n}] "
                    f"(one per point), got {list(g.shape)}"
                )
            if spec.method == "mdmm" and g.device != self.device:
                raise ConstraintError(
                    f"constraint {spec.name!r}: values are on {g.device}, the multipliers on "
                    f"{self.device}; move the set with .to()"
                )
            out.append((spec, _quantity(spec, g)))
        return out

    def _term(self, spec: ConstraintSpec, q: Tensor, *, energy: bool) -> Tensor:
        """One constraint's contribution to L (``energy=False``) or to V (``energy=True``)."""
        if spec.method == "penalty":
            return spec.weight * _violation(spec, q).square().mean()
        lam = self._lam[spec.name]
        d = spec.damping
        if spec.kind == "eq":
            per_point = (
                0.5 * d * (q + lam / d).square() if energy else lam * q + 0.5 * d * q.square()
            )
        else:
            per_point = 0.5 * d * (q + lam / d).clamp(min=0.0).square()
            if not energy:
                per_point = per_point - lam.square() / (2.0 * d)
        return spec.scale * per_point.mean()


def _quantity(spec: ConstraintSpec, g: Tensor) -> Tensor:
    """``q`` of a constraint from its values ``g`` (the module's convention), shape ``[m]``."""
    q = g.reshape(-1)
    if spec.multiplier == "scalar":
        q = q.mean().reshape(1)
    return -q if spec.kind == "ge" else q


def _violation(spec: ConstraintSpec, q: Tensor) -> Tensor:
    """How far q is from feasible, pointwise: ``|q|`` for "eq", ``max(0, q)`` for inequalities."""
    return q.abs() if spec.kind == "eq" else q.clamp(min=0.0)
