"""``solve()``: config → problem → collocation → network → training → evaluation → export.

This is the one entry point that composes the modules (as ``diffeqsolve`` does in diffrax); the
CLI and the Python API both call it.
"""

from __future__ import annotations

import copy
import math
import platform
import signal
import threading
import time
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import asdict, replace
from functools import cache, partial
from pathlib import Path

import torch

from .ansatz import build_mlp
from .constraints import ConstraintSet
from .derivatives.forward import engine_named
from .devices import on_device
from .errors import ConfigError, PinnsolveError, did_you_mean
from .explore.bifurcation import has_square_linearization
from .explore.continuation import ParameterPath, PathSettings
from .explore.explorer import ExploreContext, Explorer, attempt_seed
from .io.config import Config, ExploreSection, ModelSection, load_config, to_toml
from .io.evaluate import evaluate_solution
from .io.export import (
    plot_history,
    plot_solutions,
    write_history_csv,
    write_json,
    write_solution_mesh,
    write_text,
)
from .io.progress import Progress
from .io.results import Result
from .io.rundir import RunDir
from .objective import PinnObjective
from .optim.bbi import BBIConfig, member_seeds
from .optim.ensemble import EnsembleBBI, EnsembleEnergy
from .optim.gauss_newton import GaussNewtonError, StackedResiduals
from .parallel.distributed import Communicator, communicator
from .parallel.sharding import ShardedObjective, ShardedStackedResiduals
from .problem.base import Problem
from .problem.conditions import Condition, condition_from_table
from .problem.registry import get_problem
from .train import PhaseOutcome, StopRule, Tolerances, Trainer
from .version import __version__

DTYPES = {"float64": torch.float64, "float32": torch.float32}

#: seconds within which a second stop signal is the first one delivered twice
SAME_SIGNAL_S = 1.0

#: strategies whose attempts need the one before (why, for the error message)
SEQUENTIAL = {"continuation": "follows one path at a time, attempt after attempt"}


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
    except PinnsolveError as err:  # the class itself is declared wrongly
        raise ConfigError(str(err), file=config.source, key="[problem] name") from None


def validate(config: Config) -> tuple[Problem, list[Condition]]:
    """Everything that can be checked without training: the problem, its parameters, its own
    conditions, the ``[[conditions]]`` of the file and the ``[constraints.<name>]`` tables.
    ``pinnsolve check`` runs exactly this; ``solve`` runs it first."""
    problem = build_problem(config)
    try:
        own = problem.checked_conditions()
    except PinnsolveError as err:
        raise ConfigError(str(err), file=config.source, key="[problem] name") from None
    extra = extra_conditions(config, problem)
    labels = [c.label() for c, _ in own]
    for i, cond in enumerate(extra, start=1):
        try:
            problem.checked_conditions([cond])
        except PinnsolveError as err:
            raise ConfigError(str(err), file=config.source, key=f"[[conditions]] #{i}") from None
        if cond.label() in labels:
            raise ConfigError(
                f"a condition named {cond.label()!r} exists already; give this one a name",
                file=config.source, key=f"[[conditions]] #{i}",
            )  # fmt: skip
        labels.append(cond.label())
    for label in config.constraints.overrides:
        if label not in labels:
            raise ConfigError(
                f"no condition named {label!r}{did_you_mean(label, labels)}; "
                f"the conditions are: {', '.join(labels) or 'none'}",
                file=config.source, key=f"[constraints.{label}]",
            )  # fmt: skip
    if "gauss_newton" in config.polish.method or config.explore.strategy != "none":
        _check_gauss_newton(config, problem, extra)
    if config.explore.strategy == "continuation":
        _check_parameter(config, problem)
    if config.explore.trajectories > 1 and config.explore.strategy in SEQUENTIAL:
        raise ConfigError(
            f"{config.explore.strategy} {SEQUENTIAL[config.explore.strategy]}; side by side "
            "searches suit deflation, restarts, bbi and kick: set trajectories = 1 or change "
            "the strategy",
            file=config.source, key="[explore] trajectories",
        )  # fmt: skip
    return problem, extra


