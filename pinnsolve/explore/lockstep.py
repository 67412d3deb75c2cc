"""Deflated searches side by side: the concurrent form of deflation.

With ``[explore] trajectories = K`` the deflation strategy runs its attempts in rounds of K
Levenberg–Marquardt searches that advance together, one step each per call, and deflate each
other: member i of a round is deflated by the solutions found before the round (and the failed
searches' ends) *and by the current fields of members 0…i−1*, taken anew at every step. So a
member cannot settle where an earlier member of its round is heading, and the round spreads over
different solutions (``../shared/algorithms/deflation.md``, concurrent form).

The repulsion is one-sided (member i sees only the members before it), so member 0 is the
sequential deflated search of the same attempt. Members after the first start from θ₀ moved by
a little noise (the explorer's ``spread``): from θ₀ itself member 1 would sit on member 0's
fields, where its deflation factor is infinite.

One call is one batched Levenberg–Marquardt step of every member still searching: the K
residuals, deflation factors and Jacobians by ``torch.func.vmap`` over the stacked parameters,
the K damped systems by one batched solve, and the trial steps of the members not yet accepted
evaluated together. Each member keeps its own damping and takes the step its single search would
(:class:`~pinnsolve.optim.gauss_newton.LevenbergMarquardt`'s rules), up to the rounding of batched
arithmetic. Within a call the members see each other where the call began.
"""

from __future__ import annotations

import copy
import math

import torch
from torch import Tensor
from torch.func import functional_call, grad_and_value, vmap

from ..objective import Evaluation
from ..optim.ensemble import MemberNetwork, ParameterLayout
from ..optim.gauss_newton import Bound, StackedResiduals, _JetTable, accept_damping, reject_damping
from ..train import PhaseOutcome, StopRule, Tolerances, Trainer, stalled
from .deflation import Deflation

#: most trial steps (each raising the damping) before a member's step counts as failed, as in
#: :class:`~pinnsolve.optim.gauss_newton.LevenbergMarquardt`
MAX_TRIES = 30


