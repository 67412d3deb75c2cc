"""Forming the Gauss–Newton Jacobian: the library's method against the one it replaced.

For bundled problem files (``problems/<name>.toml``, their own sampling, corner weights and MDMM
constraints; sizes overridden per case) the Levenberg–Marquardt polish's residual vector is built
as a run builds it (float64, the network at its initialisation: the cost does not depend on the
parameters' values) and ``jacobian()`` is timed against :func:`jacobian_before`, the method before
``StackedResiduals`` differentiated only what the residual reads:

* ``before``: ``∂jet/∂θ`` of the whole jet (value, gradient, full Hessian up to the order asked)
  at every point by ``vmap(jacrev)`` over all points at once, then ``jvp`` through the whole
  evaluation (term scale included) per parameter column, 256 columns at a time (commit 4682772);
* ``now``: the same two stages on the entries the residual reads (bratu2d: u, u_xx, u_yy instead
  of 7 jet components), from a jet that carries the Hessian's diagonal alone when no mixed
  derivative is read, 512 points at a time, and without the term scale in the push, as many
  columns at a time as make about 2²⁰ entries of J.

The two are called alternately, ``--repeats`` times each, and the medians compared (a shared
machine drifts; compare the ratio, not the seconds across runs). Both Jacobians must agree to
1e-12 relative (largest difference over the largest entry), or the script exits with 1::

    OMP_NUM_THREADS=1 python benchmarks/jacobian_speed.py [--repeats 7]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

import torch
from common import device_line
from torch import Tensor, nn
from torch.func import functional_call, jacrev, jvp, vmap

from pinnsolve.build import validate
from pinnsolve.derivatives.fields import Coords, Engine
from pinnsolve.derivatives.forward import ForwardFields, Jet
from pinnsolve.io.config import load_config
from pinnsolve.io.progress import Progress
from pinnsolve.optim.gauss_newton import Bound, StackedResiduals
from pinnsolve.parallel.distributed import SINGLE
from pinnsolve.run import Run

ROOT = Path(__file__).resolve().parent.parent
#: the largest relative difference accepted between the two Jacobians
AGREEMENT = 1e-12


@dataclass(frozen=True)
class Case:
    """A bundled problem file with its sizes overridden."""

    problem: str
    interior: int | None = None  # None: the file's
    boundary: int | None = None
    hidden: tuple[int, ...] | None = None

    def label(self, stacked: StackedResiduals) -> str:
        """``problem, N points, layers×width``."""
        widths = [layer.out_features for layer in stacked.model.net
                  if isinstance(layer, nn.Linear)][:-1]  # fmt: skip
        points = len(stacked.objective.interior)
        return f"{self.problem}, {points} points, {len(widths)}×{widths[0]}"


CASES = (
    Case("bratu2d"),  # the bundled file: 2048 interior points, 4 × 64 on the boundary, 2×20
    Case("bratu2d", interior=512, boundary=32),
    Case("bratu2d", hidden=(32, 32, 32)),
    Case("bratu2d", interior=512, boundary=32, hidden=(32, 32, 32)),
    Case("bratu1d"),  # 128 points, 2×32
)


def stacked_residuals(case: Case) -> StackedResiduals:
    """The polish's residual vector of ``case`` as :class:`pinnsolve.run.Run` builds it."""
    config = load_config(ROOT / "problems" / f"{case.problem}.toml")
    s = config.sampling
    config = replace(
        config,
        sampling=replace(s, interior=case.interior or s.interior,
                         boundary=case.boundary or s.boundary),
        model=replace(config.model, hidden=list(case.hidden or config.model.hidden)),
        explore=replace(config.explore, strategy="none"),
        output=replace(config.output, plots=False, checkpoint_every=0),
    )  # fmt: skip
    problem, extra = validate(config)
    run = Run(problem, extra, config, torch.device("cpu"), torch.float32, None,
              Progress(quiet=True), SINGLE)  # fmt: skip
    run.to_polish_settings()  # float64
    return run.stacked_residuals()


