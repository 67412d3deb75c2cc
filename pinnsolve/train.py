"""One trajectory's training loop: optimizer phases, stopping rules, history, checkpoints.

The loop never reads a value back from the device inside a step (no ``.item()``): every
``log_every`` steps it copies one stacked tensor of metrics to the host, appends a history row,
updates the progress display and checks the stopping rules. So on a GPU the steps of a log interval
queue up without synchronising, and the stopping rules act at log-interval granularity.

A phase ends for a reason that is recorded (``max_steps``, ``loss_threshold``, ``no_improvement``,
``time_limit``, ``non_finite_loss``, ``interrupted``, or L-BFGS's own convergence tests).

One module (about 545 lines) on purpose: each optimizer's phase is a short adapter around
:meth:`Trainer.phase`, the loop with the stop rules, rollbacks and checkpoints they all share;
split apart they would each import the loop's internals.
"""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

import torch
from torch import Tensor, nn

from .constraints import ConstraintSet
from .objective import Evaluation
from .optim.bbi import BBI, BBIConfig
from .optim.ensemble import EnsembleBBI
from .optim.gauss_newton import LevenbergMarquardt, Residuals, choose_linear_solver

LossFn = Callable[[], tuple[Tensor, Evaluation]]

#: Rollbacks (with a halved step size each) a phase may take before it gives up as diverged.
MAX_ROLLBACKS = 3
DualStep = Callable[[dict[str, Tensor]], None]


@dataclass(frozen=True)
class StopRule:
    """When a phase stops besides its step budget; ``deadline`` is a ``time.monotonic()`` value."""

    max_steps: int
    loss_threshold: float = 0.0
    patience: int = 0
    min_improvement: float = 1e-4
    deadline: float | None = None
    log_every: int = 50
    #: stop once the loss changed by at most ``flat_change`` (relative, either way) over this many
    #: steps (0: off); unlike ``patience`` it lets a loss that rises go on (the Lagrangian rises
    #: while the method of multipliers moves λ), and stops one that no longer moves at all
    flat_steps: int = 0
    flat_change: float = 1e-2


@dataclass(frozen=True)
class Tolerances:
    """When a Gauss–Newton polish is done: residual (:meth:`Evaluation.measured_residual`: relative
    to the largest term when the problem declares its terms) and largest constraint violation
    both at or below theirs (0: that test off), or a step ``‖Δθ‖/‖θ‖`` at or below ``step``."""

    residual: float = 1e-10
    infeasibility: float = 1e-10
    step: float = 1e-12

    def verdict(
        self,
        last: dict,
        ev: Evaluation,
        residuals: Residuals,
        name: str = "gauss_newton",
    ) -> tuple[str | None, bool]:
        """The stop reason of a Levenberg–Marquardt step (None: go on), and whether the point
        it left meets the residual and infeasibility tolerances (``converged``)."""
        if not last["accepted"]:
            return f"{name}: no damping gives a decrease", False
        rms = ev.measured_residual()
        worst = float(residuals.constraints.max_infeasibility(ev.g))
        if self._within(rms, worst):
            met = f"residual RMS {rms:.2e} and infeasibility {worst:.2e} within tolerance"
            return f"{name}: {met}", True
        if last["step"] <= self.step:
            return f"{name}: relative step {last['step']:.2e} <= tolerance", False
        return None, False

    def within(self, ev: Evaluation, constraints: ConstraintSet) -> bool:
        """Whether ``ev`` meets the residual and infeasibility tolerances."""
        return self._within(ev.measured_residual(), float(constraints.max_infeasibility(ev.g)))

    def _within(self, rms: float, worst: float) -> bool:
        active = [(tol, v) for tol, v in ((self.residual, rms), (self.infeasibility, worst)) if tol]
        return bool(active) and all(v <= tol for tol, v in active)


@dataclass
class PhaseOutcome:
    phase: str
    steps: int
    stop_reason: str
    final_loss: float
    wall_time_s: float
    #: Gauss–Newton phases: the final point met the residual and infeasibility tolerances
    converged: bool = False


