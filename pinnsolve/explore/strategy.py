"""What an explorer strategy is, what it may use of the run, and the registry that names it.

A strategy answers three questions for the explorer (:mod:`pinnsolve.explore.explorer`):
where attempt k's search starts (:meth:`Strategy.start`), what it minimises and how
(:meth:`Strategy.search`), and whether its end is worth polishing
(:meth:`Strategy.worth_polishing`). Everything else, rounds, the undeflated polish, acceptance,
de-duplication, the catalogue, checkpoints and the attempt log, is the explorer's and the same
for every strategy. A strategy may run a round's searches together (:meth:`Strategy.search_round`;
a batched ensemble or a lockstep) and may keep state that a resume needs
(:meth:`Strategy.state_dict`).

Strategies are looked up by name, like problems: ``@register_strategy("name")`` on a subclass
makes ``[explore] strategy = "name"`` run it (the bundled ones live in
:mod:`pinnsolve.explore.strategies`); a user's own, in a file of theirs, is named
``"my_strategies.py:MyStrategy"`` (relative to the TOML file), or registered by importing its
module before :func:`pinnsolve.solve`. ``docs/strategies.md`` walks through one.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, ClassVar, Protocol

import numpy as np
from torch import Tensor, nn

from ..constraints import ConstraintSet
from ..errors import ConfigError, did_you_mean
from ..io.config import Config, ExploreSection
from ..optim.gauss_newton import StackedResiduals
from ..parallel.distributed import Communicator
from ..problem.base import Problem
from ..train import PhaseOutcome, StopRule, Tolerances, Trainer
from ..user_code import Registry, load_class
from .catalogue import Catalogue, Found


class ExploreRun(Protocol):
    """What the explorer and its strategies use of the run they are part of
    (:class:`pinnsolve.run.Run` provides it)."""

    config: Config
    problem: Problem
    trainer: Trainer
    model: nn.Module
    constraints: ConstraintSet
    ranks: Communicator
    #: θ₀: the parameters the run started from
    start_state: dict[str, Tensor]
    #: the training phases' stop rule (its deadline bounds the whole run)
    rule: StopRule

    def network(self, seed: int, dtype: Any) -> nn.Module:
        """A fresh network of the run's architecture."""

    def stacked_residuals(self) -> StackedResiduals:
        """The residual vector of the current network on the current-precision objective."""

    def to_polish_settings(self) -> None:
        """Model, points and multipliers in the polish precision."""

    def checkpoint(self, phase_state: dict | None) -> None:
        """Save the run with the current phase at ``phase_state``."""


class Exploration(Protocol):
    """What a strategy uses of the explorer that holds it
    (:class:`~pinnsolve.explore.explorer.Explorer`)."""

    run: ExploreRun
    settings: ExploreSection
    catalogue: Catalogue
    #: the main training's polished result when it was not accepted
    unaccepted: Found | None
    #: where fields are compared and deflated (the interior collocation points)
    points: Tensor
    #: the multipliers every attempt starts from (as they were before any training)
    initial_multipliers: dict
    #: the first attempt of the round under way
    round_start: int
    #: how a Levenberg–Marquardt search stops, and the tolerances its end must meet
    search_rule: StopRule
    search_tolerances: Tolerances
    damping: float

    def fields(self) -> Tensor:
        """The network's fields on :attr:`points`."""

    def polish(self, resume: dict | None, name: str = "gauss_newton") -> PhaseOutcome:
        """The undeflated Levenberg–Marquardt polish of the current network."""

    def run_inner(
        self, k: int, stage: str, search_end: Tensor | None, resume: dict | None,
        phase: Callable[[dict | None], Any], checkpoints: bool,
    ) -> Any:  # fmt: skip
        """Run ``phase`` with its checkpoints wrapped into the explorer's state."""


#: Inner stop reasons that end exploring as a whole (the run is being stopped).
RUN_STOPS = ("interrupted", "time_limit")


def attempt_seed(seed: int, attempt: int) -> int:
    """A reproducible seed per attempt (restarts' initialization, bbi's bounce stream)."""
    return int(np.random.SeedSequence([seed, 1000 + attempt]).generate_state(1)[0])


def copy_state(state: dict[str, Tensor]) -> dict[str, Tensor]:
    """A detached copy of a state dict (``state_dict()`` shares storage with the model)."""
    return {n: t.detach().clone() for n, t in state.items()}