def _network(
    m: ModelSection,
    problem: Problem,
    seed: int,
    dtype: torch.dtype,
    device: torch.device,
    hidden: list[int] | None = None,
) -> torch.nn.Module:
    """The ``[model]`` section's network for ``problem`` (``hidden`` overrides its widths)."""
    geom = problem.geometry()
    return build_mlp(geom.dim, len(problem.fields), m.hidden if hidden is None else hidden,
                     m.activation, m.init, geom.bounds(), seed, dtype, device,
                     m.fourier_features, m.fourier_scale)  # fmt: skip


def _check_gauss_newton(config: Config, problem: Problem, extra: list[Condition]) -> None:
    """Gauss–Newton needs the residual as a function of forward jets (derivatives up to second
    order): try it on a few points with a tiny network before any training."""
    f64, cpu = torch.float64, torch.device("cpu")
    objective = PinnObjective.sampled(problem, 4, 2, "uniform", 0, f64, cpu, extra)
    constraints = build_constraints(config, objective, f64, cpu)
    model = _network(config.model, problem, 0, f64, cpu, hidden=[4])
    try:
        StackedResiduals(objective, constraints, model)
    except GaussNewtonError as err:
        raise ConfigError(
            f"Levenberg–Marquardt (the Gauss–Newton polish and the explorer) cannot run on "
            f"this problem: {err}",
            file=config.source,
            key="[explore] strategy" if config.explore.strategy != "none" else "[polish] method",
        ) from None  # fmt: skip


def _check_parameter(config: Config, problem: Problem) -> None:
    """Continuation follows a declared problem parameter."""
    name, names = config.explore.parameter, list(problem.params)
    if name not in names:
        given = f"got {name!r}{did_you_mean(name, names)}" if name else "it is not set"
        raise ConfigError(
            f"continuation needs the name of one of the problem's parameters "
            f"({', '.join(names) or 'it has none'}); {given}",
            file=config.source, key="[explore] parameter",
        )  # fmt: skip


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
    """MDMM constraints (or penalties) for the objective's conditions, as the config sets them."""
    section = config.constraints
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
    resume: bool = False,
    progress: Progress | None = None,
) -> Result:
    """Solve a problem file (``solve("problems/poisson2d.toml")``) or a problem instance with a
    config (``solve(Bratu1D(lam=2.0), config)``), write the run folder, return the result.

    ``resume=True`` continues an unfinished run in the run folder from its last checkpoint
    (same configuration required); the result equals an uninterrupted run's. Under torchrun
    only rank 0 evaluates and writes: the other ranks return a result without solutions (its
    summary holds the status and the rank).
    """
    if isinstance(problem, str | Path):
        config = config or load_config(problem)
        problem, extra = validate(config)
    else:
        config = config or Config()
        extra = extra_conditions(config, problem)
    config = replace(
        config,
        problem=replace(config.problem, name=config.problem.name or problem.label(),
                        params=dict(problem.p)),
    )  # fmt: skip
    try:
        device = resolve_device(config.run.device)
    except ConfigError as err:
        raise err.located(file=config.source) from None
    ranks = communicator(device.type, config.distributed.timeout_s)
    if ranks.world > 1 and device.type == "cuda":
        device = torch.device("cuda", ranks.local_rank)
    progress = (progress or Progress(quiet=True)) if ranks.is_main else Progress(quiet=True)
    dtype = DTYPES[config.run.dtype]
    run_dir = RunDir(Path(out) if out else default_run_dir(config, problem))
    state = _load_checkpoint(run_dir, config, device, ranks) if resume else None
    if ranks.is_main and not resume:
        try:
            run_dir.prepare(force)
        except PinnsolveError as err:
            if out is None and config.output.dir:  # the folder came from the file
                raise ConfigError(str(err), file=config.source, key="[output] dir") from None
            raise
        write_text(run_dir.path / "config.resolved.toml", to_toml(config.to_dict()))
    if not ranks.is_main:  # only rank 0 writes the run folder
        return _run(problem, extra, config, device, dtype, None, progress, state, ranks)
    run_dir.set_status("running")
    try:
        return _run(problem, extra, config, device, dtype, run_dir, progress, state, ranks)
    except KeyboardInterrupt:
        run_dir.set_status("interrupted")
        raise
    except BaseException as err:
        run_dir.set_status("failed", error=f"{type(err).__name__}: {err}")
        raise


