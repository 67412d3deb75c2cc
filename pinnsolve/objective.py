"""What training minimises: the PDE residual on interior points and each condition's values.

:class:`PinnObjective` owns the collocation sets (interior points and, per condition, the points
of its boundary part with their outward normals) and evaluates a network on them. It returns the
objective ``f = Σ_equations mean r²`` and, per condition, the pointwise ``g = value − target``
separately, so that how conditions enter the loss (a penalty here; MDMM constraints elsewhere) is
decided by the caller, not baked in.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

import numpy as np
import torch
from torch import Tensor

from .constraints import ConstraintSpec
from .derivatives.fields import AutogradEngine, Engine
from .problem.base import Problem
from .problem.conditions import Condition
from .problem.geometry import BoundarySample
from .problem.graded import CornerGrading, corner_samples


@dataclass(frozen=True)
class ConditionPoints:
    """One condition with the field it acts on and its fixed point set."""

    condition: Condition
    field: str
    points: Tensor
    normals: Tensor

    @property
    def label(self) -> str:
        return self.condition.label()


@dataclass
class Evaluation:
    """One evaluation of a network: the objective, each equation's residual, each condition's g."""

    objective: Tensor
    residuals: list[Tensor]
    g: dict[str, Tensor]
    #: the RMS of the residual's largest term (:meth:`Problem.terms`), None when not declared
    scale: Tensor | None = None

    def residual_rms(self) -> float:
        """The residual's RMS over points and equations, ``√(f / equations)`` (a host read)."""
        return math.sqrt(max(float(self.objective.detach()), 0.0) / max(len(self.residuals), 1))

    def measured_residual(self) -> float:
        """What tolerances and acceptance compare: :meth:`residual_rms` over ``max(1, scale)``
        when the problem declares its terms, else :meth:`residual_rms` itself. Relative where
        the equation's terms are large (Bratu's upper branch: 21), absolute where they are
        below 1: at u = 0 of Allen–Cahn every term vanishes and a ratio would judge rounding
        noise (measured: 0.55 for a residual of 1e-12)."""
        rms = self.residual_rms()
        return rms if self.scale is None else rms / max(float(self.scale), 1.0)


def sample_conditions(
    problem: Problem,
    n_per_part: int,
    method: str,
    seed: int,
    dtype,
    device,
    interior: np.ndarray,
    extra: Sequence[Condition] = (),
) -> list[ConditionPoints]:
    """Point sets of every condition: a part shared by several conditions gets the same points;
    conditions on the domain (integrals, inequalities) use ``interior``."""
    geom = problem.geometry()
    parts: dict[str, BoundarySample] = {}
    for i, part in enumerate(geom.parts):
        parts[part] = geom.sample_part(part, n_per_part, method, seed=_part_seed(seed, i))
    result = []
    for cond, field in problem.checked_conditions(list(extra)):
        placed = cond.place(geom, parts, interior)
        as_tensor = lambda a: torch.as_tensor(a, dtype=dtype, device=device)  # noqa: E731
        result.append(
            ConditionPoints(cond, field, as_tensor(placed.points), as_tensor(placed.normals))
        )
    return result


def _part_seed(seed: int, index: int) -> int:
    """Distinct, reproducible seeds for the boundary parts (the interior uses ``seed`` itself,
    the points graded toward the corners index -1)."""
    return int(np.random.SeedSequence([seed, index + 1]).generate_state(1)[0])


