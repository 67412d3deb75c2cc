"""Several solutions from one initialization: the explorer and its catalogue.

After the main training (attempt 0, whose result is the first candidate), the explorer runs
``attempts`` searches. What a search starts from and minimises is the strategy:

``deflation`` (recommended)
    From the same initial parameters θ₀, Levenberg–Marquardt on the deflated residual
    ``M(u)·R(θ)`` (:mod:`pinnsolve.explore.deflation`), deflated by every solution found so far
    and, with ``deflate_failures``, by where earlier failed searches ended (otherwise a search from
    the same θ₀ with the same deflation would repeat the failure exactly).
``restarts``
    The fair baseline: a fresh random initialization per attempt (``init_scale`` widens it), the
    same Levenberg–Marquardt search without deflation, the same polish, dedup and accounting.
``bbi``
    From θ₀, BBI (``[training]`` steps and ``[bbi]`` settings) with a different bounce seed per
    attempt: bounce streams alone. Measured on bratu1d to stay in the first basin; kept as the
    baseline the other strategies are compared with.
``kick``
    Re-inflation: from a solution found (in turn), BBI with a large energy (``kick_energy``
    times V at θ₀) and a random momentum direction, so the particle can climb barriers up to
    that energy; one bounce seed per attempt. Measured on bratu1d to wander in the first
    basin's flat directions (loss ≤ 0.2) and fall back to the same solution.
``continuation``
    From the main training's solution, follow its branch in one problem parameter
    (:mod:`pinnsolve.explore.continuation`), first upward, then downward from the start again.
    Where the path crosses the requested value, the crossing is the attempt's candidate; the path
    goes on later. Where a path meets a bifurcation (:mod:`pinnsolve.explore.bifurcation`), a
    deflated search beside it switches onto the other branch, and that branch is followed to the
    requested value too. Finds what is connected to the first solution through folds and
    bifurcations.

Every candidate (the end of a search) is polished on the *undeflated* problem (Levenberg–Marquardt
with the method of multipliers, ``[polish]`` tolerances), accepted when its residual RMS and largest
constraint violation pass ``accept_residual`` / ``accept_infeasibility``, and is new when its
relative distance (:func:`~pinnsolve.explore.deflation.relative_distance`) to every solution in the
catalogue exceeds ``distance``. Exploring ends after ``attempts`` or after ``patience`` attempts
in a row found nothing new. Every attempt is logged (outcome, residual, steps, time) for the
summary.

Attempts run in rounds of ``trajectories``, every attempt of a round from the state (network,
multipliers, catalogue) the round began with; the round's records are judged in attempt order.
Under torchrun attempt i of a round runs on rank i mod world; a rank's bbi or kick searches of a
round run as one batched ensemble (:mod:`pinnsolve.optim.ensemble`), its deflation searches side by
side, deflating each other (:mod:`pinnsolve.explore.lockstep`); then each end is polished.
"""

from __future__ import annotations

import functools
import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn
from torch.nn.utils import parameters_to_vector, vector_to_parameters

from ..constraints import ConstraintSet
from ..devices import on_device
from ..io.config import ExploreSection
from ..optim.gauss_newton import StackedResiduals
from ..parallel.distributed import SINGLE, Communicator
from ..train import PhaseOutcome, StopRule, Tolerances, Trainer
from .catalogue import Catalogue, Found, closest
from .continuation import ParameterPath, parameter_value
from .deflation import DeflatedResiduals, Deflation
from .lockstep import DeflatedLockstep

#: A phase function: runs (or resumes from the state it gets) and says how it ended.
Phase = Callable[[dict | None], PhaseOutcome]

#: Inner stop reasons that end exploring as a whole (the run is being stopped).
_RUN_STOPS = ("interrupted", "time_limit")

#: the phases that switch onto a branch met at a bifurcation (continuation): a deflated search
#: beside it, then the polish of what it found
SWITCH = "branch_switch"
SWITCH_POLISH = "branch_polish"


