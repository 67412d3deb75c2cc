"""``solve()``: config → problem → a :class:`~pinnsolve.run.Run` → its phases → the report.

This is the one entry point that composes the layers (as ``diffeqsolve`` does in diffrax); the
CLI and the Python API both call it. What a run holds and does is :mod:`pinnsolve.run`; what can
be checked before it starts is :mod:`pinnsolve.build`.
"""

from __future__ import annotations

import math
import platform
import signal
import threading
import time
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path

import torch

from .build import config_dir, default_run_dir, extra_conditions, validate
from .devices import DTYPES, on_device, resolve_device
from .errors import ConfigError, PinnsolveError
from .io.config import Config, load_config, to_toml
from .io.evaluate import evaluate_solution
from .io.export import (
    write_collection,
    write_history_csv,
    write_json,
    write_solution_mesh,
    write_text,
    write_time_slices,
)
from .io.plots import plot_history, plot_solutions
from .io.progress import Progress
from .io.results import Result, Solution
from .io.rundir import RunDir, RunFolderTaken, latest, next_free
from .parallel.distributed import Communicator, communicator
from .problem.base import Problem
from .problem.geometry import EvalMesh
from .problem.registry import problem_spec
from .run import Run
from .train import Trainer
from .user_code import class_spec
from .version import __version__

#: seconds within which a second stop signal is the first one delivered twice
SAME_SIGNAL_S = 1.0


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
        config = _for_instance(config or Config(), problem)
        extra = extra_conditions(config, problem)
    config = replace(config, problem=replace(config.problem, params=dict(problem.p)))
    try:
        device = resolve_device(config.run.device)
    except ConfigError as err:
        raise err.located(file=config.source) from None
    ranks = communicator(device.type, config.distributed.timeout_s)
    if ranks.world > 1 and device.type == "cuda":
        device = torch.device("cuda", ranks.local_rank)
    progress = (progress or Progress(quiet=True)) if ranks.is_main else Progress(quiet=True)
    for note in config.notes:
        progress.message(f"note: {config.source or 'config'}: {note}")
    dtype = DTYPES[config.run.dtype]
    run_dir = run_dir_for(out, config, problem, force, resume, progress)
    state = _load_checkpoint(run_dir, config, device, ranks) if resume else None
    if ranks.is_main and not resume:
        try:
            run_dir.prepare(force)
        except RunFolderTaken as err:
            if out is None and config.output.dir:  # the folder came from the file
                raise RunFolderTaken(err.path, err.status, file=config.source,
                                     key="[output] dir") from None  # fmt: skip
            raise
        except PinnsolveError as err:
            if out is None and config.output.dir:
                raise ConfigError(str(err), file=config.source, key="[output] dir") from None
            raise
        write_text(run_dir.path / "config.resolved.toml", to_toml(config.to_dict()))
    if not ranks.is_main:  # only rank 0 writes the run folder
        return _run(Run(problem, extra, config, device, dtype, None, progress, ranks), state)
    run_dir.set_status("running")
    try:
        return _run(Run(problem, extra, config, device, dtype, run_dir, progress, ranks), state)
    except KeyboardInterrupt:
        run_dir.set_status("interrupted")
        raise
    except BaseException as err:
        run_dir.set_status("failed", error=f"{type(err).__name__}: {err}")
        raise


def run_dir_for(out, config: Config, problem: Problem, force: bool, resume: bool,
             progress: Progress) -> RunDir:  # fmt: skip
    """The run folder: ``out``, else ``[output] dir``, else ``outputs/<stem>``. A default folder
    holding a finished run is kept: a new run goes to the next free ``outputs/<stem>-<n>``
    (saying so), and a resume continues the last of them."""
    if out or config.output.dir:
        return RunDir(Path(out or config.output.dir))
    path = default_run_dir(config, problem)
    if resume:
        return RunDir(latest(path))
    if not force and RunDir(path).status() == "finished":
        free = next_free(path)
        progress.message(f"{path} holds a finished run: this run goes to {free}")
        return RunDir(free)
    return RunDir(path)


def _for_instance(config: Config, problem: Problem) -> Config:
    """The config of ``solve(instance, config)``: it names the instance's class (its registered
    name or ``file.py:Class``), with a note when the file named another problem; parameters in
    ``[problem.params]`` that the instance does not have, or has with other values, are an
    error (the instance's are what is solved)."""
    given = config.problem.params
    differ = [k for k, v in given.items() if k not in problem.p or float(v) != problem.p[k]]
    if differ:
        cls = type(problem).__name__
        said = ", ".join(f"{k} = {given[k]:g}" for k in differ)
        has = ", ".join(f"{k} = {v:g}" for k, v in problem.p.items()) or "no parameters"
        raise ConfigError(
            f"solve({cls}(...), config): the config sets {said} but the {cls} instance has "
            f"{has}; pass the parameters to the class ({cls}({', '.join(differ)}=...)) or leave "
            "them out of the config",
            file=config.source, key="[problem.params]",
        )  # fmt: skip
    name = problem_spec(type(problem), config_dir(config))
    notes = config.notes
    if config.problem.name and config.problem.name != name:
        notes += (f"[problem] name {config.problem.name!r} is not used: solving the "
                  f"{type(problem).__name__} instance given ({name})",)  # fmt: skip
    return replace(config, problem=replace(config.problem, name=name), notes=notes)