def _load_checkpoint(run_dir: RunDir, config: Config, device, ranks: Communicator) -> dict:
    """Rank 0 reads the checkpoint (the run folder may be on its node only) and sends it to
    the others, who move it to their own device."""
    if ranks.world == 1:
        return run_dir.load_checkpoint(config.digest(), device)
    state = run_dir.load_checkpoint(config.digest(), "cpu") if ranks.is_main else None
    return on_device(ranks.broadcast_object(state), device)


def _run(
    problem, extra, config, device, dtype, run_dir: RunDir | None, progress: Progress, resume,
    ranks: Communicator,
) -> Result:  # fmt: skip
    started = time.monotonic()
    seed = config.run.seed
    s, t = config.sampling, config.training
    objective = PinnObjective.sampled(
        problem, s.interior, s.boundary, s.method, seed, dtype, device, extra
    )
    objective.engine = engine_named(config.model.derivatives, device)
    constraints = build_constraints(config, objective, dtype, device)
    geom = problem.geometry()

    def network(net_seed: int, net_dtype: torch.dtype) -> torch.nn.Module:
        return _network(config.model, problem, net_seed, net_dtype, device)

    model = network(seed, dtype)
    #: θ₀, where the explorer's deflation and bbi searches start
    start_state = copy.deepcopy(model.state_dict())
    #: the objective in the current precision (the polish may switch to float64), the same split
    #: over the ranks, and whether the ranks evaluate it together now (first-order phases)
    live = {"objective": objective, "sharded": ShardedObjective(objective, ranks), "split": False}

    def evaluate():
        return live["sharded" if live["split"] else "objective"].evaluate(model)

    def loss_fn():
        ev = evaluate()
        return constraints.lagrangian(ev.objective, ev.g), ev

    def energy_fn():
        ev = evaluate()
        return constraints.primal_energy(ev.objective, ev.g), ev

    def to_precision(target: torch.dtype) -> None:
        """Move the network, points and multipliers to ``target`` (idempotent)."""
        if next(model.parameters()).dtype != target:
            model.to(dtype=target)
            constraints.to(dtype=target)
            live["objective"] = objective.to(target)
            live["sharded"] = ShardedObjective(live["objective"], ranks)

    outcomes: list[PhaseOutcome] = []
    current = {"index": 0}

    def checkpoint(phase_state: dict | None) -> None:
        """Everything a resumed run needs: phase ``index`` at ``phase_state`` (None: at its
        start), with the model, multipliers, history and the outcomes of finished phases. Every
        rank holds the same state; rank 0 writes it."""
        if run_dir is None:
            return
        run_dir.save_checkpoint({
            "phase_index": current["index"], "phase_state": phase_state,
            "model": model.state_dict(), "constraints": constraints.state_dict(),
            "history": trainer.history.rows, "history_step": trainer.history.step,
            "outcomes": [asdict(o) for o in outcomes], "config_hash": config.digest(),
            "explorer": explorer.state_dict() if explorer else None,
        })  # fmt: skip

    has_multipliers = bool(constraints.multipliers)
    trainer = Trainer(
        model, loss_fn, progress, checkpoint, config.output.checkpoint_every,
        dual_step=constraints.dual_step if has_multipliers else None,
        outer_step=constraints.method_of_multipliers_step if has_multipliers else None,
        energy_fn=energy_fn,
        state_hooks=(constraints.state_dict, constraints.load_state_dict),
        progress_message=progress.message,
        metrics=lambda g: {k: v for k, v in constraints.metrics(g).items()
                           if not k.endswith("_penalty")},
    )  # fmt: skip
    deadline = started + t.max_time_s if t.max_time_s > 0 else None
    rule = StopRule(t.steps, t.loss_threshold, t.patience, t.min_improvement, deadline, t.log_every)
    polish_dtype = torch.float64 if config.polish.dtype == "float64" else dtype
    gauss_newton = lambda: StackedResiduals(live["objective"], constraints, model)  # noqa: E731
    to_polish_precision = partial(to_precision, polish_dtype)

    sharded = ranks.world > 1 and config.distributed.shard_collocation

    def together(phase: Callable, first_order: bool = True) -> Callable:
        """A phase the ranks compute together on their shares of the points: a first-order one
        reads the sharded objective and averages gradients; every one agrees on stops."""
        if not sharded:
            return phase

        def run(state):
            live["split"], trainer.agree = first_order, ranks.any
            if first_order:
                trainer.reduce_gradients = lambda: ranks.average_gradients(model.parameters())
            try:
                return phase(state)
            finally:
                live["split"], trainer.agree, trainer.reduce_gradients = False, bool, None

        return run

    def polish_residuals() -> StackedResiduals:
        """The Gauss–Newton polish's residual vector: split by rows over the ranks when sharded."""
        if sharded:
            return ShardedStackedResiduals(live["objective"], constraints, model, ranks)
        return gauss_newton()

    phases = _phases(config, trainer, rule, seed, to_polish_precision, polish_residuals,
                     together)  # fmt: skip
    explorer = None
    if config.explore.strategy != "none":
        explorer = _explorer(config, problem, trainer, model, constraints, rule,
                             to_polish_precision, gauss_newton, start_state, network,
                             checkpoint, ranks)  # fmt: skip
        phases.append(explorer.run)
    if resume is not None:
        to_precision(next(iter(resume["model"].values())).dtype)
        model.load_state_dict(resume["model"])
        constraints.load_state_dict(resume["constraints"])
        trainer.history.rows, trainer.history.step = resume["history"], resume["history_step"]
        outcomes.extend(PhaseOutcome(**o) for o in resume["outcomes"])
        if explorer:
            explorer.load_state_dict(resume["explorer"])
        current["index"] = resume["phase_index"]
    with _graceful_stop(trainer, progress):
        while current["index"] < len(phases):
            if outcomes and ranks.any(not _may_continue(outcomes[-1])):
                break
            resuming = resume is not None and current["index"] == resume["phase_index"]
            outcome = phases[current["index"]](resume["phase_state"] if resuming else None)
            outcomes.append(outcome)
            _share_rank0_state(ranks, model, constraints)
            if ranks.any(outcome.stop_reason == "interrupted"):
                outcome.stop_reason = "interrupted"
                break
            current["index"] += 1
            checkpoint(None)
    progress.close()

    interrupted = any(o.stop_reason == "interrupted" for o in outcomes)
    finite = all(torch.isfinite(q).all() for q in model.parameters()) and not any(
        o.stop_reason == "non_finite_loss" for o in outcomes
    )
    status = "interrupted" if interrupted else "finished" if finite else "diverged"
    mesh = geom.eval_mesh(config.output.resolution, config.output.time_slices)
    if run_dir is None:  # another rank than 0: rank 0 evaluates and writes
        return Result([], mesh, trainer.history.rows, {"status": status, "rank": ranks.rank})
    solutions = []
    if explorer and explorer.log:
        found = explorer.solutions()
        for index, entry in enumerate(found):
            model.load_state_dict(entry.model_state)
            solutions.append(_export_solution(f"s{index:02d}", model, live["objective"], mesh,
                                              seed, run_dir, entry.provenance))  # fmt: skip
        if found:
            model.load_state_dict(found[0].model_state)
    elif finite:
        solutions.append(_export_solution("s00", model, live["objective"], mesh, seed, run_dir))
    rows = trainer.history.rows
    if config.output.plots:
        if solutions:
            plot_solutions(
                run_dir.path / "plots" / "solutions.png", mesh, solutions, problem.fields
            )
        if rows:
            plot_history(run_dir.path / "plots" / "history.png", rows, objective.labels)
    write_history_csv(run_dir.path / "history.csv", rows)
    summary = _summary(config, problem, device, dtype, status, started, trainer, outcomes,
                       objective, solutions)  # fmt: skip
    if ranks.world > 1:
        summary["distributed"] = {"ranks": ranks.world, "shard_collocation": sharded}
    if explorer:
        summary["explore"] = {"strategy": config.explore.strategy,
                              "found": len(explorer.catalogue.entries),
                              "attempts": explorer.log}  # fmt: skip
    write_json(run_dir.path / "summary.json", summary)
    run_dir.set_status(status)
    return Result(solutions, mesh, rows, summary, run_dir.path)


