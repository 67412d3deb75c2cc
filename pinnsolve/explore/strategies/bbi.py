"""``bbi``: from θ₀, BBI (``[training]`` steps and ``[bbi]`` settings) with a different bounce
seed per attempt: bounce streams alone. Measured on bratu1d to stay in the first basin; kept as
the baseline the other strategies are compared with (``../shared/algorithms/bbi.md``). A round's
searches run as one batched ensemble (:class:`~pinnsolve.optim.ensemble.EnsembleBBI`).
A BBI search has no tolerance of its own: its end is always polished."""

from __future__ import annotations

from dataclasses import replace

import torch

from ...optim.bbi import BBIConfig, member_seeds
from ...optim.ensemble import EnsembleBBI, EnsembleEnergy
from ...train import PhaseOutcome
from ..strategy import (
    RUN_STOPS,
    Searched,
    Strategy,
    attempt_seed,
    copy_state,
    register_strategy,
)


@register_strategy("bbi")
class BBISearches(Strategy):
    def start(self, k: int) -> None:
        run = self.explorer.run
        run.model.load_state_dict(run.start_state)
        run.constraints.load_state_dict(self.explorer.initial_multipliers)

    def energy_unit(self) -> float:
        """0 for plain bounces; a kick's energy unit (:class:`~.kick.Kicks`)."""
        return 0.0

    def search(self, k: int, resume: dict | None) -> PhaseOutcome:
        """BBI with bounce seed k (a kick when :meth:`energy_unit` is > 0)."""
        run = self.explorer.run
        rule = replace(run.rule, max_steps=run.config.training.steps)
        seed = attempt_seed(run.config.run.seed, k)
        return run.trainer.bbi(self.settings(self.energy_unit()), seed, rule, resume=resume)

    def worth_polishing(self, search: PhaseOutcome) -> bool:
        return True

    def settings(self, kick: float) -> BBIConfig:
        """The ``[bbi]`` settings; ``kick`` > 0 (an energy unit, V at θ₀) makes them a kick's:
        the potential gets that floor (V = loss + kick: at a solution V ≈ 0 and BBI would not
        move, its speed goes as √V), the energy is ``kick_energy`` units above it, and the
        momentum is turned to a random direction at once."""
        config = self.explorer.run.config
        bbi = config.bbi.optimizer_config(config.training.lr)
        if kick > 0:
            bbi = replace(bbi, v0=-kick, delta_energy=config.explore.kick_energy * kick,
                          threshold0=1, n_fixed_bounces=1)  # fmt: skip
        return bbi

    def search_round(
        self, ks: list[int], start: tuple[dict, dict]
    ) -> tuple[Searched, int, str | None]:
        """The BBI searches of attempts ``ks`` as one batched ensemble, each from where its
        single search would start; every member ends with the ensemble's outcome."""
        run = self.explorer.run
        starts = []
        for k in ks:
            run.model.load_state_dict(start[0])
            run.constraints.load_state_dict(start[1])
            self.start(k)
            starts.append(copy_state(run.model.state_dict()))
        kick = self.energy_unit()
        outcome, ends = self.explorer.run_inner(
            ks[0], "search", None, None,
            lambda r: self._ensemble(ks, starts, run.constraints.state_dict(), kick), False,
        )  # fmt: skip
        if outcome.stop_reason == "interrupted":
            return {}, outcome.steps, outcome.stop_reason
        searched = {k: (outcome, *end) for k, end in zip(ks, ends, strict=True)}
        stop = outcome.stop_reason if outcome.stop_reason in RUN_STOPS else None
        return searched, outcome.steps, stop

    def _ensemble(self, ks: list[int], starts: list[dict], multipliers: dict, kick: float):
        """The searches :meth:`search` would run for attempts ``ks``, as one batched ensemble
        (on the whole objective: ranks run their own ensembles): the outcome and each member's
        (network, multipliers)."""
        run = self.explorer.run
        energy = EnsembleEnergy(run.model, run.stacked_residuals().objective, run.constraints)
        theta = torch.stack([energy.layout.flatten(state) for state in starts])
        stacked = {name: torch.stack([lam] * len(ks)) for name, lam
                   in multipliers["multipliers"].items()}  # fmt: skip
        seeds = torch.stack([member_seeds(attempt_seed(run.config.run.seed, k), 1)[0] for k in ks])
        opt = EnsembleBBI(energy, theta, stacked, seeds.to(theta.device), self.settings(kick),
                          dual=bool(run.constraints.multipliers))  # fmt: skip
        outcome = run.trainer.ensemble_bbi(
            opt, replace(run.rule, max_steps=run.config.training.steps)
        )
        ends = [(energy.layout.unflatten(row),
                 {"multipliers": {n: lam[i] for n, lam in stacked.items()}})
                for i, row in enumerate(opt.theta)]  # fmt: skip
        return outcome, ends
