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
"""

from __future__ import annotations

from .distributed import Communicator
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