def _converging(search: PhaseOutcome) -> bool:
    """A Levenberg–Marquardt search that met its tolerance, or was still making progress when
    its step budget ran out (see :meth:`Explorer._converged`)."""
    return search.converged or search.stop_reason == "max_steps"


def _copy(state: dict[str, Tensor]) -> dict[str, Tensor]:
    """A detached copy of a state dict (``state_dict()`` shares storage with the model)."""
    return {n: t.detach().clone() for n, t in state.items()}


def attempt_seed(seed: int, attempt: int) -> int:
    """A reproducible seed per attempt (restarts' initialization, bbi's bounce stream)."""
    return int(np.random.SeedSequence([seed, 1000 + attempt]).generate_state(1)[0])


@dataclass(frozen=True)
class ExploreContext:
    """What the explorer needs from the run it is part of (built by the solver)."""

    trainer: Trainer
    model: nn.Module
    constraints: ConstraintSet
    #: the residual vector of the current network on the current (polish-precision) objective
    stacked_residuals: Callable[[], StackedResiduals]
    #: switch model, points and multipliers to the polish precision
    to_precision: Callable[[], None]
    #: θ₀: the parameters the run started from
    start_state: dict[str, Tensor]
    #: a fresh random initialization for attempt k (restarts)
    fresh_state: Callable[[int], dict[str, Tensor]]
    #: θ₀ moved by attempt k's noise (``spread``): where deflation's side-by-side searches start
    spread_state: Callable[[int], dict[str, Tensor]]
    #: BBI from the current parameters with bounce seed k; a kick when the energy unit is > 0
    bbi_search: Callable[[int, float, dict | None], PhaseOutcome]
    #: the BBI searches of attempts ks from their start networks and these multipliers, as one
    #: batched ensemble (kick as above): the outcome and each member's (network, multipliers)
    bbi_ensemble: Callable[[list[int], list[dict], dict, float],
                           tuple[PhaseOutcome, list[tuple[dict, dict]]]]  # fmt: skip
    #: the undeflated Levenberg–Marquardt polish of a candidate (``name``: its phase's name)
    polish: Callable[..., PhaseOutcome]
    #: a parameter path over the current network (continuation; None for other strategies)
    parameter_path: Callable[[], ParameterPath] | None
    search_rule: StopRule
    search_tolerances: Tolerances
    damping: float
    checkpoint: Callable[[dict | None], None]
    #: the ranks a round's attempts are split over (one process: :data:`SINGLE`)
    ranks: Communicator = SINGLE


