"""``restarts``: the fair baseline. A fresh random initialization per attempt (``init_scale``
widens it), the same Levenberg–Marquardt search without deflation, then the explorer's polish,
dedup and accounting, so that what deflation adds is measured at equal compute."""

from __future__ import annotations

import torch

from ...train import PhaseOutcome
from ..strategy import Strategy, attempt_seed, register_strategy


@register_strategy("restarts")
class Restarts(Strategy):
    def start(self, k: int) -> None:
        run = self.explorer.run
        run.model.load_state_dict(self.fresh_state(k))
        run.constraints.load_state_dict(self.explorer.initial_multipliers)

    def search(self, k: int, resume: dict | None) -> PhaseOutcome:
        e = self.explorer
        return e.run.trainer.gauss_newton(
            e.run.stacked_residuals(), e.search_rule, e.search_tolerances, e.damping,
            resume=resume, name="restart", update_multipliers=False,
        )  # fmt: skip

    def fresh_state(self, k: int) -> dict:
        """Attempt ``k``'s initialization, drawn in the precision the explorer runs in (the
        polish's), like θ₀ was in the run's. Only the parameters are new: the buffers (input
        scaling, Fourier frequencies) belong to the architecture, which every state of a run
        shares (batched searches hold one copy)."""
        run = self.explorer.run
        fresh = run.network(
            attempt_seed(run.config.run.seed, k), next(run.model.parameters()).dtype
        )
        with torch.no_grad():
            for name, q in fresh.named_parameters():
                if name.endswith("weight"):
                    q.mul_(self.explorer.settings.init_scale)
        state = fresh.state_dict()
        state.update({name: b.detach().clone() for name, b in run.model.named_buffers()})
        return state
