"""Where a 2D exploration's time goes: per phase and per kind of work, at a few sizes.

Solves a bundled problem file with its own settings except the sizes below (collocation points,
boundary points per part, network widths) and times, by wrapping the library's functions (the
library itself is not changed), the exclusive time spent in

* ``jacobian``: forming J (the per-point jets' Jacobians and the push through the residual code),
* ``gram+solve``: the Gram matrix (``JᵀJ`` or ``JJᵀ``) and the damped solves of each trial step,
* ``residual``: evaluations of the residual vector outside the Jacobian (trial points, verdicts),
* ``deflation``: the deflation factor's gradient (deflated searches),
* ``other``: the rest of the phase (first-order steps, bookkeeping, evaluation),

per phase: ``training`` (Adam/BBI/L-BFGS), ``polish`` (the run's Levenberg–Marquardt polish),
``search`` (the explorer's searches) and ``explore polish`` (each candidate's polish). It also
prints the attempts' outcomes and how much of the explorer's time went to searches that did not
converge::

    python benchmarks/explore2d.py [--problem bratu2d] [--sizes 256:16:16 512:32:20 1024:64:32]
        [--attempts 4]

A size ``N:B:W`` is N interior points, B boundary points per boundary part and two hidden layers
of width W.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections import defaultdict
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path

from common import device_line

import pinnsolve as ps
from pinnsolve.explore import lockstep
from pinnsolve.explore.deflation import DeflatedResiduals
from pinnsolve.explore.explorer import Explorer
from pinnsolve.explore.lockstep import DeflatedLockstep
from pinnsolve.io.config import load_config
from pinnsolve.optim.gauss_newton import LevenbergMarquardt, StackedResiduals
from pinnsolve.train import Trainer

ROOT = Path(__file__).resolve().parent.parent
KINDS = ("jacobian", "gram+solve", "residual", "deflation", "other")


class Clock:
    """Exclusive time per (phase, kind): a timed call nested in another is taken out of the
    outer one's time."""

    def __init__(self):
        self.reset()

    def reset(self) -> None:
        self.seconds: dict[tuple[str, str], float] = defaultdict(float)
        self.calls: dict[tuple[str, str], int] = defaultdict(int)
        self.phase = "setup"
        self._stack: list[list] = []

    @contextmanager
    def kind(self, kind: str):
        entry = [kind, time.perf_counter(), 0.0]  # kind, start, nested time
        self._stack.append(entry)
        try:
            yield
        finally:
            self._stack.pop()
            total = time.perf_counter() - entry[1]
            self.seconds[(self.phase, kind)] += total - entry[2]
            self.calls[(self.phase, kind)] += 1
            if self._stack:
                self._stack[-1][2] += total

    def wrap(self, owner, name: str, kind: str) -> None:
        original = getattr(owner, name)

        def timed(*args, **kwargs):
            with self.kind(kind):
                return original(*args, **kwargs)

        setattr(owner, name, timed)

    def in_phase(self, owner, name: str, label) -> None:
        """Calls of ``owner.name`` run as phase ``label`` (or ``label(args)``), timed whole as
        ``other`` so that what is not wrapped separately is counted there."""
        original = getattr(owner, name)

        def labelled(*args, **kwargs):
            outer, self.phase = self.phase, label(*args) if callable(label) else label
            try:
                with self.kind("other"):
                    return original(*args, **kwargs)
            finally:
                self.phase = outer

        setattr(owner, name, labelled)


def _timed_solver(clock: Clock, make):
    """``make(...)`` builds a damped solver (Gram matrix at once, a solve per call): both timed
    as ``gram+solve``."""

    def timed_make(*args):
        with clock.kind("gram+solve"):
            solve = make(*args)

        def timed_solve(*args):
            with clock.kind("gram+solve"):
                return solve(*args)

        return timed_solve

    return timed_make


def instrument(clock: Clock) -> None:
    """Wrap the library's functions once; :meth:`Clock.reset` between runs."""
    clock.wrap(StackedResiduals, "jacobian_at", "jacobian")
    clock.wrap(StackedResiduals, "residual", "residual")
    clock.wrap(DeflatedResiduals, "jacobian", "deflation")
    original_init = DeflatedLockstep.__init__

    def init(self, *args, **kwargs):  # its batched functions are built per instance
        original_init(self, *args, **kwargs)
        for name, kind in (("_jacobians", "jacobian"), ("_residuals", "residual"),
                           ("_factors", "deflation")):  # fmt: skip
            clock.wrap(self, name, kind)

    DeflatedLockstep.__init__ = init
    LevenbergMarquardt._dense = _timed_solver(clock, LevenbergMarquardt._dense)
    lockstep._damped_solver = _timed_solver(clock, lockstep._damped_solver)
    training = {"adam", "bbi", "lbfgs"}

    def phase_of(trainer, name, *args):
        if clock.phase in ("search", "explore polish"):
            return clock.phase
        return "training" if name in training else "polish"

    clock.in_phase(Trainer, "phase", phase_of)
    clock.in_phase(Explorer, "polish", "explore polish")
    clock.in_phase(Explorer, "_attempt", lambda *a: "search")


def run(
    clock: Clock, problem: str, size: str, attempts: int, scratch: Path
) -> tuple[Clock, dict, float]:
    interior, boundary, width = (int(v) for v in size.split(":"))
    path = ROOT / "problems" / f"{problem}.toml"
    config = load_config(path)
    config = replace(
        config,
        sampling=replace(config.sampling, interior=interior, boundary=boundary),
        model=replace(config.model, hidden=[width, width]),
        explore=replace(config.explore, attempts=attempts, patience=0),
        output=replace(config.output, plots=False, checkpoint_every=0),
    )
    clock.reset()
    start = time.perf_counter()
    result = ps.solve(path, config, out=scratch / f"{problem}-{size}", force=True)
    return clock, result.summary, time.perf_counter() - start


def report(size: str, clock: Clock, summary: dict, wall: float) -> None:
    phases = ("training", "polish", "search", "explore polish")
    print(f"\n## {size} (interior:boundary per part:width), {wall:.1f} s in all")
    print("| phase | " + " | ".join(KINDS) + " | total |")
    print("| --- |" + " --- |" * (len(KINDS) + 1))
    for phase in phases:
        row = [clock.seconds[(phase, k)] for k in KINDS]
        cells = [f"{s:.1f} s ({clock.calls[(phase, k)]})" for s, k in zip(row, KINDS, strict=True)]
        print(f"| {phase} | " + " | ".join(cells) + f" | {sum(row):.1f} s |")
    attempts = summary.get("explore", {}).get("attempts", [])
    failed = sum(a["wall_time_s"] for a in attempts if a["outcome"] == "search did not converge")
    outcomes = ", ".join(f"{a['attempt']}:{a['outcome']}" for a in attempts)
    print(f"\nattempts: {outcomes}; searches that did not converge: {failed:.1f} s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--problem", default="bratu2d")
    parser.add_argument("--sizes", nargs="+", default=["256:16:16", "512:32:20", "1024:64:32"])
    parser.add_argument("--attempts", type=int, default=4)
    args = parser.parse_args()
    print(device_line())
    clock = Clock()
    instrument(clock)
    with tempfile.TemporaryDirectory() as tmp:
        for size in args.sizes:
            report(size, *run(clock, args.problem, size, args.attempts, Path(tmp)))


if __name__ == "__main__":
    main()
