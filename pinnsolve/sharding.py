"""Collocation sharding: each rank evaluates the network on its share of the points.

What costs in a PINN step is the network and its derivatives at every collocation point; what
the loss does with the per-point values is cheap. :class:`ShardedObjective` therefore splits the
work, not the problem: every rank holds every point (drawn from the seed, a few bytes each),
evaluates the residual and the pointwise conditions on its contiguous share
(:meth:`~pinnsolve.distributed.Communicator.shard`), and all-gathers the per-point values
(one collective per evaluation). Every rank then has the same residual vectors and condition
values as one process would, so the loss, the multipliers' ascent, BBI's energy, the stopping
rules and the history are computed identically on every rank and need no further agreement.
The gradient reaches each rank only through its own rows: averaging the ranks' gradients
(:meth:`~pinnsolve.distributed.Communicator.average_gradients`) gives the whole one.

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

from .constraints import ConstraintSet
from .distributed import Communicator
from .gauss_newton import Products, StackedResiduals, _JetTable
from .jet import Engine
from .objective import ConditionPoints, Evaluation, PinnObjective


def pointwise(cond: ConditionPoints) -> bool:
    """Whether a condition has one value per point, so its points can be split."""
    n = int(cond.points.shape[0])
    return cond.condition.n_values(n) == n


class ShardedObjective(PinnObjective):
    """``whole``'s objective with the per-point work split over ``comm``'s ranks (see the
    module docstring); :meth:`evaluate` returns what ``whole.evaluate`` would, on every rank."""

    def __init__(self, whole: PinnObjective, comm: Communicator):
        super().__init__(whole.problem, whole.interior, whole.conditions, whole.engine,
                         whole.extra)  # fmt: skip
        self.comm = comm

    def evaluate(self, model, engine: Engine | None = None) -> Evaluation:
        mine = self.comm.shard(len(self.interior))
        pieces = self.residuals_at(model, self.interior[mine], engine)
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
    call, for tolerances and the multipliers) returns the whole evaluation, gathered."""

    def __init__(
        self, whole: PinnObjective, constraints: ConstraintSet, model: nn.Module,
        comm: Communicator,
    ):  # fmt: skip
        self.whole, self.comm = whole, comm
        #: set while :meth:`linearize` records R inside a ``torch.func`` transform
        self._rows_only = False
        mine = comm.shard(len(whole.interior))
        self._n_interior = len(whole.interior)
        self._rows: dict[str, slice | None] = {}
        local = []
        for c in whole.conditions:
            if pointwise(c) and _separable(constraints, c.label):
                part = comm.shard(len(c.points))
                local.append(replace(c, points=c.points[part], normals=c.normals[part]))
                self._rows[c.label] = part
            elif comm.is_main:
                local.append(c)
                self._rows[c.label] = None  # whole, here
        shard = PinnObjective(whole.problem, whole.interior[mine], local, whole.engine,
                              whole.extra)  # fmt: skip
        super().__init__(shard, constraints, model)

    def total(self, x: Tensor) -> Tensor:
        """``x`` summed over the ranks."""
        return self.comm.all_sum(x)

    def residual(self, engine: Engine | None = None) -> tuple[Tensor, Evaluation]:
        ev = self.objective.evaluate(self.model, engine or _JetTable())
        parts = [r.reshape(-1) / math.sqrt(self._n_interior) for r in ev.residuals]
        for label, g in ev.g.items():
            parts.append(self.constraints.energy_rows(label, g, self._rows[label]))
        r = torch.cat(parts)
        if engine is not None or self._rows_only:  # inside transforms: no collectives
            return r, ev
        with torch.no_grad():
            return r, ShardedObjective(self.whole, self.comm).evaluate(self.model)

    def linearize(self) -> Products:
        """This rank's ``J v`` (its rows) and the whole ``Jᵀ w`` (summed over ranks)."""
        self._rows_only = True
        try:
            jvp_fn, vjp_fn = super().linearize()
        finally:
            self._rows_only = False
        return jvp_fn, lambda w: self.total(vjp_fn(w))


def _separable(constraints: ConstraintSet, label: str) -> bool:
    """Whether a constraint's energy rows are one per point (not one for a mean)."""
    spec = next(s for s in constraints.specs if s.name == label)
    return spec.multiplier != "scalar"