@dataclass
class History:
    """Rows of logged metrics (one per log interval), shared by all phases of a run."""

    rows: list[dict] = field(default_factory=list)
    step: int = 0


class Trainer:
    """Runs optimizer phases on ``model`` against ``loss_fn`` and records what happened.

    ``progress(row)`` is called at every log row; ``checkpoint(state)`` every
    ``checkpoint_every`` steps (0: never) at a log boundary and when a stop is requested, with
    ``state`` the phase's resumable state (phase, step in phase, optimizer state, first history
    row); pass it back as ``resume=`` to the same phase method to continue exactly. Setting
    ``stop_requested`` (a signal handler does) ends the phase at the next step boundary.

    With constraints, ``dual_step(g)`` updates the multipliers from the condition values of the
    step just taken (first-order phases: after every primal step; L-BFGS: ``outer_step(g)``
    after every chunk, with the multipliers frozen inside it, since a line search needs one
    fixed function). ``metrics(g)`` gives the per-condition columns of the history rows
    (default: RMS and max of ``|g|``).
    """

    def __init__(
        self,
        model: nn.Module,
        loss_fn: LossFn,
        progress: Callable[[dict], None] | None = None,
        checkpoint: Callable[[dict], None] | None = None,
        checkpoint_every: int = 0,
        dual_step: DualStep | None = None,
        outer_step: DualStep | None = None,
        metrics: Callable[[dict[str, Tensor]], dict[str, Tensor]] | None = None,
        energy_fn: LossFn | None = None,
        state_hooks: tuple[Callable[[], Any], Callable[[Any], None]] | None = None,
        progress_message: Callable[[str], None] | None = None,
        error: Callable[[nn.Module], Tensor] | None = None,
    ):
        self.model = model
        self.loss_fn = loss_fn
        #: what energy-conserving optimizers (BBI) minimise: bounded below, same θ-gradient
        self.energy_fn = energy_fn or loss_fn
        self.dual_step = dual_step
        self.outer_step = outer_step
        self.metrics = metrics or _plain_metrics
        self.history = History()
        self.progress = progress or (lambda row: None)
        self.checkpoint = checkpoint
        self.checkpoint_every = checkpoint_every
        self.stop_requested = False
        self.state_hooks = state_hooks
        #: numerical faults met and what was done about them (for the summary)
        self.events: list[dict] = []
        self.progress_message = progress_message or (lambda text: None)
        #: set while several ranks compute one phase together (collocation sharding): averages
        #: the ranks' gradients after every backward pass, and makes every rank take the same
        #: branch at a stop request or a time limit (``agree(flag)``: whether any rank's holds)
        self.reduce_gradients: Callable[[], None] | None = None
        self.agree: Callable[[bool], bool] = bool
        #: the model's error against a known exact solution (a 0-d device tensor): the rows'
        #: ``rel_l2_error`` column, copied to the host with the rest of the row
        self.error = error
        #: what the rows belong to: ``train`` (training and polish) or ``explore`` (set by the run)
        self.stage = "train"
        self._start = time.monotonic()

    def continue_clock(self, elapsed_s: float) -> None:
        """Rows' ``time_s`` go on from ``elapsed_s`` (a resumed run continues its clock)."""
        self._start = time.monotonic() - elapsed_s

    def _log(
        self,
        phase: str,
        loss: Tensor,
        ev: Evaluation,
        total: int,
        diag: dict | None = None,
        rollbacks: int = 0,
        of_model: bool = True,
        done: int = 0,
    ) -> dict:
        """One host copy of every metric; appends and returns the history row. ``of_model``:
        the row describes :attr:`model` (not a batched search's own parameters), so its
        ``rel_l2_error`` is measured. ``done`` of ``total``: the phase's own step count (for
        the progress display; not written to history.csv)."""
        metrics = self.metrics({k: v.detach() for k, v in ev.g.items()})
        metrics.update({f"{phase}_{k}": v for k, v in (diag or {}).items()})
        if self.error is not None and of_model:
            metrics["rel_l2_error"] = self.error(self.model)
        parts = [loss.detach(), ev.objective.detach(), *metrics.values()]
        values = torch.stack([p.to(torch.float64).reshape(()) for p in parts]).tolist()
        row = {
            "step": self.history.step,
            "phase": phase,
            "time_s": time.monotonic() - self._start,
            "loss": values[0],
            "residual_mse": values[1],
        }
        row.update(zip(metrics, values[2:], strict=True))
        row["rollbacks"] = rollbacks
        row["stage"] = self.stage
        row["phase_total"] = total
        row["phase_step"] = done
        self.history.rows.append(row)
        self.progress(row)
        return row

    def _rule_stop(self, rule: StopRule, phase_rows: list[dict]) -> str | None:
        loss = phase_rows[-1]["loss"]
        if rule.loss_threshold > 0 and loss <= rule.loss_threshold:
            return "loss_threshold"
        if rule.deadline is not None and self.agree(time.monotonic() >= rule.deadline):
            return "time_limit"
        if rule.patience > 0 and stalled(
            [(r["step"], r["loss"]) for r in phase_rows], rule.patience, rule.min_improvement
        ):
            return "no_improvement"
        if rule.flat_steps > 0 and flat(
            [(r["step"], r["loss"]) for r in phase_rows], rule.flat_steps, rule.flat_change
        ):
            return "loss_flat"
        return None

    def phase(
        self,
        name: str,
        opt: torch.optim.Optimizer,
        rule: StopRule,
        advance: Callable[[int], tuple[Tensor, Evaluation, int, str | None]],
        resume: dict | None,
        log_each_call: bool = False,
    ) -> PhaseOutcome:
        """The loop every phase shares: ``advance(budget)`` takes one step (or one chunk) and
        returns the loss, the evaluation, the iterations done and a stop reason of its own.

        Between calls it honours a stop request (SIGINT/SIGTERM: a consistent state at a step
        boundary, checkpointed), logs, checkpoints and applies the stopping rules. ``resume``
        (the ``state`` a checkpoint was given) continues a phase where it left off.

        Numerical faults: at every log row the loss and the parameters are checked; a NaN or
        Inf rolls the model, the optimizer and the outside state (``state_hooks``: the
        multipliers) back to the last good log row and halves the step size, at most
        ``MAX_ROLLBACKS`` times per phase, each recorded in :attr:`events` (and as the row's
        ``rollbacks`` count). Beyond that the phase stops with ``non_finite_loss`` at the last
        good state.
        """
        start = time.monotonic()
        first_row = len(self.history.rows) if resume is None else resume["first_row"]
        done = 0 if resume is None else resume["step"]
        if resume is not None:
            opt.load_state_dict(resume["optimizer"])
        reason, rollbacks = "max_steps", 0
        good = self._snapshot(opt, done)
        of_model = _steps(opt, self.model)
        while done < rule.max_steps:
            if self.agree(self.stop_requested):
                reason = "interrupted"
                self._save(name, opt, done, first_row)
                break
            loss, ev, iters, own_stop = advance(rule.max_steps - done)
            done += iters
            self.history.step += iters
            if log_each_call or own_stop or done % rule.log_every == 0 or done >= rule.max_steps:
                diag = getattr(opt, "diagnostics", dict)()
                row = self._log(name, loss, ev, rule.max_steps, diag, rollbacks, of_model, done)
                if not self._finite(row["loss"]):
                    self.history.rows.pop()
                    if rollbacks == MAX_ROLLBACKS:
                        self._restore(opt, good)
                        done = good["done"]
                        reason = "non_finite_loss"
                        break
                    rollbacks += 1
                    done = self._rollback(name, opt, good, done)
                    continue
                good = self._snapshot(opt, done)
                # a multiple of checkpoint_every was reached during this call (an L-BFGS chunk
                # may step over it)
                every = self.checkpoint_every
                if every and self.history.step % every < max(iters, 1):
                    self._save(name, opt, done, first_row)
                stop = self._rule_stop(rule, self.history.rows[first_row:]) or own_stop
                if stop:
                    reason = stop
                    break
        rows = self.history.rows[first_row:]
        final = rows[-1]["loss"] if rows else math.nan
        return PhaseOutcome(name, done, reason, final, time.monotonic() - start)

    def _finite(self, loss: float) -> bool:
        return math.isfinite(loss) and all(
            bool(torch.isfinite(p).all()) for p in self.model.parameters()
        )

    def _snapshot(self, opt: torch.optim.Optimizer, done: int) -> dict:
        """A copy of everything a rollback restores (taken at log rows only)."""
        return copy.deepcopy({
            "model": self.model.state_dict(), "optimizer": opt.state_dict(), "done": done,
            "step": self.history.step,
            "outside": self.state_hooks[0]() if self.state_hooks else None,
        })  # fmt: skip

    def _restore(self, opt: torch.optim.Optimizer, good: dict) -> None:
        lrs = [g["lr"] for g in opt.param_groups]
        self.model.load_state_dict(good["model"])
        opt.load_state_dict(copy.deepcopy(good["optimizer"]))
        for group, lr in zip(opt.param_groups, lrs, strict=True):
            group["lr"] = lr
        if self.state_hooks:
            self.state_hooks[1](good["outside"])
        self.history.step = good["step"]

    def _rollback(self, name: str, opt: torch.optim.Optimizer, good: dict, done: int) -> int:
        """Back to the last good state with half the step size; returns the phase's step."""
        self._restore(opt, good)
        for group in opt.param_groups:
            group["lr"] *= 0.5
        event = {"phase": name, "step": good["step"], "lost_steps": done - good["done"],
                 "event": "non-finite loss or parameters: rolled back, step size halved to "
                          f"{opt.param_groups[0]['lr']:.3g}"}  # fmt: skip
        self.events.append(event)
        self.progress_message(f"{name}: {event['event']} (back to step {good['step']})")
        return good["done"]

    def _save(self, name: str, opt: torch.optim.Optimizer, done: int, first_row: int) -> None:
        if self.checkpoint:
            self.checkpoint(
                {"phase": name, "step": done, "optimizer": opt.state_dict(), "first_row": first_row}
            )

    def adam(self, lr: float, rule: StopRule, resume: dict | None = None) -> PhaseOutcome:
        """Adam for up to ``rule.max_steps`` steps; multipliers ascend after every step."""
        opt = torch.optim.Adam(self.model.parameters(), lr=lr)
        latest: dict = {}
        closure = _closure(opt, self.loss_fn, latest, self.reduce_gradients)

        def advance(budget):
            closure()
            opt.step()
            ev = latest["ev"]
            if self.dual_step:
                self.dual_step({k: v.detach() for k, v in ev.g.items()})
            return latest["loss"], ev, 1, None

        return self.phase("adam", opt, rule, advance, resume)

    def bbi(
        self, config: BBIConfig, seed: int, rule: StopRule, resume: dict | None = None
    ) -> PhaseOutcome:
        """BBI (energy-conserving descent with bounces) on the bounded-below energy.

        After each multiplier update the energy V jumps; the optimizer is told
        (``resync_energy``) and re-derives E from the new V and its current momentum. The
        phase also ends when the trajectory has reached V ≤ ``v_stop`` ("solved").
        """
        opt = BBI(self.model.parameters(), seed=seed, **asdict(config))
        latest: dict = {}
        closure = _closure(opt, self.energy_fn, latest, self.reduce_gradients)

        def advance(budget):
            opt.step(closure)
            if self.dual_step:
                self.dual_step({k: v.detach() for k, v in latest["ev"].g.items()})
                opt.resync_energy()
            return latest["loss"], latest["ev"], 1, None

        outcome = self.phase("bbi", opt, rule, advance, resume)
        row = self.history.rows[-1] if self.history.rows else {}
        if outcome.stop_reason == "max_steps" and row.get("bbi_active", 1.0) == 0.0:
            outcome.stop_reason = "bbi: V reached v_stop (solved)"
        return outcome

    def ensemble_bbi(
        self, opt: EnsembleBBI, rule: StopRule, resume: dict | None = None
    ) -> PhaseOutcome:
        """K BBI searches at once (:class:`~pinnsolve.optim.ensemble.EnsembleBBI`), one batched step
        per call, logged as the member with the lowest V; ends by ``rule`` or when every member
        has stopped (V ≤ v_stop)."""

        def advance(budget):
            energy, f, g = opt.step()
            best = energy.argmin()
            ev = Evaluation(f[best], [], {k: v[best] for k, v in g.items()})
            solved = not bool(opt.active.any())
            return energy[best], ev, 1, "bbi: every member reached v_stop" if solved else None

        return self.phase("bbi", opt, rule, advance, resume)

    def lbfgs(
        self,
        lr: float,
        rule: StopRule,
        history_size: int = 50,
        tolerance_grad: float = 1e-11,
        tolerance_change: float = 1e-14,
        resume: dict | None = None,
    ) -> PhaseOutcome:
        """L-BFGS with a strong-Wolfe line search, in chunks of ``log_every`` iterations.

        torch's L-BFGS does not say why it returned early; after a short chunk this re-evaluates
        at the final point and reports which of its tests fired (gradient, step or loss change).
        With ``outer_step`` (multipliers), each chunk minimises for fixed multipliers, then they
        are updated and the L-BFGS memory restarts (the method of multipliers); the phase ends
        when a chunk can make no progress at all. (Updating only once L-BFGS has converged was
        measured worse: multipliers wound up by a first-order phase then bias the whole run.)
        """
        params = [p for p in self.model.parameters() if p.requires_grad]
        chunk = rule.log_every
        opt = torch.optim.LBFGS(
            params, lr=lr, max_iter=chunk, max_eval=chunk * 25, history_size=history_size,
            tolerance_grad=tolerance_grad, tolerance_change=tolerance_change,
            line_search_fn="strong_wolfe",
        )  # fmt: skip
        latest: dict = {}
        closure = _closure(opt, self.loss_fn, latest, self.reduce_gradients)

        def advance(budget):
            budget = min(chunk, budget)
            opt.param_groups[0]["max_iter"] = budget
            before = opt.state[params[0]].get("n_iter", 0)
            opt.step(closure)
            iters = opt.state[params[0]].get("n_iter", 0) - before
            closure()  # metrics (and the gradient) at the point L-BFGS stopped at
            loss, ev = latest["loss"], latest["ev"]
            converged = iters < budget
            if converged and (self.outer_step is None or iters == 0):
                reason = self._lbfgs_reason(opt, params, tolerance_grad, tolerance_change)
                return loss, ev, iters, reason
            if self.outer_step:
                self.outer_step({k: v.detach() for k, v in ev.g.items()})
                opt.state.clear()  # curvature pairs belong to the function before the update
            return loss, ev, iters, None

        return self.phase("lbfgs", opt, rule, advance, resume, log_each_call=True)

    def gauss_newton(
        self,
        residuals: Residuals,
        rule: StopRule,
        tolerances: Tolerances,
        damping: float = 1e-3,
        resume: dict | None = None,
        name: str = "gauss_newton",
        update_multipliers: bool = True,
        linear_solver: str = "auto",
        cg_iterations: int = 100,
    ) -> PhaseOutcome:
        """Levenberg–Marquardt steps on the stacked residual (one step per log row).

        ``residuals`` must evaluate the trainer's model. With ``outer_step`` (and
        ``update_multipliers``) the multipliers are updated after every accepted step (the method
        of multipliers: a Gauss–Newton step nearly solves the frozen-multiplier problem). Stops
        when the residual RMS and the infeasibility are both within ``tolerances``, when the
        relative step falls below its tolerance, or when no damping gives a decrease. ``name`` is
        the phase's name in the history (the explorer's deflated search uses this loop too).
        ``linear_solver`` (``auto``, ``dense``, ``cg``; see
        :func:`~pinnsolve.optim.gauss_newton.choose_linear_solver`) and ``cg_iterations`` say how
        each step's damped system is solved.
        """
        latest: dict = {}

        def residual() -> Tensor:
            latest["r"], latest["ev"] = residuals.residual()
            return latest["r"]

        solver = choose_linear_solver(residuals, linear_solver)
        opt = LevenbergMarquardt(
            self.model.parameters(), residual, residuals.jacobian, damping,
            linear_solver=solver, cg_iterations=cg_iterations,
            linearize=residuals.linearize if solver == "cg" else None,
            total=getattr(residuals, "total", None),
        )  # fmt: skip

        def advance(budget):
            opt.step()
            if not opt.last["accepted"]:  # the last evaluation was a rejected trial point
                residual()
            r, ev = latest["r"], latest["ev"]
            if opt.last["accepted"] and self.outer_step and update_multipliers:
                self.outer_step({k: v.detach() for k, v in ev.g.items()})
            reason, latest["converged"] = tolerances.verdict(opt.last, ev, residuals, name)
            return opt.total(r.detach().square().sum()), ev, 1, reason

        outcome = self.phase(name, opt, rule, advance, resume, log_each_call=True)
        outcome.converged = latest.get("converged", False)
        return outcome

    @staticmethod
    def _lbfgs_reason(opt, params, tolerance_grad: float, tolerance_change: float) -> str:
        grad_max = max(p.grad.abs().max().item() for p in params if p.grad is not None)
        if grad_max <= tolerance_grad:
            return f"lbfgs: max |gradient| {grad_max:.2e} <= tolerance_grad"
        state = opt.state[params[0]]
        d, t = state.get("d"), state.get("t")
        if d is not None and t is not None and (d * t).abs().max().item() <= tolerance_change:
            return "lbfgs: step smaller than tolerance_change"
        return "lbfgs: loss change smaller than tolerance_change"


