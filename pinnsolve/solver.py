"""``solve()``: config → problem → collocation → network → training → evaluation → export.

This is the one entry point that composes the modules (as ``diffeqsolve`` does in diffrax); the
CLI and the Python API both call it.
"""

from __future__ import annotations

import math
import platform
import time
from dataclasses import replace
from pathlib import Path

import torch

from . import __version__
from .ansatz import build_mlp
from .conditions import Condition, condition_from_table
from .config import Config, load_config, to_toml
from .constraints import ConstraintSet
from .errors import ConfigError, did_you_mean
from .evaluate import evaluate_solution
from .export import (
    plot_history,
    plot_solutions,
    write_history_csv,
    write_json,
    write_solution_mesh,
    write_text,
)
from .objective import PinnObjective
from .problem import Problem, get_problem
from .progress import Progress
from .results import Result
from .rundir import RunDir
from .train import PhaseOutcome, StopRule, Trainer

DTYPES = {"float64": torch.float64, "float32": torch.float32}


def resolve_device(name: str) -> torch.device:
    """``auto`` → CUDA when available, else CPU; asking for CUDA without it is a config error."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise ConfigError("'cuda' was asked for but torch sees no CUDA device", key="[run] device")
    return torch.device(name)


def build_problem(config: Config) -> Problem:
    """Instantiate the problem a config names, with its parameters checked."""
    base = Path(config.source).parent if config.source else Path.cwd()
    try:
        cls = get_problem(config.problem.name, base)
        return cls(**config.problem.params)
    except ConfigError as err:
        raise err.located(file=config.source) from None


def extra_conditions(config: Config, problem: Problem) -> list[Condition]:
    """The ``[[conditions]]`` of a problem file, with their expressions parsed."""
    file = f"{config.source}: " if config.source else ""
    coords = problem.geometry().coords
    return [
        condition_from_table(
            entry, coords, problem.fields, problem.p, f"{file}[[conditions]] #{i}"
        )  # fmt: skip
        for i, entry in enumerate(config.conditions, start=1)
    ]


def build_constraints(config: Config, objective: PinnObjective, dtype, device) -> ConstraintSet:
    """MDMM constraints (or penalties) for the objective's conditions, as the config sets them;
    a ``[constraints.<name>]`` table for a condition the problem does not have is an error."""
    section = config.constraints
    for label in section.overrides:
        if label not in objective.labels:
            raise ConfigError(
                f"no condition named {label!r}{did_you_mean(label, objective.labels)}; "
                f"the conditions are: {', '.join(objective.labels) or 'none'}",
                file=config.source, key=f"[constraints.{label}]",
            )  # fmt: skip
    specs = objective.constraint_specs(section.for_condition)
    return ConstraintSet(specs, dual_lr=section.dual_lr, device=device, dtype=dtype)


def default_run_dir(config: Config, problem: Problem) -> Path:
    if config.output.dir:
        return Path(config.output.dir)
    stem = Path(config.source).stem if config.source else problem.label()
    return Path("outputs") / stem


def solve(
    problem: str | Path | Problem,
    config: Config | None = None,
    *,
    out: str | Path | None = None,
    force: bool = False,
    progress: Progress | None = None,
) -> Result:
    """Solve a problem file (``solve("problems/poisson2d.toml")``) or a problem instance with a
    config (``solve(Bratu1D(lam=2.0), config)``), write the run folder, return the result."""
    if isinstance(problem, str | Path):
        config = config or load_config(problem)
        problem = build_problem(config)
    else:
        config = config or Config()
    config = replace(
        config,
        problem=replace(config.problem, name=config.problem.name or problem.label(),
                        params=dict(problem.p)),
    )  # fmt: skip
    progress = progress or Progress(quiet=True)
    try:
        device = resolve_device(config.run.device)
    except ConfigError as err:
        raise err.located(file=config.source) from None
    dtype = DTYPES[config.run.dtype]
    run_dir = RunDir(Path(out) if out else default_run_dir(config, problem))
    run_dir.prepare(force)
    write_text(run_dir.path / "config.resolved.toml", to_toml(config.to_dict()))
    run_dir.set_status("running")
    try:
        return _run(problem, config, device, dtype, run_dir, progress)
    except BaseException as err:
        if not isinstance(err, KeyboardInterrupt):
            run_dir.set_status("failed", error=f"{type(err).__name__}: {err}")
        raise


def _run(problem, config, device, dtype, run_dir: RunDir, progress: Progress) -> Result:
    started = time.monotonic()
    seed = config.run.seed
    s, t = config.sampling, config.training
    extra = extra_conditions(config, problem)
    objective = PinnObjective.sampled(
        problem, s.interior, s.boundary, s.method, seed, dtype, device, extra
    )
    constraints = build_constraints(config, objective, dtype, device)
    geom = problem.geometry()
    m = config.model
    model = build_mlp(
        geom.dim, len(problem.fields), m.hidden, m.activation, m.init, geom.bounds(), seed,
        dtype, device,
    )  # fmt: skip

    def loss_fn():
        ev = objective.evaluate(model)
        return constraints.lagrangian(ev.objective, ev.g), ev

    def energy_fn():
        ev = objective.evaluate(model)
        return constraints.primal_energy(ev.objective, ev.g), ev

    def checkpoint(phase, step, optimizer=None):
        run_dir.save_checkpoint({
            "phase": phase, "step": step, "model": model.state_dict(),
            "optimizer": optimizer.state_dict() if optimizer else None,
            "constraints": constraints.state_dict(),
            "history": trainer.history.rows,
            "config_hash": config.digest(),
        })  # fmt: skip

    has_multipliers = bool(constraints.multipliers)
    trainer = Trainer(
        model, loss_fn, progress, checkpoint, config.output.checkpoint_every,
        dual_step=constraints.dual_step if has_multipliers else None,
        outer_step=constraints.method_of_multipliers_step if has_multipliers else None,
        energy_fn=energy_fn,
        metrics=lambda g: {k: v for k, v in constraints.metrics(g).items()
                           if not k.endswith("_penalty")},
    )  # fmt: skip
    deadline = started + t.max_time_s if t.max_time_s > 0 else None
    rule = StopRule(t.steps, t.loss_threshold, t.patience, t.min_improvement, deadline, t.log_every)
    outcomes: list[PhaseOutcome] = []
    if t.optimizer == "adam":
        outcomes.append(trainer.adam(t.lr, rule))
    elif t.optimizer == "bbi":
        outcomes.append(trainer.bbi(config.bbi.optimizer_config(t.lr), seed, rule))
    else:
        outcomes.append(trainer.lbfgs(t.lr, rule))
    p = config.polish
    if p.method == "lbfgs" and p.steps > 0 and _may_continue(outcomes[-1]):
        polish_rule = replace(rule, max_steps=p.steps, patience=0)
        outcomes.append(
            trainer.lbfgs(p.lr, polish_rule, p.history, p.tolerance_grad, p.tolerance_change)
        )
    progress.close()

    interrupted = any(o.stop_reason == "interrupted" for o in outcomes)
    finite = all(torch.isfinite(q).all() for q in model.parameters())
    status = "interrupted" if interrupted else "finished" if finite else "diverged"
    mesh = geom.eval_mesh(config.output.resolution, config.output.time_slices)
    solutions = []
    if finite:
        sol = evaluate_solution("s00", model, objective, mesh, seed)
        path = write_solution_mesh(run_dir.path / "solutions" / "s00.vtu", mesh, sol)
        sol.file = str(path.relative_to(run_dir.path))
        solutions.append(sol)
    rows = trainer.history.rows
    if config.output.plots:
        if solutions:
            plot_solutions(
                run_dir.path / "plots" / "solutions.png", mesh, solutions, problem.fields
            )
        if rows:
            plot_history(run_dir.path / "plots" / "history.png", rows, objective.labels)
    write_history_csv(run_dir.path / "history.csv", rows)
    checkpoint(outcomes[-1].phase, trainer.history.step)
    summary = _summary(config, problem, device, dtype, status, started, trainer, outcomes,
                       objective, solutions)  # fmt: skip
    write_json(run_dir.path / "summary.json", summary)
    run_dir.set_status(status)
    return Result(solutions, mesh, rows, summary, run_dir.path)


def _may_continue(outcome: PhaseOutcome) -> bool:
    return outcome.stop_reason not in ("interrupted", "time_limit", "non_finite_loss")


def _summary(config, problem, device, dtype, status, started, trainer, outcomes, objective,
             solutions) -> dict:  # fmt: skip
    device_name = (
        torch.cuda.get_device_name(device) if device.type == "cuda" else platform.processor()
    )
    return {
        "status": status,
        "problem": config.problem.name,
        "problem_class": f"{type(problem).__module__}.{type(problem).__qualname__}",
        "params": dict(problem.p),
        "device": str(device),
        "device_name": device_name or platform.machine(),
        "dtype": config.run.dtype,
        "seed": config.run.seed,
        "config_hash": config.digest(),
        "pinnsolve_version": __version__,
        "torch_version": torch.__version__,
        "wall_time_s": time.monotonic() - started,
        "steps": trainer.history.step,
        "stop_reason": outcomes[-1].stop_reason,
        "final_loss": _finite_or_none(outcomes[-1].final_loss),
        "phases": [
            {
                "phase": o.phase,
                "steps": o.steps,
                "stop_reason": o.stop_reason,
                "final_loss": _finite_or_none(o.final_loss),
                "wall_time_s": o.wall_time_s,
            }
            for o in outcomes
        ],  # fmt: skip
        "collocation": {
            "interior": int(objective.interior.shape[0]),
            "conditions": {c.label: int(c.points.shape[0]) for c in objective.conditions},
        },
        "solutions": [s.summary() for s in solutions],
    }


def _finite_or_none(x: float) -> float | None:
    return x if math.isfinite(x) else None
