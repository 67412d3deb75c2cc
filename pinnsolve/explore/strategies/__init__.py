"""The bundled explorer strategies, one module each; importing this package registers them.

``deflation`` (recommended, :mod:`.deflation`)
    From the same initial parameters θ₀, Levenberg–Marquardt on the deflated residual
    ``M(u)·R(θ)``, deflated by every solution found so far and, with ``deflate_failures``, by
    where earlier failed searches ended; a round's searches side by side, deflating each other.
``restarts`` (:mod:`.restarts`)
    The fair baseline: a fresh random initialization per attempt, the same Levenberg–Marquardt
    search without deflation, the same polish, dedup and accounting.
``bbi`` (:mod:`.bbi`)
    From θ₀, BBI with a different bounce seed per attempt: bounce streams alone.
``kick`` (:mod:`.kick`)
    Re-inflation: from a solution found (in turn), BBI with a large energy and a random momentum.
``continuation`` (:mod:`.continuation`)
    Follow the first solution's branch in one problem parameter, around folds and onto the
    branches met at bifurcations, to the requested value.

A new strategy is one module beside these (a :class:`~pinnsolve.explore.strategy.Strategy`
subclass with ``@register_strategy("name")``) and its line below.
"""

from ..strategy import Strategy, register_strategy, strategies, strategy_named
from . import bbi, continuation, deflation, kick, restarts  # noqa: F401  (registers them)

__all__ = ["Strategy", "register_strategy", "strategies", "strategy_named"]
