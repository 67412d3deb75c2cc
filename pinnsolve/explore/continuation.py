"""Pseudo-arclength continuation of a network's solution in one problem parameter.

Why: where two solution branches meet at a fold (Bratu's at λ ≈ 3.5138), following the branch of
the solution training found — in the parameter, around the fold, and back to the requested value —
lands on the other branch, which no descent from the same start falls into (the HomPINN idea;
Keller's pseudo-arclength method). Each step starts from the last point, so it is cheap.

The unknowns are the network parameters θ and the parameter value λ. A step of length ``ds``:

- predictor: along the secant of the last two path points (the first step moves λ alone);
- corrector: Levenberg–Marquardt on ``[R(θ; λ); a(θ, λ)]``, where ``R`` is the stacked residual
  (:class:`~pinnsolve.optim.gauss_newton.StackedResiduals`) and ``a`` the arclength equation
  ``⟨z(θ, λ) − z_k, t⟩ − ds = 0`` in the scaled coordinates ``z = (u/√N, λ/λ_s)`` (fields on the
  N comparison points, ``λ_s`` = max(|λ*|, 1)), with ``t`` the unit secant. Measuring arclength in
  function space, not in θ, keeps it independent of how the network parameterises ``u``.
  ``∂R/∂λ`` is a central difference (one column; float64 keeps it accurate to ~1e-10);
- a corrector that fails halves ``ds``; one that reaches the tolerances in a few steps doubles
  it (up to ``MAX_GROWTH`` times the initial step). A point within the tolerances is corrected
  on until it settles (:meth:`ParameterPath._settled`), so that errors do not pile up along the
  path.

When λ crosses the requested value λ* between two path points, the point interpolated between them
is a candidate for a solution at λ* (polished there by the caller); so is the last point of a path
lost within a step of λ*. A path that is lost leaves a switch at its end
(:meth:`ParameterPath.switch_at_end`): a lost path is most often at a fold, where the other
branch lies beside it. With ``branch_switching`` the
critical mode of every path point is watched (:mod:`pinnsolve.explore.bifurcation`); where another
branch crosses the path, points beside the crossing are left for the caller to switch from
(:meth:`ParameterPath.take_switches`). The parameter must enter the problem through ``residual``
or through conditions that read ``p`` when they are evaluated (a condition built from ``p`` once
keeps its first value).

One module (about 480 lines) on purpose: the path, its arclength corrector and the watch for
bifurcations along it share the path's state and change together.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import torch
from torch import Tensor, nn
from torch.nn.utils import parameters_to_vector, vector_to_parameters

from ..devices import on_device
from ..objective import Evaluation
from ..optim.gauss_newton import LevenbergMarquardt, StackedResiduals
from ..problem.base import Problem
from ..problem.params import Params
from ..train import PhaseOutcome, StopRule, Trainer
from .bifurcation import CriticalMode, bifurcation_between, critical_mode

#: the largest step, as a multiple of the initial one
MAX_GROWTH = 8.0
#: the smallest step, as a fraction of the initial one; below it the path is lost
MIN_FRACTION = 1 / 64
#: a corrector that reached the tolerances within this many Levenberg–Marquardt steps doubles the
#: next step
FAST_CORRECTOR = 3
#: a corrected point is settled at this fraction of the residual tolerance (:meth:`_settled`) …
SETTLED = 0.1
#: … or once a corrector step lowers ‖R‖² by less than this fraction
STALLED = 0.02
#: a corrected point may miss the arclength equation by this fraction of the step (it only fixes
#: where along the branch the point lies; measured on elastica1d: with 1e-3 the paths leaving
#: λ = 51 on the one-hump branches were lost at λ ≈ 54, with 0.1 they crossed λ = 60)
GAP_TOLERANCE = 0.1
#: switches sit this fraction of the way from a bifurcation to the path points beside it
#: (measured on elastica1d, seed 0: at the path points themselves, 11.5 from 4π², the switches
#: there found 3 of its 4 nontrivial solutions; a quarter of the way, all 4)
NEAR = 0.25


@contextmanager
def parameter_value(problem: Problem, name: str, value: float) -> Iterator[None]:
    """Evaluate ``problem`` with parameter ``name`` at ``value`` (restored afterwards)."""
    saved = problem.p
    problem.p = Params({**saved, name: float(value)})
    try:
        yield
    finally:
        problem.p = saved


@dataclass(frozen=True)
class PathSettings:
    """What a path follows and how: the parameter, the requested value λ* and the range it may
    explore, the initial arclength step, and the corrector's budget and tolerances."""

    parameter: str
    target: float
    low: float
    high: float
    step: float
    corrector_steps: int
    residual_tolerance: float
    infeasibility_tolerance: float
    damping: float = 1e-3
    #: watch the critical eigenvalue for bifurcations (see :meth:`ParameterPath.take_switches`)
    branch_switching: bool = False

    @property
    def scale(self) -> float:
        """``λ_s``: the parameter's unit in the arclength."""
        return max(abs(self.target), 1.0)