class Explorer:
    """Runs the attempts of one strategy and keeps the catalogue (see the module docstring)."""

    def __init__(self, settings: ExploreSection, context: ExploreContext):
        self.settings = settings
        self.context = context
        self.catalogue = Catalogue(settings.distance, settings.distance_floor)
        #: where failed searches ended (deflated too, with ``deflate_failures``)
        self.tabu: list[Tensor] = []
        #: one record per attempt, for the summary
        self.log: list[dict] = []
        #: the main training's polished result when it was not accepted (kept, not lost)
        self.unaccepted: Found | None = None
        self.attempt = 0
        self.since_new = 0
        #: the multipliers every attempt starts from: taken here, before any training or resume
        self._initial_multipliers = context.constraints.state_dict()
        #: where fields are compared and deflated (the interior collocation points, set by run)
        self._points: Tensor | None = None
        #: continuation: the paths waiting to be followed, in order (None before the first):
        #: the first solution's second direction, switches onto branches met at bifurcations
        #: (nearest the requested value first), then paths set aside after a crossing
        self.paths: list[dict] | None = None
        #: where the first path started (the main training's solution, with its multipliers)
        self.origin: dict | None = None
        #: the branch switch under way (taken from :attr:`paths`; kept for a resume)
        self.switching: dict | None = None

    # -- state --------------------------------------------------------------------------------
    def state_dict(self) -> dict:
        return {
            "catalogue": self.catalogue.state_dict(),
            "tabu": [t.cpu() for t in self.tabu],
            "log": list(self.log),
            "attempt": self.attempt,
            "since_new": self.since_new,
            "unaccepted": asdict(self.unaccepted) if self.unaccepted else None,
            "paths": self.paths,
            "origin": self.origin,
            "switching": self.switching,
        }

    def load_state_dict(self, state: dict) -> None:
        like = next(self.context.model.parameters())
        self.catalogue.load_state_dict(state["catalogue"], like)
        self.tabu = [t.to(like) for t in state["tabu"]]
        self.log = list(state["log"])
        self.attempt = state["attempt"]
        self.since_new = state["since_new"]
        self.unaccepted = Found(**state["unaccepted"]) if state["unaccepted"] else None
        self.paths, self.origin = state["paths"], state["origin"]
        self.switching = state["switching"]

    def solutions(self) -> list[Found]:
        """What the run reports: the catalogue in its stable order; when nothing was accepted,
        the main training's polished result (its provenance says ``accepted: false``)."""
        if self.catalogue.entries or self.unaccepted is None:
            return self.catalogue.sorted()
        return [self.unaccepted]

    # -- the phase ----------------------------------------------------------------------------
    def run(self, resume: dict | None = None) -> PhaseOutcome:
        """Attempt 0 (polish and judge the main training's result), then the searches, in rounds
        of ``trajectories`` attempts (see :meth:`_round`)."""
        started = time.monotonic()
        ctx, s = self.context, self.settings
        ctx.to_precision()
        self._points = ctx.stacked_residuals().objective.interior
        steps, reason = 0, "explored all attempts"
        while self.attempt <= s.attempts:
            if s.patience and self.since_new >= s.patience:
                reason = f"no new solution in {self.since_new} attempts (patience)"
                break
            if self._path_exhausted():
                reason = "continuation: followed every path (both ways, and the branches met)"
                break
            ks = [0] if self.attempt == 0 else list(
                range(self.attempt, min(self.attempt + s.trajectories, s.attempts + 1))
            )  # fmt: skip
            records, n, stop = self._round(ks, resume)
            resume = None
            steps += n
            if stop:
                reason = stop
                break
            for record in records:
                self._judge(record)
            self._adopt(records[-1])
            self.attempt = ks[-1] + 1
            ctx.checkpoint(None)  # the round is in the catalogue: the next starts afresh
        rows = ctx.trainer.history.rows
        final = rows[-1]["loss"] if rows else math.nan
        return PhaseOutcome("explore", steps, reason, final, time.monotonic() - started)

    def _round(self, ks: list[int], resume: dict | None) -> tuple[list[dict], int, str | None]:
        """Attempts ``ks``, every one from the state (network, multipliers, catalogue) the round
        began with, split over the ranks (attempt i of the round on rank i mod world). Returns
        every attempt's record in order (the same on every rank), this rank's steps, and the run's
        stop reason when it is being stopped on any rank (the round is then dropped: a resumed run
        repeats it, with the same result, since an attempt depends only on that state).

        Alone and one attempt per round, an attempt checkpoints inside its search and polish and
        resumes there; otherwise checkpoints fall at round ends."""
        ctx, ranks = self.context, self.context.ranks
        inner = ranks.world == 1 and len(ks) == 1
        start = (_copy(ctx.model.state_dict()), ctx.constraints.state_dict())
        share = ks[ranks.rank :: ranks.world]
        mine, n, searched, stop = [], 0, {}, None
        if self.settings.strategy in ("bbi", "kick") and len(share) > 1:
            searched, n, stop = self._search_together(share, start)
        elif self.settings.strategy == "deflation" and len(share) > 1:
            searched, n, stop = self._deflate_together(share, ks[0])
        for k in share if not stop else ():
            ctx.model.load_state_dict(start[0])
            ctx.constraints.load_state_dict(start[1])
            resuming = resume if inner and resume is not None and resume["attempt"] == k else None
            record, steps, stop = self._attempt(k, resuming, inner, searched.get(k))
            n += steps
            if stop:
                break
            mine.append(record)
        everyone = ranks.all_gather_objects((mine, stop))
        stops = [stop for _, stop in everyone if stop]
        if stops:
            return [], n, stops[0]
        records = sorted((r for part, _ in everyone for r in part), key=lambda r: r["attempt"])
        return records, n, None

    def _search_together(
        self, ks: list[int], start: tuple[dict, dict]
    ) -> tuple[dict[int, tuple[PhaseOutcome, dict, dict]], int, str | None]:
        """The BBI searches of attempts ``ks`` as one batched ensemble
        (:mod:`pinnsolve.optim.ensemble`), each from where its single search would start. Returns
        per attempt the ensemble's outcome with the member's end (network and multipliers), the
        steps taken, and the run's stop reason when it is being stopped."""
        ctx = self.context
        starts = []
        for k in ks:
            ctx.model.load_state_dict(start[0])
            ctx.constraints.load_state_dict(start[1])
            self._reset(k)
            starts.append(_copy(ctx.model.state_dict()))
        kick = self._start_energy if self.settings.strategy == "kick" else 0.0
        outcome, ends = self._run_inner(
            ks[0], "search", None, None,
            lambda r: ctx.bbi_ensemble(ks, starts, ctx.constraints.state_dict(), kick), False,
        )  # fmt: skip
        if outcome.stop_reason in _RUN_STOPS:
            return {}, outcome.steps, outcome.stop_reason
        return {k: (outcome, *end) for k, end in zip(ks, ends, strict=True)}, outcome.steps, None

    def _deflate_together(
        self, ks: list[int], first: int
    ) -> tuple[dict[int, tuple[PhaseOutcome, dict, dict]], int, str | None]:
        """The deflated searches of attempts ``ks`` side by side
        (:mod:`pinnsolve.explore.lockstep`): the round's ``first`` attempt from θ₀, the others from
        θ₀ moved by their own noise, all with the initial multipliers. Returns what
        :meth:`_search_together` does, with each member's own outcome."""
        ctx = self.context
        ctx.constraints.load_state_dict(self._initial_multipliers)
        theta = []
        for k in ks:
            ctx.model.load_state_dict(ctx.start_state if k == first else ctx.spread_state(k))
            theta.append(parameters_to_vector(ctx.model.parameters()).detach().clone())
        opt = DeflatedLockstep(
            ctx.stacked_residuals(), self._deflation(), torch.stack(theta), ctx.damping,
            ctx.search_tolerances, ctx.search_rule,
        )  # fmt: skip
        rule = replace(ctx.search_rule, max_steps=ctx.search_rule.max_steps * len(ks), patience=0)
        outcome = self._run_inner(
            ks[0], "search", None, None, lambda r: opt.run(ctx.trainer, rule), False
        )
        if outcome.stop_reason in _RUN_STOPS:
            return {}, outcome.steps, outcome.stop_reason
        multipliers = ctx.constraints.state_dict()
        members = opt.outcomes(outcome.wall_time_s)
        searched = {
            k: (member, opt.member_state(i), multipliers)
            for i, (k, member) in enumerate(zip(ks, members, strict=True))
        }
        return searched, outcome.steps, None

    def _attempt(
        self, k: int, resume: dict | None, checkpoints: bool, searched: tuple | None = None
    ) -> tuple[dict | None, int, str | None]:
        """One attempt: search (k ≥ 1) and polish. Returns its record for :meth:`_judge` (None
        when the run is being stopped), the steps taken and that stop reason. ``searched``: the
        search already ran in an ensemble (its outcome, end network and multipliers)."""
        ctx = self.context
        started = time.monotonic()
        stage = resume["stage"] if resume else ("search" if k else "polish")
        search_end = resume.get("search_end") if resume else None
        search = None
        if stage == "search" and searched is not None:
            search = searched[0]
            ctx.model.load_state_dict(searched[1])
            ctx.constraints.load_state_dict(searched[2])
        elif stage == "search":
            if resume is None:
                self._reset(k)
            search = self._run_inner(k, "search", None, resume and resume["inner"],
                                     lambda r: self._search(k, r), checkpoints)  # fmt: skip
            if search.stop_reason in _RUN_STOPS:
                return None, search.steps, search.stop_reason
        # steps taken here (an ensemble's were counted where it ran)
        steps = search.steps if search is not None and searched is None else 0
        if search is not None:
            search_end = self._fields()
            stage, resume = "polish", None
            if not self._converged(search):
                return self._record(k, search_end, search, None, started), steps, None
        polish = self._run_inner(k, "polish", search_end, resume and resume["inner"],
                                 self.context.polish, checkpoints)  # fmt: skip
        steps += polish.steps
        if polish.stop_reason in _RUN_STOPS:
            return None, steps, polish.stop_reason
        return self._record(k, search_end, search, polish, started), steps, None

    def _converged(self, search: PhaseOutcome) -> bool:
        """Whether a search's end is worth polishing: a Levenberg–Marquardt search that met its
        tolerance, or that was still making progress when its step budget ran out (measured on
        elastica1d: a search ending at residual RMS 1.4e-3 against a 1e-3 tolerance). One that
        stalled sits in a spurious minimum of the deflated energy (no solution there), and
        polishing it would only slide back to a known solution. A BBI search has no tolerance
        of its own; its end is always polished."""
        if self.settings.strategy == "continuation":
            return search.converged  # the path crossed the requested value
        return self.settings.strategy in ("bbi", "kick") or _converging(search)

    def _record(self, k, search_end, search, polish, started) -> dict:
        """What an attempt ended with, as plain CPU data (it may travel to other ranks): the
        network and multipliers, its fields, residual RMS and infeasibility, and how the search
        and polish went. ``candidate`` is False when the search did not converge."""
        ctx = self.context
        with torch.no_grad():
            _, ev = ctx.stacked_residuals().residual()
        return on_device({
            "attempt": k, "candidate": polish is not None or search is None,
            "values": self._fields(),
            "residual_rms": ev.residual_rms(),
            "infeasibility": float(ctx.constraints.max_infeasibility(ev.g)),
            "model": ctx.model.state_dict(), "multipliers": ctx.constraints.state_dict(),
            "search_end": search_end, "step": ctx.trainer.history.step, "rank": ctx.ranks.rank,
            "search_steps": search.steps if search else 0,
            "search_stop": search.stop_reason if search else None,
            "polish_steps": polish.steps if polish else 0,
            "wall_time_s": time.monotonic() - started,
            "paths": self.paths, "origin": self.origin,
        }, "cpu")  # fmt: skip

    def _adopt(self, record: dict) -> None:
        """Continue from where the round's last attempt ended (its network, multipliers and, for
        continuation, its path), as one process running the attempts in turn would."""
        ctx = self.context
        ctx.model.load_state_dict(record["model"])
        ctx.constraints.load_state_dict(record["multipliers"])
        self.paths, self.origin = record["paths"], record["origin"]

    def _run_inner(
        self, k: int, stage: str, search_end, resume, phase: Callable[[dict | None], Any],
        checkpoints: bool,
    ) -> Any:  # fmt: skip
        """Run an inner phase with its checkpoints wrapped into the explorer's state (or
        dropped: without ``checkpoints`` the last one is the round's start)."""
        trainer = self.context.trainer
        outer = trainer.checkpoint

        def wrapped(inner: dict | None) -> None:
            if checkpoints:
                self.context.checkpoint(
                    {"attempt": k, "stage": stage, "inner": inner, "search_end": search_end}
                )

        trainer.checkpoint = wrapped
        try:
            return phase(resume)
        finally:
            trainer.checkpoint = outer

    @torch.no_grad()
    def _fields(self) -> Tensor:
        """The network's fields on the comparison points (what dedup and deflation measure)."""
        return self.context.model(self._points).detach()

    def _reset(self, k: int) -> None:
        """The starting point of attempt ``k``: θ₀, or a fresh initialization for restarts; the
        multipliers as they were before any training. A kick starts from a catalogued solution
        (in turn); continuation from where its path is (:meth:`_follow`)."""
        ctx = self.context
        if self.settings.strategy == "continuation":
            return  # the path says where it goes on (see _follow)
        if self.settings.strategy == "kick":
            found = self.catalogue.entries or [self.unaccepted]
            ctx.model.load_state_dict(found[(k - 1) % len(found)].model_state)
            return  # the multipliers as the last polish left them
        start = ctx.fresh_state(k) if self.settings.strategy == "restarts" else ctx.start_state
        ctx.model.load_state_dict(start)
        ctx.constraints.load_state_dict(self._initial_multipliers)

    def _search(self, k: int, resume: dict | None) -> PhaseOutcome:
        ctx, s = self.context, self.settings
        if s.strategy == "bbi":
            return ctx.bbi_search(k, 0.0, resume)
        if s.strategy == "kick":
            return ctx.bbi_search(k, self._start_energy, resume)
        if s.strategy == "continuation":
            return self._follow(resume)
        residuals: StackedResiduals | DeflatedResiduals = ctx.stacked_residuals()
        name = "restart"
        if s.strategy == "deflation":
            residuals = DeflatedResiduals(residuals, self._deflation())
            name = "deflation"
        return ctx.trainer.gauss_newton(
            residuals, ctx.search_rule, ctx.search_tolerances, ctx.damping, resume=resume,
            name=name, update_multipliers=False,
        )  # fmt: skip

    def _deflation(self) -> Deflation:
        """The deflation of a search: by every solution found and where failed searches ended."""
        deflation = Deflation(self._points, self.settings.power, self.settings.shift)
        for known in [e.values for e in self.catalogue.entries] + self.tabu:
            deflation.add(known)
        return deflation

    def _follow(self, resume: dict | None) -> PhaseOutcome:
        """Continuation: follow the next path (:meth:`_begin`) to its next crossing of the
        requested value (the candidate is then in the model and the outcome ``converged``) or to
        its end; queue the branch switches its bifurcations offer."""
        ctx = self.context
        path = ctx.parameter_path()
        switch_steps = 0
        if resume is None or resume["phase"] in (SWITCH, SWITCH_POLISH):
            switched = self._begin(path, resume)
            if switched is not None and not switched.converged:
                return switched  # no branch there, or the run is being stopped
            switch_steps, resume = switched.steps if switched else 0, None
        rule = replace(ctx.search_rule, max_steps=self.settings.path_steps, patience=0,
                       loss_threshold=0.0)  # fmt: skip
        outcome = path.run(ctx.trainer, rule, resume=resume)
        outcome.steps += switch_steps
        if outcome.stop_reason in _RUN_STOPS:
            return outcome  # its checkpoint holds the path
        target = path.settings.target
        for switch in path.take_switches():
            # a branch found beyond the bifurcation, seen from λ*, would have to come back
            # through it: tried after the others
            beyond = abs(switch["value"] - target) > abs(switch["at"] - target)
            self._wait({"kind": "switch", "switch": switch},
                       (int(beyond), abs(switch["value"] - target)))  # fmt: skip
        if outcome.converged:  # the path may cross again further on: after the others
            state = path.state["path"]
            self._wait({"kind": "path", "path": state}, (1, abs(state["value"] - target)))
        return outcome

    def _begin(self, path: ParameterPath, resume: dict | None) -> PhaseOutcome | None:
        """Set ``path`` on the next path to follow: the first goes up from the main training's
        solution; the next come from :attr:`paths` (the way down from it, switches onto branches
        met at bifurcations, paths set aside after a crossing). A switch (:meth:`_switch`, or the
        one a ``resume`` is in) returns its outcome; the path is set only if it ``converged``."""
        ctx = self.context
        if resume is not None:
            entry = self.switching
        elif self.paths is None:
            self.origin = {"model": _copy(ctx.model.state_dict()),
                           "multipliers": ctx.constraints.state_dict()}  # fmt: skip
            self.paths = [{"kind": "origin", "direction": -1, "order": (-1, 0.0)}]
            entry = {"kind": "origin", "direction": 1}
        else:
            entry = self.paths.pop(0)
        if entry["kind"] == "origin":
            ctx.model.load_state_dict(self.origin["model"])
            ctx.constraints.load_state_dict(self.origin["multipliers"])
            path.start(direction=entry["direction"])
            return None
        if entry["kind"] == "path":
            path.follow(entry["path"])
            ctx.constraints.load_state_dict(entry["multipliers"])
            return None
        switched = self._switch(entry, resume)
        if switched.converged:
            value = entry["switch"]["value"]
            path.start(direction=1 if path.settings.target > value else -1, value=value)
        return switched

    def _switch(self, entry: dict, resume: dict | None) -> PhaseOutcome:
        """Onto a branch met at a bifurcation: at the parameter value of a switch point beside
        it (:meth:`~pinnsolve.explore.continuation.ParameterPath.take_switches`),
        Levenberg–Marquardt on the residual deflated by that point's solution (and by what earlier
        switches there found), from its network moved by one arclength step along the critical
        mode; then the undeflated polish there, so that the path starts from an accurate solution.
        ``converged``: the model holds a solution there, distinct from the deflated ones; the
        next switch at that point is then queued, until one finds nothing.

        Measured on elastica1d (2×32 network, trivial branch): at λ = 51, beside the bifurcation
        at 4π², a two-hump solution (max |u| 1.391) in about 200 steps; at λ = 39, where that
        branch does not exist, no convergence. Stepping along + or − the mode did not decide
        which of the ± pair a search lands on (both found the same one), hence the series: in
        the benchmark (seed 0) the switches a quarter of the way from 4π² towards λ = 51 found
        a two-hump solution, both one-hump ones and the other two-hump one, in turn."""
        ctx, s = self.context, self.settings
        switch = on_device(entry["switch"], next(ctx.model.parameters()).device)
        self.switching = entry
        stacked = ctx.stacked_residuals()
        steps = 0
        with parameter_value(stacked.objective.problem, s.parameter, switch["value"]):
            if resume is None or resume["phase"] == SWITCH:
                if resume is None:
                    step = s.arclength_step * switch["direction"]
                    vector_to_parameters(switch["theta"] + step, ctx.model.parameters())
                    ctx.constraints.load_state_dict(entry["multipliers"])
                deflation = Deflation(self._points, s.power, s.shift)
                for known in [switch["fields"], *switch["deflated"]]:
                    deflation.add(known)
                search = ctx.trainer.gauss_newton(
                    DeflatedResiduals(stacked, deflation), ctx.search_rule,
                    ctx.search_tolerances, ctx.damping, resume=resume, name=SWITCH,
                    update_multipliers=False,
                )  # fmt: skip
                if search.stop_reason in _RUN_STOPS:
                    return search
                if not _converging(search):
                    self.switching = None
                    return search
                steps, resume = search.steps, None
            outcome = ctx.polish(resume, name=SWITCH_POLISH)
            outcome.steps += steps
            if outcome.stop_reason in _RUN_STOPS:
                return outcome
            with torch.no_grad():
                _, ev = stacked.residual()
        self.switching = None
        fields = self._fields()
        known = [switch["fields"], *switch["deflated"]]
        distinct = closest(fields, known, s.distance, s.distance_floor) is None
        outcome.converged = ctx.search_tolerances.within(ev, ctx.constraints) and distinct
        if outcome.converged:  # switch there again, deflating this one too, until none is new
            switch = {**entry["switch"], "deflated": [*entry["switch"]["deflated"], fields]}
            again = {"kind": "switch", "switch": switch}
            self._wait(again, entry["order"], entry["multipliers"])
        return outcome

    def _wait(self, entry: dict, order: tuple[int, float], multipliers: dict | None = None) -> None:
        """Queue a path to be followed later (with the current multipliers), in ``order``:
        ``(tier, distance to λ*)``, branch switches towards λ* (tier 0) before those beyond their
        bifurcation and paths set aside after a crossing (tier 1)."""
        multipliers = multipliers or self.context.constraints.state_dict()
        entry = on_device({**entry, "order": order, "multipliers": multipliers}, "cpu")
        self.paths.append(entry)
        self.paths.sort(key=lambda e: e["order"])

    @functools.cached_property
    def _start_energy(self) -> float:
        """V at θ₀ with the initial multipliers: the unit of a kick's energy (the scale of the
        barriers training had to cross), computed once. The current network and multipliers are
        kept."""
        ctx = self.context
        saved = (_copy(ctx.model.state_dict()), ctx.constraints.state_dict())
        ctx.model.load_state_dict(ctx.start_state)
        ctx.constraints.load_state_dict(self._initial_multipliers)
        with torch.no_grad():
            energy = float(ctx.stacked_residuals().residual()[0].square().sum())
        ctx.model.load_state_dict(saved[0])
        ctx.constraints.load_state_dict(saved[1])
        return energy

    def _path_exhausted(self) -> bool:
        """Continuation: every path has been followed to its end."""
        return self.paths is not None and not self.paths

    def _judge(self, attempt: dict) -> None:
        """Accept, de-duplicate and catalogue the polished candidate of an attempt's record
        (none when its search did not converge), and log the attempt."""
        ctx, s = self.context, self.settings
        k, rms, infeasibility = (
            attempt["attempt"],
            attempt["residual_rms"],
            attempt["infeasibility"],
        )
        like = next(ctx.model.parameters())
        values = attempt["values"].to(like)
        strategy = s.strategy if k else "training"
        record = {"attempt": k, "strategy": strategy, "residual_rms": rms,
                  "infeasibility": infeasibility, "solution": None}  # fmt: skip
        finite = math.isfinite(rms) and math.isfinite(infeasibility)
        if not attempt["candidate"]:
            record["outcome"] = "search did not converge"
        elif not (finite and rms <= s.accept_residual and infeasibility <= s.accept_infeasibility):
            record["outcome"] = "rejected"
        elif (index := self.catalogue.match(values)) is not None:
            record["outcome"], record["duplicate_of"] = "duplicate", index
        provenance = {"strategy": strategy, "attempt": k, "step": attempt["step"]}
        if ctx.ranks.world > 1:
            provenance["rank"] = attempt["rank"]
        found = Found(attempt["model"], values, provenance, rms, infeasibility)
        if "outcome" not in record:
            self.catalogue.entries.append(found)
            record["outcome"], record["solution"] = "new", len(self.catalogue.entries) - 1
        elif k == 0 and record["outcome"] == "rejected":
            self.unaccepted = replace(found, provenance={**provenance, "accepted": False})
        if record["outcome"] == "new":
            self.since_new = 0
        elif k:
            self.since_new += 1
            if (
                s.deflate_failures
                and s.strategy == "deflation"
                and attempt["search_end"] is not None
            ):
                self.tabu.append(attempt["search_end"].to(like))
        record.update({key: attempt[key] for key in
                       ("search_steps", "search_stop", "polish_steps", "wall_time_s")})  # fmt: skip
        self.log.append(record)
        ctx.trainer.progress_message(
            f"explore: attempt {k} ({strategy}): {record['outcome']}, residual RMS "
            f"{rms:.2e}, {len(self.catalogue.entries)} solution(s) so far"
        )