def stalled(losses: list[tuple[int, float]], patience: int, min_improvement: float) -> bool:
    """Whether the lowest of the ``(step, loss)`` pairs improved on the lowest of those at least
    ``patience`` steps before the last by no more than ``min_improvement`` (relative)."""
    now = losses[-1][0]
    before = [loss for step, loss in losses if step <= now - patience]
    if not before:
        return False
    old, best = min(before), min(loss for _, loss in losses)
    return old - best <= min_improvement * abs(old)


def flat(losses: list[tuple[int, float]], steps: int, change: float) -> bool:
    """Whether the last of the ``(step, loss)`` pairs differs by at most ``change`` (relative)
    from the last one at least ``steps`` steps before it."""
    now, last = losses[-1]
    before = [loss for step, loss in losses if step <= now - steps]
    return bool(before) and abs(last - before[-1]) <= change * abs(before[-1])


def _steps(opt: torch.optim.Optimizer, model: nn.Module) -> bool:
    """Whether ``opt`` steps ``model``'s own parameters (a batched search steps a stack of
    members instead, and ``model`` then is not what its rows describe)."""
    stepped = {id(p) for group in opt.param_groups for p in group["params"]}
    return any(id(p) in stepped for p in model.parameters())


def _plain_metrics(g: dict[str, Tensor]) -> dict[str, Tensor]:
    """``<name>_rms`` and ``<name>_max`` of ``|g|`` per condition."""
    out = {}
    for name, v in g.items():
        out[f"{name}_rms"] = v.square().mean().sqrt()
        out[f"{name}_max"] = v.abs().max()
    return out


def _closure(
    opt: torch.optim.Optimizer,
    loss_fn: LossFn,
    latest: dict,
    reduce_gradients: Callable[[], None] | None = None,
) -> Callable[[], Tensor]:
    """The closure closure-driven optimizers (L-BFGS, BBI) call: gradients of ``loss_fn`` at the
    current point (averaged over ranks by ``reduce_gradients``); the last loss and evaluation
    are kept in ``latest`` for logging (and returned when the caller itself calls it)."""

    def closure():
        opt.zero_grad(set_to_none=True)
        loss, ev = loss_fn()
        loss.backward()
        if reduce_gradients:
            reduce_gradients()
        latest.update(loss=loss, ev=ev)
        return loss

    return closure
