"""``continuation``: from the main training's solution, follow its branch in one problem
parameter (:mod:`pinnsolve.explore.continuation`), first upward, then downward from the start
again. Where the path crosses the requested value, the crossing is the attempt's candidate; the
path goes on later. Where a path meets a bifurcation (:mod:`pinnsolve.explore.bifurcation`), a
deflated search beside it switches onto the other branch, and that branch is followed to the
requested value too. Finds what is connected to the first solution through folds and
bifurcations. One path at a time: a round holds one attempt.
"""

from __future__ import annotations

from dataclasses import replace
from functools import cached_property

import torch
from torch.nn.utils import vector_to_parameters

from ...devices import on_device
from ...errors import ConfigError, did_you_mean
from ...io.config import Config
from ...problem.base import Problem
from ...train import PhaseOutcome
from ..bifurcation import has_square_linearization
from ..catalogue import closest
from ..continuation import ParameterPath, PathSettings, parameter_value
from ..deflation import DeflatedResiduals, Deflation
from ..strategy import RUN_STOPS, Strategy, converging, copy_state, register_strategy

#: the phases that switch onto a branch met at a bifurcation: a deflated search beside it, then
#: the polish of what it found
SWITCH = "branch_switch"
SWITCH_POLISH = "branch_polish"


@register_strategy("continuation")
class Continuation(Strategy):
    sequential = "follows one path at a time, attempt after attempt"

    def __init__(self, explorer):
        super().__init__(explorer)
        #: the paths waiting to be followed, in order (None before the first): the first
        #: solution's second direction, switches onto branches met at bifurcations (nearest the
        #: requested value first), then paths set aside after a crossing
        self.paths: list[dict] | None = None
        #: where the first path started (the main training's solution, with its multipliers)
        self.origin: dict | None = None
        #: the branch switch under way (taken from :attr:`paths`; kept for a resume)
        self.switching: dict | None = None

    @classmethod
    def check(cls, config: Config, problem: Problem) -> None:
        """Continuation follows a declared problem parameter."""
        name, names = config.explore.parameter, list(problem.params)
        if name not in names:
            given = f"got {name!r}{did_you_mean(name, names)}" if name else "it is not set"
            raise ConfigError(
                f"continuation needs the name of one of the problem's parameters "
                f"({', '.join(names) or 'it has none'}); {given}",
                file=config.source, key="[explore] parameter",
            )  # fmt: skip

    def start(self, k: int) -> None:
        """Nothing: the path says where it goes on (see :meth:`search`)."""

    def worth_polishing(self, search: PhaseOutcome) -> bool:
        return search.converged  # the path crossed the requested value

    def finished(self) -> str | None:
        if self.paths is not None and not self.paths:
            return "continuation: followed every path (both ways, and the branches met)"
        return None

    def shared(self) -> dict:
        return {"paths": self.paths, "origin": self.origin}

    def adopt(self, shared: dict) -> None:
        self.paths, self.origin = shared["paths"], shared["origin"]

    def state_dict(self) -> dict:
        return {"paths": self.paths, "origin": self.origin, "switching": self.switching}

    def load_state_dict(self, state: dict) -> None:
        self.paths, self.origin = state["paths"], state["origin"]
        self.switching = state["switching"]

    def parameter_path(self) -> ParameterPath:
        """A parameter path over the run's network, around the requested value of
        ``[explore] parameter``, within ``parameter_span`` of it and the parameter's declared
        range; corrected to the acceptance tolerances (the crossing is polished further)."""
        run, e = self.explorer.run, self.explorer.settings
        problem = run.problem
        target = float(problem.p[e.parameter])
        declared = problem.params[e.parameter]
        reach = e.parameter_span * max(abs(target), 1.0)
        low = target - reach if declared.lowest is None else max(target - reach, declared.lowest)
        high = target + reach if declared.highest is None else min(target + reach, declared.highest)
        stacked = run.stacked_residuals()
        watched = e.branch_switching and self._watchable
        settings = PathSettings(e.parameter, target, low, high, e.arclength_step,
                                e.corrector_steps, e.accept_residual, e.accept_infeasibility,
                                self.explorer.damping, watched)  # fmt: skip
        constraints = run.constraints
        outer = constraints.method_of_multipliers_step if constraints.multipliers else None
        return ParameterPath(run.model, run.stacked_residuals, problem,
                             stacked.objective.interior, settings, outer)  # fmt: skip

    @cached_property
    def _watchable(self) -> bool:
        """Whether bifurcations can be watched on this problem (said once when not)."""
        run = self.explorer.run
        if has_square_linearization(run.stacked_residuals()):
            return True
        run.trainer.progress_message(
            "continuation: bifurcations are not watched: branch switching needs as many "
            "equations as fields (a square linearized problem)"
        )
        return False

    def search(self, k: int, resume: dict | None) -> PhaseOutcome:
        """Continuation: follow the next path (:meth:`_begin`) to its next crossing of the
        requested value (the candidate is then in the model and the outcome ``converged``) or to
        its end; queue the branch switches its bifurcations offer."""
        e, run = self.explorer, self.explorer.run
        path = self.parameter_path()
        switch_steps = 0
        if resume is None or resume["phase"] in (SWITCH, SWITCH_POLISH):
            switched = self._begin(path, resume)
            if switched is not None and not switched.converged:
                return switched  # no branch there, or the run is being stopped
            switch_steps, resume = switched.steps if switched else 0, None
        rule = replace(e.search_rule, max_steps=self.explorer.settings.path_steps, patience=0,
                       loss_threshold=0.0)  # fmt: skip
        outcome = path.run(run.trainer, rule, resume=resume)
        outcome.steps += switch_steps
        if outcome.stop_reason in RUN_STOPS:
            return outcome  # its checkpoint holds the path
        target = path.settings.target
        switches = path.take_switches()
        fold = path.switch_at_end() if path.lost else None
        if fold is not None:  # lost at a fold, most likely: the other branch is beside its end
            switches.append(fold)
        for switch in switches:
            # a branch found beyond the bifurcation, seen from λ*, would have to come back
            # through it: tried after the others
            beyond = abs(switch["value"] - target) > abs(switch["at"] - target)
            self._wait({"kind": "switch", "switch": switch},
                       (int(beyond), abs(switch["value"] - target)))  # fmt: skip
        if outcome.converged and not path.lost:  # it may cross again further on: after the rest
            state = path.state["path"]
            self._wait({"kind": "path", "path": state}, (1, abs(state["value"] - target)))
        return outcome

    def _begin(self, path: ParameterPath, resume: dict | None) -> PhaseOutcome | None:
        """Set ``path`` on the next path to follow: the first goes up from the main training's
        solution; the next come from :attr:`paths` (the way down from it, switches onto branches
        met at bifurcations, paths set aside after a crossing). A switch (:meth:`_switch`, or the
        one a ``resume`` is in) returns its outcome; the path is set only if it ``converged``."""
        run = self.explorer.run
        if resume is not None:
            entry = self.switching
        elif self.paths is None:
            self.origin = {"model": copy_state(run.model.state_dict()),
                           "multipliers": run.constraints.state_dict()}  # fmt: skip
            self.paths = [{"kind": "origin", "direction": -1, "order": (-1, 0.0)}]
            entry = {"kind": "origin", "direction": 1}
        else:
            entry = self.paths.pop(0)
        if entry["kind"] == "origin":
            run.model.load_state_dict(self.origin["model"])
            run.constraints.load_state_dict(self.origin["multipliers"])
            path.start(direction=entry["direction"])
            return None
        if entry["kind"] == "path":
            path.follow(entry["path"])
            run.constraints.load_state_dict(entry["multipliers"])
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
        e, run, s = self.explorer, self.explorer.run, self.explorer.settings
        switch = on_device(entry["switch"], next(run.model.parameters()).device)
        self.switching = entry
        stacked = run.stacked_residuals()
        steps = 0
        with parameter_value(stacked.objective.problem, s.parameter, switch["value"]):
            if resume is None or resume["phase"] == SWITCH:
                if resume is None:
                    step = s.arclength_step * switch["direction"]
                    vector_to_parameters(switch["theta"] + step, run.model.parameters())
                    run.constraints.load_state_dict(entry["multipliers"])
                deflation = Deflation(self.explorer.points, s.power, s.shift)
                for known in [switch["fields"], *switch["deflated"]]:
                    deflation.add(known)
                search = run.trainer.gauss_newton(
                    DeflatedResiduals(stacked, deflation), e.search_rule,
                    e.search_tolerances, e.damping, resume=resume, name=SWITCH,
                    update_multipliers=False,
                )  # fmt: skip
                if search.stop_reason in RUN_STOPS:
                    return search
                if not converging(search):
                    self.switching = None
                    return search
                steps, resume = search.steps, None
            outcome = e.polish(resume, name=SWITCH_POLISH)
            outcome.steps += steps
            if outcome.stop_reason in RUN_STOPS:
                return outcome
            with torch.no_grad():
                _, ev = stacked.residual()
        self.switching = None
        fields = self.explorer.fields()
        known = [switch["fields"], *switch["deflated"]]
        distinct = closest(fields, known, s.distance, s.distance_floor) is None
        outcome.converged = e.search_tolerances.within(ev, run.constraints) and distinct
        if outcome.converged:  # switch there again, deflating this one too, until none is new
            switch = {**entry["switch"], "deflated": [*entry["switch"]["deflated"], fields]}
            again = {"kind": "switch", "switch": switch}
            self._wait(again, entry["order"], entry["multipliers"])
        return outcome

    def _wait(self, entry: dict, order: tuple[int, float], multipliers: dict | None = None) -> None:
        """Queue a path to be followed later (with the current multipliers), in ``order``:
        ``(tier, distance to λ*)``, branch switches towards λ* (tier 0) before those beyond their
        bifurcation and paths set aside after a crossing (tier 1)."""
        multipliers = multipliers or self.explorer.run.constraints.state_dict()
        entry = on_device({**entry, "order": order, "multipliers": multipliers}, "cpu")
        self.paths.append(entry)
        self.paths.sort(key=lambda e: e["order"])
