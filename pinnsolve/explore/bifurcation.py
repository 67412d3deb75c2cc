"""Where a solution branch meets another: the critical mode of the linearized problem.

Why: continuation follows the branch it starts on; where another branch crosses it (elastica's
k-hump solutions leave the trivial one at λ = (kπ)²), nothing in the path itself turns off. At
such a point the linearized residual operator ``L = ∂F/∂u`` has a kernel: one of its eigenvalues
crosses zero, and the kernel's function ``φ`` is the direction the other branch leaves in.

A PINN's operator is only known through the network, so :func:`critical_mode` takes its Galerkin
projection onto the functions the network can move in (its tangent space at the current
parameters): with ``Φ = ∂u/∂θ`` on the comparison points (thin SVD ``U S Vᵀ``, rank ``r``), the
parameter directions ``W = V_r S_r⁻¹`` move the fields along the orthonormal functions ``U_r``;
``∂R/∂θ · W`` is ``L`` applied to them, and directions that also move the conditions
(``∂g/∂θ · W c ≠ 0``) are left out, as ``L``'s eigenfunctions satisfy the homogeneous
conditions. The eigenvalue of ``U_rᵀ L U_r`` (on that subspace) closest to zero is the critical
mode. Measured on elastica1d's trivial solution with a 2×32 network: ``λ − k²π²`` to 1e-2 for
k = 1…3 from a 10-function tangent space, 0.06 s per evaluation on a CPU.

A sign change of that eigenvalue between two path points, with the same eigenfunction at both
(an eigenvalue crossing zero, not another one becoming the closest), is a bifurcation — unless
the path itself turns there: at a fold the path's direction is ``(φ, 0)``, and the crossing is
the fold's, not a new branch's.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor
from torch.func import functional_call, jacrev

from ..optim.gauss_newton import StackedResiduals

#: eigenfunctions at two path points belong to one eigenvalue when their overlap exceeds this
SAME_MODE = 0.5
#: the parameter direction of a critical mode moves the fields along its eigenfunction to this
REPRESENTED = 1e-2
#: a path whose direction lies this close to the critical eigenfunction is turning at a fold
FOLD_ALIGNMENT = 0.9


@dataclass(frozen=True)
class CriticalMode:
    """The real eigenvalue of the projected linearized operator closest to zero, its
    eigenfunction on the comparison points (fields flattened field by field, RMS 1), and the
    parameter direction that moves the network's fields along it."""

    value: float
    fields: Tensor
    direction: Tensor

    @property
    def spectral(self) -> tuple[float, Tensor]:
        """What :func:`bifurcation_between` compares: the eigenvalue and its eigenfunction."""
        return self.value, self.fields


def critical_mode(stacked: StackedResiduals) -> CriticalMode | None:
    """The critical mode of the residual's linearization at the network's current parameters
    (see the module docstring), its functions on the interior collocation points; None when the
    problem has not one equation per field (no square operator to project) or the eigenvalue
    closest to zero is complex."""
    if not has_square_linearization(stacked):
        return None
    model, points = stacked.model, stacked.objective.interior
    n, fields = points.shape[0], len(stacked.objective.problem.fields)
    jac = stacked.jacobian()
    rows = n * fields
    params = {name: p.detach() for name, p in model.named_parameters() if p.requires_grad}
    per_param = jacrev(lambda q: functional_call(model, q, (points,)).T.reshape(-1))(params)
    phi = torch.cat([per_param[name].flatten(start_dim=1) for name in params], dim=1)
    u, s, vh = torch.linalg.svd(phi, full_matrices=False)
    tolerance = math.sqrt(torch.finfo(phi.dtype).eps)
    rank = int((s > tolerance * s[0]).sum())
    w = vh[:rank].T / s[:rank]
    applied = jac[:rows] * math.sqrt(n) @ w
    free = _null_space(jac[rows:] @ w, tolerance)
    if free.shape[1] == 0:
        return None
    basis = u[:, :rank] @ free
    projected = basis.T @ (applied @ free)
    values, vectors = torch.linalg.eig(projected)
    closest = int(values.abs().argmin())
    value = values[closest]
    if abs(float(value.imag)) > tolerance * float(values.abs().max()):
        return None
    function = basis @ vectors[:, closest].real.to(phi.dtype)
    function = function * math.sqrt(n) / function.norm()
    return CriticalMode(float(value.real), function, _least_norm(u, s, vh, function))


def has_square_linearization(stacked: StackedResiduals) -> bool:
    """Whether the problem has one equation per field, each with a value per interior point:
    then its linearization maps the fields' space onto itself and has eigenvalues."""
    n, fields = stacked.objective.interior.shape[0], len(stacked.objective.problem.fields)
    with torch.no_grad():
        equations = stacked.residual()[1].residuals
    return len(equations) == fields and all(r.numel() == n for r in equations)


def _least_norm(u: Tensor, s: Tensor, vh: Tensor, function: Tensor) -> Tensor:
    """The parameter direction that moves the fields along ``function`` (to within
    :data:`REPRESENTED`) with the smallest norm: through the fewest, largest singular values of
    ``Φ = U S Vᵀ``. The exact solve through all of Φ's range leans on singular values down to
    √eps: measured on elastica1d's trivial solution (2×32, parameters of norm 6), a direction
    of norm 1094 against 165 for this one, whose first-order prediction of the fields still
    erred by 2× the step at a step of 1e-3 (the network is that nonlinear there)."""
    coefficients = u.T @ function
    left = function.square().sum() - torch.cumsum(coefficients.square(), 0)
    rank = int((left > REPRESENTED**2 * function.square().sum()).sum()) + 1
    rank = min(rank, s.numel())
    return vh[:rank].T @ (coefficients[:rank] / s[:rank])


def _null_space(matrix: Tensor, tolerance: float) -> Tensor:
    """An orthonormal basis of ``{c : matrix c = 0}`` (columns); all of ``c``'s space when
    ``matrix`` has no rows or is zero."""
    size = matrix.shape[1]
    if matrix.shape[0] == 0 or not bool(matrix.abs().max() > 0):
        return torch.eye(size, dtype=matrix.dtype, device=matrix.device)
    _, s, vh = torch.linalg.svd(matrix, full_matrices=True)
    rank = int((s > tolerance * s[0]).sum())
    return vh[rank:].T


def bifurcation_between(
    before: tuple[float, Tensor], after: tuple[float, Tensor], d_fields: Tensor, d_value: float
) -> float | None:
    """Where between two path points (as a fraction of the way) a bifurcation lies, or None.

    ``before`` and ``after`` are the critical eigenvalue and eigenfunction at the two points
    (:attr:`CriticalMode.spectral`); ``d_fields`` and ``d_value`` the path's step between them in
    its scaled coordinates (fields over √N, the parameter over its scale). A bifurcation: the
    critical eigenvalue changed sign, its eigenfunction is the same one at both points, and the
    path does not run along it (which would be a fold)."""
    (value_0, fields_0), (value_1, fields_1) = before, after
    if value_0 * value_1 >= 0:
        return None
    n = fields_0.numel()
    if abs(float(fields_0 @ fields_1)) / n < SAME_MODE:
        return None
    step = math.sqrt(float(d_fields @ d_fields) + d_value**2)
    along = abs(float(d_fields @ fields_1)) / math.sqrt(n)
    if step > 0 and along / step > FOLD_ALIGNMENT:
        return None
    return value_0 / (value_0 - value_1)