class WholeJets(Engine):
    """Fields served from whole jets (keyed by the point tensor's id), as the method served them."""

    name = "whole-jets"

    def __init__(self, jets: dict[int, Jet]):
        self.jets = jets

    def fields(self, model, points, field_names, coord_names, spatial):
        jet = self.jets[id(points)]
        fields = ForwardFields(lambda order: jet, field_names, coord_names, spatial)
        return Coords(points, coord_names), fields


def jacobian_before(stacked: StackedResiduals) -> Tensor:
    """``∂R/∂θ`` as ``StackedResiduals.jacobian`` formed it before: through every component of
    each point set's jet (to the highest order read there, the Hessian in full)."""
    model, objective = stacked.model, stacked.objective
    jet_module = Bound(model, model.jet)
    params = {f"model.{n}": p.detach() for n, p in model.named_parameters() if p.requires_grad}
    d, m = objective.interior.shape[1], len(objective.problem.fields)
    sets = stacked._sets  # the point sets; the order asked of each is the highest order read
    orders = {k: max((len(c) for _, c in s.reads), default=0) for k, s in sets.items()}
    keys = list(sets)

    def flatten(jet: Jet) -> Tensor:
        parts = [t for t in (jet.value, jet.grad, jet.hess) if t is not None]
        return torch.cat([t.reshape(t.shape[0], -1) for t in parts], dim=1)

    def unflatten(flat: Tensor, order: int) -> Jet:
        n = flat.shape[0]
        grad = flat[:, m : m + d * m].reshape(n, d, m) if order >= 1 else None
        hess = flat[:, m + d * m :].reshape(n, d, d, m) if order >= 2 else None
        return Jet(flat[:, :m], grad, hess)

    primals, tangents = [], []
    for key in keys:

        def point_jet(p, x1, order=orders[key]):
            flat = flatten(functional_call(jet_module, p, (x1, order)))[0]
            return flat, flat.detach()

        x = sets[key].points.detach()
        per_point, jet = vmap(jacrev(point_jet, has_aux=True), in_dims=(None, 0))(
            params, x.unsqueeze(1)
        )
        primals.append(jet)
        tangents.append(torch.cat([per_point[n].flatten(start_dim=2) for n in params], dim=2))

    def residual(*flat_jets: Tensor) -> Tensor:
        jets = {k: unflatten(j, orders[k]) for k, j in zip(keys, flat_jets, strict=True)}
        return stacked.residual(WholeJets(jets))[0]

    def column(*tangent_cols: Tensor) -> Tensor:
        return jvp(residual, tuple(primals), tangent_cols)[1]

    return vmap(column, in_dims=2, chunk_size=256)(*tangents).T  # its default chunk


def alternating_medians(runs: dict[str, Callable[[], object]], repeats: int) -> dict[str, float]:
    """Median seconds per call of each run, calling them in turn ``repeats`` times."""
    seconds: dict[str, list[float]] = {name: [] for name in runs}
    for _ in range(repeats):
        for name, run in runs.items():
            start = time.perf_counter()
            run()
            seconds[name].append(time.perf_counter() - start)
    return {name: statistics.median(s) for name, s in seconds.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=7, help="calls of each method per case")
    args = parser.parse_args()
    print(device_line("float64"))
    print("| case | rows × params | before | now | speed-up | largest difference |")
    print("| --- | --- | --- | --- | --- | --- |")
    agree = True
    for case in CASES:
        stacked = stacked_residuals(case)
        before, now = jacobian_before(stacked), stacked.jacobian()
        difference = float((now - before).abs().max() / before.abs().max())
        agree &= difference <= AGREEMENT
        t = alternating_medians({"before": lambda s=stacked: jacobian_before(s),
                                 "now": stacked.jacobian}, args.repeats)  # fmt: skip
        print(f"| {case.label(stacked)} | {stacked.n_rows} × {stacked.n_params} "
              f"| {t['before']:.3f} s | {t['now']:.3f} s | {t['before'] / t['now']:.2f}× "
              f"| {difference:.1e} |", flush=True)  # fmt: skip
    if not agree:
        print(f"the Jacobians differ by more than {AGREEMENT:g} (relative)")
        sys.exit(1)


if __name__ == "__main__":
    main()