class ArclengthSystem:
    """One corrector's equations over (θ, λ): ``[R(θ; λ); a(θ, λ)]`` and their Jacobian.

    ``path`` is the last path point (its ``z``, ``value`` and the secant ``d_z``, ``d_value``,
    ``length``); ``z_of_model`` gives the network's current ``z``. :attr:`value` is λ as a 0-d
    tensor, the extra unknown the Levenberg–Marquardt optimizer updates with the network's
    parameters; :attr:`latest` holds ``R``, the evaluation and ``|a|`` of the last residual.
    """

    def __init__(
        self,
        stacked: StackedResiduals,
        problem: Problem,
        settings: PathSettings,
        z_of_model: Callable[[], Tensor],
        path: dict,
        ds: float,
        value: float,
    ):
        self.stacked = stacked
        self.problem = problem
        self.settings = settings
        self.z_of_model = z_of_model
        self.path = path
        self.ds = ds
        self.value = torch.tensor(value, dtype=path["z"].dtype, device=path["z"].device)
        self.latest: tuple[Tensor, Evaluation, float] | None = None

    def _at(self, value: float):
        return parameter_value(self.problem, self.settings.parameter, value)

    def arclength(self) -> Tensor:
        """``a = ⟨z − z_k, t⟩ − ds`` with ``t`` the unit secant (differentiable in θ)."""
        path, scale = self.path, self.settings.scale
        dz = self.z_of_model() - path["z"]
        along = dz @ path["d_z"] + (self.value - path["value"]) * path["d_value"] / scale**2
        return (along / path["length"] - self.ds).reshape(1)

    def residual(self) -> Tensor:
        with self._at(float(self.value)):
            r, ev = self.stacked.residual()
        a = self.arclength().detach()
        self.latest = (r.detach(), ev, float(a.abs()))
        return torch.cat([r.detach(), a])

    def jacobian(self) -> Tensor:
        """``[[∂R/∂θ, ∂R/∂λ], [∂a/∂θ, ∂a/∂λ]]``: ``∂R/∂λ`` by a central difference, ``∂a/∂θ``
        by one backward pass."""
        lam = float(self.value)
        with self._at(lam):
            jac = self.stacked.jacobian()
        h = 1e-6 * max(abs(lam), 1.0)
        with torch.no_grad(), self._at(lam + h):
            above = self.stacked.residual()[0]
        with torch.no_grad(), self._at(lam - h):
            below = self.stacked.residual()[0]
        params = [q for q in self.stacked.model.parameters() if q.requires_grad]
        row = torch.cat(
            [g.reshape(-1) for g in torch.autograd.grad(self.arclength().sum(), params)]
        )
        path = self.path
        d_value = path["d_value"] / (self.settings.scale**2 * path["length"])
        top = torch.cat([jac, ((above - below) / (2 * h)).unsqueeze(1)], dim=1)
        bottom = torch.cat([row, row.new_tensor([d_value])])
        return torch.cat([top, bottom.unsqueeze(0)])


