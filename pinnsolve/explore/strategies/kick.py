"""``kick``: re-inflation. From a solution found (in turn), BBI with a large energy
(``kick_energy`` times V at θ₀) and a random momentum direction, so the particle can climb
barriers up to that energy; one bounce seed per attempt. Measured on bratu1d to wander in the
first basin's flat directions (loss ≤ 0.2) and fall back to the same solution."""

from __future__ import annotations

import functools

import torch

from ..strategy import copy_state, register_strategy
from .bbi import BBISearches


@register_strategy("kick")
class Kicks(BBISearches):
    def start(self, k: int) -> None:
        """A catalogued solution, in turn (the main training's result when none was accepted);
        the multipliers as the last polish left them."""
        found = self.explorer.catalogue.entries or [self.explorer.unaccepted]
        self.explorer.run.model.load_state_dict(found[(k - 1) % len(found)].model_state)

    def energy_unit(self) -> float:
        return self._start_energy

    @functools.cached_property
    def _start_energy(self) -> float:
        """V at θ₀ with the initial multipliers: the unit of a kick's energy (the scale of the
        barriers training had to cross), computed once. The current network and multipliers are
        kept."""
        run = self.explorer.run
        saved = (copy_state(run.model.state_dict()), run.constraints.state_dict())
        run.model.load_state_dict(run.start_state)
        run.constraints.load_state_dict(self.explorer.initial_multipliers)
        with torch.no_grad():
            energy = float(run.stacked_residuals().residual()[0].square().sum())
        run.model.load_state_dict(saved[0])
        run.constraints.load_state_dict(saved[1])
        return energy