def _export_solution(name, model, objective, mesh, seed, run_dir: RunDir, provenance=None):
    """Evaluate the network as solution ``name`` and write its mesh file."""
    sol = evaluate_solution(name, model, objective, mesh, seed)
    sol.provenance = provenance
    path = write_solution_mesh(run_dir.path / "solutions" / f"{name}.vtu", mesh, sol)
    sol.file = str(path.relative_to(run_dir.path))
    return sol


def _explorer(config, problem, trainer, model, constraints, rule, to_polish_precision,
              stacked_residuals, start_state, network, checkpoint, ranks) -> Explorer:  # fmt: skip
    """The explorer of ``[explore]``, with its searches and candidate polish built from the run's
    settings: searches log every step and end on ``search_patience``; a candidate is polished with
    the ``[polish]`` Levenberg–Marquardt settings and the same patience (a hopeless one stops)."""
    e, p = config.explore, config.polish
    search_rule = replace(rule, max_steps=e.search_steps, patience=e.search_patience,
                          min_improvement=1e-3, log_every=1)  # fmt: skip
    polish_rule = replace(search_rule, max_steps=p.gauss_newton_steps)
    polish_tolerances = Tolerances(p.tolerance_residual, p.tolerance_infeasibility,
                                   p.tolerance_step)  # fmt: skip

    def fresh_state(k: int) -> dict:
        """Drawn in the precision the explorer runs in (the polish's), like θ₀ was in the run's.
        Only the parameters are new: the buffers (input scaling, Fourier frequencies) belong to
        the architecture, which every state of a run shares (batched searches hold one copy)."""
        fresh = network(attempt_seed(config.run.seed, k), next(model.parameters()).dtype)
        with torch.no_grad():
            for name, q in fresh.named_parameters():
                if name.endswith("weight"):
                    q.mul_(e.init_scale)
        state = fresh.state_dict()
        state.update({name: b.detach().clone() for name, b in model.named_buffers()})
        return state

    def spread_state(k: int) -> dict:
        """θ₀ with Gaussian noise of ``spread`` times the mean abs(θ₀) on every parameter (not
        on the input scaling buffers), drawn from attempt k's seed."""
        names = {name for name, _ in model.named_parameters()}
        weights = [t for name, t in start_state.items() if name in names]
        size = e.spread * float(torch.cat([t.reshape(-1) for t in weights]).abs().mean())
        gen = torch.Generator().manual_seed(attempt_seed(config.run.seed, k))
        return {name: t + size * torch.randn(t.shape, generator=gen, dtype=torch.float64).to(t)
                if name in names else t.clone() for name, t in start_state.items()}  # fmt: skip

    def bbi_search(k: int, kick: float, resume: dict | None) -> PhaseOutcome:
        """BBI with bounce seed k. ``kick`` > 0 (an energy unit, V at θ₀) makes it a kick: the
        potential gets that floor (V = loss + kick: at a solution V ≈ 0 and BBI would not move,
        its speed goes as √V), the energy is ``kick_energy`` units above it, and the momentum
        is turned to a random direction at once."""
        bbi_rule = replace(rule, max_steps=config.training.steps)
        return trainer.bbi(bbi_settings(kick), attempt_seed(config.run.seed, k), bbi_rule,
                           resume=resume)  # fmt: skip

    def bbi_settings(kick: float) -> BBIConfig:
        bbi = config.bbi.optimizer_config(config.training.lr)
        if kick > 0:
            bbi = replace(bbi, v0=-kick, delta_energy=e.kick_energy * kick, threshold0=1,
                          n_fixed_bounces=1)  # fmt: skip
        return bbi

    def bbi_ensemble(ks: list[int], starts: list[dict], multipliers: dict, kick: float):
        """The searches ``bbi_search`` would run for attempts ``ks``, as one batched ensemble
        (on the whole objective: ranks run their own ensembles)."""
        energy = EnsembleEnergy(model, stacked_residuals().objective, constraints)
        theta = torch.stack([energy.layout.flatten(state) for state in starts])
        stacked = {name: torch.stack([lam] * len(ks)) for name, lam
                   in multipliers["multipliers"].items()}  # fmt: skip
        seeds = torch.stack([member_seeds(attempt_seed(config.run.seed, k), 1)[0] for k in ks])
        opt = EnsembleBBI(energy, theta, stacked, seeds.to(theta.device), bbi_settings(kick),
                          dual=bool(constraints.multipliers))  # fmt: skip
        outcome = trainer.ensemble_bbi(opt, replace(rule, max_steps=config.training.steps))
        ends = [(energy.layout.unflatten(row),
                 {"multipliers": {n: lam[i] for n, lam in stacked.items()}})
                for i, row in enumerate(opt.theta)]  # fmt: skip
        return outcome, ends

    def polish(resume: dict | None, name: str = "gauss_newton") -> PhaseOutcome:
        return trainer.gauss_newton(stacked_residuals(), polish_rule, polish_tolerances,
                                    p.damping, resume=resume, name=name,
                                    linear_solver=p.linear_solver,
                                    cg_iterations=p.cg_iterations)  # fmt: skip

    def parameter_path() -> ParameterPath:
        stacked = stacked_residuals()
        outer = constraints.method_of_multipliers_step if constraints.multipliers else None
        settings = _path_settings(e, problem, p.damping)
        if settings.branch_switching and not watchable():
            settings = replace(settings, branch_switching=False)
        return ParameterPath(model, stacked_residuals, problem, stacked.objective.interior,
                             settings, outer)  # fmt: skip

    @cache
    def watchable() -> bool:
        """Whether bifurcations can be watched on this problem (said once when not)."""
        if has_square_linearization(stacked_residuals()):
            return True
        trainer.progress_message(
            "continuation: bifurcations are not watched: branch switching needs as many "
            "equations as fields (a square linearized problem)"
        )
        return False

    context = ExploreContext(
        trainer=trainer, model=model, constraints=constraints,
        stacked_residuals=stacked_residuals, to_precision=to_polish_precision,
        start_state=start_state, fresh_state=fresh_state, spread_state=spread_state,
        bbi_search=bbi_search,
        bbi_ensemble=bbi_ensemble, polish=polish,
        parameter_path=parameter_path if e.strategy == "continuation" else None,
        search_rule=search_rule,
        search_tolerances=Tolerances(e.accept_residual, e.accept_infeasibility, p.tolerance_step),
        damping=p.damping, checkpoint=checkpoint, ranks=ranks,
    )  # fmt: skip
    if ranks.world > e.trajectories:
        trainer.progress_message(
            f"explore: {ranks.world} ranks, {e.trajectories} search(es) per round: "
            f"{ranks.world - e.trajectories} rank(s) wait during the searches"
        )
    return Explorer(e, context)


