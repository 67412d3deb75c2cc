"""Evaluate a trained network on the export mesh: fields, residuals, errors, infeasibility."""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor, nn

from ..derivatives.fields import Coords
from ..objective import PinnObjective, sample_conditions
from ..problem.geometry import EvalMesh
from .results import Solution, exact_errors, signed_stats

#: Points per batch when evaluating residuals (bounds the memory of the double-backward graph).
BATCH = 16384

#: Points per boundary part of the validation set on which infeasibility is measured.
VALIDATION_POINTS = 512

#: Domain points of the validation set (integral and inequality conditions).
VALIDATION_INTERIOR = 4096


def evaluate_solution(
    name: str, model: nn.Module, objective: PinnObjective, mesh: EvalMesh, seed: int
) -> Solution:
    """Metrics of ``model`` as a solution: on the mesh (fields, residual, exact errors) and on a
    fresh validation point set per condition (infeasibility), so that what is reported is not
    measured on the points training saw."""
    problem = objective.problem
    param = next(model.parameters())
    points = torch.as_tensor(mesh.points, dtype=param.dtype, device=param.device)
    values = {f: [] for f in problem.fields}
    residuals: list[list[np.ndarray]] = []
    for start in range(0, len(points), BATCH):
        chunk = points[start : start + BATCH]
        res = objective.residuals_at(model, chunk)
        with torch.no_grad():
            out = model(chunk)
        for i, f in enumerate(problem.fields):
            values[f].append(out[:, i].cpu().numpy())
        if not residuals:
            residuals = [[] for _ in res]
        for acc, r in zip(residuals, res, strict=True):
            acc.append(r.detach().cpu().numpy())
    values = {f: np.concatenate(v) for f, v in values.items()}
    res_arrays = [np.concatenate(r) for r in residuals]
    res_names = (
        ["residual"] if len(res_arrays) == 1 else [f"residual_{i}" for i in range(len(res_arrays))]
    )
    # the measure training and acceptance use: weighted near corners when [sampling] asks
    weights = objective.weights(points)
    w = 1.0 if weights is None else weights.detach().cpu().numpy()
    residual_rms = float(np.sqrt(sum(np.mean((w * r) ** 2) for r in res_arrays)))

    conditions = {}
    geom = problem.geometry()
    validation_seed = seed + 7919
    validation = sample_conditions(
        problem, VALIDATION_POINTS, "halton", validation_seed, param.dtype, param.device,
        geom.sample_interior(VALIDATION_INTERIOR, "halton", validation_seed), objective.extra,
    )  # fmt: skip
    for cond in validation:
        g = cond.condition.violation(objective.condition_values(model, cond).detach())
        conditions[cond.label] = {"rms": float(g.square().mean().sqrt()), "max": float(g.max())}
    max_infeasibility = max((c["max"] for c in conditions.values()), default=0.0)

    exact = problem.exact_solutions(Coords(points, problem.geometry().coords))
    exact_np = [{f: v.detach().cpu().numpy() for f, v in branch.items()} for branch in exact]
    norms = {
        f: {"l2": float(np.sqrt(np.mean(v**2))), "max": float(np.abs(v).max())}
        for f, v in values.items()
    }
    errors = exact_errors(values, exact_np)
    stats, centre = signed_stats(values, mesh.points, mesh.coords)
    return Solution(
        name=name,
        values=values,
        residuals=dict(zip(res_names, res_arrays, strict=True)),
        residual_rms=residual_rms,
        max_infeasibility=max_infeasibility,
        conditions=conditions,
        rel_l2_to_exact=errors,
        exact=exact_np[int(np.argmin(errors))] if errors else None,
        norms=norms,
        stats=stats,
        centre=centre,
        model_state={k: v.detach().cpu().clone() for k, v in model.state_dict().items()},
    )


#: the most mesh points the history's error column is measured on
PROBE_POINTS = 65536


class ExactError:
    """The relative L2 error of a network against the closest known exact solution on the
    evaluation mesh, as a 0-d tensor on the network's device: the history's ``rel_l2_error``
    column. It reads nothing back to the host, so a training step stays free of syncs; the trainer
    copies it with the rest of a log row. It measures what :func:`~.results.exact_errors` measures
    for the final report (the zero branch relative to the largest known solution's norm), against
    the exact solutions at the problem's parameters when it was built (a continuation moving a
    parameter does not move them).
    """

    def __init__(self, points: np.ndarray, branches: list[np.ndarray]):
        norms = [float(np.linalg.norm(b)) for b in branches]
        scale = max(norms, default=0.0)
        self.floors = [max(n, scale if n <= 1e-12 * scale else 1e-12) for n in norms]
        self.points, self.branches = points, branches
        self._cache: dict[tuple, tuple[Tensor, list[Tensor]]] = {}

    @classmethod
    def of(cls, problem, mesh: EvalMesh) -> ExactError | None:
        """The probe for ``problem`` on ``mesh`` (at most :data:`PROBE_POINTS` of a larger mesh's
        points, evenly strided, so that a 3-D mesh does not slow the log rows), or None when the
        problem knows no exact solution."""
        stride = -(-len(mesh.points) // PROBE_POINTS)
        points = torch.as_tensor(mesh.points[::stride], dtype=torch.float64)
        exact = problem.exact_solutions(Coords(points, problem.geometry().coords))
        if not exact:
            return None
        branches = [np.stack([b[f].detach().cpu().numpy() for f in problem.fields], 1)
                    for b in exact]  # fmt: skip
        return cls(mesh.points[::stride], branches)

    @torch.no_grad()
    def __call__(self, model: nn.Module) -> Tensor:
        like = next(model.parameters())
        key = (like.dtype, like.device)
        if key not in self._cache:
            self._cache[key] = (
                torch.as_tensor(self.points, dtype=like.dtype, device=like.device),
                [torch.as_tensor(b, dtype=like.dtype, device=like.device) for b in self.branches],
            )
        points, branches = self._cache[key]
        out = model(points)
        errors = [(out - b).norm() / f for b, f in zip(branches, self.floors, strict=True)]
        return torch.stack(errors).min()
