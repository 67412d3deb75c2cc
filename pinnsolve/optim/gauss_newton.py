"""Gauss–Newton / Levenberg–Marquardt polish on the stacked residual vector.

First-order training stalls around 1e-3 relative error; a PINN's loss is a sum of squares, so a
Gauss–Newton step, which uses the curvature ``JᵀJ`` of that sum, converges much further in
float64. Two pieces:

:class:`StackedResiduals`
    ``R(θ)`` with ``‖R‖² = V``, the MDMM primal energy at frozen multipliers: the equations'
    residuals scaled by ``1/√N`` followed by each constraint's :meth:`energy_residuals
    <pinnsolve.constraints.ConstraintSet.energy_residuals>`. Its Jacobian ``J = ∂R/∂θ`` is built
    by the chain rule through what the residual and condition code read of the network at each
    collocation point (a value, a gradient entry, a second derivative: recorded once, when the
    residual vector is set up): ``∂(reads)/∂θ`` per point by ``vmap(jacrev)`` (one small backward
    pass per point and read) through a forward jet that carries only the order read (and the
    Hessian's diagonal alone when no mixed derivative is read), then ``J = (∂R/∂reads)
    (∂reads/∂θ)`` by ``jvp`` through the residual and condition code, batched over parameter
    columns. The code may combine points in any way (a mean, an integral, a periodic pair).
    Nested autograd cannot do this: the per-row Jacobian of a double-backward graph costs a full
    backward pass per row.
    :meth:`StackedResiduals.linearize` gives ``J v`` and ``Jᵀ w`` without forming ``J``.

:class:`LevenbergMarquardt`
    One damped step ``Δ = −(JᵀJ + μsI)⁻¹JᵀR`` per call (``s`` the mean diagonal of the smaller
    Gram matrix), with Nielsen's adaptive μ (a step is taken only if V falls). The ``dense``
    solver forms ``J`` and solves in whichever space is smaller (rows: ``Δ = −Jᵀ(JJᵀ + μsI)⁻¹R``);
    its memory is points × reads per point × parameters and its solve cubic in the smaller side.
    The ``cg`` solver never forms ``J``: conjugate gradients on the damped least-squares problem
    from Jacobian-vector products, so a large network needs only a few residual evaluations'
    memory, at the price of an inexact step. Multipliers are updated between steps by the caller
    (the method of multipliers).

One module (about 520 lines) on purpose: the residual vector, its Jacobian and the
Levenberg–Marquardt step with its two linear solvers are one algorithm; the explorer's deflated
residual and the sharded one implement the same :class:`Residuals` protocol from outside.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

import torch
from torch import Tensor, nn
from torch.func import functional_call, jacrev, jvp, vjp, vmap
from torch.nn.utils import parameters_to_vector, vector_to_parameters

from ..constraints import ConstraintSet
from ..derivatives.fields import Coords, Engine, Fields
from ..derivatives.forward import ForwardFields, Jet, supports_jet
from ..objective import Evaluation, PinnObjective

#: ``linear_solver`` choices: ``auto`` is ``dense`` for a small Jacobian, else ``cg``
LINEAR_SOLVERS = ("auto", "dense", "cg")
#: ``auto`` solves densely while the smaller side of J is at most this (the solve is cubic in it)
DENSE_LIMIT = 4000
#: ... and while forming J needs at most this many bytes (:meth:`StackedResiduals.jacobian_bytes`)
DENSE_MEMORY = 2 * 2**30
#: the Jacobian's columns pushed through the residual code at once hold about this many entries:
#: 256 columns of 4096 rows, all 1153 of bratu1d's 130 rows (1.5× faster than 256 at a time);
#: all 2241 of 2304 rows (bratu2d, 3×32) were 1.6× slower than 256 (benchmarks/jacobian_speed.py)
COLUMN_ENTRIES = 2**20
#: Rademacher probes of the matrix-free estimate of ‖J‖_F², the damping's scale
SCALE_PROBES = 8

Products = tuple[Callable[[Tensor], Tensor], Callable[[Tensor], Tensor]]


class GaussNewtonError(ValueError):
    """The problem or network cannot be polished by Gauss–Newton (with the reason)."""


#: one read of a field at a point set: the arguments of :meth:`Fields.d` (``field, *coords``)
Read = tuple[str, tuple[str, ...]]


@dataclass
class _PointSet:
    """One point set the residual vector evaluates the network on, and what it reads there."""

    points: Tensor
    #: field, coordinate and spatial coordinate names, as :meth:`Engine.fields` gets them
    names: tuple[Sequence[str], Sequence[str], Sequence[str]]
    #: the distinct reads, in the order first made
    reads: list[Read] = field(default_factory=list)

    def jet_kind(self) -> tuple[int, bool]:
        """The order of the jet that serves :attr:`reads`, and whether the Hessian's diagonal
        is enough (no mixed second derivative read: d instead of d² second-order rows)."""
        order = max((len(coords) for _, coords in self.reads), default=0)
        mixed = any(len(set(coords)) > 1 for _, coords in self.reads)
        return order, order == 2 and not mixed

    def entries(self, jet: Jet) -> Tensor:
        """``[N, len(reads)]``: the values of :attr:`reads` in ``jet``, taken as the residual
        takes them (through :class:`ForwardFields`)."""
        fields = ForwardFields(lambda order: jet, *self.names)
        return torch.stack([fields.d(name, *coords) for name, coords in self.reads], dim=1)


class _Recorded(Fields):
    """``fields``, recording each distinct read into ``reads``."""

    def __init__(self, fields: Fields, reads: list[Read]):
        super().__init__(fields.field_names, fields.coord_names, fields.spatial)
        self._fields = fields
        self._reads = reads

    def value(self, name: str) -> Tensor:
        return self.d(name)

    def d(self, name: str, *coords: str) -> Tensor:
        out = self._fields.d(name, *coords)
        if (name, coords) not in self._reads:
            self._reads.append((name, coords))
        return out


class _Served(Fields):
    """The reads recorded at a point set, served from the columns of ``entries``
    (``[N, len(reads)]``, what :meth:`StackedResiduals.jacobian_at` differentiates through)."""

    def __init__(self, entries: Tensor | None, point_set: _PointSet):
        super().__init__(*point_set.names)
        self._entries = entries
        self._index = {read: i for i, read in enumerate(point_set.reads)}

    def value(self, name: str) -> Tensor:
        return self.d(name)

    def d(self, name: str, *coords: str) -> Tensor:
        i = self._index.get((name, coords))
        if i is None:
            args = ", ".join(map(repr, (name, *coords)))
            raise GaussNewtonError(
                f"the residual read d({args}) at a point set where it did not when the "
                f"Gauss–Newton residual vector was set up; its Jacobian needs the same reads in "
                f"every evaluation"
            )
        return self._entries[:, i]


class _JetTable(Engine):
    """Fields for :meth:`PinnObjective.evaluate` computed from the network's jets, recording in
    :attr:`sets` what is read at each point set (``entries=None``), or served from ``entries``:
    per point set (keyed by the point tensor's id) the values of the reads ``sets`` recorded,
    which makes the residual vector a function of those values that ``torch.func`` can
    transform."""

    name = "jet-table"

    def __init__(
        self, entries: dict[int, Tensor] | None = None, sets: dict[int, _PointSet] | None = None
    ):
        self.entries = entries
        self.sets: dict[int, _PointSet] = {} if sets is None else sets

    def fields(self, model, points, field_names, coord_names, spatial):
        key = id(points)
        names = (field_names, coord_names, spatial)
        if self.entries is None:
            point_set = self.sets.setdefault(key, _PointSet(points, names))
            jet_fields = ForwardFields(lambda order: model.jet(points, order), *names)
            fields: Fields = _Recorded(jet_fields, point_set.reads)
        else:
            fields = _Served(self.entries.get(key), self.sets.get(key, _PointSet(points, names)))
        return Coords(points, coord_names), fields


class Bound(nn.Module):
    """``fn`` (which evaluates ``model``) as a module's forward with ``model`` as its submodule,
    so ``functional_call`` can swap the parameters ``fn`` sees (as ``model.<name>``)."""

    def __init__(self, model: nn.Module, fn: Callable):
        super().__init__()
        self.model = model
        self.fn = fn

    def forward(self, *args):
        return self.fn(*args)


class Residuals(Protocol):
    """What a Levenberg–Marquardt phase needs of a residual vector ``R(θ)`` of the model:
    :class:`StackedResiduals`, and the explorer's deflated residual
    (:class:`~pinnsolve.explore.deflation.DeflatedResiduals`) that wraps it."""

    constraints: ConstraintSet

    def residual(self, engine: Engine | None = None) -> tuple[Tensor, Evaluation]: ...

    def jacobian(self) -> Tensor: ...


class StackedResiduals:
    """``R(θ)`` (``‖R‖² = V``) of ``model`` on ``objective`` with ``constraints``, and ``∂R/∂θ``.

    ``column_chunk`` bounds the parameter columns pushed through the residual code at once (its
    memory is ``column_chunk`` times that of one evaluation; None: :data:`COLUMN_ENTRIES` entries
    of ``J`` at once), ``point_chunk`` the points whose ``∂(reads)/∂θ`` are computed at once
    (besides bounding that pass's memory, the whole Jacobian measured 1.2× faster than with all
    points at once at 2048 points with 3×32 and 3×64 networks, and no slower at 512:
    ``benchmarks/jacobian_speed.py``).
    """

    def __init__(
        self,
        objective: PinnObjective,
        constraints: ConstraintSet,
        model: nn.Module,
        column_chunk: int | None = None,
        point_chunk: int = 512,
    ):
        if not supports_jet(model):
            raise GaussNewtonError(
                f"Gauss–Newton needs a network with forward jets (pinnsolve's MLP), "
                f"not {type(model).__name__}"
            )
        self.objective = objective
        self.constraints = constraints
        self.model = model
        self.point_chunk = point_chunk
        self._params = [p for p in model.parameters() if p.requires_grad]
        self._names = [n for n, p in model.named_parameters() if p.requires_grad]
        probe = _JetTable()
        try:
            r, _ = self.residual(probe)
        except ValueError as err:  # a derivative above second order: ForwardFields says which
            raise GaussNewtonError(str(err)) from None
        #: ``len(R)``
        self.n_rows = len(r)
        self.column_chunk = column_chunk or max(1, COLUMN_ENTRIES // self.n_rows)
        #: per point set (by the point tensor's id): what the residual vector reads there
        self._sets = probe.sets

    @property
    def n_params(self) -> int:
        return sum(p.numel() for p in self._params)

    def jacobian_bytes(self) -> int:
        """What :meth:`jacobian` holds at its peak: ``∂(reads)/∂θ`` at every point twice (per
        parameter tensor and concatenated) and ``J`` itself (1.9 GiB for bratu2d's u, u_xx, u_yy
        at 4096 points, 4352 rows and a 3×64 network, whose process grew by 1.5 GiB)."""
        reads = sum(len(s.points) * len(s.reads) for s in self._sets.values())
        return (2 * reads + self.n_rows) * self.n_params * self._params[0].element_size()

    def residual(self, engine: Engine | None = None) -> tuple[Tensor, Evaluation]:
        """``R`` at the network's current parameters, with the evaluation it came from."""
        ev = self.objective.evaluate(self.model, engine or _JetTable())
        return torch.cat(self.rows(ev)), ev

    def rows(self, ev: Evaluation) -> list[Tensor]:
        """``R``'s pieces from an evaluation: the equations' residuals over √N, then each
        constraint's energy residuals."""
        parts = [r.reshape(-1) / math.sqrt(r.numel()) for r in ev.residuals]
        return parts + [c.reshape(-1) for c in self.constraints.energy_residuals(ev.g)]

    def jacobian(self) -> Tensor:
        """``∂R/∂θ``, shape ``[len(R), n_params]``, columns in ``model.parameters()`` order."""
        return self.jacobian_at(
            {n: p.detach() for n, p in zip(self._names, self._params, strict=True)}
        )

    def jacobian_at(self, named: dict[str, Tensor]) -> Tensor:
        """:meth:`jacobian` at the parameters ``named`` (by ``model.named_parameters()`` name)
        instead of the model's own: a function of the parameters, so ``torch.func.vmap`` can
        take it over the stacked parameters of several networks
        (:class:`~pinnsolve.explore.lockstep.DeflatedLockstep`)."""
        jet_module = Bound(self.model, self.model.jet)
        params = {f"model.{n}": named[n] for n in self._names}
        keys = [key for key, point_set in self._sets.items() if point_set.reads]
        values, tangents = [], []
        for key in keys:
            point_set = self._sets[key]
            order, diagonal = point_set.jet_kind()

            def point_entries(p, x1, point_set=point_set, order=order, diagonal=diagonal):
                entries = point_set.entries(functional_call(jet_module, p, (x1, order, diagonal)))
                return entries[0], entries[0].detach()  # the values themselves come back as aux

            x = point_set.points.detach()
            per_point, entries = vmap(
                jacrev(point_entries, has_aux=True), in_dims=(None, 0), chunk_size=self.point_chunk
            )(params, x.unsqueeze(1))
            values.append(entries)
            # [N, reads, P]: parameter columns last, in the order of self._names
            tangents.append(torch.cat([per_point[n].flatten(start_dim=2) for n in params], dim=2))

        def stacked(*entries: Tensor) -> Tensor:
            table = _JetTable(dict(zip(keys, entries, strict=True)), self._sets)
            return torch.cat(self.rows(self.objective.evaluate(self.model, table, scale=False)))

        def column(*tangent_cols: Tensor) -> Tensor:
            return jvp(stacked, tuple(values), tangent_cols)[1]

        columns = vmap(column, in_dims=2, chunk_size=self.column_chunk)(*tangents)
        return columns.T

    def linearize(self) -> Products:
        """``v ↦ J v`` and ``w ↦ Jᵀ w`` at the current parameters, without forming ``J``.

        Both differentiate ``R`` as a function of the flat parameter vector (the order of
        :meth:`jacobian`'s columns), through one recorded evaluation that every call reuses (the
        jets' derivatives in x are ordinary forward computations, so nothing else is nested).
        ``Jᵀ w`` is its backward pass. ``J v`` is the derivative of the linear map ``u ↦ Jᵀu``
        recorded once at ``u = 0``: a second backward pass, measured 3–5× faster on CPU than
        forward mode (``torch.func.jvp``, which re-evaluates ``R`` with dual numbers each call).
        Memory: a few residual evaluations, independent of ``len(R) × n_params``.
        """
        module = Bound(self.model, lambda: self.residual()[0])
        theta = parameters_to_vector(self._params).detach()
        sizes = [p.numel() for p in self._params]

        def residual_at(flat: Tensor) -> Tensor:
            views = torch.split(flat, sizes)
            named = zip(self._names, views, self._params, strict=True)
            return functional_call(module, {f"model.{n}": v.view_as(p) for n, v, p in named}, ())

        with torch.enable_grad():
            r, pullback = vjp(residual_at, theta)
            u = torch.zeros_like(r, requires_grad=True)
            transposed = pullback(u)[0]

        def jvp_fn(v: Tensor) -> Tensor:
            return torch.autograd.grad(transposed, u, v, retain_graph=True)[0]

        return jvp_fn, lambda w: pullback(w)[0]


def choose_linear_solver(residuals: object, requested: str) -> str:
    """``dense`` or ``cg`` for the ``requested`` :data:`LINEAR_SOLVERS` entry.

    ``auto`` is dense while the smaller side of ``J`` is at most :data:`DENSE_LIMIT` and forming
    it needs at most :data:`DENSE_MEMORY`: there the exact step costs about one Jacobian, while CG
    needs two products per iteration and is inexact. A residual vector without
    :meth:`StackedResiduals.linearize` (the deflated one) is always solved densely.
    """
    if requested not in LINEAR_SOLVERS:
        raise ValueError(f"unknown linear solver {requested!r}; expected one of {LINEAR_SOLVERS}")
    if not isinstance(residuals, StackedResiduals):
        if requested == "cg":
            raise GaussNewtonError(
                f"{type(residuals).__name__} has no matrix-free products; use the dense solve"
            )
        return "dense"
    if requested != "auto":
        return requested
    small = min(residuals.n_rows, residuals.n_params) <= DENSE_LIMIT
    return "dense" if small and residuals.jacobian_bytes() <= DENSE_MEMORY else "cg"


def _cgls(jvp_fn, vjp_fn, r: Tensor, shift: float, iterations: int, tolerance: float,
          total: Callable[[Tensor], Tensor]):  # fmt: skip
    """``x`` minimising ``‖r + Jx‖² + shift·‖x‖²``, and ``Jx``, by CGLS (Björck): conjugate
    gradients on the normal equations ``(JᵀJ + shift·I)x = −Jᵀr`` that carry the residual
    ``r + Jx`` as a vector and never multiply by ``JᵀJ`` as one operator, the numerically stable
    arrangement. Stops after ``iterations`` or once the normal equations' residual is at most
    ``tolerance`` times its initial size. ``total`` sums a residual-space inner product over
    ranks that hold shares of the rows."""
    gradient = -vjp_fn(r)  # −Jᵀ(r + Jx) − shift·x at x = 0
    x, jx, p = torch.zeros_like(gradient), torch.zeros_like(r), gradient
    gamma = float(gradient @ gradient)
    stop = tolerance**2 * gamma
    for _ in range(iterations):
        if gamma <= stop or gamma == 0:
            break
        q = jvp_fn(p)
        alpha = gamma / float(total(q @ q) + shift * (p @ p))
        x = x + alpha * p
        jx = jx + alpha * q
        gradient = -vjp_fn(r + jx) - shift * x
        gamma, previous = float(gradient @ gradient), gamma
        p = gradient + (gamma / previous) * p
    return x, jx


def accept_damping(lm: dict, rho: float) -> None:
    """μ after an accepted step whose actual decrease was ``rho`` times the predicted one
    (Nielsen's rule: a smooth decrease, at most by 3, for a good model) and ν reset."""
    lm["mu"] *= max(1 / 3, 1 - (2 * rho - 1) ** 3)
    lm["nu"] = 2.0


def reject_damping(lm: dict) -> None:
    """μ after a rejected trial step: raised by ν, which doubles while trials keep failing."""
    lm["mu"] *= lm["nu"]
    lm["nu"] *= 2


class LevenbergMarquardt(torch.optim.Optimizer):
    """Levenberg–Marquardt steps on ``R`` = ``residuals()`` with Jacobian ``jacobian()``.

    ``step()`` takes one accepted step or gives up after ``max_tries`` rejections (each raises
    μ), and returns V = ‖R‖² at the new point. μ is relative to the mean diagonal of the smaller
    Gram matrix (``JᵀJ`` or ``JJᵀ``), so its default does not depend on the residual's units.
    ``lr`` scales the step (1: the full Gauss–Newton step; a rollback after a numerical fault
    halves it). ``last`` holds what the step measured: V before and after, the relative step
    size, μ, and ``accepted``.

    ``linear_solver = "cg"`` takes ``linearize()`` (the ``J v`` and ``Jᵀ w`` products at the
    current point, see :meth:`StackedResiduals.linearize`) instead of ``jacobian``, and solves
    each trial step by at most ``cg_iterations`` CGLS iterations (relative ``cg_tolerance``); its
    damping scale ``‖J‖_F² / min(rows, cols)`` is estimated from :data:`SCALE_PROBES` fixed
    Rademacher probes (fixed, so the scale is a smooth function of θ and μ means the same from
    step to step).
    """

    def __init__(
        self,
        params,
        residuals: Callable[[], Tensor],
        jacobian: Callable[[], Tensor] | None = None,
        damping: float = 1e-3,
        lr: float = 1.0,
        max_tries: int = 30,
        *,
        linear_solver: str = "dense",
        linearize: Callable[[], Products] | None = None,
        cg_iterations: int = 100,
        cg_tolerance: float = 1e-6,
        total: Callable[[Tensor], Tensor] | None = None,
    ):
        super().__init__(params, {"lr": lr})
        self._total = total
        needs = {"dense": ("jacobian", jacobian), "cg": ("linearize", linearize)}
        if linear_solver not in needs:
            raise ValueError(f"linear_solver must be 'dense' or 'cg', not {linear_solver!r}")
        if needs[linear_solver][1] is None:
            raise ValueError(f"the {linear_solver} solver needs {needs[linear_solver][0]}")
        self.residuals = residuals
        self.jacobian = jacobian
        self.linearize = linearize
        self.linear_solver = linear_solver
        self.cg_iterations = cg_iterations
        self.cg_tolerance = cg_tolerance
        self.max_tries = max_tries
        self.state["lm"] = {"mu": float(damping), "nu": 2.0}
        self.last: dict = {}

    def total(self, x: Tensor) -> Tensor:
        """A per-rank partial sum summed over the ranks, when ``residuals`` are this rank's
        share of the rows (``total`` given; see :mod:`pinnsolve.parallel.sharding`: the dense solve
        then works in parameter space, ``JᵀJ`` and ``Jᵀr`` summed over ranks); else ``x`` itself."""
        return x if self._total is None else self._total(x)

    def _all_rows(self, rows: Tensor) -> int:
        """The number of rows of ``R`` over all ranks, from this rank's ``rows`` (J or r)."""
        return int(self.total(torch.tensor(float(len(rows)), device=rows.device)))

    @property
    def _params(self) -> list[Tensor]:
        return [p for group in self.param_groups for p in group["params"]]

    @torch.no_grad()
    def step(self, closure=None) -> float:
        params = self._params
        theta0 = parameters_to_vector(params).clone()
        r = self.residuals().detach()
        with torch.enable_grad():
            solve = self._dense() if self.linear_solver == "dense" else self._matrix_free(r)
        v0 = float(self.total(r @ r))
        lm = self.state["lm"]
        lr = self.param_groups[0]["lr"]
        for _ in range(self.max_tries):
            delta, j_delta = solve(r, lm["mu"])
            delta = lr * delta
            predicted = v0 - float(self.total((r + lr * j_delta).square().sum()))
            vector_to_parameters(theta0 + delta, params)
            r_new = self.residuals().detach()
            v = float(self.total(r_new @ r_new))
            rho = (v0 - v) / predicted if predicted > 0 else -1.0
            if math.isfinite(v) and v < v0 and rho > 0:
                accept_damping(lm, rho)
                self.last = self._record(v0, v, delta, theta0, True)
                return v
            vector_to_parameters(theta0, params)
            reject_damping(lm)
        self.last = self._record(v0, v0, torch.zeros_like(theta0), theta0, False)
        return v0

    def _dense(self) -> Callable[[Tensor, float], tuple[Tensor, Tensor]]:
        """Forms ``J`` and the Gram matrix of the smaller side once per step; the solve for one μ
        (each trial step of the step) returns ``Δ`` and ``JΔ``."""
        jac = self.jacobian()
        rows, cols = self._all_rows(jac), jac.shape[1]
        by_rows = rows <= cols and self._total is None
        gram = jac @ jac.T if by_rows else self.total(jac.T @ jac)
        # ‖J‖_F² / min(rows, cols): the mean diagonal of the smaller Gram matrix
        scale = float(gram.diagonal().sum()) / min(rows, cols) or 1.0
        eye = torch.eye(gram.shape[0], dtype=gram.dtype, device=gram.device)

        def solve(r: Tensor, mu: float) -> tuple[Tensor, Tensor]:
            if by_rows:
                delta = -jac.T @ torch.linalg.solve(gram + mu * scale * eye, r)
            else:
                delta = -torch.linalg.solve(gram + mu * scale * eye, self.total(jac.T @ r))
            return delta, jac @ delta

        return solve

    def _matrix_free(self, r: Tensor) -> Callable[[Tensor, float], tuple[Tensor, Tensor]]:
        """The products at the current point and the damping scale ``‖J‖_F² / min(rows, cols)``
        (what the dense solve uses) by Hutchinson's estimate ``E‖Jᵀw‖² = ‖J‖_F²``; the solve
        for one μ runs CGLS."""
        jvp_fn, vjp_fn = self.linearize()
        cols = sum(p.numel() for p in self._params)
        rows = self._all_rows(r)
        gen = torch.Generator(device=r.device).manual_seed(0)
        probes = torch.randint(0, 2, (SCALE_PROBES, len(r)), generator=gen, device=r.device)
        frobenius = sum(float(vjp_fn(2.0 * w.to(r.dtype) - 1).square().sum()) for w in probes)
        scale = frobenius / SCALE_PROBES / min(rows, cols) or 1.0

        def solve(r: Tensor, mu: float) -> tuple[Tensor, Tensor]:
            return _cgls(jvp_fn, vjp_fn, r, mu * scale, self.cg_iterations, self.cg_tolerance,
                         self.total)  # fmt: skip

        return solve

    def _record(self, v0, v, delta, theta0, accepted) -> dict:
        step = float(delta.norm()) / (float(theta0.norm()) + 1e-300)
        return {"v_before": v0, "v": v, "step": step, "mu": self.state["lm"]["mu"],
                "accepted": accepted}  # fmt: skip

    def diagnostics(self) -> dict[str, Tensor]:
        """History columns: the damping μ and the relative step of the last call."""
        t = lambda x: torch.tensor(float(x), dtype=torch.float64)  # noqa: E731
        return {"mu": t(self.state["lm"]["mu"]), "step": t(self.last.get("step", math.nan))}