def _path_settings(e: ExploreSection, problem: Problem, damping: float) -> PathSettings:
    """Continuation's path: around the requested value of ``[explore] parameter``, within
    ``parameter_span`` of it and the parameter's declared range; corrected to the acceptance
    tolerances (the crossing is polished further)."""
    target = float(problem.p[e.parameter])
    declared = problem.params[e.parameter]
    reach = e.parameter_span * max(abs(target), 1.0)
    low = target - reach if declared.min is None else max(target - reach, declared.min)
    high = target + reach if declared.max is None else min(target + reach, declared.max)
    return PathSettings(e.parameter, target, low, high, e.arclength_step, e.corrector_steps,
                        e.accept_residual, e.accept_infeasibility, damping,
                        e.branch_switching)  # fmt: skip


def _phases(
    config: Config,
    trainer: Trainer,
    rule: StopRule,
    seed: int,
    to_polish_precision: Callable[[], None],
    stacked_residuals: Callable[[], StackedResiduals],
    together: Callable[..., Callable],
) -> list:
    """The run's phases in order, each a function of its resume state (None: from the start).

    Polish phases first switch to the polish precision (float64 by default): second-order
    steps resolve the residual far below float32's resolution. ``together`` marks the phases
    the ranks of a distributed run compute on shares of the points (``stacked_residuals`` then
    gives this rank's rows of the Gauss–Newton residual)."""
    t, p = config.training, config.polish
    main = {
        "adam": partial(trainer.adam, t.lr, rule),
        "bbi": partial(trainer.bbi, config.bbi.optimizer_config(t.lr), seed, rule),
        "lbfgs": partial(trainer.lbfgs, t.lr, rule),
    }[t.optimizer]
    phases = [together(lambda state: main(resume=state))]
    polish_rule = replace(rule, patience=0)
    if "lbfgs" in p.method and p.steps > 0:
        lbfgs = partial(trainer.lbfgs, p.lr, replace(polish_rule, max_steps=p.steps),
                        p.history, p.tolerance_grad, p.tolerance_change)  # fmt: skip
        phases.append(together(lambda state: (to_polish_precision(), lbfgs(resume=state))[1]))
    if "gauss_newton" in p.method and p.gauss_newton_steps > 0:
        tolerances = Tolerances(p.tolerance_residual, p.tolerance_infeasibility, p.tolerance_step)
        gn_rule = replace(polish_rule, max_steps=p.gauss_newton_steps)

        def gauss_newton(state):
            to_polish_precision()
            return trainer.gauss_newton(
                stacked_residuals(), gn_rule, tolerances, p.damping, resume=state,
                linear_solver=p.linear_solver, cg_iterations=p.cg_iterations,
            )  # fmt: skip

        phases.append(together(gauss_newton, first_order=False))
    return phases


