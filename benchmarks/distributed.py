"""One process against two under torchrun, on the two things that are split over ranks.

``sharding``: poisson2d with ``--points`` interior points, a 3×32 network, ``--steps`` Adam steps,
no polish; the time of the Adam phase. ``rounds``: bratu1d's restarts explorer, ``--attempts``
searches in rounds of two (``trajectories = 2``); the time of the explore phase. Each case runs

- ``1 proc, 1 thread``: the baseline;
- ``1 proc, 2 threads``: the same two cores used by intra-op threads instead;
- ``2 procs (torchrun), 1 thread each``: the distributed run (gloo);

and prints every time with its ratio to the baseline, and how far the distributed result is
from the baseline's (the Adam phase's final loss; the explorer's attempt log).

    python benchmarks/distributed.py [--points 8192] [--steps 200] [--attempts 4]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from common import device_line

SHARDING = """
[problem]
name = "poisson2d"
[model]
hidden = [32, 32, 32]
[sampling]
interior = {points}
boundary = {boundary}
[training]
optimizer = "adam"
steps = {steps}
log_every = 50
[polish]
method = "none"
[output]
plots = false
resolution = 11
"""

ROUNDS = """
[problem]
name = "bratu1d"
[model]
hidden = [16, 16]
[sampling]
interior = 64
[training]
steps = 300
lr = 3e-3
[polish]
method = "gauss_newton"
[explore]
strategy = "restarts"
attempts = {attempts}
patience = 0
trajectories = 2
[output]
plots = false
resolution = 51
"""

RUNS = {
    "1 proc, 1 thread": (1, 1),
    "1 proc, 2 threads": (1, 2),
    "2 procs (torchrun), 1 thread each": (2, 1),
}


def run(toml: Path, out: Path, procs: int, threads: int) -> dict:
    """Solve ``toml`` into ``out`` and return its summary."""
    solve = ["-m", "pinnsolve", "solve", str(toml), "--out", str(out), "-q", "--force"]
    launcher = [sys.executable]
    if procs > 1:
        launcher += ["-m", "torch.distributed.run", "--standalone", "--nproc-per-node",
                     str(procs)]  # fmt: skip
    env = {**os.environ, "OMP_NUM_THREADS": str(threads)}
    subprocess.run(launcher + solve, check=True, env=env, capture_output=True)
    return json.loads((out / "summary.json").read_text())


def phase(summary: dict, name: str) -> dict:
    return next(p for p in summary["phases"] if p["phase"] == name)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--points", type=int, default=8192)
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--attempts", type=int, default=4)
    args = parser.parse_args()
    print(device_line(f"{os.cpu_count()} cores"))
    cases = {
        "sharding": (
            SHARDING.format(points=args.points, boundary=args.points // 16, steps=args.steps),
            "adam",
        ),  # fmt: skip
        "rounds": (ROUNDS.format(attempts=args.attempts), "explore"),
    }
    with tempfile.TemporaryDirectory() as tmp:
        for case, (text, timed) in cases.items():
            toml = Path(tmp) / f"{case}.toml"
            toml.write_text(text)
            print(f"\n{case}: {timed} phase")
            base = None
            for label, (procs, threads) in RUNS.items():
                summary = run(toml, Path(tmp) / case, procs, threads)
                seconds = phase(summary, timed)["wall_time_s"]
                base = base or (seconds, summary)
                line = f"  {label:36s} {seconds:8.2f} s   ratio {seconds / base[0]:5.2f}"
                print(line + "   " + agreement(case, summary, base[1]))


def agreement(case: str, summary: dict, base: dict) -> str:
    """How the result compares with the baseline's."""
    if case == "sharding":
        a, b = phase(summary, "adam")["final_loss"], phase(base, "adam")["final_loss"]
        return f"final loss {a:.6e} (rel. diff. {abs(a - b) / abs(b):.1e})"
    logs = [[(x["outcome"], x["residual_rms"]) for x in s["explore"]["attempts"][1:]]
            for s in (summary, base)]  # fmt: skip
    return "searches identical" if logs[0] == logs[1] else "searches differ"


if __name__ == "__main__":
    main()
