"""Explorer benchmark: every strategy × problem × seed, distinct solutions found.

Each bundled multi-solution problem file is solved with each strategy (``[explore] strategy``)
and the same number of attempts, patience off, so every strategy gets the same number of
searches from the same seed. ``deflation`` and ``restarts`` take the same Levenberg–Marquardt
search and polish, so equal attempts is equal compute for them; ``bbi`` and ``kick`` search with
``[training] steps`` BBI steps instead, and ``continuation`` follows paths in one parameter
(``PARAMETERS``: both ways from the first solution, and the branches switched onto at
bifurcations). A solution counts as found when it is within ``--match`` (relative L2) of one of
the problem's exact/reference solutions; the table prints how many distinct references were
found, the solutions accepted, the gradient evaluations (history steps: one per Adam/BBI/L-BFGS
iteration or Levenberg–Marquardt step) and the wall time.

    python benchmarks/explore.py [--seeds 0 1] [--attempts 8] [--max-time S] [--strategies ...]
        [problem ...]

``--max-time S`` caps every run at S seconds (``[run] max_time_s``): equal wall-clock compute for
the 2D problems, where a run cannot afford all its attempts. The table prints CPU time (user +
system of this process) beside wall time: on a shared machine CPU time is the comparable one.

The problems' symmetries (``[explore] symmetries``) are off unless ``--symmetries``: the table
measures what each strategy finds by itself; with them, every strategy also gets the images of
what it found.

``--strategies deflation restarts:3`` compares with wide restarts (fresh weights scaled by 3);
``deflation/4`` runs the searches in rounds of 4 side by side (``[explore] trajectories``), which
for deflation means lockstep searches deflating each other.
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import replace
from pathlib import Path

from common import device_line

import pinnsolve as ps
from pinnsolve.io.config import load_config

ROOT = Path(__file__).resolve().parent.parent
PROBLEMS = ("bratu1d", "elastica1d", "bratu2d", "allen_cahn2d", "bbi_disk")
STRATEGIES = ("deflation", "restarts", "bbi", "kick", "continuation")
#: the parameter continuation follows, per problem (bbi_disk has none: no continuation row)
PARAMETERS = {"bratu1d": "lam", "elastica1d": "lam", "bratu2d": "lam", "allen_cahn2d": "eps"}
#: ``restarts:3``: restarts with fresh weights scaled by 3 (wide initializations)
WIDE = "restarts:"
#: ``deflation/4``: rounds of 4 searches side by side
ROUNDS = "/"


def run(
    name: str,
    strategy: str,
    seed: int,
    attempts: int,
    match: float,
    scratch: Path,
    max_time: float | None = None,
    symmetries: bool = False,
) -> dict:
    """Solve ``problems/<name>.toml`` with ``strategy`` (within ``max_time`` seconds if given);
    what it found."""
    path = ROOT / "problems" / f"{name}.toml"
    config = load_config(path)
    spec, _, rounds = strategy.partition(ROUNDS)
    name_only, _, scale = spec.partition(":")
    config = replace(
        config,
        explore=replace(
            config.explore,
            strategy=name_only,
            attempts=attempts,
            trajectories=int(rounds or 1),
            patience=0,
            init_scale=float(scale or 1.0),
            parameter=PARAMETERS.get(name, ""),
            symmetries=symmetries,
        ),  # fmt: skip
        run=replace(
            config.run,
            seed=seed,
            max_time_s=config.run.max_time_s if max_time is None else max_time,
        ),
        output=replace(config.output, plots=False, checkpoint_every=0),
    )
    start, cpu = time.perf_counter(), time.process_time()
    result = ps.solve(path, config, out=scratch / f"{name}-{strategy}-{seed}", force=True)
    wall, cpu = time.perf_counter() - start, time.process_time() - cpu
    branches = {
        s.exact_branch for s in result.solutions if s.rel_l2_error is not None and
        s.rel_l2_error <= match
    }  # fmt: skip
    n_refs = len(result.solutions[0].rel_l2_to_exact) if result.solutions else 0
    return {
        "problem": name, "strategy": strategy, "seed": seed, "found": len(branches),
        "references": n_refs, "accepted": len(result.solutions),
        "evaluations": result.summary["steps"], "time_s": wall, "cpu_s": cpu,
        "errors": [s.rel_l2_error for s in result.solutions],
    }  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("problems", nargs="*", default=PROBLEMS, help="problem file stems")
    parser.add_argument(
        "--strategies",
        nargs="+",
        default=STRATEGIES,
        help=f"of {STRATEGIES}; '{WIDE}S' scales the fresh weights by S; "
        f"'deflation{ROUNDS}K' runs rounds of K searches side by side",
    )
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1])
    parser.add_argument("--attempts", type=int, default=8, help="searches per run")
    parser.add_argument("--max-time", type=float, help="seconds per run ([run] max_time_s)")
    parser.add_argument("--symmetries", action="store_true",
                        help="add the images under the problems' symmetries (off: each strategy "
                        "by itself)")  # fmt: skip
    parser.add_argument("--match", type=float, default=1e-3, help="rel L2 to count a reference")
    parser.add_argument("--json", help="write the results here")
    parser.add_argument("--out", default="/tmp/pinnsolve-bench-explore", help="scratch folder")
    args = parser.parse_args()
    cap = f", at most {args.max_time:g} s each" if args.max_time else ""
    print(device_line(f"{args.attempts} attempts per run{cap}"))
    header = ("problem", "strategy", "seed", "found", "accepted", "evals", "wall s", "cpu s")
    print(" | ".join(header))
    rows = []
    for name in args.problems:
        for strategy in args.strategies:
            if strategy.startswith("continuation") and name not in PARAMETERS:
                continue
            for seed in args.seeds:
                row = run(name, strategy, seed, args.attempts, args.match, Path(args.out),
                          args.max_time, args.symmetries)  # fmt: skip
                rows.append(row)
                print(f"{name} | {strategy} | {seed} | {row['found']}/{row['references']} | "
                      f"{row['accepted']} | {row['evaluations']} | {row['time_s']:.1f} | "
                      f"{row['cpu_s']:.1f}",
                      flush=True)  # fmt: skip
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