class ParameterPath(torch.optim.Optimizer):
    """One branch followed from the network's current solution (``start``), a point per ``step``.

    An optimizer over the model's parameters so that the trainer's phase loop (logging,
    checkpoints, stop requests, rollbacks) runs it: its whole path state is in
    ``state["path"]`` and travels in ``state_dict``. ``lr`` scales the arclength step (a rollback
    halves it). After a step, :attr:`last` says what happened: ``event`` is ``None`` (go on) or
    why the path stops here, ``crossed`` whether the model holds a candidate for λ*: the point
    interpolated at a crossing of λ*, or the last point of a path lost within :attr:`reach` of
    it; the other ends are leaving the range and being lost (no step size down to the smallest
    let the corrector converge: ``lost``); ``note`` is what to tell the user (a bifurcation
    met), or None.
    """

    def __init__(
        self,
        model: nn.Module,
        residuals: Callable[[], StackedResiduals],
        problem: Problem,
        points: Tensor,
        settings: PathSettings,
        outer_step: Callable[[dict[str, Tensor]], None] | None = None,
    ):
        super().__init__([p for p in model.parameters() if p.requires_grad], {"lr": 1.0})
        self.model = model
        self.residuals = residuals
        self.problem = problem
        self.points = points
        self.settings = settings
        self.outer_step = outer_step
        self.last: dict = {}

    @property
    def _params(self) -> list[Tensor]:
        return self.param_groups[0]["params"]

    def _z(self) -> Tensor:
        """The fields part of ``z``: the network's fields on the points, over √N."""
        u = self.model(self.points).reshape(-1)
        return u / math.sqrt(self.points.shape[0])

    def load_state_dict(self, state_dict: dict) -> None:
        """As torch's, and the path's own state (not per parameter, so torch leaves it as
        saved) onto the parameters' device and dtype."""
        super().load_state_dict(state_dict)
        if "path" in self.state:
            self.state["path"] = self._like(self.state["path"])

    def follow(self, path: dict) -> None:
        """Go on along ``path`` (the state of a path set aside), onto the parameters' device and
        dtype; the network moves to its last point."""
        self.state["path"] = self._like(path)
        self._load(self.state["path"]["theta"])

    def _like(self, path: dict) -> dict:
        """``path`` (a path state) on the parameters' device and dtype."""
        like = self._params[0]
        return on_device(path, like.device, like.dtype)

    @torch.no_grad()
    def start(self, direction: int, value: float | None = None) -> None:
        """Begin a path at the current network, a solution at ``value`` (default λ*), moving λ
        up (+1) or down (-1)."""
        s = self.settings
        value = s.target if value is None else value
        theta = parameters_to_vector(self._params).clone()
        z = self._z()
        self.state["path"] = {
            "theta": theta, "z": z, "value": value, "direction": direction,
            # the first secant moves λ alone
            "d_theta": torch.zeros_like(theta), "d_z": torch.zeros_like(z),
            "d_value": direction * s.scale, "length": 1.0, "ds": s.step, "points": 0,
            "mode": self._mode(value), "switches": [],
        }  # fmt: skip

    @property
    def reach(self) -> float:
        """The farthest the parameter moves in one step (the largest arclength step, all of it
        along the parameter). A path lost this close to λ* ends with its last point as the
        candidate there, as a crossing does: measured on bratu2d at λ = 1, the path down the
        upper branch was lost at λ = 1.19, where the network no longer resolved the sharpening
        peak to the tolerance within the corrector's steps."""
        return self.settings.step * MAX_GROWTH * self.settings.scale

    @property
    def lost(self) -> bool:
        """Whether the last step found no point: no step size down to the smallest let the
        corrector converge."""
        return self.last.get("lost", False)

    @torch.no_grad()
    def switch_at_end(self) -> dict | None:
        """A switch (as :meth:`take_switches` gives them) at the path's last point but one,
        moving along the last secant: where to look for another branch when the path is lost.

        Why: a path is lost where the corrector cannot turn, which is what a fold looks like to
        it (measured on bratu2d at λ = 1: the path climbed the lower branch to λ = 6.81, the
        network's fold, and no step down to 1/64 of the first converged). Near a fold the other
        branch lies close beside this one, in the direction the path was heading, so a deflated
        search reaches it (deflated continuation: Farrell, Beentjes & Birkisson 2016), and a
        path from there follows it back. From the point before the last: at the last one, the
        fold itself, the two branches meet and deflating one removes the other with it. None
        when the path has taken no step."""
        path = self.state["path"]
        if path["points"] == 0:
            return None
        theta = path["theta"] - path["d_theta"]
        change = float(path["d_z"].norm())
        direction = path["d_theta"] / change if change > 0 else torch.zeros_like(theta)
        switch = self._switch(theta, path["value"] - path["d_value"], path["value"], direction)
        self._load(path["theta"])
        return switch

    @torch.no_grad()
    def _switch(self, theta: Tensor, value: float, at: float, direction: Tensor) -> dict:
        """A switch as :meth:`take_switches` describes it, from the network ``theta`` (left
        loaded) at parameter ``value``, beside a bifurcation or fold at ``at``."""
        self._load(theta)
        return {"theta": theta.clone(), "value": value, "at": at, "direction": direction,
                "fields": self.model(self.points).clone(), "deflated": []}  # fmt: skip

    def take_switches(self) -> list[dict]:
        """Where to switch onto the branches met at bifurcations since the last call: per
        bifurcation (at parameter value ``at``), a point of the path's branch on either side of
        it (within the range), each with its parameter ``value``, network ``theta``, ``fields`` on
        the
        points, the critical mode's parameter ``direction`` (fields RMS 1) and ``deflated`` (the
        explorer's: what earlier switches there found). A deflated search from ``theta`` moved
        along ``direction`` at that value, deflating ``fields``, lands on the other branch where
        it exists (:mod:`pinnsolve.explore`)."""
        path = self.state["path"]
        found, path["switches"] = path["switches"], []
        return found

    def run(self, trainer: Trainer, rule: StopRule, resume: dict | None = None) -> PhaseOutcome:
        """Pseudo-arclength steps as one trainer phase (one path point per log row) until the
        path crosses its requested parameter value (``converged``: the model holds that
        candidate), leaves its range, is lost, or ``rule`` ends it."""
        latest: dict = {}

        def advance(budget):
            v, ev = self.step()
            latest["crossed"] = self.last["crossed"]
            if self.last.get("note"):
                trainer.progress_message(self.last["note"])
            event = self.last["event"]
            return v, ev, 1, f"continuation: {event}" if event else None

        outcome = trainer.phase("continuation", self, rule, advance, resume, log_each_call=True)
        outcome.converged = latest.get("crossed", False)
        return outcome

    def step(self, closure=None) -> tuple[Tensor, Evaluation]:
        """One predictor–corrector step; returns V = ‖R‖² and the evaluation at the new point."""
        path, s = self.state["path"], self.settings
        stacked = self.residuals()
        ds = path["ds"] * self.param_groups[0]["lr"]
        while ds >= s.step * MIN_FRACTION:
            corrected = self._try(stacked, path, ds)
            if corrected is not None:
                break
            ds /= 2
        else:
            path["ds"] = ds
            self._load(path["theta"])
            lost = f"lost: no step down to {ds:.3g} converged ({s.parameter} = {path['value']:.6g})"
            near = path["points"] > 0 and abs(path["value"] - s.target) <= self.reach
            if near:
                lost += f"; its last point, within a step of {s.target:g}, is the candidate"
            self.last = {"event": lost, "crossed": near, "corrector_steps": 0,
                         "value": path["value"], "lost": True}  # fmt: skip
            with torch.no_grad(), parameter_value(self.problem, s.parameter, path["value"]):
                r, ev = stacked.residual()
            return r.square().sum(), ev
        theta, value, iterations, r, ev = corrected
        self._advance(path, theta, value, ds, iterations)
        if self.outer_step is not None:
            self.outer_step({k: g.detach() for k, g in ev.g.items()})
        return r.square().sum(), ev

    # -- one step -------------------------------------------------------------------------------
    def _try(self, stacked: StackedResiduals, path: dict, ds: float):
        """Predict and correct with arclength ``ds``: the corrected parameters, λ, the corrector
        steps it took to reach the tolerances, ``R`` and the evaluation there; None when no
        corrector step reached them. A point within the tolerances is corrected on until
        :meth:`_settled` (or the corrector's budget ends)."""
        s = self.settings
        unit = ds / path["length"]
        self._load(path["theta"] + unit * path["d_theta"])
        value = path["value"] + unit * path["d_value"]
        system = ArclengthSystem(stacked, self.problem, s, self._z, path, ds, value)
        corrector = LevenbergMarquardt(
            [*self._params, system.value], system.residual, system.jacobian, s.damping
        )
        best, reached = None, 0
        for iteration in range(1, s.corrector_steps + 1):
            corrector.step()
            if not corrector.last["accepted"]:
                break
            # an accepted step's last evaluation was at the accepted point
            r, ev, gap = system.latest
            if not self._within(ev, gap, ds, stacked):
                continue
            reached = reached or iteration
            theta = parameters_to_vector(self._params).detach().clone()
            best = theta, float(system.value), reached, r, ev
            if self._settled(ev, corrector.last):
                break
        return best

    def _within(self, ev: Evaluation, gap: float, ds: float, stacked: StackedResiduals) -> bool:
        s = self.settings
        rms = ev.measured_residual()
        worst = float(stacked.constraints.max_infeasibility(ev.g))
        within = rms <= s.residual_tolerance and worst <= s.infeasibility_tolerance
        return within and gap <= GAP_TOLERANCE * ds

    def _settled(self, ev: Evaluation, step: dict) -> bool:
        """Whether a point within the tolerances is corrected enough: its residual is
        :data:`SETTLED` of the tolerance, or the last step lowered ‖R‖² by less than
        :data:`STALLED`. Stopping at the tolerance itself let the error grow from point to point
        up to it (bratu2d at λ = 1: the residual's mean square rose from 3e-5 to 2.4e-3 over
        nine points, and the path was lost at λ = 6.46, short of the fold)."""
        if ev.measured_residual() <= SETTLED * self.settings.residual_tolerance:
            return True
        return step["v"] > (1 - STALLED) * step["v_before"]

    @torch.no_grad()
    def _advance(self, path: dict, theta: Tensor, value: float, ds: float, iterations: int) -> None:
        """Make the corrected point the path's last, detect a crossing of λ* or leaving the
        range, and adapt the step."""
        s = self.settings
        self._load(theta)
        z = self._z()
        previous, before = path["theta"], path["value"]
        d_z, d_value = z - path["z"], value - before
        length = math.sqrt(float(d_z @ d_z) + (d_value / s.scale) ** 2)
        path.update(theta=theta, z=z, value=value, d_theta=theta - previous, d_z=d_z,
                    d_value=d_value, length=length, points=path["points"] + 1)  # fmt: skip
        growth = 2.0 if iterations <= FAST_CORRECTOR else 1.0
        path["ds"] = min(ds * growth, s.step * MAX_GROWTH)
        note = self._watch(path, previous, before) if s.branch_switching else None
        event, where = None, f"{s.parameter} = {value:.6g}, path point {path['points']}"
        crossed = (before - s.target) * (value - s.target) < 0
        if crossed:
            event = f"crossed {s.parameter} = {s.target:g} ({where})"
            fraction = (s.target - before) / d_value
            self._load(previous + fraction * (theta - previous))
        elif not s.low <= value <= s.high:
            event = f"left the range [{s.low:g}, {s.high:g}] ({where})"
        self.last = {"event": event, "crossed": crossed, "corrector_steps": iterations,
                     "value": value, "note": note}  # fmt: skip

    # -- bifurcations ---------------------------------------------------------------------------
    def _mode(self, value: float) -> tuple[float, Tensor] | None:
        """The critical eigenvalue and eigenfunction at the current network and parameter
        ``value`` (None when not watching or there is none)."""
        if not self.settings.branch_switching:
            return None
        mode = self._critical(value)
        return mode.spectral if mode else None

    def _critical(self, value: float) -> CriticalMode | None:
        with parameter_value(self.problem, self.settings.parameter, value):
            return critical_mode(self.residuals())

    def _watch(self, path: dict, previous: Tensor, before: float) -> str | None:
        """After a step from ``previous`` (at λ = ``before``) to the path's new point: when the
        critical eigenvalue crossed zero in between (:func:`bifurcation_between`), points of the
        branch on either side of the bifurcation, :data:`NEAR` of the way to the path points
        (corrected along the step's secant), become switches (:meth:`take_switches`). Returns
        what to tell the user."""
        s, earlier = self.settings, path["mode"]
        current = self._critical(path["value"])
        path["mode"] = current.spectral if current else None
        if earlier is None or current is None:
            return None
        fraction = bifurcation_between(earlier, current.spectral, path["d_z"],
                                       path["d_value"] / s.scale)  # fmt: skip
        if fraction is None:
            return None
        where = before + fraction * path["d_value"]
        segment = {**path, "theta": previous, "z": path["z"] - path["d_z"], "value": before}
        stacked = self.residuals()
        for side in (fraction + NEAR * (1 - fraction), (1 - NEAR) * fraction):
            corrected = self._try(stacked, segment, side * path["length"])
            if corrected is None:
                continue
            theta, value = corrected[0], corrected[1]
            if not s.low <= value <= s.high:
                continue
            self._load(theta)
            mode = self._critical(value)
            if mode is not None:
                path["switches"].append(self._switch(theta, value, where, mode.direction))
        self._load(path["theta"])
        return (f"continuation: bifurcation at {s.parameter} ≈ {where:.6g} (an eigenvalue of the "
                f"linearized problem crossed zero)")  # fmt: skip

    def _load(self, theta: Tensor) -> None:
        vector_to_parameters(theta, self._params)

    def diagnostics(self) -> dict[str, Tensor]:
        """History columns: the parameter value of the last path point and the step size."""
        path = self.state["path"]
        t = lambda x: torch.tensor(float(x), dtype=torch.float64)  # noqa: E731
        return {"param": t(path["value"]), "ds": t(path["ds"]),
                "corrector": t(self.last.get("corrector_steps", 0))}  # fmt: skip
