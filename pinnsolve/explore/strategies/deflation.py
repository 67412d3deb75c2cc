"""``deflation`` (recommended): from the same initial parameters θ₀, Levenberg–Marquardt on the
deflated residual ``M(u)·R(θ)`` (:mod:`pinnsolve.explore.deflation`), deflated by every solution
found so far and, with ``deflate_failures``, by where earlier failed searches ended (otherwise a
search from the same θ₀ with the same deflation would repeat the failure exactly).

A round of several searches runs side by side (:mod:`pinnsolve.explore.lockstep`): the round's
first attempt from θ₀, the others from θ₀ moved by their own noise (``spread``), each deflated
also by the current fields of the members before it, as batched steps.
"""

from __future__ import annotations

from dataclasses import replace

import torch
from torch import Tensor
from torch.nn.utils import parameters_to_vector

from ...train import PhaseOutcome
from ..deflation import DeflatedResiduals, Deflation
from ..lockstep import DeflatedLockstep
from ..strategy import RUN_STOPS, Searched, Strategy, attempt_seed, register_strategy


@register_strategy("deflation")
class DeflatedSearches(Strategy):
    def __init__(self, explorer):
        super().__init__(explorer)
        #: where failed searches ended (deflated too, with ``deflate_failures``)
        self.tabu: list[Tensor] = []

    def start(self, k: int) -> None:
        """With ``start = "initial"``: θ₀ for the round's first attempt, θ₀ moved by attempt
        ``k``'s noise for the others. With ``start = "found"``: the solution found last (the
        trained result when none was accepted), moved by attempt ``k``'s noise. The initial
        multipliers."""
        e, run = self.explorer, self.explorer.run
        if e.settings.start == "found":
            found = e.catalogue.entries or [e.unaccepted]
            run.model.load_state_dict(self.spread_state(k, found[-1].model_state))
        else:
            first = k == e.round_start
            run.model.load_state_dict(run.start_state if first else self.spread_state(k))
        run.constraints.load_state_dict(e.initial_multipliers)

    def search(self, k: int, resume: dict | None) -> PhaseOutcome:
        e = self.explorer
        return e.run.trainer.gauss_newton(
            DeflatedResiduals(e.run.stacked_residuals(), self.deflation()), e.search_rule,
            e.search_tolerances, e.damping, resume=resume, name="deflation",
            update_multipliers=False,
        )  # fmt: skip

    def search_round(
        self, ks: list[int], start: tuple[dict, dict]
    ) -> tuple[Searched, int, str | None]:
        """The round's searches side by side (:class:`DeflatedLockstep`), each from where
        :meth:`start` puts it; each member's own outcome."""
        e, run = self.explorer, self.explorer.run
        theta = []
        for k in ks:
            self.start(k)
            theta.append(parameters_to_vector(run.model.parameters()).detach().clone())
        opt = DeflatedLockstep(
            run.stacked_residuals(), self.deflation(), torch.stack(theta), e.damping,
            e.search_tolerances, e.search_rule,
        )  # fmt: skip
        rule = replace(e.search_rule, max_steps=e.search_rule.max_steps * len(ks), patience=0)
        outcome = e.run_inner(ks[0], "search", None, None, lambda r: opt.run(run.trainer, rule),
                              False)  # fmt: skip
        if outcome.stop_reason == "interrupted":
            return {}, outcome.steps, outcome.stop_reason
        multipliers = run.constraints.state_dict()
        members = opt.outcomes(outcome.wall_time_s)
        searched = {
            k: (member, opt.member_state(i), multipliers)
            for i, (k, member) in enumerate(zip(ks, members, strict=True))
        }
        stop = outcome.stop_reason if outcome.stop_reason in RUN_STOPS else None
        return searched, outcome.steps, stop

    def deflation(self) -> Deflation:
        """The deflation of a search: by every solution found and where failed searches ended."""
        s = self.explorer.settings
        deflation = Deflation(self.explorer.points, s.power, s.shift)
        for known in [e.values for e in self.explorer.catalogue.entries] + self.tabu:
            deflation.add(known)
        return deflation

    def spread_state(self, k: int, state: dict | None = None) -> dict:
        """``state`` (θ₀ by default) with Gaussian noise of ``spread`` times its mean abs on every
        parameter (not on the buffers), drawn from attempt k's seed."""
        run = self.explorer.run
        state = run.start_state if state is None else state
        names = {name for name, _ in run.model.named_parameters()}
        weights = [t for name, t in state.items() if name in names]
        size = self.explorer.settings.spread * float(
            torch.cat([t.reshape(-1) for t in weights]).abs().mean()
        )
        gen = torch.Generator().manual_seed(attempt_seed(run.config.run.seed, k))
        return {name: t + size * torch.randn(t.shape, generator=gen, dtype=torch.float64).to(t)
                if name in names else t.clone() for name, t in state.items()}  # fmt: skip

    def judged(self, record: dict, attempt: dict) -> None:
        """With ``deflate_failures``, where a search that found nothing new ended is deflated
        from then on."""
        if (
            record["outcome"] != "new"
            and self.explorer.settings.deflate_failures
            and attempt["search_end"] is not None
        ):
            self.tabu.append(attempt["search_end"].to(next(self.explorer.run.model.parameters())))

    def state_dict(self) -> dict:
        return {"tabu": [t.cpu() for t in self.tabu]}

    def load_state_dict(self, state: dict) -> None:
        like = next(self.explorer.run.model.parameters())
        self.tabu = [t.to(like) for t in state["tabu"]]
