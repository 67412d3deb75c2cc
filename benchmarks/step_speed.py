"""Step speed: one full training step with each derivative engine, at several point counts.

The step is the one the GPU issue targets: poisson2d (−Δu = f, Dirichlet boundary as MDMM
constraints), an MLP ``--hidden`` (default 4×64 tanh), the bounded-below MDMM energy, one BBI
step and the dual step of the multipliers; ``--optimizer adam`` times an Adam step instead.
Variants, each measured in the same run:

- ``autograd``: second derivatives by nested reverse-mode autograd (the reference);
- ``forward``: the forward jet engine (:mod:`pinnsolve.derivatives.forward`), eager;
- ``compiled``: the forward engine's network jet under ``torch.compile`` (``--compile``; slow to
  compile, and it needs a C++ compiler on CPU);
- ``graph``: the whole forward-engine step captured in a CUDA graph (CUDA only).

Printed per variant and N: steps per second and the ratio to ``autograd`` at the same N.

    python benchmarks/step_speed.py [--points 1024 4096 16384] [--hidden 64 64 64 64]
        [--dtype float32] [--optimizer bbi|adam] [--compile] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable
from pathlib import Path

import torch
from common import device_line

from pinnsolve.ansatz import build_mlp
from pinnsolve.build import build_constraints
from pinnsolve.derivatives.forward import engine_named
from pinnsolve.io.config import Config
from pinnsolve.objective import PinnObjective
from pinnsolve.optim.bbi import BBI
from pinnsolve.problem.pdes.poisson import Poisson2D

BOUNDARY_FRACTION = 16  # boundary points per side: N / 16


def make_step(n: int, hidden: list[int], dtype, device, engine: str, optimizer: str,
              compile_jet: bool) -> Callable[[], None]:  # fmt: skip
    """One training step (loss, backward, optimizer, dual step) as a closure."""
    problem = Poisson2D()
    objective = PinnObjective.sampled(problem, n, max(n // BOUNDARY_FRACTION, 1), "uniform", 0,
                                      dtype, device)  # fmt: skip
    objective.engine = engine_named(engine, device)
    constraints = build_constraints(Config(), objective, dtype, device)
    geom = problem.geometry()
    model = build_mlp(geom.dim, 1, hidden, "tanh", "xavier_normal", geom.bounds(), 0, dtype,
                      device)  # fmt: skip
    if compile_jet:
        model.jet = torch.compile(model.jet, dynamic=False)

    def energy():
        ev = objective.evaluate(model)
        return constraints.primal_energy(ev.objective, ev.g), ev

    if optimizer == "adam":
        opt = torch.optim.Adam(model.parameters(), lr=1e-3)

        def step():
            opt.zero_grad(set_to_none=True)
            loss, ev = energy()
            loss.backward()
            opt.step()
            constraints.dual_step({k: v.detach() for k, v in ev.g.items()})

        return step
    opt = BBI(model.parameters(), seed=0, lr=1e-3)
    latest = {}

    def closure():
        opt.zero_grad(set_to_none=True)
        loss, latest["ev"] = energy()
        loss.backward()
        return loss

    def step():
        opt.step(closure)
        constraints.dual_step({k: v.detach() for k, v in latest["ev"].g.items()})
        opt.resync_energy()

    return step


def steps_per_second(step: Callable[[], None], device, min_time: float) -> float:
    """Warm up, then run steps for at least ``min_time`` seconds."""
    for _ in range(3):
        step()
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    sync()
    count, start = 0, time.perf_counter()
    while True:
        step()
        count += 1
        if count % 5 == 0:
            sync()
            elapsed = time.perf_counter() - start
            if elapsed >= min_time:
                return count / elapsed


def graph_step(step: Callable[[], None]) -> Callable[[], None]:
    """``step`` captured in a CUDA graph (warmed up on a side stream first, as CUDA requires)."""
    stream = torch.cuda.Stream()
    stream.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(stream):
        for _ in range(3):
            step()
    torch.cuda.current_stream().wait_stream(stream)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        step()
    return graph.replay


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--points", nargs="+", type=int, default=[1024, 4096, 16384])
    parser.add_argument("--hidden", nargs="+", type=int, default=[64, 64, 64, 64])
    parser.add_argument("--dtype", default="float32", choices=("float32", "float64"))
    parser.add_argument("--optimizer", default="bbi", choices=("bbi", "adam"))
    parser.add_argument("--compile", action="store_true", help="also time torch.compile")
    parser.add_argument("--min-time", type=float, default=2.0, help="seconds per measurement")
    parser.add_argument("--json", help="write the results here")
    args = parser.parse_args()
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    dtype = getattr(torch, args.dtype)
    variants = ["autograd", "forward"] + (["compiled"] if args.compile else [])
    if device.type == "cuda":
        variants.append("graph")
    print(device_line(f"{args.optimizer} step, MLP {args.hidden}, {args.dtype}"))
    print(f"{'N':>8} {'variant':<10} {'steps/s':>10} {'× autograd':>11}")
    rows = []
    for n in args.points:
        reference = None
        for variant in variants:
            engine = "autograd" if variant == "autograd" else "forward"
            step = make_step(n, args.hidden, dtype, device, engine, args.optimizer,
                             compile_jet=variant == "compiled")  # fmt: skip
            try:
                if variant == "graph":
                    step = graph_step(step)
                rate = steps_per_second(step, device, args.min_time)
            except RuntimeError as err:  # e.g. a host sync inside the captured step
                print(f"{n:>8} {variant:<10} failed: {str(err).splitlines()[0]}", flush=True)
                continue
            reference = reference or rate
            rows.append({"points": n, "variant": variant, "steps_per_s": rate,
                         "ratio": rate / reference})  # fmt: skip
            print(f"{n:>8} {variant:<10} {rate:>10.1f} {rate / reference:>11.2f}", flush=True)
    if args.json:
        Path(args.json).write_text(json.dumps({"device": device_line(), "rows": rows}, indent=2))


if __name__ == "__main__":
    main()
