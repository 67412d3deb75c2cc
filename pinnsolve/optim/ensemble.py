"""Batched ensembles: K copies of one network, stepped together in one batched computation.

The explorer's BBI searches (strategies ``bbi`` and ``kick``) differ only in where they start and
in their bounce streams: each step is the same computation on K parameter vectors. Here it is
one computation: :class:`EnsembleEnergy` is ``vmap`` (over the members' stacked parameters and
their own multipliers) of the gradient of one member's MDMM energy, evaluated through the
forward jet engine (nested autograd cannot run under ``vmap``), so the K networks run as batched
matrix products. :class:`EnsembleBBI` takes the BBI functional core's step on the stacked
``[K, P]`` parameters and each member's dual step, as a ``torch.optim.Optimizer`` the trainer's
phase loop runs (logging, checkpoints, stop requests, rollbacks). Members whose V reached
``v_stop`` stop moving while the others go on. Each member's bounce stream is the one its single
search would use, so a batched step is K single steps up to rounding.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import Any

import torch
from torch import Tensor, nn
from torch.func import functional_call, grad_and_value, vmap

from ..constraints import ConstraintSet
from ..derivatives.forward import ForwardEngine
from ..devices import on_device
from ..objective import PinnObjective
from .bbi import BBIConfig, BBIState, bbi_diagnostics, bbi_init, bbi_resync_energy, bbi_step
from .gauss_newton import Bound


class ParameterLayout:
    """Where a network's trainable parameters sit in one flat vector (``parameters()`` order),
    and back: what batched members are stacked as."""

    def __init__(self, model: nn.Module):
        named = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
        self.names = [n for n, _ in named]
        self.shapes = [p.shape for _, p in named]
        self.buffers = dict(model.named_buffers())

    def flatten(self, state: dict[str, Tensor]) -> Tensor:
        """One member's parameter vector from a model state dict."""
        return torch.cat([state[n].reshape(-1) for n in self.names])

    def parameters(self, flat: Tensor) -> dict[str, Tensor]:
        """The named parameters (views) of one member's vector."""
        views = torch.split(flat, [s.numel() for s in self.shapes])
        return {n: v.view(s) for n, v, s in zip(self.names, views, self.shapes, strict=True)}

    def unflatten(self, flat: Tensor) -> dict[str, Tensor]:
        """A model state dict (parameters and buffers) from one member's parameter vector."""
        return {**self.parameters(flat), **self.buffers}


class MemberNetwork:
    """The network with one member's parameters, as the derivative engines call it."""

    def __init__(self, jet: Bound, params: dict[str, Tensor]):
        self._jet = jet
        self._params = params
        self._prefixed = {f"model.{name}": p for name, p in params.items()}

    def __call__(self, x: Tensor) -> Tensor:
        return functional_call(self._jet.model, self._params, (x,))

    def jet(self, x: Tensor, order: int = 2, diagonal: bool = False):
        return functional_call(self._jet, self._prefixed, (x, order, diagonal))


class EnsembleEnergy:
    """The K members' BBI energies (MDMM primal energy at their own multipliers), gradients and
    evaluations in one batched call: ``energy(theta [K, P], multipliers {name: [K, …]})``
    returns ``(grad [K, P], V [K], f [K], g {name: [K, …]})``."""

    def __init__(self, model: nn.Module, objective: PinnObjective, constraints: ConstraintSet):
        self.objective = objective
        self.constraints = constraints
        self._jet = Bound(model, model.jet)
        self._engine = ForwardEngine(strict=True)
        self.layout = ParameterLayout(model)
        self._batched = vmap(grad_and_value(self._member, has_aux=True))

    def _member(self, flat: Tensor, multipliers: dict[str, Tensor]):
        member = MemberNetwork(self._jet, self.layout.unflatten(flat))
        with self.constraints.using(multipliers):
            ev = self.objective.evaluate(member, self._engine)
            energy = self.constraints.primal_energy(ev.objective, ev.g)
        return energy, (
            energy.detach(),
            ev.objective.detach(),
            {k: v.detach() for k, v in ev.g.items()},
        )

    def __call__(self, theta: Tensor, multipliers: dict[str, Tensor]):
        grad, (_, (energy, f, g)) = self._batched(theta, multipliers)
        return grad, energy, f, g

    def dual_step(self, multipliers: dict[str, Tensor], g: dict[str, Tensor]) -> None:
        """Every member's multiplier ascent (:meth:`ConstraintSet.dual_step`), in place."""

        def member(lam, values):
            with self.constraints.using(lam):
                self.constraints.dual_step(values)
            return lam

        updated = vmap(member)(multipliers, g)
        for name, lam in multipliers.items():
            lam.copy_(updated[name])


