"""Deflation: make solutions already found stop being zeros of the residual.

Farrell, Birkisson & Funke (SIAM J. Sci. Comput. 2015): once ``u₁…u_m`` are known, solve
``M(u) F(u) = 0`` with ``M(u) = Π_i (‖u − u_i‖^(−p) + σ)``. ``M`` blows up at each known
``u_i``, so a Newton-type method can no longer converge there, while every other root of ``F``
is still a root of the deflated problem (``σ > 0`` keeps ``M`` away from 0 far from them).

Deflation is proven with Newton-type steps, and that is how pinnsolve uses it:
:class:`DeflatedResiduals` is the stacked residual vector ``R`` of the MDMM primal energy (see
:mod:`pinnsolve.optim.gauss_newton`) times ``M``, with the exact Jacobian ``M·J + R (∇_θ M)ᵀ`` (a
rank-one update, ``∇_θ M`` from one backward pass), for the Levenberg–Marquardt optimizer.
First-order descent on ``M²·V`` was measured to run into spurious minima of the deflated energy on
bratu1d (``../shared/algorithms/deflation.md``), which is why this module has no such mode.

``‖u − u_i‖`` is the RMS over a fixed point set (the interior collocation points) of all fields'
differences: one extra forward pass of the network per evaluation.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from ..objective import Evaluation
from ..optim.gauss_newton import StackedResiduals


class Deflation:
    """``M(u) = Π_i (‖u − u_i‖^(−p) + σ)`` for the stored fields ``u_i`` on ``points``."""

    def __init__(self, points: Tensor, power: float = 2.0, shift: float = 1.0):
        if not power > 0 or not shift >= 0:
            raise ValueError(f"deflation needs power > 0 and shift >= 0, got {power}, {shift}")
        self.points = points
        self.power = float(power)
        self.shift = float(shift)
        #: the deflated fields, each ``[len(points), n_fields]``
        self.known: list[Tensor] = []

    def add(self, values: Tensor) -> None:
        """Deflate the fields ``values`` (the network's output on :attr:`points`)."""
        self.known.append(values.detach().to(self.points.dtype).clone())

    def factor(self, model: nn.Module) -> Tensor:
        """``M`` at the network's current parameters (0-d, differentiable; 1 with none known)."""
        result = torch.ones((), dtype=self.points.dtype, device=self.points.device)
        if not self.known:
            return result
        u = model(self.points)
        for known in self.known:
            distance_sq = (u - known).square().mean()
            result = result * (distance_sq.pow(-self.power / 2) + self.shift)
        return result


class DeflatedResiduals:
    """``M(θ)·R(θ)`` and its exact Jacobian, with the same interface as
    :class:`~pinnsolve.optim.gauss_newton.StackedResiduals` (so the Levenberg–Marquardt optimizer
    and the trainer's tolerance tests use it unchanged). The evaluation returned alongside is the
    *undeflated* one, so stopping tests and logs see the true residual."""

    def __init__(self, stacked: StackedResiduals, deflation: Deflation):
        self.stacked = stacked
        self.deflation = deflation
        self.constraints = stacked.constraints

    def residual(self, engine=None) -> tuple[Tensor, Evaluation]:
        r, ev = self.stacked.residual(engine)
        with torch.no_grad():
            m = self.deflation.factor(self.stacked.model)
        return m * r, ev

    def jacobian(self) -> Tensor:
        jac = self.stacked.jacobian()
        if not self.deflation.known:
            return jac
        model = self.stacked.model
        params = [p for p in model.parameters() if p.requires_grad]
        with torch.enable_grad():
            m = self.deflation.factor(model)
            grad_m = torch.cat([g.reshape(-1) for g in torch.autograd.grad(m, params)])
        with torch.no_grad():
            r, _ = self.stacked.residual()
        return m.detach() * jac + torch.outer(r.detach(), grad_m)


def relative_distance(a: Tensor, b: Tensor, floor: float) -> float:
    """``‖a − b‖ / max(‖a‖, ‖b‖, floor·√n)``: RMS-based, so ``floor`` is in the fields' units."""
    scale = max(float(a.norm()), float(b.norm()), floor * math.sqrt(a.numel()))
    return float((a - b).norm()) / scale