class DeflatedLockstep(torch.optim.Optimizer):
    """K deflated Levenberg–Marquardt searches on the stacked ``theta`` [K, P] (a tensor this
    optimizer owns), each with its own damping and stopping: ``tolerances`` met, no damping
    giving a decrease, a step below its tolerance, no improvement over ``rule.patience`` steps,
    or ``rule.max_steps`` steps of its own.

    ``deflation`` holds what every member is deflated by (its points, power and shift are the
    members' too); ``step()`` returns what :meth:`~pinnsolve.train.Trainer.phase` expects of
    one call: the lowest deflated energy of the members it stepped with that member's
    evaluation, the steps taken (one per member that moved) and a stop reason once no member
    searches any more.
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
        self.power, self.shift = deflation.power, deflation.shift
        #: what every member is deflated by, each [len(points), n_fields]
        self.common = list(deflation.known)
        self.tolerances = tolerances
        self.rule = rule
        self.name = name
        model = stacked.model
        self.layout = ParameterLayout(model)
        self._network = Bound(model, model.jet)
        self._residuals = vmap(self._residual)
        #: whether the problem declares its terms (the residual is then measured relative)
        self._scaled = stacked.residual()[1].scale is not None
        self._jacobians = vmap(lambda flat: stacked.jacobian_at(self.layout.parameters(flat)))
        self._factors = vmap(grad_and_value(self._factor), in_dims=(0, None, 0))
        self._fields = vmap(self._member_fields)
        k = len(theta)
        self.state["lockstep"] = {
            "lm": [{"mu": float(damping), "nu": 2.0} for _ in range(k)],
            "energies": [[] for _ in range(k)],
            "stop": [None] * k,
            "converged": [False] * k,
        }

    @property
    def theta(self) -> Tensor:
        return self.param_groups[0]["params"][0]

    # -- one member's functions (vmapped over the members) -------------------------------------
    def _member(self, flat: Tensor) -> MemberNetwork:
        return MemberNetwork(self._network, self.layout.unflatten(flat))

    def _residual(self, flat: Tensor):
        """The undeflated residual vector and the evaluation's parts."""
        ev = self.stacked.objective.evaluate(self._member(flat), _JetTable())
        scale = ev.scale if ev.scale is not None else ev.objective.new_zeros(())
        return torch.cat(self.stacked.rows(ev)), ev.objective, ev.residuals, ev.g, scale

    def _member_fields(self, flat: Tensor) -> Tensor:
        return functional_call(self.stacked.model, self.layout.unflatten(flat), (self.points,))

    def _factor(self, flat: Tensor, known: Tensor, mask: Tensor) -> Tensor:
        """M = Π over the known fields this member sees (``mask``) of (‖u − known‖^−p + σ), as
        :meth:`~pinnsolve.explore.deflation.Deflation.factor`; the unseen ones (among them the
        member's own fields, at distance 0) are kept out of the power so no inf enters the
        gradient."""
        u = self._member_fields(flat)
        distance_sq = torch.where(mask, (u - known).square().mean(dim=(1, 2)), 1.0)
        terms = torch.where(mask, distance_sq.pow(-self.power / 2) + self.shift, 1.0)
        return terms.prod()

    # -- the batched step ----------------------------------------------------------------------
    @torch.no_grad()
    def run(self, trainer: Trainer, rule: StopRule) -> PhaseOutcome:
        """The round as one trainer phase: every member one Levenberg–Marquardt step per call,
        logged as the member with the lowest deflated energy; ``rule`` bounds the round as a
        whole (each member has its own)."""
        return trainer.phase(self.name, self, rule, lambda budget: self.step(), None,
                             log_each_call=True)  # fmt: skip

    def step(self, closure=None) -> tuple[Tensor, Evaluation, int, str | None]:
        own = self.state["lockstep"]
        searching = [i for i, stop in enumerate(own["stop"]) if stop is None]
        if not searching:  # called again after every member had stopped
            return torch.tensor(math.nan, dtype=torch.float64), None, 0, "every member stopped"
        idx = torch.tensor(searching, device=self.theta.device)
        theta0 = self.theta[idx]
        known, mask = self._seen(idx)
        r0, f, residuals, g, scale = self._residuals(theta0)
        with torch.enable_grad():
            grad_m, m = self._factors(theta0, known, mask)
        r = m[:, None] * r0
        jac = m[:, None, None] * self._jacobians(theta0) + r0[:, :, None] * grad_m[:, None, :]
        v0 = r.square().sum(dim=1)
        solve = _damped_solver(jac)
        lr = self.param_groups[0]["lr"]
        result = {"theta": theta0.clone(), "v": v0.clone(), "f": f, "residuals": residuals,
                  "scale": scale,
                  "g": g, "step": torch.zeros_like(v0),
                  "accepted": [False] * len(searching)}  # fmt: skip
        pending = list(range(len(searching)))
        for _ in range(MAX_TRIES):
            sub = torch.tensor(pending, device=idx.device)
            mu = torch.tensor([own["lm"][searching[j]]["mu"] for j in pending], dtype=v0.dtype,
                              device=v0.device)  # fmt: skip
            delta, j_delta = solve(sub, r[sub], mu)
            predicted = v0[sub] - (r[sub] + lr * j_delta).square().sum(dim=1)
            trial = theta0[sub] + lr * delta
            r0_new, f_new, residuals_new, g_new, scale_new = self._residuals(trial)
            m_new = self._factors(trial, known, mask[sub])[1]
            v = (m_new[:, None] * r0_new).square().sum(dim=1)
            still = []
            for n, j in enumerate(pending):
                lm = own["lm"][searching[j]]
                vn, pn = float(v[n]), float(predicted[n])
                rho = (float(v0[j]) - vn) / pn if pn > 0 else -1.0
                if math.isfinite(vn) and vn < float(v0[j]) and rho > 0:
                    accept_damping(lm, rho)
                    _take(result, j, n, trial, v, f_new, residuals_new, g_new, scale_new)
                    result["step"][j] = (lr * delta[n]).norm() / (theta0[j].norm() + 1e-300)
                    result["accepted"][j] = True
                else:
                    reject_damping(lm)
                    still.append(j)
            pending = still
            if not pending:
                break
        self.theta[idx] = result["theta"]
        return self._conclude(searching, result)

    def _seen(self, idx: Tensor) -> tuple[Tensor, Tensor]:
        """The known fields (common, then every member's current ones) and, per member in
        ``idx``, which of them it is deflated by: all the common ones and members 0…i−1."""
        k = len(self.theta)
        known = torch.cat([*(c[None] for c in self.common), self._fields(self.theta)])
        earlier = torch.arange(k, device=idx.device)[None, :] < idx[:, None]
        common = torch.ones(len(idx), len(self.common), dtype=torch.bool, device=idx.device)
        return known, torch.cat([common, earlier], dim=1)

    def _conclude(
        self, searching: list[int], result: dict
    ) -> tuple[Tensor, Evaluation, int, str | None]:
        """Each stepped member's verdict, energy and own stops; the best one for the log."""
        own = self.state["lockstep"]
        best: tuple[float, Evaluation] | None = None
        for j, i in enumerate(searching):
            ev = Evaluation(result["f"][j], [r[j] for r in result["residuals"]],
                            {name: g[j] for name, g in result["g"].items()},
                            result["scale"][j] if self._scaled else None)  # fmt: skip
            last = {"accepted": result["accepted"][j], "step": float(result["step"][j])}
            stop, own["converged"][i] = self.tolerances.verdict(last, ev, self.stacked, self.name)
            energy = float(result["v"][j])
            own["energies"][i].append(energy)
            own["stop"][i] = stop or self._own_stop(own["energies"][i])
            if best is None or energy < best[0]:
                best = (energy, ev)
        done = all(stop is not None for stop in own["stop"])
        energy = torch.tensor(best[0], dtype=torch.float64)
        return energy, best[1], len(searching), "every member stopped" if done else None

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
        state = self.stacked.model.state_dict()
        state.update(self.layout.parameters(self.theta[i]))
        return {n: t.detach().clone() for n, t in state.items()}

    def diagnostics(self) -> dict[str, Tensor]:
        """History column: how many members still search."""
        active = sum(s is None for s in self.state["lockstep"]["stop"])
        return {"members_active": torch.tensor(float(active), dtype=torch.float64)}

    def state_dict(self) -> dict:
        """torch's optimizer state and the members' parameters (see
        :meth:`~pinnsolve.optim.ensemble.EnsembleBBI.state_dict`), copied: torch would hand out the
        members' bookkeeping lists themselves, which the next step changes."""
        return copy.deepcopy({**super().state_dict(), "theta": self.theta.detach()})

    def load_state_dict(self, state_dict: dict) -> None:
        state_dict = copy.deepcopy(state_dict)
        theta = state_dict.pop("theta")
        super().load_state_dict(state_dict)
        with torch.no_grad():
            self.theta.copy_(theta)