def converging(search: PhaseOutcome) -> bool:
    """A Levenberg–Marquardt search that met its tolerance, or was still making progress when
    its step budget ran out (measured on elastica1d: a search ending at residual RMS 1.4e-3
    against a 1e-3 tolerance). One that stalled sits in a spurious minimum of the deflated energy
    (no solution there), and polishing it would only slide back to a known solution."""
    return search.converged or search.stop_reason == "max_steps"


#: what :meth:`Strategy.search_round` returns per attempt: the search's outcome, and the network
#: and multipliers it ended with
Searched = dict[int, tuple[PhaseOutcome, dict, dict]]


class Strategy:
    """How the explorer's searches start and what they minimise (see the module docstring).

    ``explorer`` is the explorer that holds the strategy (what a strategy may use of it:
    :class:`Exploration`).
    """

    name: ClassVar[str] = ""
    #: why a round cannot hold several searches of this strategy ("": it can)
    sequential: ClassVar[str] = ""

    def __init__(self, explorer: Exploration):
        self.explorer = explorer

    @classmethod
    def check(cls, config: Config, problem: Problem) -> None:
        """Raise :class:`~pinnsolve.errors.ConfigError` when this strategy cannot run on
        ``problem`` with ``config`` (``pinnsolve check`` runs it)."""

    def start(self, k: int) -> None:
        """Load attempt ``k``'s starting network and multipliers into the run's model."""
        raise NotImplementedError

    def search(self, k: int, resume: dict | None) -> PhaseOutcome:
        """Attempt ``k``'s search from where :meth:`start` put the model (``resume``: the state
        of an interrupted one), as a trainer phase; the model holds its end afterwards."""
        raise NotImplementedError

    def search_round(
        self, ks: list[int], start: tuple[dict, dict]
    ) -> tuple[Searched, int, str | None] | None:
        """The searches of attempts ``ks`` together, each from where its own would start, the
        round's ``start`` (network, multipliers) being loaded before each :meth:`start`. Returns
        their ends, the steps taken and the run's stop reason when it is being stopped (cut by
        the time limit, the ends reached so far: they are recorded); None when this strategy runs
        them one at a time (the default)."""
        return None

    def worth_polishing(self, search: PhaseOutcome) -> bool:
        """Whether a search's end is polished and judged (by default: it is converging)."""
        return converging(search)

    def judged(self, record: dict, attempt: dict) -> None:
        """Told what the explorer made of ``attempt`` (``record["outcome"]``), on every rank in
        attempt order."""

    def finished(self) -> str | None:
        """A reason to end exploring before the attempts run out (None: go on)."""
        return None

    def shared(self) -> Any:
        """State that travels with an attempt's record and that the next round starts from (see
        :meth:`adopt`); None when there is none."""
        return None

    def adopt(self, shared: Any) -> None:
        """Continue from the state :meth:`shared` returned at the end of a round's last attempt."""

    def state_dict(self) -> dict:
        """What a resumed run needs of the strategy (CPU tensors or plain data)."""
        return {}

    def load_state_dict(self, state: dict) -> None:
        """Restore what :meth:`state_dict` returned."""


_STRATEGIES = Registry(Strategy, "strategy")


def register_strategy(name: str) -> Callable[[type[Strategy]], type[Strategy]]:
    """Class decorator: make a strategy known as ``[explore] strategy = name``."""
    return _STRATEGIES.register(name)


def strategies() -> dict[str, type[Strategy]]:
    """The registered strategies by name (the bundled ones and any a user registered)."""
    return dict(_STRATEGIES.classes)


def strategy_named(name: str, base_dir: Path | None = None) -> type[Strategy]:
    """The strategy registered as ``name``, or the class ``"file.py:ClassName"`` names (relative
    to ``base_dir``); an unknown name is a config error."""
    if ":" in name:
        return load_class(name, base_dir or Path.cwd(), Strategy, "strategy",
                          "[explore] strategy")  # fmt: skip
    if name not in _STRATEGIES.classes:
        known = ["none", *_STRATEGIES.classes]
        raise ConfigError(
            f"expected one of {', '.join(map(repr, known))}, got {name!r}"
            + did_you_mean(name, known)
            + " (or 'file.py:ClassName')",
            key="[explore] strategy",
        )
    return _STRATEGIES.classes[name]