def _load_checkpoint(run_dir: RunDir, config: Config, device, ranks: Communicator) -> dict:
    """Rank 0 reads the checkpoint (the run folder may be on its node only) and sends it to
    the others, who move it to their own device."""
    if ranks.world == 1:
        return run_dir.load_checkpoint(config.digest(), device)
    state = run_dir.load_checkpoint(config.digest(), "cpu") if ranks.is_main else None
    return on_device(ranks.broadcast_object(state), device)


def _run(run: Run, resume: dict | None) -> Result:
    """The phases (from a checkpoint when resuming; a stop signal ends them gracefully), then
    the report: only rank 0 evaluates and writes."""
    for line in run.header():
        run.progress.message(line)
    if resume is not None:
        run.restore(resume)
        run.progress.message(_resuming(run, resume))
    with graceful_stop(run.trainer, run.progress):
        run.go(resume)
    run.progress.close()
    status = run.status()
    mesh = run.mesh
    if run.run_dir is None:  # another rank than 0: rank 0 evaluates and writes
        rows = run.trainer.history.rows
        return Result([], mesh, rows, {"status": status, "rank": run.ranks.rank})
    return _report(run, status, mesh)


def _resuming(run: Run, state: dict) -> str:
    """Where a resumed run continues: the phase, the step in it (or the explorer's attempt)."""
    plan, index, inner = run.plan(), state["phase_index"], state["phase_state"] or {}
    if index >= len(plan):
        return "resuming: every phase had ended; exporting what the run found"
    where = f"phase {index + 1} of {len(plan)}, {plan[index]}"
    if "attempt" in inner:
        where += f", at attempt {inner['attempt']}"
    elif "step" in inner:
        where += f", at its step {inner['step']}"
    else:
        where += ", from its start"
    folder = run.run_dir.path if run.run_dir else "the run"
    return (f"resuming {folder} from its checkpoint: {where} (run step "
            f"{state['history_step']}, {len(state['history'])} history rows kept)")  # fmt: skip


def _report(run: Run, status: str, mesh: EvalMesh) -> Result:
    """Evaluate and export every solution (the explorer's catalogue, or the trained network),
    the plots, ``history.csv`` and ``summary.json``."""
    run_dir, model, seed = run.run_dir, run.model, run.config.run.seed
    solutions, names = [], {}
    if run.explorer and run.explorer.log:
        found = run.explorer.solutions()
        names = _file_names(run.explorer.catalogue.entries, found)
        for index, entry in enumerate(found):
            model.load_state_dict(entry.model_state)
            solutions.append(export_solution(f"s{index:02d}", model, run.live, mesh, seed,
                                              run_dir, entry.provenance))  # fmt: skip
        if found:
            model.load_state_dict(found[0].model_state)
    elif run.finite():
        solutions.append(export_solution("s00", model, run.live, mesh, seed, run_dir))
    rejected = []
    for index, entry in enumerate(run.explorer.rejected if run.explorer else []):
        model.load_state_dict(entry.model_state)
        rejected.append(export_solution(f"r{index:02d}", model, run.live, mesh, seed, run_dir,
                                         entry.provenance, folder="rejected"))  # fmt: skip
    if solutions and rejected:
        model.load_state_dict(solutions[0].model_state)
    if solutions:
        _write_collection(run_dir.path, mesh, solutions)
    rows = run.trainer.history.rows
    if run.config.output.plots:
        if solutions:
            plot_solutions(run_dir.path / "plots" / "solutions.png", mesh, solutions,
                           run.problem.fields, _title(run))  # fmt: skip
        if rows:
            plot_history(run_dir.path / "plots" / "history.png", rows, run.objective.labels,
                         _title(run), run.explorer.log if run.explorer else [])  # fmt: skip
    write_history_csv(run_dir.path / "history.csv", rows)
    summary = _summary(run, status, solutions, names)
    if rejected:
        summary["rejected"] = [r.summary() for r in rejected]
    write_json(run_dir.path / "summary.json", summary)
    run_dir.set_status(status)
    return Result(solutions, mesh, rows, summary, run_dir.path)


def export_solution(name, model, objective, mesh, seed, run_dir: RunDir, provenance=None,
                     folder: str = "solutions"):  # fmt: skip
    """Evaluate the network as solution ``name`` and write its mesh file into ``folder``."""
    sol = evaluate_solution(name, model, objective, mesh, seed)
    sol.provenance = provenance
    path = write_solution_mesh(run_dir.path / folder / f"{name}.vtu", mesh, sol)
    sol.file = str(path.relative_to(run_dir.path))
    return sol


