"""Bifurcation diagrams: every branch across a range of one parameter (deflated continuation).

Farrell, Beentjes & Birkisson ("The computation of disconnected bifurcation diagrams", 2016)
compute a diagram value by value: at each value, continue every branch known at the previous one
(Newton from its solution there), then search for new branches with deflation, deflating
everything known at this value. A sweep is that loop over one :class:`~pinnsolve.run.Run`, built
from the pieces a solve uses:

- the first value is an ordinary solve: training, polish and the explorer's searches;
- at each next value a branch is continued from its network at the previous value by the
  explorer's undeflated Levenberg–Marquardt polish (a warm start: a few steps); when that lands
  on a branch already continued here (or fails), a search deflated by those branches from the
  same warm start, then the polish; when neither gives a new accepted solution, the branch ends
  here, and ``[sweep] refine_folds`` bisections of the last interval say where (a fold);
- then the explorer's rounds of searches (``[explore]``, ``deflation`` by default), with the
  continued branches in its catalogue: what they find is a new branch (one that appears, or a
  disconnected one).

Branch ids are kept along a curve. After every value its solutions are written
(``sweep/<value>/sNN.vtu``, NN the branch id), the diagram's files are rewritten
(:mod:`pinnsolve.io.diagram`) and a checkpoint is saved, so Ctrl-C keeps the diagram so far and
``resume`` continues at the next value with the same result. One process (no torchrun).

One module (about 440 lines) on purpose: reading ``[sweep]``, the loop, its continuation, ends
and checkpoint are one feature that changes together; the files it writes are
:mod:`pinnsolve.io.diagram`'s.
"""

from __future__ import annotations

import math
import re
import time
from dataclasses import asdict, replace
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from .build import extra_conditions, validate
from .devices import DTYPES, resolve_device
from .errors import ConfigError, did_you_mean
from .explore.catalogue import Found, closest
from .explore.deflation import DeflatedResiduals, Deflation
from .explore.strategy import converging, copy_state
from .io.config import Config, load_config, to_toml
from .io.diagram import Diagram, DiagramPoint, value_folder, write_diagram
from .io.export import write_json, write_text
from .io.progress import Progress
from .io.rundir import RunDir
from .parallel.distributed import SINGLE
from .problem.base import Problem
from .problem.params import Params
from .run import Run
from .solver import export_solution, graceful_stop, run_dir_for

#: a branch's solution at the last value, with its multipliers there
Held = tuple[Found, dict]


def sweep_values(config: Config, problem: Problem) -> tuple[str, list[float]]:
    """The swept parameter and its values from ``[sweep]``, checked against the problem's
    declared parameters and their ranges (``pinnsolve check`` runs this too)."""
    s, where = config.sweep, config.source
    names = list(problem.params)
    if s.parameter not in problem.params:
        raise ConfigError(
            f"{problem.label()!r} has no parameter {s.parameter!r}"
            f"{did_you_mean(s.parameter, names)}; its parameters are: {', '.join(names) or 'none'}",
            file=where, key="[sweep] parameter",
        )  # fmt: skip
    if s.values and s.count:
        raise ConfigError("give either values or start, stop and count, not both", file=where,
                          key="[sweep] values")  # fmt: skip
    if not s.values and not s.count:
        raise ConfigError("expected a list of values, or start, stop and count", file=where,
                          key="[sweep] values")  # fmt: skip
    if s.values:
        values = list(s.values)
    elif s.spacing == "log":
        if not (s.start > 0 and s.stop > 0):
            raise ConfigError(f"log spacing needs start and stop > 0, got {s.start:g} and "
                              f"{s.stop:g}", file=where, key="[sweep] spacing")  # fmt: skip
        values = np.geomspace(s.start, s.stop, s.count).tolist()
    else:
        values = np.linspace(s.start, s.stop, s.count).tolist()
    if len({value_folder(v) for v in values}) < len(values):
        raise ConfigError(f"expected distinct values, got {values}", file=where,
                          key="[sweep] values")  # fmt: skip
    spec = problem.params[s.parameter]
    low = -math.inf if spec.min is None else spec.min
    high = math.inf if spec.max is None else spec.max
    for v in values:
        if not low <= v <= high:
            raise ConfigError(f"{v:g} is outside {s.parameter}'s declared range "
                              f"{spec.range_text()}", file=where,
                              key="[sweep] values")  # fmt: skip
    return s.parameter, values


