"""Validation table: every bundled problem with an exact solution, before and after the polish.

Each problem file in ``problems/`` is solved twice with the same seed. The first run stops after
the main optimizer and the L-BFGS polish (``[polish] method = "lbfgs"``). The second run adds the
float64 Levenberg–Marquardt stage (``"lbfgs+gauss_newton"``). For both, the table shows the rel.
L2 error to the exact solution on the evaluation mesh, the residual RMS, the largest boundary
violation and the wall time. The device is the one the run picks (CUDA when there is one).

    python benchmarks/validation.py [--gn-steps N] [--json out.json] [problem ...]
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import replace
from pathlib import Path

import torch
from common import device_line, device_name

import pinnsolve as ps
from pinnsolve.io.config import load_config

ROOT = Path(__file__).resolve().parent.parent
PROBLEMS = ("poisson2d", "bratu1d", "heat1d", "elastica1d", "my_pde")
POLISHES = ("lbfgs", "lbfgs+gauss_newton")


def run(name: str, polish: str, gn_steps: int | None, scratch: Path) -> dict:
    """Solve ``problems/<name>.toml`` with the polish ``polish``; the solution's metrics."""
    path = ROOT / "problems" / f"{name}.toml"
    config = load_config(path)
    config = replace(
        config,
        polish=replace(
            config.polish,
            method=polish,
            gauss_newton_steps=gn_steps or config.polish.gauss_newton_steps,
        ),
        explore=replace(config.explore, strategy="none"),  # the polish alone, one solution
        output=replace(config.output, plots=False, checkpoint_every=0),
    )
    start = time.perf_counter()
    result = ps.solve(path, config, out=scratch / f"{name}-{polish}", force=True)
    sol = result.solutions[0]
    return {
        "rel_l2": sol.rel_l2_error, "residual_rms": sol.residual_rms,
        "max_boundary": sol.max_infeasibility, "time_s": time.perf_counter() - start,
        "phases": result.summary["phases"],
    }  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("problems", nargs="*", default=PROBLEMS, help="problem file stems")
    parser.add_argument(
        "--gn-steps", type=int, help="Levenberg–Marquardt steps (default: the file's)"
    )
    parser.add_argument("--json", help="write the results here")
    parser.add_argument("--out", default="/tmp/pinnsolve-bench-validation", help="scratch folder")
    args = parser.parse_args()
    print(device_line())
    header = ("problem", "polish", "rel L2", "res RMS", "max bc", "time s")
    print("{:<10} {:<19} {:>9} {:>9} {:>9} {:>7}".format(*header))
    results = {}
    for name in args.problems:
        for polish in POLISHES:
            r = run(name, polish, args.gn_steps, Path(args.out))
            results[f"{name}/{polish}"] = r
            print(f"{name:<10} {polish:<19} {r['rel_l2']:9.2e} {r['residual_rms']:9.2e} "
                  f"{r['max_boundary']:9.2e} {r['time_s']:7.1f}", flush=True)  # fmt: skip
    if args.json:
        payload = {"device": device_name(), "torch": torch.__version__, "results": results}
        Path(args.json).write_text(json.dumps(payload, indent=2))


if __name__ == "__main__":
    main()