def _write_collection(folder: Path, mesh: EvalMesh, solutions: list[Solution]) -> None:
    """``solutions.pvd``: ParaView opens every solution from it. Steady problems: solution i at
    timestep i (the time control steps through them); time-dependent ones: solution i as part
    i of each slice, from per-slice VTUs beside its XDMF file."""
    datasets = []
    for i, sol in enumerate(solutions):
        if mesh.times is None:
            datasets.append((i, 0, sol.name, sol.file))
            continue
        slices = write_time_slices(folder / "solutions" / sol.name, mesh, sol)
        datasets += [(float(t), i, sol.name, str(path.relative_to(folder)))
                     for t, path in zip(mesh.times, slices, strict=True)]  # fmt: skip
    write_collection(folder / "solutions.pvd", datasets)


@contextmanager
def graceful_stop(trainer: Trainer, progress: Progress):
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


#: what the explorer's attempt log measures where, and how its times add up
EXPLORE_MEASURES = {
    "residual_rms": "collocation points (what acceptance compares; the solutions' own "
    "residual_rms is on the evaluation mesh)",
    "infeasibility": "the conditions' collocation points",
    "wall_time_s": "the attempt's own work: its search when it ran alone, and its polish",
    "round_search_s": "the searches its round ran side by side (one batched search), timed once "
    "for the round and listed on each of its attempts",
}


def _file_names(entries: list, reported: list) -> dict[int, str]:
    """Catalogue index (the order found, what the explorer's log counts) → the reported
    solution's name (``sNN``, in the catalogue's sorted order)."""
    name = {id(entry): f"s{i:02d}" for i, entry in enumerate(reported)}
    return {i: name[id(e)] for i, e in enumerate(entries) if id(e) in name}


def _named_attempts(log: list[dict], names: dict[int, str]) -> list[dict]:
    """The explorer's attempt log with its catalogue indices (``solution``, ``duplicate_of``)
    replaced by the names of the solutions' files."""
    named = []
    for record in log:
        record = dict(record)
        for key in ("solution", "duplicate_of"):
            if record.get(key) is not None:
                record[key] = names.get(record[key], record[key])
        named.append(record)
    return named


def _summary(run: Run, status: str, solutions: list[Solution], names: dict[int, str]) -> dict:
    """``summary.json``: what ran (problem, parameters, device, versions, config hash), how each
    phase ended, the collocation sizes, every solution's metrics and the explorer's log (its
    solutions named as their files)."""
    config, device, objective = run.config, run.device, run.objective
    device_name = (
        torch.cuda.get_device_name(device) if device.type == "cuda" else platform.processor()
    )
    summary = {
        "status": status,
        "problem": config.problem.name,
        "problem_class": _class_name(type(run.problem), config),
        "params": dict(run.problem.p),
        "device": str(device),
        "device_name": device_name or platform.machine(),
        "dtype": config.run.dtype,
        "seed": config.run.seed,
        "config_hash": config.digest(),
        "pinnsolve_version": __version__,
        "torch_version": torch.__version__,
        "wall_time_s": time.monotonic() - run.started,
        "steps": run.trainer.history.step,
        "stop_reason": run.outcomes[-1].stop_reason,
        "final_loss": _finite_or_none(run.outcomes[-1].final_loss),
        "phases": [
            {
                "phase": o.phase,
                "steps": o.steps,
                "stop_reason": o.stop_reason,
                "final_loss": _finite_or_none(o.final_loss),
                "wall_time_s": o.wall_time_s,
            }
            for o in run.outcomes
        ],  # fmt: skip
        "collocation": {
            "interior": int(objective.interior.shape[0]),
            "conditions": {c.label: int(c.points.shape[0]) for c in objective.conditions},
        },
        "solutions": [s.summary() for s in solutions],
        "numerical_faults": run.trainer.events,
    }
    if run.ranks.world > 1:
        summary["distributed"] = {"ranks": run.ranks.world, "shard_collocation": run.sharded}
    if run.explorer:
        summary["explore"] = {"strategy": config.explore.strategy,
                              "found": len(run.explorer.catalogue.entries),
                              "measured": EXPLORE_MEASURES,
                              "attempts": _named_attempts(run.explorer.log, names)}  # fmt: skip
    return summary


def _class_name(cls: type, config: Config) -> str:
    """pinnsolve's own classes by module path; a user's as ``file.py:Class``."""
    dotted = f"{cls.__module__}.{cls.__qualname__}"
    if cls.__module__.startswith("pinnsolve."):
        return dotted
    return class_spec(cls, config_dir(config)) or dotted


def _title(run: Run) -> str:
    """The problem and its parameters, for the plots' titles."""
    params = ", ".join(f"{k} = {v:g}" for k, v in run.problem.p.items())
    return f"{run.config.problem.name}" + (f" ({params})" if params else "")


def _finite_or_none(x: float) -> float | None:
    return x if math.isfinite(x) else None
