"""Deflated searches side by side: the concurrent form of deflation.

With ``[explore] trajectories = K`` the deflation strategy runs its attempts in rounds of K
Levenberg–Marquardt searches that advance together, one step each per call, and deflate each
other: member i of a round is deflated by the solutions found before the round (and the failed
searches' ends) *and by the current fields of members 0…i−1*, re-read after every step. So a
member cannot settle where an earlier member of its round is heading, and the round spreads over
different solutions (``../shared/algorithms/deflation.md``, concurrent form).

The repulsion is one-sided (member i sees only the members before it): member 0 is then exactly
the sequential deflated search of the same attempt, so a round never finds less than the
sequential search would in its first attempt. Members after the first start from θ₀ moved by a
little noise (the explorer's ``spread``): from θ₀ itself member 1 would sit on member 0's fields,
where its deflation factor is infinite.

One call advances the members in turn (a loop over members); a batched Levenberg–Marquardt step
(the K Jacobians by one vmapped pass, one batched solve) would replace the loop on a GPU without
changing this interface.
"""

from __future__ import annotations

import copy
import math

import torch
from torch import Tensor
from torch.nn.utils import parameters_to_vector, vector_to_parameters

from .deflation import DeflatedResiduals, Deflation
from .gauss_newton import LevenbergMarquardt, StackedResiduals
from .objective import Evaluation
from .train import PhaseOutcome, StopRule, Tolerances, stalled


class DeflatedLockstep(torch.optim.Optimizer):
    """K deflated Levenberg–Marquardt searches on the stacked ``theta`` [K, P] (a tensor this
    optimizer owns; the model's parameters are borrowed in turn), each with its own damping and
    stopping: ``tolerances`` met, no damping giving a decrease, a step below its tolerance, no
    improvement over ``rule.patience`` steps, or ``rule.max_steps`` steps of its own.

    ``deflation`` holds what every member is deflated by; ``step()`` returns what
    :meth:`~pinnsolve.train.Trainer._phase` expects of one call: the lowest deflated energy of
    the members it stepped with that member's evaluation, the steps taken (one per member that
    moved) and a stop reason once no member searches any more.
    """

    def __init__(
        self,
        stacked: StackedResiduals,
        deflation: Deflation,
        theta: Tensor,
        damping: float,
        tolerances: Tolerances,
        rule: StopRule,
        name: str = "deflation",
    ):
        super().__init__([theta], {"lr": 1.0})
        self.stacked = stacked
        self.points = deflation.points
        self.common = list(deflation.known)
        self.deflation = deflation
        self.deflated = DeflatedResiduals(stacked, deflation)
        self.tolerances = tolerances
        self.rule = rule
        self.name = name
        self._latest: dict = {}
        self._lm = LevenbergMarquardt(self._params, self._residual, self.deflated.jacobian, damping)
        k = len(theta)
        self.state["lockstep"] = {
            "lm": [{"mu": float(damping), "nu": 2.0} for _ in range(k)],
            "energies": [[] for _ in range(k)],
            "stop": [None] * k,
            "converged": [False] * k,
        }
        self._fields = [self._fields_of(i) for i in range(k)]

    @property
    def theta(self) -> Tensor:
        return self.param_groups[0]["params"][0]

    @property
    def _params(self) -> list[Tensor]:
        return [p for p in self.stacked.model.parameters() if p.requires_grad]

    def _residual(self) -> Tensor:
        self._latest["r"], self._latest["ev"] = self.deflated.residual()
        return self._latest["r"]

    def _load(self, i: int) -> None:
        """Member ``i``'s parameters into the model (a copy: the model must not alias ``theta``)."""
        vector_to_parameters(self.theta[i].clone(), self._params)

    @torch.no_grad()
    def _fields_of(self, i: int) -> Tensor:
        self._load(i)
        return self.stacked.model(self.points).detach()

    @torch.no_grad()
    def step(self, closure=None) -> tuple[Tensor, Evaluation, int, str | None]:
        own = self.state["lockstep"]
        self._lm.param_groups[0]["lr"] = self.param_groups[0]["lr"]
        best: tuple[float, Evaluation] | None = None
        moved = 0
        for i in range(len(self.theta)):
            if own["stop"][i] is not None:
                continue
            self._load(i)
            self.deflation.known = [*self.common, *self._fields[:i]]
            self._lm.state["lm"] = own["lm"][i]
            energy = self._lm.step()
            if not self._lm.last["accepted"]:  # the last evaluation was a rejected trial point
                self._residual()
            ev = self._latest["ev"]
            stop, own["converged"][i] = self.tolerances.verdict(
                self._lm.last, ev, self.deflated, self.name
            )
            own["energies"][i].append(energy)
            own["stop"][i] = stop or self._own_stop(own["energies"][i])
            self.theta[i].copy_(parameters_to_vector(self._params))
            self._fields[i] = self._fields_of(i)
            moved += 1
            if best is None or energy < best[0]:
                best = (energy, ev)
        if best is None:  # called again after every member had stopped
            return torch.tensor(math.nan), self._latest["ev"], 0, "every member stopped"
        done = all(s is not None for s in own["stop"])
        energy = torch.tensor(best[0], dtype=torch.float64)
        return energy, best[1], moved, "every member stopped" if done else None

    def _own_stop(self, energies: list[float]) -> str | None:
        """A member's stop besides the verdict: its step budget or its patience."""
        if len(energies) >= self.rule.max_steps:
            return "max_steps"
        if self.rule.patience and stalled(
            list(enumerate(energies, 1)), self.rule.patience, self.rule.min_improvement
        ):
            return "no_improvement"
        return None

    def outcomes(self, wall_time_s: float) -> list[PhaseOutcome]:
        """Each member's search as a phase outcome of its own (a member the round's stop cut
        short ends with ``max_steps``: still progressing)."""
        own = self.state["lockstep"]
        return [
            PhaseOutcome(self.name, len(energies), stop or "max_steps",
                         energies[-1] if energies else math.nan, wall_time_s, converged)
            for energies, stop, converged in zip(own["energies"], own["stop"], own["converged"],
                                                 strict=True)
        ]  # fmt: skip

    def member_state(self, i: int) -> dict[str, Tensor]:
        """The model's state dict with member ``i``'s parameters (a copy)."""
        self._load(i)
        return {n: t.detach().clone() for n, t in self.stacked.model.state_dict().items()}

    def diagnostics(self) -> dict[str, Tensor]:
        """History column: how many members still search."""
        active = sum(s is None for s in self.state["lockstep"]["stop"])
        return {"members_active": torch.tensor(float(active), dtype=torch.float64)}

    def state_dict(self) -> dict:
        """torch's optimizer state and the members' parameters (see
        :meth:`~pinnsolve.ensemble.EnsembleBBI.state_dict`), copied: torch would hand out the
        members' bookkeeping lists themselves, which the next step changes."""
        return copy.deepcopy({**super().state_dict(), "theta": self.theta.detach()})

    def load_state_dict(self, state_dict: dict) -> None:
        state_dict = copy.deepcopy(state_dict)
        theta = state_dict.pop("theta")
        super().load_state_dict(state_dict)
        with torch.no_grad():
            self.theta.copy_(theta)
        self._fields = [self._fields_of(i) for i in range(len(self.theta))]