@contextmanager
def _graceful_stop(trainer: Trainer, progress: Progress):
    """SIGINT/SIGTERM ask the trainer to stop at the next step boundary (it checkpoints there and
    the run exports what it has); a second signal interrupts at once. A second one within
    :data:`SAME_SIGNAL_S` is the first delivered twice (under torchrun, Ctrl-C reaches a rank
    from the terminal and again from torchrun) and is ignored."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    first = {"at": None}

    def handler(signum, frame):
        if trainer.stop_requested:
            if time.monotonic() - first["at"] < SAME_SIGNAL_S:
                return
            raise KeyboardInterrupt
        first["at"] = time.monotonic()
        trainer.stop_requested = True
        progress.message(
            f"\n{signal.Signals(signum).name}: stopping at the next step (again to abort now)"
        )

    previous = {s: signal.signal(s, handler) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for s, h in previous.items():
            signal.signal(s, h)


def _share_rank0_state(ranks: Communicator, model: torch.nn.Module, constraints) -> None:
    """After a phase, every rank continues from rank 0's network and multipliers: the ranks
    computed the same phase, so they differ at most by rounding (or by where a stop request
    reached them), and from here they are identical."""
    ranks.broadcast_state([*model.state_dict().values(), *constraints.multipliers.values()])


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
        "numerical_faults": trainer.events,
    }


def _finite_or_none(x: float) -> float | None:
    return x if math.isfinite(x) else None