_NUMBER = r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?"
_RANGE = re.compile(rf"({_NUMBER}):({_NUMBER}):(\d+)(?::(linear|log))?")
_LIST = re.compile(rf"{_NUMBER}(?:,{_NUMBER})*")


def parse_sweep_option(spec: str) -> dict:
    """``--sweep NAME=START:STOP:COUNT[:log]`` or ``--sweep NAME=V1,V2,...`` as ``[sweep]``
    keys (the rest of ``[sweep]`` keeps the file's values)."""
    name, _, rest = spec.replace(" ", "").partition("=")
    expected = "expected NAME=START:STOP:COUNT[:log] or NAME=V1,V2,..."
    if not name or not rest:
        raise ConfigError(f"{expected}, got {spec!r}", key="--sweep")
    if m := _RANGE.fullmatch(rest):
        return {"parameter": name, "values": [], "start": float(m[1]), "stop": float(m[2]),
                "count": int(m[3]), "spacing": m[4] or "linear"}  # fmt: skip
    if _LIST.fullmatch(rest):
        return {"parameter": name, "values": [float(v) for v in rest.split(",")], "count": 0}
    raise ConfigError(f"{expected}, got {spec!r}", key="--sweep")


def sweep(
    problem: str | Path,
    config: Config | None = None,
    *,
    out: str | Path | None = None,
    force: bool = False,
    resume: bool = False,
    progress: Progress | None = None,
) -> Diagram:
    """Compute the bifurcation diagram ``[sweep]`` asks for (see the module docstring), write
    its run folder and return it: ``diagram.branches()`` (branch id → its points, each with the
    :class:`~pinnsolve.io.results.Solution`), ``diagram.values``, ``diagram.ends``.

    ``resume=True`` continues an interrupted sweep at the value after the last one finished.
    """
    config = config or load_config(problem)
    instance, _ = validate(config)
    name, values = sweep_values(config, instance)
    if config.explore.strategy == "continuation":
        raise ConfigError("a sweep continues the branches itself; its searches for new ones "
                          "take another strategy (deflation by default)", file=config.source,
                          key="[explore] strategy")  # fmt: skip
    if config.explore.strategy == "none":
        config = replace(config, explore=replace(config.explore, strategy="deflation"))
    device = resolve_device(config.run.device)
    progress = progress or Progress(quiet=True)
    run_dir = run_dir_for(out, config, instance, force, resume, progress)
    state = run_dir.load_checkpoint(config.digest(), device) if resume else None
    if not resume:
        run_dir.prepare(force)
        write_text(run_dir.path / "config.resolved.toml", to_toml(config.to_dict()))
    instance.p = Params({**instance.p, name: values[0]})
    extra = extra_conditions(config, instance)
    run = Run(instance, extra, config, device, DTYPES[config.run.dtype], None, progress, SINGLE)
    functional = getattr(instance, "functional_name", f"max_abs_{instance.fields[0]}")
    diagram = Diagram(name, functional, run_dir=run_dir.path)
    run_dir.set_status("running")
    job = Sweep(run, name, values, run_dir, diagram)
    try:
        if state:
            job.restore(state)
        with graceful_stop(run.trainer, progress):
            job.go()
    except KeyboardInterrupt:
        diagram.status = "interrupted"
        job.write()
        raise
    except BaseException as err:
        run_dir.set_status("failed", error=f"{type(err).__name__}: {err}")
        raise
    job.write()
    return diagram


