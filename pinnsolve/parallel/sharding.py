"""Collocation sharding: each rank evaluates the network on its share of the points.

What costs in a PINN step is the network and its derivatives at every collocation point; what
the loss does with the per-point values is cheap. :class:`ShardedObjective` therefore splits the
work, not the problem: every rank holds every point (drawn from the seed, a few bytes each),
evaluates the residual and the pointwise conditions on its contiguous share
(:meth:`~pinnsolve.parallel.distributed.Communicator.shard`), and all-gathers the per-point values
(one collective per evaluation). Every rank then has the same residual vectors and condition
values as one process would, so the loss, the multipliers' ascent, BBI's energy, the stopping
rules and the history are computed identically on every rank and need no further agreement.
The gradient reaches each rank only through its own rows: averaging the ranks' gradients
(:meth:`~pinnsolve.parallel.distributed.Communicator.average_gradients`) gives the whole one.

Multipliers are kept whole on every rank (``n`` numbers per condition, updated identically
from the gathered ``g``) rather than sharded with their points: they cost as much memory as the
point coordinates, and a whole vector keeps every optimizer and checkpoint unchanged.

Conditions whose values are not one per point (an integral's single number, a periodic pair's
difference of two points) are evaluated whole on every rank.

Gauss–Newton cannot gather inside its ``torch.func`` transforms, so it splits the residual
vector itself: :class:`ShardedStackedResiduals` gives each rank its rows, and Levenberg–Marquardt
sums ``JᵀJ``, ``Jᵀr`` (or ``Jᵀw`` and CG's inner products) and ``‖r‖²`` over the ranks.
"""

from __future__ import annotations

import math
from dataclasses import replace

import torch
from torch import Tensor, nn

from ..constraints import ConstraintSet
from ..derivatives.fields import Engine
from ..devices import on_device
from ..objective import ConditionPoints, Evaluation, PinnObjective
from ..optim.gauss_newton import Products, StackedResiduals
from .distributed import Communicator


def pointwise(cond: ConditionPoints) -> bool:
    """Whether a condition has one value per point, so its points can be split."""
    n = int(cond.points.shape[0])
    return cond.condition.n_values(n) == n


class ShardedObjective(PinnObjective):
    """``whole``'s objective with the per-point work split over ``comm``'s ranks (see the
    module docstring); :meth:`evaluate` returns what ``whole.evaluate`` would, on every rank."""

    def __init__(self, whole: PinnObjective, comm: Communicator):
        super().__init__(whole.problem, whole.interior, whole.conditions, whole.engine,
                         whole.extra, whole.corner_layer)  # fmt: skip
        self.comm = comm

    def evaluate(self, model, engine: Engine | None = None) -> Evaluation:
        mine = self.comm.shard(len(self.interior))
        pieces = self.weighted_residuals_at(model, self.interior[mine], engine)
        sizes = [len(self.interior)] * len(pieces)
        split = [c for c in self.conditions if pointwise(c)]
        for c in split:
            part = self.comm.shard(len(c.points))
            pieces.append(self.condition_values(model, c, c.points[part], c.normals[part], engine))
            sizes.append(len(c.points))
        whole = self.comm.gather_rows(pieces, sizes)
        residuals = whole[: len(whole) - len(split)]
        gathered = dict(zip([c.label for c in split], whole[len(residuals) :], strict=True))
        g = {c.label: gathered[c.label] if pointwise(c)
             else self.condition_values(model, c, engine=engine)
             for c in self.conditions}  # fmt: skip
        objective = sum(r.square().mean() for r in residuals)
        return Evaluation(objective, residuals, g)


class ShardedStackedResiduals(StackedResiduals):
    """The Gauss–Newton residual vector ``R`` split by rows over the ranks: this rank's rows are
    the residual at its share of the interior points (over √N of all of them) and the energy rows
    of its share of every pointwise condition's points; conditions whose rows need all points (a
    mean, an integral, a periodic pair) are rank 0's, computed whole. ``‖R‖² = Σ_ranks ‖R_r‖²``,
    and ``J_r = ∂R_r/∂θ`` needs this rank's points only, so the Jacobian (dense) or the products
    (CG) are built on shares; :meth:`total` sums what Levenberg–Marquardt needs over the ranks
    (``JᵀJ``, ``Jᵀr``, ``‖r‖²``, ``Jᵀw``). :meth:`residual` without an engine (the trainer's
    call, for tolerances and the multipliers) also gathers the whole evaluation from the ranks'
    shares."""

    def __init__(
        self, whole: PinnObjective, constraints: ConstraintSet, model: nn.Module,
        comm: Communicator,
    ):  # fmt: skip
        self.whole, self.comm = whole, comm
        #: set while :meth:`linearize` records R inside a ``torch.func`` transform
        self._rows_only = False
        self._n_interior = len(whole.interior)
        #: per split condition, this rank's rows; the others are rank 0's, whole
        self._split: dict[str, slice] = {}
        self._sizes = {c.label: len(c.points) for c in whole.conditions}
        local = []
        for c in whole.conditions:
            if pointwise(c) and constraints.spec(c.label).multiplier != "scalar":
                part = comm.shard(len(c.points))
                local.append(replace(c, points=c.points[part], normals=c.normals[part]))
                self._split[c.label] = part
            elif comm.is_main:
                local.append(c)
        shard = PinnObjective(whole.problem, whole.interior[comm.shard(self._n_interior)], local,
                              whole.engine, whole.extra, whole.corner_layer)  # fmt: skip
        super().__init__(shard, constraints, model)

    def total(self, x: Tensor) -> Tensor:
        """``x`` summed over the ranks."""
        return self.comm.all_sum(x)

    def rows(self, ev: Evaluation) -> list[Tensor]:
        parts = [r.reshape(-1) / math.sqrt(self._n_interior) for r in ev.residuals]
        return parts + [self.constraints.energy_rows(label, g, self._split.get(label))
                        for label, g in ev.g.items()]  # fmt: skip

    def residual(self, engine: Engine | None = None) -> tuple[Tensor, Evaluation]:
        r, ev = super().residual(engine)
        if engine is not None or self._rows_only:  # inside transforms: no collectives
            return r, ev
        return r, self._gathered(ev)

    @torch.no_grad()
    def _gathered(self, ev: Evaluation) -> Evaluation:
        """The evaluation at all points from this rank's: per-point values all-gathered, the
        conditions rank 0 holds whole sent from it."""
        split = list(self._split)
        sizes = [self._n_interior] * len(ev.residuals) + [self._sizes[k] for k in split]
        mine = [r.detach() for r in ev.residuals] + [ev.g[k].detach() for k in split]
        pieces = self.comm.gather_rows(mine, sizes)
        residuals = pieces[: len(ev.residuals)]
        g = dict(zip(split, pieces[len(residuals) :], strict=True))
        if len(g) < len(self._sizes):
            held = {k: v for k, v in ev.g.items() if k not in self._split}
            sent = self.comm.broadcast_object(on_device(held, "cpu") if self.comm.is_main else None)
            g.update(on_device(sent, residuals[0].device))
        g = {c.label: g[c.label] for c in self.whole.conditions}
        return Evaluation(sum(r.square().mean() for r in residuals), residuals, g)

    def linearize(self) -> Products:
        """This rank's ``J v`` (its rows) and the whole ``Jᵀ w`` (summed over ranks)."""
        self._rows_only = True
        try:
            jvp_fn, vjp_fn = super().linearize()
        finally:
            self._rows_only = False
        return jvp_fn, lambda w: self.total(vjp_fn(w))
