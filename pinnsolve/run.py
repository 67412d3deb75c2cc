"""One run's state as one object: what every phase, the explorer and the checkpoints share.

:class:`Run` is built once by :func:`pinnsolve.solve` from the config, the problem and where the
run lives (device, dtype, run folder, ranks). It owns the collocation objective in its current
precision, the constraints, the network and θ₀, the trainer and the explorer; its methods are
what the phases call: the loss and energy the trainer minimises, the switch to the polish
precision, the Gauss–Newton residual vector, the checkpoint, and :meth:`Run.phases`, the list of
phases the run goes through. The explorer sees it through
:class:`~pinnsolve.explore.strategy.ExploreRun`.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Callable
from dataclasses import asdict, replace
from functools import partial

import torch
from torch import nn

from .build import build_constraints, build_network, config_dir
from .derivatives.forward import engine_named
from .errors import ConfigError
from .explore.explorer import Explorer
from .explore.strategies import strategy_named
from .io.config import Config
from .io.evaluate import ExactError
from .io.progress import Progress
from .io.rundir import RunDir
from .objective import Evaluation, PinnObjective
from .optim.gauss_newton import StackedResiduals
from .parallel.distributed import Communicator
from .parallel.sharding import ShardedObjective, ShardedStackedResiduals
from .problem.base import Problem
from .problem.conditions import Condition
from .problem.graded import CornerGrading
from .train import PhaseOutcome, StopRule, Tolerances, Trainer

#: A phase: runs (or resumes from the state it gets) and says how it ended.
Phase = Callable[[dict | None], PhaseOutcome]


class Run:
    """The state of one run (see the module docstring). ``run_dir`` is None on ranks other than
    0 (only rank 0 writes)."""

    def __init__(
        self,
        problem: Problem,
        extra: list[Condition],
        config: Config,
        device: torch.device,
        dtype: torch.dtype,
        run_dir: RunDir | None,
        progress: Progress,
        ranks: Communicator,
    ):
        self.started = time.monotonic()
        self.problem, self.config, self.device, self.dtype = problem, config, device, dtype
        self.run_dir, self.progress, self.ranks = run_dir, progress, ranks
        s, t = config.sampling, config.training
        objective = PinnObjective.sampled(
            problem, s.interior or default_interior(problem), s.boundary, s.method,
            config.run.seed, dtype, device, extra,
            s.corner_layer, CornerGrading(s.corner_share, s.corner_radius, s.corner_grading),
        )  # fmt: skip
        objective.engine = engine_named(config.model.derivatives, device)
        #: the objective in the run's dtype (what the summary and the plots describe)
        self.objective = objective
        self.constraints = build_constraints(config, objective, dtype, device)
        self.model = self.network(config.run.seed, dtype)
        #: θ₀, where the explorer's deflation and bbi searches start
        self.start_state = copy.deepcopy(self.model.state_dict())
        #: the objective in the current precision (the polish may switch to float64), the same
        #: split over the ranks, and whether the ranks evaluate it together now (first order)
        self.live = objective
        self._sharded = ShardedObjective(objective, ranks)
        self._split = False
        #: the phases' outcomes so far, and the phase under way
        self.outcomes: list[PhaseOutcome] = []
        self.phase_index = 0
        #: shard the collocation points over the ranks in the phases that allow it
        self.sharded = ranks.world > 1 and config.distributed.shard_collocation
        limit = config.run.max_time_s
        deadline = self.started + limit if limit > 0 else None
        #: the training phases' stop rule (its deadline bounds the whole run)
        self.rule = StopRule(t.steps, t.loss_threshold, t.patience, t.min_improvement, deadline,
                             t.log_every)  # fmt: skip
        #: where solutions are evaluated and exported (and the history's error measured)
        self.mesh = problem.geometry().eval_mesh(
            config.output.resolution or default_resolution(problem), config.output.time_slices
        )
        has_multipliers = bool(self.constraints.multipliers)
        self.trainer = Trainer(
            self.model, self.loss, progress, self.checkpoint, config.output.checkpoint_every,
            dual_step=self.constraints.dual_step if has_multipliers else None,
            outer_step=self.constraints.method_of_multipliers_step if has_multipliers else None,
            energy_fn=self.energy,
            state_hooks=(self.constraints.state_dict, self.constraints.load_state_dict),
            progress_message=progress.message,
            metrics=lambda g: {k: v for k, v in self.constraints.metrics(g).items()
                               if not k.endswith("_penalty")},
            error=ExactError.of(problem, self.mesh),
        )  # fmt: skip
        strategy = config.explore.strategy
        self.explorer = None
        if strategy != "none":
            try:
                self.explorer = Explorer(self, strategy_named(strategy, config_dir(config)))
            except ConfigError as err:
                raise err.located(file=config.source) from None

    # -- what the phases call -----------------------------------------------------------------
    def network(self, seed: int, dtype: torch.dtype) -> nn.Module:
        """A fresh network of the ``[model]`` architecture, initialised from ``seed``."""
        return build_network(self.config.model, self.problem, seed, dtype, self.device)

    def evaluate(self) -> Evaluation:
        return (self._sharded if self._split else self.live).evaluate(self.model)

    def loss(self) -> tuple[torch.Tensor, Evaluation]:
        """The MDMM Lagrangian (first-order phases)."""
        ev = self.evaluate()
        return self.constraints.lagrangian(ev.objective, ev.g), ev

    def energy(self) -> tuple[torch.Tensor, Evaluation]:
        """The bounded-below primal energy (BBI)."""
        ev = self.evaluate()
        return self.constraints.primal_energy(ev.objective, ev.g), ev

    def to_precision(self, target: torch.dtype) -> None:
        """Move the network, points and multipliers to ``target`` (idempotent)."""
        if next(self.model.parameters()).dtype != target:
            self.model.to(dtype=target)
            self.constraints.to(dtype=target)
            self.live = self.objective.to(target)
            self._sharded = ShardedObjective(self.live, self.ranks)

    def to_polish_settings(self) -> None:
        """Polish phases run in ``[polish] dtype`` (float64 by default: second-order steps
        resolve the residual far below float32's resolution), with ``[polish]
        constraint_damping`` when set (see :meth:`ConstraintSet.stiffen`)."""
        polish = self.config.polish
        self.to_precision(torch.float64 if polish.dtype == "float64" else self.dtype)
        if polish.constraint_damping:
            self.constraints.stiffen(polish.constraint_damping)

    def stacked_residuals(self) -> StackedResiduals:
        """The Gauss–Newton residual vector of the current network on the live objective."""
        return StackedResiduals(self.live, self.constraints, self.model)

    def polish_residuals(self) -> StackedResiduals:
        """The polish's residual vector: split by rows over the ranks when sharded."""
        if self.sharded:
            return ShardedStackedResiduals(self.live, self.constraints, self.model, self.ranks)
        return self.stacked_residuals()

    def together(self, phase: Phase, first_order: bool = True) -> Phase:
        """A phase the ranks compute together on their shares of the points: a first-order one
        reads the sharded objective and averages gradients; every one agrees on stops."""
        if not self.sharded:
            return phase
        trainer, ranks = self.trainer, self.ranks

        def run(state):
            self._split, trainer.agree = first_order, ranks.any
            if first_order:
                trainer.reduce_gradients = lambda: ranks.average_gradients(self.model.parameters())
            try:
                return phase(state)
            finally:
                self._split, trainer.agree, trainer.reduce_gradients = False, bool, None

        return run

    def checkpoint(self, phase_state: dict | None) -> None:
        """Everything a resumed run needs: phase :attr:`phase_index` at ``phase_state`` (None:
        at its start), with the model, multipliers, history and the outcomes of finished phases.
        Every rank holds the same state; rank 0 writes it."""
        if self.run_dir is None:
            return
        self.run_dir.save_checkpoint({
            "phase_index": self.phase_index, "phase_state": phase_state,
            "model": self.model.state_dict(), "constraints": self.constraints.state_dict(),
            "history": self.trainer.history.rows, "history_step": self.trainer.history.step,
            "outcomes": [asdict(o) for o in self.outcomes], "config_hash": self.config.digest(),
            "explorer": self.explorer.state_dict() if self.explorer else None,
        })  # fmt: skip

    def restore(self, state: dict) -> None:
        """Continue from a checkpoint :meth:`checkpoint` wrote."""
        self.to_precision(next(iter(state["model"].values())).dtype)
        self.model.load_state_dict(state["model"])
        self.constraints.load_state_dict(state["constraints"])
        self.trainer.history.rows = state["history"]
        if state["history"]:  # the rows' wall times go on from where the run stopped
            self.trainer.continue_clock(state["history"][-1]["time_s"])
        self.trainer.history.step = state["history_step"]
        self.outcomes.extend(PhaseOutcome(**o) for o in state["outcomes"])
        if self.explorer:
            self.explorer.load_state_dict(state["explorer"])
        self.phase_index = state["phase_index"]

    # -- the phases ---------------------------------------------------------------------------
    def phases(self) -> list[Phase]:
        """The run's phases in order, each a function of its resume state (None: from the
        start): the main training, the ``[polish]`` phases (L-BFGS, then Levenberg–Marquardt,
        each first switching to the polish precision), then the explorer."""
        return [phase for _, phase in self.planned()]

    def plan(self) -> list[str]:
        """What each of :meth:`phases` is, in a few words (the run's header, resume notes)."""
        return [what for what, _ in self.planned()]

    def planned(self) -> list[tuple[str, Phase]]:
        """:meth:`phases` with what each is."""
        t, p, trainer, rule = self.config.training, self.config.polish, self.trainer, self.rule
        main = {
            "adam": partial(trainer.adam, t.lr, rule),
            "bbi": partial(
                trainer.bbi, self.config.bbi.optimizer_config(t.lr), self.config.run.seed, rule
            ),  # fmt: skip
            "lbfgs": partial(trainer.lbfgs, t.lr, rule),
        }[t.optimizer]
        phases = [(f"{t.optimizer} ({t.steps} steps)",
                   self.together(lambda state: main(resume=state)))]  # fmt: skip
        polish_rule = replace(rule, patience=0)
        if "lbfgs" in p.method and p.steps > 0:
            lbfgs_rule = replace(polish_rule, max_steps=p.steps, flat_steps=p.patience)
            lbfgs = partial(trainer.lbfgs, p.lr, lbfgs_rule,
                            p.history, p.tolerance_grad, p.tolerance_change)  # fmt: skip
            phases.append((
                f"lbfgs polish (up to {p.steps} steps, {p.dtype})",
                self.together(lambda state: (self.to_polish_settings(), lbfgs(resume=state))[1]),
            ))  # fmt: skip
        if "gauss_newton" in p.method and p.gauss_newton_steps > 0:
            tolerances = Tolerances(p.tolerance_residual, p.tolerance_infeasibility,
                                    p.tolerance_step)  # fmt: skip
            gn_rule = replace(polish_rule, max_steps=p.gauss_newton_steps)

            def gauss_newton(state):
                self.to_polish_settings()
                return trainer.gauss_newton(
                    self.polish_residuals(), gn_rule, tolerances, p.damping, resume=state,
                    linear_solver=p.linear_solver, cg_iterations=p.cg_iterations,
                )  # fmt: skip

            phases.append((f"gauss_newton polish (up to {p.gauss_newton_steps} steps, {p.dtype})",
                           self.together(gauss_newton, first_order=False)))  # fmt: skip
        if self.explorer:
            e = self.config.explore
            phases.append((f"explore ({e.strategy}: up to {e.attempts} attempts, "
                           f"{e.trajectories} per round)", self._explore))  # fmt: skip
        return phases

    def header(self) -> list[str]:
        """What the run is about to do, printed before it starts: the problem, the network, the
        collocation points (per boundary part and in all) and the phases planned."""
        c, s = self.config, self.config.sampling
        params = ", ".join(f"{k} = {v:g}" for k, v in self.problem.p.items())
        size = sum(q.numel() for q in self.model.parameters())
        geom = self.problem.geometry()
        per_part = {part: len(geom.sample_part(part, s.boundary, s.method, 0).points)
                    for part in geom.parts}  # fmt: skip
        counts = sorted(set(per_part.values()))
        each = "/".join(map(str, counts)) + " point" + ("s" if counts != [1] else "")
        interior = int(self.objective.interior.shape[0])
        on_conditions = {cp.label: int(cp.points.shape[0]) for cp in self.objective.conditions}
        return [
            f"{c.problem.name}" + (f" ({params})" if params else "")
            + f" on {self.device} ({c.run.dtype}), seed {c.run.seed}",
            f"  network: {self.problem.geometry().dim} inputs"
            + (" (radial: the squared distance from the centre)" if c.model.radial else "")
            + f" → hidden {list(c.model.hidden)} "
            f"({c.model.activation}) → {len(self.problem.fields)} field(s); {size} parameters",
            f"  points: {interior} interior; {each} on each of {len(per_part)} boundary parts "
            f"({', '.join(per_part)}; [sampling] boundary = {s.boundary} per part); conditions: "
            + ", ".join(f"{k} {n}" for k, n in on_conditions.items())
            + f"; {interior + sum(on_conditions.values())} in all",
            "  phases: " + " → ".join(self.plan()),
        ]  # fmt: skip

    def _explore(self, state: dict | None) -> PhaseOutcome:
        """The explorer's phase, its history rows marked ``stage = explore``."""
        self.trainer.stage = "explore"
        try:
            return self.explorer.explore(state)
        finally:
            self.trainer.stage = "train"

    def go(self, resume: dict | None) -> None:
        """Run the phases from the first, or from where ``resume`` (a checkpoint, already
        :meth:`restore`-d) stopped. After each phase every rank continues from rank 0's network
        and multipliers; a phase that was interrupted, hit the time limit or diverged ends the
        run."""
        phases, ranks = self.phases(), self.ranks
        while self.phase_index < len(phases):
            if self.outcomes and ranks.any(not _may_continue(self.outcomes[-1])):
                break
            resuming = resume is not None and self.phase_index == resume["phase_index"]
            outcome = phases[self.phase_index](resume["phase_state"] if resuming else None)
            self.outcomes.append(outcome)
            self._share_rank0_state()
            if ranks.any(outcome.stop_reason == "interrupted"):
                outcome.stop_reason = "interrupted"
                break
            self.phase_index += 1
            self.checkpoint(None)

    def finite(self) -> bool:
        """No phase met a non-finite loss and the network's parameters are finite."""
        return all(torch.isfinite(q).all() for q in self.model.parameters()) and not any(
            o.stop_reason == "non_finite_loss" for o in self.outcomes
        )

    def status(self) -> str:
        """``interrupted``, ``diverged`` (not :meth:`finite`) or ``finished``."""
        if any(o.stop_reason == "interrupted" for o in self.outcomes):
            return "interrupted"
        return "finished" if self.finite() else "diverged"

    def _share_rank0_state(self) -> None:
        """After a phase, every rank continues from rank 0's network and multipliers: the ranks
        computed the same phase, so they differ at most by rounding (or by where a stop request
        reached them), and from here they are identical."""
        state = [*self.model.state_dict().values(), *self.constraints.multipliers.values()]
        self.ranks.broadcast_state(state)


def default_interior(problem: Problem) -> int:
    """Collocation points when ``[sampling] interior`` is 0, by the domain's dimension (time
    included). On an interval 128 resolve the bundled 1D problems to rel L2 1e-7 and keep every
    explorer step cheap (a minimal bratu1d file: 264 s of wall time with 1 000 points in #24, 28 s
    of CPU with 128 and the flat-loss stop of the L-BFGS polish); in 2D the
    network must see several points per parameter between which it cannot wiggle: Bratu 2D's
    mesh residual was 30× its collocation residual at 512 points and 2× at 2 048 (#21)."""
    return {1: 128, 2: 2048}.get(problem.geometry().dim, 4096)


def default_resolution(problem: Problem) -> int:
    """Evaluation-mesh points per axis when ``[output] resolution`` is 0: 1001 on a line (issue
    24: the linear interpolation of a 101-point line cost up to 8e-4 of rel L2 on a boundary
    layer solved to 5e-5; a 1-D mesh is cheap), 101 per axis in 2-D and 3-D."""
    return 1001 if len(problem.spatial_coords) == 1 else 101


def _may_continue(outcome: PhaseOutcome) -> bool:
    return outcome.stop_reason not in ("interrupted", "time_limit", "non_finite_loss")