def _take(result: dict, j: int, n: int, trial: Tensor, v: Tensor, f: Tensor,
          residuals: list[Tensor], g: dict[str, Tensor], scale: Tensor) -> None:  # fmt: skip
    """Member ``j``'s accepted trial point (row ``n`` of the trial batch) into ``result``."""
    result["theta"][j], result["v"][j], result["f"][j] = trial[n], v[n], f[n]
    result["scale"][j] = scale[n]
    for mine, new in zip(result["residuals"], residuals, strict=True):
        mine[j] = new[n]
    for name, values in g.items():
        result["g"][name][j] = values[n]


def _damped_solver(jac: Tensor):
    """The members' damped Gauss–Newton systems from their Jacobians ``jac`` [K, rows, cols],
    as :meth:`~pinnsolve.optim.gauss_newton.LevenbergMarquardt._dense` forms one (Gram matrix of the
    smaller side, μ relative to its mean diagonal): ``solve(sub, r, mu)`` returns the steps
    ``Δ`` and ``JΔ`` of the members ``sub`` for their residuals ``r`` and dampings ``mu``."""
    rows, cols = jac.shape[1:]
    by_rows = rows <= cols
    gram = jac @ jac.mT if by_rows else jac.mT @ jac
    scale = gram.diagonal(dim1=1, dim2=2).sum(dim=1) / min(rows, cols)
    scale = torch.where(scale > 0, scale, 1.0)
    eye = torch.eye(gram.shape[1], dtype=gram.dtype, device=gram.device)

    def solve(sub: Tensor, r: Tensor, mu: Tensor) -> tuple[Tensor, Tensor]:
        a = gram[sub] + (mu * scale[sub])[:, None, None] * eye
        j = jac[sub]
        if by_rows:
            delta = -(j.mT @ torch.linalg.solve(a, r[..., None]))[..., 0]
        else:
            delta = -torch.linalg.solve(a, j.mT @ r[..., None])[..., 0]
        return delta, (j @ delta[..., None])[..., 0]

    return solve
