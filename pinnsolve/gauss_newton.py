"""Gauss–Newton / Levenberg–Marquardt polish on the stacked residual vector.

First-order training stalls around 1e-3 relative error; a PINN's loss is a sum of squares, so a
Gauss–Newton step, which uses the curvature ``JᵀJ`` of that sum, converges much further in
float64. Two pieces:

:class:`StackedResiduals`
    ``R(θ)`` with ``‖R‖² = V``, the MDMM primal energy at frozen multipliers: the equations'
    residuals scaled by ``1/√N`` followed by each constraint's :meth:`energy_residuals
    <pinnsolve.constraints.ConstraintSet.energy_residuals>`. Its Jacobian ``J = ∂R/∂θ`` is built
    by the chain rule through the forward jets (value, gradient, Hessian of the network at each
    collocation point): ``∂jet/∂θ`` per point by ``vmap(jacrev)`` (cheap: one small backward pass
    per point and jet component), then ``J = (∂R/∂jet)(∂jet/∂θ)`` by ``jvp`` through the residual
    and condition code, batched over parameter columns. Nested autograd cannot do this: the
    per-row Jacobian of a double-backward graph costs a full backward pass per row.

:class:`LevenbergMarquardt`
    One damped step ``Δ = −(JᵀJ + μI)⁻¹JᵀR`` per call, solved in whichever space is smaller (rows:
    ``Δ = −Jᵀ(JJᵀ + μI)⁻¹R``), with Nielsen's adaptive μ (a step is taken only if V falls).
    Multipliers are updated between steps by the caller (the method of multipliers).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import Tensor, nn
from torch.func import functional_call, jacrev, jvp, vmap

from .constraints import ConstraintSet
from .jet import Coords, Engine
from .jet_forward import ForwardFields, Jet, supports_jet
from .objective import Evaluation, PinnObjective


class GaussNewtonError(ValueError):
    """The problem or network cannot be polished by Gauss–Newton (with the reason)."""


class _JetTable(Engine):
    """Fields for :meth:`PinnObjective.evaluate` served from jets: computed from the network and
    recorded (``jets=None``), or taken from ``jets`` (keyed by the point tensor's id), which is
    what makes the residual vector a function of the jets that ``torch.func`` can transform."""

    name = "jet-table"

    def __init__(self, jets: dict[int, Jet] | None = None):
        self.jets = jets
        #: per point set (by id): the tensor and the highest derivative order asked of it
        self.points: dict[int, Tensor] = {}
        self.orders: dict[int, int] = {}

    def fields(self, model, points, field_names, coord_names, spatial):
        key = id(points)
        self.points[key] = points

        def compute(order: int) -> Jet:
            self.orders[key] = max(self.orders.get(key, 0), order)
            if self.jets is None:
                return model.jet(points, order)
            return self.jets[key]

        fields = ForwardFields(compute, field_names, coord_names, spatial)
        return Coords(points, coord_names), fields


class _JetModule(nn.Module):
    """``model.jet`` as a module's forward, so ``functional_call`` can swap its parameters."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(self, x: Tensor, order: int) -> Jet:
        return self.model.jet(x, order)


def _flatten(jet: Jet) -> Tensor:
    """``[N, C]``: value, then gradient, then Hessian components of each point."""
    parts = [t for t in (jet.value, jet.grad, jet.hess) if t is not None]
    return torch.cat([t.reshape(t.shape[0], -1) for t in parts], dim=1)


def _unflatten(flat: Tensor, order: int, d: int, m: int) -> Jet:
    n = flat.shape[0]
    value = flat[:, :m]
    grad = flat[:, m : m + d * m].reshape(n, d, m) if order >= 1 else None
    hess = flat[:, m + d * m :].reshape(n, d, d, m) if order >= 2 else None
    return Jet(value, grad, hess)


class StackedResiduals:
    """``R(θ)`` (``‖R‖² = V``) of ``model`` on ``objective`` with ``constraints``, and ``∂R/∂θ``.

    ``column_chunk`` bounds the parameter columns pushed through the residual code at once (its
    memory is ``column_chunk`` times that of one evaluation).
    """

    def __init__(
        self,
        objective: PinnObjective,
        constraints: ConstraintSet,
        model: nn.Module,
        column_chunk: int = 256,
    ):
        if not supports_jet(model):
            raise GaussNewtonError(
                f"Gauss–Newton needs a network with forward jets (pinnsolve's MLP), "
                f"not {type(model).__name__}"
            )
        self.objective = objective
        self.constraints = constraints
        self.model = model
        self.column_chunk = column_chunk
        self._params = [p for p in model.parameters() if p.requires_grad]
        self._names = [n for n, p in model.named_parameters() if p.requires_grad]
        probe = _JetTable()
        try:
            self.residual(probe)
        except ValueError as err:  # a derivative above second order: ForwardFields says which
            raise GaussNewtonError(str(err)) from None
        self._points = probe.points
        self._orders = {k: probe.orders.get(k, 0) for k in probe.points}

    @property
    def n_params(self) -> int:
        return sum(p.numel() for p in self._params)

    def residual(self, engine: Engine | None = None) -> tuple[Tensor, Evaluation]:
        """``R`` at the network's current parameters, with the evaluation it came from."""
        ev = self.objective.evaluate(self.model, engine or _JetTable())
        parts = [r.reshape(-1) / math.sqrt(r.numel()) for r in ev.residuals]
        parts += [c.reshape(-1) for c in self.constraints.energy_residuals(ev.g)]
        return torch.cat(parts), ev

    def jacobian(self) -> Tensor:
        """``∂R/∂θ``, shape ``[len(R), n_params]``, columns in ``model.parameters()`` order."""
        jet_module = _JetModule(self.model)
        params = {f"model.{n}": p.detach() for n, p in zip(self._names, self._params, strict=True)}
        keys = list(self._points)
        d = self.objective.interior.shape[1]
        m = len(self.objective.problem.fields)
        primals, tangents = [], []
        for key in keys:
            order = self._orders[key]

            def point_jet(p, x1, order=order):
                flat = _flatten(functional_call(jet_module, p, (x1, order)))[0]
                return flat, flat.detach()  # the jet itself comes back as jacrev's aux

            x = self._points[key].detach()
            per_point, jet = vmap(jacrev(point_jet, has_aux=True), in_dims=(None, 0))(
                params, x.unsqueeze(1)
            )
            primals.append(jet)
            # [N, C, P]: parameter columns last, in the order of self._names
            tangents.append(torch.cat([per_point[n].flatten(start_dim=2) for n in params], dim=2))

        def stacked(*flat_jets: Tensor) -> Tensor:
            jets = {
                k: _unflatten(j, self._orders[k], d, m)
                for k, j in zip(keys, flat_jets, strict=True)
            }
            return self.residual(_JetTable(jets))[0]

        def column(*tangent_cols: Tensor) -> Tensor:
            return jvp(stacked, tuple(primals), tangent_cols)[1]

        columns = vmap(column, in_dims=2, chunk_size=self.column_chunk)(*tangents)
        return columns.T


class LevenbergMarquardt(torch.optim.Optimizer):
    """Levenberg–Marquardt steps on ``R`` = ``residuals()`` with Jacobian ``jacobian()``.

    ``step()`` takes one accepted step or gives up after ``max_tries`` rejections (each raises
    μ), and returns V = ‖R‖² at the new point. μ is relative to the mean diagonal of ``JᵀJ``, so
    its default does not depend on the residual's units. ``lr`` scales the step (1: the full
    Gauss–Newton step; a rollback after a numerical fault halves it). ``last`` holds what the
    step measured: V before and after, the relative step size, μ, and ``accepted``.
    """

    def __init__(
        self,
        params,
        residuals: Callable[[], Tensor],
        jacobian: Callable[[], Tensor],
        damping: float = 1e-3,
        lr: float = 1.0,
        max_tries: int = 30,
    ):
        super().__init__(params, {"lr": lr})
        self.residuals = residuals
        self.jacobian = jacobian
        self.max_tries = max_tries
        self.state["lm"] = {"mu": float(damping), "nu": 2.0}
        self.last: dict = {}

    @property
    def _params(self) -> list[Tensor]:
        return [p for group in self.param_groups for p in group["params"]]

    @torch.no_grad()
    def step(self, closure=None) -> float:
        params = self._params
        theta0 = torch.nn.utils.parameters_to_vector(params).clone()
        with torch.enable_grad():
            jac = self.jacobian()
        r = self.residuals().detach()
        v0 = float(r @ r)
        lm = self.state["lm"]
        rows, cols = jac.shape
        gram = jac @ jac.T if rows <= cols else jac.T @ jac
        scale = float(gram.diagonal().mean()) or 1.0
        eye = torch.eye(gram.shape[0], dtype=gram.dtype, device=gram.device)
        lr = self.param_groups[0]["lr"]
        for _ in range(self.max_tries):
            mu = lm["mu"] * scale
            if rows <= cols:
                delta = -jac.T @ torch.linalg.solve(gram + mu * eye, r)
            else:
                delta = -torch.linalg.solve(gram + mu * eye, jac.T @ r)
            delta = lr * delta
            predicted = v0 - float((r + jac @ delta).square().sum())
            torch.nn.utils.vector_to_parameters(theta0 + delta, params)
            r_new = self.residuals().detach()
            v = float(r_new @ r_new)
            rho = (v0 - v) / predicted if predicted > 0 else -1.0
            if math.isfinite(v) and v < v0 and rho > 0:
                lm["mu"] *= max(1 / 3, 1 - (2 * rho - 1) ** 3)
                lm["nu"] = 2.0
                self.last = self._record(v0, v, delta, theta0, True)
                return v
            torch.nn.utils.vector_to_parameters(theta0, params)
            lm["mu"] *= lm["nu"]
            lm["nu"] *= 2
        self.last = self._record(v0, v0, torch.zeros_like(theta0), theta0, False)
        return v0

    def _record(self, v0, v, delta, theta0, accepted) -> dict:
        step = float(delta.norm()) / (float(theta0.norm()) + 1e-300)
        return {"v_before": v0, "v": v, "step": step, "mu": self.state["lm"]["mu"],
                "accepted": accepted}  # fmt: skip

    def diagnostics(self) -> dict[str, Tensor]:
        """History columns: the damping μ and the relative step of the last call."""
        t = lambda x: torch.tensor(float(x), dtype=torch.float64)  # noqa: E731
        return {"mu": t(self.state["lm"]["mu"]), "step": t(self.last.get("step", math.nan))}
