"""Deflation side by side: K deflated searches as one batched search against one at a time.

For a bundled problem's network and points (``problems/<name>.toml``), K deflated
Levenberg–Marquardt searches (deflated by u = 0, from θ₀ and from θ₀ plus 5% noise) take
``--steps`` steps as one :class:`pinnsolve.explore.lockstep.DeflatedLockstep` (batched steps) and
as K :class:`pinnsolve.optim.gauss_newton.LevenbergMarquardt` searches one after another (what
sequential deflation does), measured in the same run, each repeated for ``--min-time`` seconds.
Printed per K: milliseconds per member step both ways and the speed-up; the member steps taken are
counted, so a member that stopped early does not flatter either side.

    python benchmarks/lockstep_speed.py [elastica1d bratu1d] [--members 1 4 8] [--steps 10]
"""

from __future__ import annotations

import argparse
import time
from functools import partial
from pathlib import Path

import torch
from common import device_line
from torch.nn.utils import parameters_to_vector, vector_to_parameters

from pinnsolve.ansatz import build_mlp
from pinnsolve.build import build_constraints
from pinnsolve.explore.deflation import DeflatedResiduals, Deflation
from pinnsolve.explore.lockstep import DeflatedLockstep
from pinnsolve.io.config import Config, load_config
from pinnsolve.objective import PinnObjective
from pinnsolve.optim.gauss_newton import LevenbergMarquardt, StackedResiduals
from pinnsolve.problem.registry import registered
from pinnsolve.run import default_interior
from pinnsolve.train import StopRule, Tolerances

ROOT = Path(__file__).resolve().parent.parent
F64 = torch.float64
#: the searches' tolerances: none met within a few steps, so every member keeps stepping
TOLERANCES = Tolerances(1e-12, 1e-12, 0.0)


def setup(name: str, k: int) -> tuple[StackedResiduals, Deflation, torch.Tensor]:
    """The problem file's network and points, the deflation by u = 0, and K start vectors."""
    config = load_config(ROOT / "problems" / f"{name}.toml")
    problem = registered()[name](**config.problem.params)
    n = config.sampling.interior or default_interior(problem)
    objective = PinnObjective.sampled(problem, n, 1, "sobol", 0, F64, "cpu")
    constraints = build_constraints(Config(), objective, F64, "cpu")
    geom = problem.geometry()
    model = build_mlp(geom.dim, len(problem.fields), config.model.hidden, config.model.activation,
                      config.model.init, geom.bounds(), 0, F64, "cpu")  # fmt: skip
    stacked = StackedResiduals(objective, constraints, model)
    deflation = Deflation(objective.interior, power=3.0, shift=1.0)
    deflation.add(torch.zeros(len(objective.interior), len(problem.fields), dtype=F64))
    theta0 = parameters_to_vector(model.parameters()).detach()
    gen = torch.Generator().manual_seed(0)
    size = 0.05 * float(theta0.abs().mean())
    starts = [theta0] + [theta0 + size * torch.randn(len(theta0), generator=gen, dtype=F64)
                         for _ in range(k - 1)]  # fmt: skip
    return stacked, deflation, torch.stack(starts)


def batched(stacked, deflation, theta, steps: int) -> int:
    """``steps`` batched steps of the K members; the member steps taken."""
    rule = StopRule(max_steps=steps)
    opt = DeflatedLockstep(stacked, deflation, theta.clone(), 1e-3, TOLERANCES, rule)
    return sum(opt.step()[2] for _ in range(steps))


def one_at_a_time(stacked, deflation, theta, steps: int) -> int:
    """The same searches one after another, ``steps`` steps each; the steps taken."""
    deflated = DeflatedResiduals(stacked, deflation)
    params = list(stacked.model.parameters())
    taken = 0
    for start in theta:
        vector_to_parameters(start.clone(), params)
        lm = LevenbergMarquardt(params, lambda: deflated.residual()[0], deflated.jacobian, 1e-3)
        for _ in range(steps):
            lm.step()
            taken += 1
            if not lm.last["accepted"]:
                break
    return taken


def ms_per_member_step(run, min_time: float) -> float:
    run()  # warm-up
    taken, start = 0, time.perf_counter()
    while time.perf_counter() - start < min_time:
        taken += run()
    return 1e3 * (time.perf_counter() - start) / taken


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("problems", nargs="*", default=["elastica1d", "bratu1d"])
    parser.add_argument("--members", nargs="+", type=int, default=[1, 4, 8])
    parser.add_argument("--steps", type=int, default=10, help="steps per search")
    parser.add_argument("--min-time", type=float, default=5.0, help="seconds per measurement")
    args = parser.parse_args()
    print(device_line(f"{args.steps} deflated Levenberg–Marquardt steps per search, float64"))
    print(f"{'problem':>11} {'K':>3} {'one at a time ms':>17} {'batched ms':>11} {'speed-up':>9}")
    for name in args.problems:
        for k in args.members:
            case = setup(name, k)
            single = ms_per_member_step(partial(one_at_a_time, *case, args.steps), args.min_time)
            together = ms_per_member_step(partial(batched, *case, args.steps), args.min_time)
            print(f"{name:>11} {k:>3} {single:>17.2f} {together:>11.2f} {single / together:>9.2f}",
                  flush=True)  # fmt: skip


if __name__ == "__main__":
    main()