class EnsembleBBI(torch.optim.Optimizer):
    """BBI on the stacked ``theta`` [K, P] (a plain tensor this optimizer owns and moves),
    each member with its own bounce ``seeds`` [K] and ``multipliers`` {name: [K, …]} (ascended
    after every step when ``dual`` is set, with the energy re-synchronised as a single search
    does). ``step()`` returns ``(V [K], f [K], g)`` at the point the step started from;
    :attr:`active` says which members still move."""

    def __init__(
        self,
        energy: EnsembleEnergy,
        theta: Tensor,
        multipliers: dict[str, Tensor],
        seeds: Tensor,
        config: BBIConfig,
        dual: bool,
    ):
        super().__init__([theta], {"lr": config.lr})
        self.energy = energy
        self.config = config
        self.dual = dual
        self.state["ensemble"] = {"multipliers": multipliers, "seeds": seeds, "bbi": None,
                                  "resync": False}  # fmt: skip

    @property
    def theta(self) -> Tensor:
        return self.param_groups[0]["params"][0]

    @property
    def multipliers(self) -> dict[str, Tensor]:
        return self.state["ensemble"]["multipliers"]

    @property
    def active(self) -> Tensor:
        bbi = self.state["ensemble"]["bbi"]
        if bbi is None:
            return torch.ones(len(self.theta), dtype=torch.bool, device=self.theta.device)
        return bbi["active"]

    @torch.no_grad()
    def step(self, closure: Callable | None = None) -> tuple[Tensor, Tensor, dict[str, Tensor]]:
        own = self.state["ensemble"]
        config = replace(self.config, lr=self.param_groups[0]["lr"])
        with torch.enable_grad():
            grad, energy, f, g = self.energy(self.theta, self.multipliers)
        if own["bbi"] is None:
            state = bbi_init(self.theta, energy, grad, config, own["seeds"])
        else:
            state = BBIState(**own["bbi"])
            if own["resync"]:
                state = bbi_resync_energy(state, energy, config)
        theta, state = bbi_step(self.theta, energy, grad, state, config)
        self.theta.copy_(theta)
        own["bbi"] = state.state_dict()
        own["resync"] = self.dual
        if self.dual:
            self.energy.dual_step(self.multipliers, g)
        return energy, f, g

    def diagnostics(self) -> dict[str, Tensor]:
        """History columns: how many members still move, and the bounces of the best member."""
        bbi = self.state["ensemble"]["bbi"]
        if bbi is None:
            return {}
        state = BBIState(**bbi)
        best = int(state.best_loss.argmin())
        out = {k: v[best] for k, v in bbi_diagnostics(state).items()}
        out["members_active"] = state.active.sum().to(torch.float64)
        return out

    def state_dict(self) -> dict[str, Any]:
        """torch's optimizer state and the members' parameters (torch keeps only references to
        the parameters, and this optimizer's are its own tensor)."""
        return {**super().state_dict(), "theta": self.theta.detach().clone()}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Restore :meth:`state_dict`: the parameters, and the ensemble's own state (which torch
        keeps as saved) onto theta's device, dtypes unchanged (the BBI bookkeeping is float64 and
        int64)."""
        state_dict = dict(state_dict)
        theta = state_dict.pop("theta")
        super().load_state_dict(state_dict)
        with torch.no_grad():
            self.theta.copy_(theta)
        self.state["ensemble"] = on_device(self.state["ensemble"], self.theta.device)