class PinnObjective:
    """Residual and condition values of a network on fixed collocation sets."""

    def __init__(
        self,
        problem: Problem,
        interior: Tensor,
        conditions: list[ConditionPoints],
        engine: Engine | None = None,
        extra: Sequence[Condition] = (),
        corner_layer: float = 0.0,
    ):
        self.problem = problem
        self.interior = interior
        self.conditions = conditions
        #: conditions added from outside the problem class (kept to rebuild validation sets)
        self.extra = tuple(extra)
        self.engine = engine or AutogradEngine()
        #: residual weights min(1, d / corner_layer) near the domain's corners (0: none)
        self.corner_layer = corner_layer
        geom = problem.geometry()
        self._coords = geom.coords
        self._spatial = problem.spatial_coords

    @classmethod
    def sampled(
        cls,
        problem: Problem,
        n_interior: int,
        n_boundary: int,
        method: str,
        seed: int,
        dtype,
        device,
        extra: Sequence[Condition] = (),
        corner_layer: float = 0.0,
        grading: CornerGrading | None = None,
    ) -> PinnObjective:
        """Draw the collocation sets from the problem's geometry (reproducible from ``seed``);
        ``extra`` conditions (from a TOML file) join the problem's own. With ``grading``, a
        share of the ``n_interior`` points is drawn near the domain's corners
        (:mod:`~pinnsolve.problem.graded`); conditions on the domain (integrals, inequalities)
        keep the evenly drawn ones, which are a quadrature of the domain and the graded ones
        are not."""
        geom = problem.geometry()
        n_graded = grading.count(n_interior, geom) if grading else 0
        interior = geom.sample_interior(n_interior - n_graded, method, seed)
        conditions = sample_conditions(
            problem, n_boundary, method, seed, dtype, device, interior, extra
        )
        if n_graded:
            graded = corner_samples(geom, n_graded, grading, method, _part_seed(seed, -1))
            interior = np.concatenate([interior, graded])
        interior = torch.as_tensor(interior, dtype=dtype, device=device)
        return cls(problem, interior, conditions, extra=extra, corner_layer=corner_layer)

    @property
    def labels(self) -> list[str]:
        return [c.label for c in self.conditions]

    def constraint_specs(self, settings: Callable[[str], dict]) -> list[ConstraintSpec]:
        """One constraint per condition: its sense, its number of values (one for an integral)
        and the settings ``settings(label)`` gives (method, multipliers, damping, ...)."""
        specs = []
        for c in self.conditions:
            s = settings(c.label)
            scalar = c.condition.scalar
            specs.append(ConstraintSpec(
                name=c.label,
                n=c.condition.n_values(int(c.points.shape[0])),
                kind=c.condition.constraint_sense(),
                method=s["method"],
                multiplier="scalar" if scalar else s["multipliers"],
                damping=s["damping"], scale=s["scale"], dual_lr=s["dual_lr"], weight=s["weight"],
            ))  # fmt: skip
        return specs

    def residuals_at(self, model, points: Tensor, engine: Engine | None = None) -> list[Tensor]:
        """Each equation's residual at arbitrary points."""
        x, f = self._fields(model, points, engine)
        return self.problem.residuals(x, f)

    def weights(self, points: Tensor) -> Tensor | None:
        """The residual's weight at each point: ``min(1, d / corner_layer)`` with ``d`` the
        distance to the domain's nearest corner or edge (None: every weight is 1).

        Where two Dirichlet faces meet, the equation and the boundary values disagree in general
        (Bratu: u = 0 on both edges forces Δu = 0 at the corner, where the PDE asks −λ), so the
        solution has a singular term (r² log r) that no smooth network reproduces. Unweighted,
        those few points hold the residual RMS at 5e-3–1e-2 on Bratu 2D however well the rest is
        solved, which hides convergence from the tolerances and weakens deflation's pole (a
        residual floor makes a non-solution look as good as a solution). The weights change no
        solution (they are positive inside the domain), only how much the corners count."""
        if not self.corner_layer:
            return None
        distance = self.problem.geometry().corner_distance(points)
        if distance is None:
            return None
        return torch.clamp(distance / self.corner_layer, max=1.0)

    def weighted_residuals_at(
        self, model, points: Tensor, engine: Engine | None = None
    ) -> list[Tensor]:
        """:meth:`residuals_at` times :meth:`weights`: what training and acceptance measure."""
        residuals = self.residuals_at(model, points, engine)
        w = self.weights(points)
        return residuals if w is None else [w * r for r in residuals]

    def condition_values(
        self, model, cond: ConditionPoints, points=None, normals=None, engine=None
    ) -> Tensor:
        """Pointwise g of one condition, on its own points unless others are given."""
        points = cond.points if points is None else points
        normals = cond.normals if normals is None else normals
        x, f = self._fields(model, points, engine)
        return cond.condition.residual(x, f, normals, self.problem.p, cond.field)

    def evaluate(self, model, engine: Engine | None = None, *, scale: bool = True) -> Evaluation:
        """Everything training needs at ``model`` (``engine``: another derivative engine than
        the objective's own, e.g. one that serves precomputed jets). ``scale=False`` leaves out
        the largest term's RMS (``Evaluation.scale`` is None) for a caller that does not read
        it: the Gauss–Newton Jacobian pushes the evaluation through forward-mode AD once per
        parameter column, which ``no_grad`` does not stop, and there the unread scale measured
        a third of the push (bratu2d, 3×32 network)."""
        x, f = self._fields(model, self.interior, engine)
        w = self.weights(self.interior)
        residuals = [r if w is None else w * r for r in self.problem.residuals(x, f)]
        objective = sum(r.square().mean() for r in residuals)
        g = {c.label: self.condition_values(model, c, engine=engine) for c in self.conditions}
        return Evaluation(objective, residuals, g, self._term_scale(x, f, w) if scale else None)

    def _term_scale(self, x, f, w: Tensor | None) -> Tensor | None:
        """The RMS (weighted like the residual) of the problem's largest term, detached."""
        terms = self.problem.terms(x, f, self.problem.p)
        if terms is None:
            return None
        with torch.no_grad():
            sizes = [(t if w is None else w * t).square().mean().sqrt() for t in terms]
            return torch.stack([s.detach() for s in sizes]).amax()

    def to(self, dtype: torch.dtype) -> PinnObjective:
        """A copy on the same points in another precision (the float64 polish)."""
        conditions = [
            replace(c, points=c.points.to(dtype), normals=c.normals.to(dtype))
            for c in self.conditions
        ]
        return PinnObjective(
            self.problem, self.interior.to(dtype), conditions, self.engine, self.extra,
            self.corner_layer,
        )  # fmt: skip

    def _fields(self, model, points, engine=None):
        engine = engine or self.engine
        return engine.fields(model, points, self.problem.fields, self._coords, self._spatial)
