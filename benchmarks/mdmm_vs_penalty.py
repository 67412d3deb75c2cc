"""MDMM constraints vs a plain penalty at the same step budget and seed.

For each problem: MDMM with the default settings, and the penalty ``w · mean g²`` with w = 1, 10,
100; all with Adam (1000 steps, lr 3e-3) then L-BFGS (400 iterations), the same network, points
and seed. Printed per run: the max constraint violation on fresh validation points, rel. L2 to the
exact solution, wall time; and the ratio MDMM / best penalty for both. The goal is that MDMM
reaches the best penalty's boundary error without tuning a weight.

``--polish lbfgs+gauss_newton`` adds 100 Levenberg–Marquardt steps after the L-BFGS polish (the
multipliers take the method-of-multipliers update after each; the penalty keeps its weight).

    python benchmarks/mdmm_vs_penalty.py [--quick] [--polish METHOD] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import time

import torch

import pinnsolve as ps
from pinnsolve.io.config import from_dict


class RobinNeumann1D(ps.Problem):
    """u'' = u on (0, 1), −u'(0) = −1 (Neumann), u(1) + u'(1) = 2e (Robin); exact eˣ."""

    domain = ps.Interval(0.0, 1.0)

    def residual(self, x, f, p):
        return f.d("u", "x", "x") - f.u

    def conditions(self, p):
        return [ps.Neumann("xmin", -1.0), ps.Robin("xmax", 2 * torch.e, a=1.0, b=1.0)]

    def exact(self, x, p):
        return torch.exp(x.x)


PROBLEMS = {
    "poisson2d": (lambda: ps.get_problem("poisson2d")(), {"interior": 400, "boundary": 32}),
    "robin_neumann1d": (RobinNeumann1D, {"interior": 64, "boundary": 1}),
}


def run(
    problem_name: str, constraints: dict, steps: tuple[int, int], polish: str, tmp: str
) -> dict:
    make, sampling = PROBLEMS[problem_name]
    config = from_dict({
        "problem": {"name": problem_name},
        "model": {"hidden": [20, 20]},
        "sampling": sampling,
        "training": {"optimizer": "adam", "steps": steps[0], "lr": 3e-3},
        "polish": {"method": polish, "steps": steps[1]},
        "constraints": constraints,
        "output": {"plots": False, "resolution": 41, "checkpoint_every": 0},
    })  # fmt: skip
    start = time.perf_counter()
    result = ps.solve(make(), config, out=tmp, force=True)
    sol = result.solutions[0]
    return {"max_violation": sol.max_infeasibility, "rel_l2": sol.rel_l2_error,
            "time_s": time.perf_counter() - start}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="300 Adam + 100 L-BFGS steps")
    parser.add_argument("--polish", default="lbfgs", choices=("lbfgs", "lbfgs+gauss_newton"))
    parser.add_argument("--json", help="write the results here")
    parser.add_argument("--out", default="/tmp/pinnsolve-bench-mdmm", help="scratch run folder")
    args = parser.parse_args()
    steps = (300, 100) if args.quick else (1000, 400)
    variants = {"mdmm (defaults)": {}} | {
        f"penalty w={w:g}": {"method": "penalty", "weight": w} for w in (1.0, 10.0, 100.0)
    }
    results = {}
    print(f"{'problem':<16} {'method':<16} {'max |g|':>9} {'rel L2':>9} {'time s':>7}")
    for name in PROBLEMS:
        for label, constraints in variants.items():
            r = run(name, constraints, steps, args.polish, args.out)
            results[f"{name}/{label}"] = r
            print(f"{name:<16} {label:<16} {r['max_violation']:9.2e} {r['rel_l2']:9.2e} "
                  f"{r['time_s']:7.1f}", flush=True)  # fmt: skip
        best = min((results[f"{name}/{k}"] for k in variants if k.startswith("penalty")),
                   key=lambda r: r["max_violation"])  # fmt: skip
        mdmm = results[f"{name}/mdmm (defaults)"]
        print(f"{name:<16} ratio MDMM/best penalty: max |g| "
              f"{mdmm['max_violation'] / best['max_violation']:.2f}, rel L2 "
              f"{mdmm['rel_l2'] / best['rel_l2']:.2f}")  # fmt: skip
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(
                {
                    "steps": steps,
                    "polish": args.polish,
                    "torch": torch.__version__,
                    "results": results,
                },
                fh,
                indent=2,
            )


if __name__ == "__main__":
    main()
