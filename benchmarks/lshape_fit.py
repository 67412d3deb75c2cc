"""Can the network represent the L-shape's solution? A least-squares fit of the exact solution
r^(2/3) sin(2θ/3) (no PDE) by the ``[model]`` network, with dense Levenberg–Marquardt.

The PDE solve can be no better than this fit, so it separates what the network can hold from what
the PINN loss finds (issue #23: L-BFGS reached 1.8e-3 here, dense LM 2.4e-4 with the same 20×20
network). Points: the interior Sobol set of a run with seed 0 plus 64 per boundary part; the
error is the relative L2 on the export mesh (101 points per axis), as a solve reports it.

    OMP_NUM_THREADS=1 python benchmarks/lshape_fit.py --hidden 20,20 --steps 1000
"""

from __future__ import annotations

import argparse
import math
import time

import numpy as np
import torch
from torch.func import functional_call, jacrev, vmap

from pinnsolve.build import build_network
from pinnsolve.io.config import ModelSection
from pinnsolve.problem.pdes.lshape import LaplaceLShape, corner_solution


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--hidden", default="20,20", help="hidden widths, comma-separated")
    ap.add_argument("--n", type=int, default=4096, help="interior points")
    ap.add_argument("--steps", type=int, default=500, help="Levenberg–Marquardt steps")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    torch.set_default_dtype(torch.float64)
    problem = LaplaceLShape()
    geom = problem.geometry()
    hidden = [int(h) for h in args.hidden.split(",")]
    net = build_network(ModelSection(hidden=hidden), problem, args.seed, torch.float64,
                        torch.device("cpu"))  # fmt: skip
    points = np.concatenate([
        geom.sample_interior(args.n, "sobol", args.seed),
        geom.sample_part("notch", 64, "sobol", 1).points,
        geom.sample_part("outer", 64, "sobol", 2).points,
    ])  # fmt: skip
    x = torch.tensor(points)
    y = corner_solution(x[:, 0], x[:, 1])
    mesh = torch.tensor(geom.eval_mesh(101).points)
    exact = corner_solution(mesh[:, 0], mesh[:, 1])

    params = {k: v.detach() for k, v in net.named_parameters()}
    shapes = {k: v.shape for k, v in params.items()}

    def unflat(t: torch.Tensor) -> dict[str, torch.Tensor]:
        out, i = {}, 0
        for k, s in shapes.items():
            n = math.prod(s)
            out[k] = t[i : i + n].view(s)
            i += n
        return out

    def f(t, pts):
        return functional_call(net, unflat(t), (pts,))[:, 0]

    def f1(t, p):
        return functional_call(net, unflat(t), (p[None],))[0, 0]

    jac = vmap(jacrev(f1), in_dims=(None, 0))

    def error(t) -> float:
        with torch.no_grad():
            return float(torch.linalg.norm(f(t, mesh) - exact) / torch.linalg.norm(exact))

    theta = torch.cat([v.reshape(-1) for v in params.values()])
    print("params", theta.numel(), "points", len(x))
    start = time.process_time()
    mu = 1e-3
    r = f(theta, x) - y
    loss = float(r @ r)
    for k in range(args.steps):
        J = jac(theta, x)
        A, g = J.T @ J, J.T @ r
        scale = A.diagonal().mean()
        while True:
            step = torch.linalg.solve(A + mu * scale * torch.eye(len(theta)), -g)
            r2 = f(theta + step, x) - y
            trial = float(r2 @ r2)
            if trial < loss:
                theta, r, loss, mu = theta + step, r2, trial, max(mu / 3, 1e-12)
                break
            mu *= 4
            if mu > 1e8:
                break
        if k % 100 == 0 or k == args.steps - 1:
            print(k, "rms", math.sqrt(loss / len(x)), "rel L2", error(theta), flush=True)
    print("final rel L2", error(theta), "CPU s", time.process_time() - start)


if __name__ == "__main__":
    main()