class Sweep:
    """The deflated-continuation loop over one run (see the module docstring). ``active``: the
    branches known at the last value done, each with its network and multipliers there."""

    def __init__(self, run: Run, name: str, values: list[float], run_dir: RunDir,
                 diagram: Diagram):  # fmt: skip
        self.run, self.name, self.values = run, name, values
        self.run_dir, self.diagram = run_dir, diagram
        self.explorer = run.explorer
        self.mesh = run.mesh
        self.active: dict[int, Held] = {}
        #: the fields (on the comparison points) of the solutions at each value done
        self.known: list[list[Tensor]] = []
        self.next_id = 0
        self.searches = 0
        self.started = time.monotonic()
        #: the strategy's state before any search (each value's searches start from it)
        self.fresh_strategy = self.explorer.strategy.state_dict()

    # -- the loop -------------------------------------------------------------------------------
    def go(self) -> None:
        """The values not done yet; stops (status ``interrupted``) when a phase was stopped."""
        for value in self.values[len(self.diagram.values) :]:
            self._at(value)
            if not self._value(value):
                self.diagram.status = "interrupted"
                return
            self.diagram.values.append(value)
            self.write()
            self.run_dir.save_checkpoint(self.state_dict())
        self.diagram.status = "finished"

    def _value(self, value: float) -> bool:
        """Continue the active branches to ``value``, search for new ones, export; False when
        the run is being stopped."""
        run, e = self.run, self.explorer
        n = len(self.diagram.values)
        self._say(f"sweep: {self.name} = {value:g} ({n + 1}/{len(self.values)}), "
                  f"{len(self.active)} branch(es) to continue")  # fmt: skip
        here: dict[int, Held] = {}
        if n == 0:
            run.go(None)
            if any(o.stop_reason == "interrupted" for o in run.outcomes):
                return False
            e.points = run.stacked_residuals().objective.interior
            self.searches += len(e.log) - 1  # attempt 0 judged the training
            found = e.catalogue.sorted()
        else:
            here = self._continue_all(value)
            if here is None:
                return False
            found = self._search([h[0] for h in here.values()])
            if found is None:
                return False
        new = {self._new_id(): (f, e.initial_multipliers) for f in found}
        for branch, held in new.items() if n else ():
            if not self._backward(branch, held):
                return False
        self._at(value)
        here.update(new)
        for branch, (f, _) in sorted(here.items()):
            self._export(value, branch, f)
        self.known.append([f.values for f, _ in here.values()])
        self.active = here
        self._say(f"sweep: {self.name} = {value:g}: {len(here)} solution(s), branches "
                  f"{sorted(here)}, {self.searches} search attempt(s) so far")  # fmt: skip
        return True

    def _continue_all(self, value: float) -> dict[int, Held] | None:
        """Each active branch continued to ``value`` (ended ones refined); None: stopped."""
        here: dict[int, Held] = {}
        previous = self.diagram.values[-1]
        for branch, start in sorted(self.active.items()):
            got = self._continue(start, [h[0].values for h in here.values()])
            if got == "interrupted":
                return None
            if got is not None:
                here[branch] = got
            elif not self._end(
                branch, start, previous, value, [h[0].values for h in here.values()]
            ):
                return None
            self._at(value)
        return here

    def _backward(self, branch: int, held: Held) -> bool:
        """A branch that appeared at the current value, continued back through the values done
        while it exists there (a branch a search found late is drawn where it began); False:
        stopped."""
        values = self.diagram.values
        for i in range(len(values) - 1, -1, -1):
            self._at(values[i])
            got = self._continue(held, self.known[i])
            if got == "interrupted":
                return False
            if got is None:
                later = values[i + 1] if i + 1 < len(values) else self.values[len(values)]
                return self._end(branch, held, later, values[i], self.known[i])
            self._export(values[i], branch, got[0])
            self.known[i].append(got[0].values)
            held = got
        return True

    def _end(self, branch: int, last: Held, found_at: float, gone_at: float,
             there: list[Tensor]) -> bool:  # fmt: skip
        """Branch ``branch`` (``last`` at ``found_at``) was not found at ``gone_at``, where the
        solutions ``there`` are: refine and record where it ends; False: stopped."""
        end = self._refine_end(branch, last, found_at, gone_at, there)
        if end is None:
            return False
        self.diagram.ends.append(end)
        self._say(f"sweep: branch {branch} ends between {self.name} = {end['found']:.6g} "
                  f"(found) and {end['missing']:.6g} (not found)")  # fmt: skip
        return True

    def _continue(self, start: Held, known: list[Tensor]) -> Held | str | None:
        """The branch through ``start`` at the current value: the undeflated polish from its
        network, else a search deflated by ``known`` from there and its polish. None when neither
        gives an accepted solution distinct from ``known``; ``"interrupted"``.

        Distinct is measured on the branch's own scale: within ``[explore] distance`` of a known
        solution relative to the size of ``start`` (not just of the two compared), a point has
        slid onto that solution. Measured on elastica1d: the two-hump branch (max |u| 0.65 at
        λ = 41.6) continued back to λ = 39.08, below its pitchfork at 4π², stopped at a function
        of max |u| 4.9e-5 with residual 2.3e-4: accepted, and distinct from u = 0 by the
        catalogue's own floor."""
        e, run = self.explorer, self.run
        scale = max(e.catalogue.floor, float(start[0].values.square().mean().sqrt()))
        self._load(start)
        polish = e.polish(None, name="sweep_continue")
        if polish.stop_reason == "interrupted":
            return "interrupted"
        got = self._accepted(known, start[0].provenance, scale)
        if got is not None or not known:
            return got
        self._load(start)
        deflation = Deflation(e.points, e.settings.power, e.settings.shift)
        for k in known:
            deflation.add(k)
        search = run.trainer.gauss_newton(
            DeflatedResiduals(run.stacked_residuals(), deflation), e.search_rule,
            e.search_tolerances, e.damping, name="sweep_deflated", update_multipliers=False,
        )  # fmt: skip
        if search.stop_reason == "interrupted":
            return "interrupted"
        if not converging(search):
            return None
        polish = e.polish(None, name="sweep_continue")
        if polish.stop_reason == "interrupted":
            return "interrupted"
        return self._accepted(known, start[0].provenance, scale)

    def _accepted(self, known: list[Tensor], provenance: dict, scale: float) -> Held | None:
        """The model's solution (with its multipliers) when it passes the acceptance tolerances
        and is none of ``known`` (compared with ``scale`` as the floor of the distance)."""
        run, e = self.run, self.explorer
        with torch.no_grad():
            _, ev = run.stacked_residuals().residual()
        if not e.search_tolerances.within(ev, run.constraints):
            return None
        values = e.fields()
        if closest(values, known, e.catalogue.distance, scale) is not None:
            return None
        infeasibility = float(run.constraints.max_infeasibility(ev.g))
        found = Found(copy_state(run.model.state_dict()), values, dict(provenance),
                      ev.residual_rms(), infeasibility)  # fmt: skip
        return found, run.constraints.state_dict()

    def _refine_end(self, branch: int, start: Held, found: float, missing: float,
                    there: list[Tensor]) -> dict | None:  # fmt: skip
        """Where branch ``branch`` (``start`` at ``found``) ends before ``missing``:
        ``refine_folds`` bisections, each continuing it from the last point found to the midpoint,
        distinct from the solutions ``there`` at ``missing`` (a branch that ends at a pitchfork
        on a branch that does not change with the parameter, such as u = 0, would otherwise slide
        onto it and seem to go on). None: stopped."""
        last = start
        for _ in range(self.run.config.sweep.refine_folds):
            middle = (found + missing) / 2
            self._at(middle)
            got = self._continue(last, there)
            if got == "interrupted":
                return None
            if got is None:
                missing = middle
            else:
                found, last = middle, got
        return {"branch": branch, "found": found, "missing": missing,
                "estimate": (found + missing) / 2}  # fmt: skip

    def _search(self, known: list[Found]) -> list[Found] | None:
        """The explorer's rounds of searches at the current value, with ``known`` in its
        catalogue: the new solutions it finds, in the catalogue's order; None: stopped."""
        e = self.explorer
        e.catalogue.entries = list(known)
        e.attempt, e.since_new, e.rejected, e.unaccepted, e.log = 1, 0, [], None, []
        e.strategy.load_state_dict(self.fresh_strategy)
        outcome = e.explore(None)
        self.searches += len(e.log)
        if outcome.stop_reason == "interrupted":
            return None
        new = e.catalogue.entries[len(known) :]
        return sorted(new, key=Found.sort_key)

    # -- outputs and state ----------------------------------------------------------------------
    def _export(self, value: float, branch: int, found: Found) -> None:
        run = self.run
        run.model.load_state_dict(found.model_state)
        solution = export_solution(f"s{branch:02d}", run.model, run.live, self.mesh,
                                    run.config.run.seed, self.run_dir, found.provenance,
                                    folder=f"sweep/{value_folder(value)}")  # fmt: skip
        solution.model_state = None  # the diagram keeps files and metrics, not networks
        functional = getattr(run.problem, "functional", None)
        measure = (functional(self.mesh.points, solution.values) if functional is not None
                   else solution.norms[run.problem.fields[0]]["max"])  # fmt: skip
        self.diagram.points.append(DiagramPoint(value, branch, float(measure), solution))

    def write(self) -> None:
        """The diagram's files, ``summary.json`` and the status."""
        d, run = self.diagram, self.run
        write_diagram(self.run_dir.path, d, run.config.output.plots)
        write_json(self.run_dir.path / "summary.json", {
            "status": d.status, "problem": run.config.problem.name, "params": dict(run.problem.p),
            "dtype": run.config.run.dtype, "seed": run.config.run.seed,
            "config_hash": run.config.digest(), "wall_time_s": time.monotonic() - self.started,
            "search_attempts": self.searches, "diagram": d.summary(),
        })  # fmt: skip
        self.run_dir.set_status(d.status)

    def state_dict(self) -> dict:
        return {"config_hash": self.run.config.digest(), "values": self.diagram.values,
                "points": self.diagram.points, "ends": self.diagram.ends,
                "active": {b: (asdict(f), m) for b, (f, m) in self.active.items()},
                "known": [[t.cpu() for t in ts] for ts in self.known],
                "next_id": self.next_id, "searches": self.searches}  # fmt: skip

    def restore(self, state: dict) -> None:
        """Continue after the last value a checkpoint holds."""
        run = self.run
        run.to_polish_settings()
        self.explorer.points = run.stacked_residuals().objective.interior
        d = self.diagram
        d.values, d.points, d.ends = list(state["values"]), state["points"], state["ends"]
        like = next(run.model.parameters())
        self.active = {b: (Found(**{**f, "values": f["values"].to(like)}), m)
                       for b, (f, m) in state["active"].items()}  # fmt: skip
        self.known = [[t.to(like) for t in ts] for ts in state["known"]]
        self.next_id, self.searches = state["next_id"], state["searches"]

    # -- helpers --------------------------------------------------------------------------------
    def _at(self, value: float) -> None:
        """Set the swept parameter (the objective reads the problem's parameters)."""
        self.run.problem.p = Params({**self.run.problem.p, self.name: float(value)})

    def _load(self, held: Held) -> None:
        self.run.model.load_state_dict(held[0].model_state)
        self.run.constraints.load_state_dict(held[1])

    def _new_id(self) -> int:
        self.next_id += 1
        return self.next_id - 1

    def _say(self, text: str) -> None:
        self.run.progress.message(text)


def check_sweep(config: Config, problem: Problem) -> str:
    """``pinnsolve check``: the ``[sweep]`` section, when the file has one; what it sweeps, in
    words ("" without one)."""
    if not config.sweep.parameter:
        return ""
    name, values = sweep_values(config, problem)
    return f"; sweeps {name} over {len(values)} value(s) from {values[0]:g} to {values[-1]:g}"
