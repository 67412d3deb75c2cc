"""Batched ensembles: one BBI+MDMM step of K members at once against K single steps.

The step of ``step_speed.py`` (poisson2d, MLP ``--hidden``, the MDMM energy, a BBI step and the
dual step) for an ensemble of K networks (:class:`pinnsolve.optim.ensemble.EnsembleBBI`, one
``vmap`` through the forward jets), at each K of ``--members``. Printed per K: milliseconds per
ensemble step, the ratio to the ensemble step at K = 1, and the speed-up over K single steps (the
same step one network at a time, forward engine, measured in the same run).

    python benchmarks/ensemble_speed.py [--members 1 8 64] [--points 4096] [--dtype float32]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch
from common import device_line
from step_speed import BOUNDARY_FRACTION, make_step, steps_per_second

from pinnsolve.ansatz import build_mlp
from pinnsolve.build import build_constraints
from pinnsolve.io.config import Config
from pinnsolve.objective import PinnObjective
from pinnsolve.optim.bbi import BBIConfig, member_seeds
from pinnsolve.optim.ensemble import EnsembleBBI, EnsembleEnergy
from pinnsolve.problem.pdes.poisson import Poisson2D


def ensemble_step(k: int, n: int, hidden: list[int], dtype, device):
    """One step of a K-member ensemble as a closure."""
    problem = Poisson2D()
    objective = PinnObjective.sampled(problem, n, max(n // BOUNDARY_FRACTION, 1), "uniform", 0,
                                      dtype, device)  # fmt: skip
    constraints = build_constraints(Config(), objective, dtype, device)
    geom = problem.geometry()
    models = [build_mlp(geom.dim, 1, hidden, "tanh", "xavier_normal", geom.bounds(), seed, dtype,
                        device) for seed in range(k)]  # fmt: skip
    energy = EnsembleEnergy(models[0], objective, constraints)
    theta = torch.stack([energy.layout.flatten(m.state_dict()) for m in models])
    lam = {name: torch.stack([v] * k) for name, v in constraints.multipliers.items()}
    seeds = member_seeds(0, k, device)
    opt = EnsembleBBI(energy, theta, lam, seeds, BBIConfig(lr=1e-3), dual=True)
    return lambda: opt.step()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--members", nargs="+", type=int, default=[1, 8, 64])
    parser.add_argument("--points", type=int, default=4096)
    parser.add_argument("--hidden", nargs="+", type=int, default=[64, 64, 64, 64])
    parser.add_argument("--dtype", default="float32", choices=("float32", "float64"))
    parser.add_argument("--min-time", type=float, default=3.0, help="seconds per measurement")
    parser.add_argument("--json", help="write the results here")
    args = parser.parse_args()
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    dtype = getattr(torch, args.dtype)
    print(device_line(f"BBI+MDMM step, N = {args.points}, MLP {args.hidden}, {args.dtype}"))
    single = make_step(args.points, args.hidden, dtype, device, "forward", "bbi", False)
    single_ms = 1e3 / steps_per_second(single, device, args.min_time)
    print(f"single network: {single_ms:.2f} ms per step")
    print(f"{'K':>5} {'ms/step':>10} {'× K=1':>8} {'× K single steps':>17}")
    rows, first = [], None
    for k in args.members:
        ms = 1e3 / steps_per_second(ensemble_step(k, args.points, args.hidden, dtype, device),
                                    device, args.min_time)  # fmt: skip
        first = first or ms
        speedup = k * single_ms / ms
        rows.append({"members": k, "ms_per_step": ms, "vs_k1": ms / first, "speedup": speedup})
        print(f"{k:>5} {ms:>10.2f} {ms / first:>8.2f} {speedup:>17.2f}", flush=True)
    if args.json:
        Path(args.json).write_text(json.dumps({"device": device_line(), "single_ms": single_ms,
                                               "rows": rows}, indent=2))  # fmt: skip


if __name__ == "__main__":
    main()
