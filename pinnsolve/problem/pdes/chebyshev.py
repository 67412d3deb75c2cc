"""Chebyshev series for the bundled problems' reference solutions: evaluated in torch (any
dtype, device, differentiable by autograd), so a reference can be compared with a network and
pushed through a problem's own residual."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import scipy.linalg
import torch
from numpy.polynomial import chebyshev
from torch import Tensor


@dataclass(frozen=True, eq=False)
class ChebyshevSeries:
    """Σ c_k T_k(t) with t the affine map of [lo, hi] onto [-1, 1]; read-only coefficients."""

    coef: np.ndarray
    lo: float = 0.0
    hi: float = 1.0

    def __post_init__(self) -> None:
        coef = np.array(self.coef, dtype=float)  # a private copy: cached series are shared
        coef.flags.writeable = False
        object.__setattr__(self, "coef", coef)

    @classmethod
    def interpolate(
        cls,
        func: Callable[[np.ndarray], np.ndarray],
        lo: float = 0.0,
        hi: float = 1.0,
        tol: float = 1e-14,
        max_degree: int = 4096,
    ) -> ChebyshevSeries:
        """Interpolate ``func`` (vectorised on [lo, hi]) at Chebyshev points, doubling the degree
        until the last coefficients fall below ``tol`` relative to the largest; trailing ones
        below that are dropped, as they only add noise to derivatives."""
        degree = 32
        while True:
            coef = chebyshev.chebinterpolate(lambda t: func(lo + (t + 1) * (hi - lo) / 2), degree)
            cutoff = tol * max(np.abs(coef).max(), np.finfo(float).tiny)
            if np.abs(coef[-4:]).max() <= cutoff:
                keep = np.nonzero(np.abs(coef) > cutoff)[0]
                return cls(coef[: keep[-1] + 1] if len(keep) else coef[:1], lo, hi)
            if degree >= max_degree:
                raise RuntimeError(
                    f"Chebyshev interpolation did not converge to {tol:g} at degree {degree}"
                )
            degree *= 2

    def __call__(self, x: Tensor) -> Tensor:
        """The series at ``x`` (Clenshaw's recurrence, in torch: differentiable by autograd)."""
        t = (2 * x - (self.lo + self.hi)) / (self.hi - self.lo)
        coef = torch.tensor(self.coef, dtype=x.dtype, device=x.device)
        b1 = b2 = torch.zeros_like(t)
        for c in coef.flip(0)[:-1]:
            b1, b2 = c + 2 * t * b1 - b2, b1
        return coef[0] + t * b1 - b2


def lobatto_points(n: int) -> np.ndarray:
    """The n + 1 Chebyshev–Lobatto points (1 − cos(jπ/n))/2 on [0, 1], ascending."""
    return (1 - np.cos(np.pi * np.arange(n + 1) / n)) / 2


def differentiation_matrix(n: int) -> np.ndarray:
    """d/dx at :func:`lobatto_points` on [0, 1] (Trefethen's ``cheb``: barycentric weights ±1,
    halved at the ends). Built from the points in [0, 1] themselves, so it is already twice the
    [-1, 1] matrix, and its square four times; the diagonal is minus the off-diagonal row sums,
    which keeps derivatives of constants exactly zero."""
    x = lobatto_points(n)
    c = np.ones(n + 1)
    c[[0, -1]] = 2.0
    c *= (-1.0) ** np.arange(n + 1)
    dx = x[:, None] - x[None, :]
    d = np.outer(c, 1 / c) / (dx + np.eye(n + 1))
    return d - np.diag(d.sum(axis=1))


def lobatto_to_chebyshev(n: int) -> np.ndarray:
    """The matrix taking values at :func:`lobatto_points` to the coefficients of the degree-n
    interpolant (the discrete cosine transform of type I, written as a matrix)."""
    t = 2 * lobatto_points(n) - 1
    ends = np.ones(n + 1)
    ends[[0, -1]] = 0.5
    return (2 / n) * ends[:, None] * chebyshev.chebvander(t, n).T * ends[None, :]


def chebyshev_basis(t: Tensor, count: int) -> Tensor:
    """T_0(t), …, T_{count−1}(t) stacked on a new last axis (three-term recurrence; stable on
    [-1, 1] and differentiable by autograd)."""
    basis = [torch.ones_like(t), t]
    while len(basis) < count:
        basis.append(2 * t * basis[-1] - basis[-2])
    return torch.stack(basis[:count], dim=-1)


@dataclass(frozen=True, eq=False)
class ChebyshevSeries2D:
    """Σ c_ij T_i(2x − 1) T_j(2y − 1) on the unit square [0, 1]²; read-only coefficients."""

    coef: np.ndarray

    def __post_init__(self) -> None:
        coef = np.array(self.coef, dtype=float)  # a private copy: cached series are shared
        if coef.ndim != 2:
            raise ValueError(f"2D Chebyshev coefficients must be a matrix, got shape {coef.shape}")
        coef.flags.writeable = False
        object.__setattr__(self, "coef", coef)

    @classmethod
    def from_grid(cls, values: np.ndarray) -> ChebyshevSeries2D:
        """The interpolant of ``values[i, j] = u(x_i, y_j)`` on the (n+1)×(n+1) tensor grid of
        :func:`lobatto_points`."""
        values = np.asarray(values, dtype=float)
        to_coef = lobatto_to_chebyshev(values.shape[0] - 1)
        return cls(to_coef @ values @ to_coef.T)

    def __call__(self, x: Tensor, y: Tensor) -> Tensor:
        """The series at the points (x, y), in their dtype and on their device; differentiable
        by autograd in x and y."""
        coef = torch.tensor(self.coef, dtype=x.dtype, device=x.device)
        tx = chebyshev_basis(2 * x - 1, coef.shape[0])
        ty = chebyshev_basis(2 * y - 1, coef.shape[1])
        return torch.einsum("...i,ij,...j->...", tx, coef, ty)



#: Deflation's power p and shift σ: M(u) = Π_i (‖u − u_i‖^(−p) + σ) (Farrell, Birkisson & Funke,
#: SIAM J. Sci. Comput. 37 (2015) A2026); σ = 1 lets M → 1 far from every known solution, so
#: that deflation does not stall Newton away from them.
DEFLATION_POWER = 2.0
DEFLATION_SHIFT = 1.0

#: Solutions closer than this (RMS of the difference over the larger RMS) count as one.
SAME_SOLUTION = 1e-6

#: Backtracking halves a Newton step at most this many times before giving up on a guess.
MAX_HALVINGS = 12

#: A guess of a solution: a function of the collocation points' x and y (numpy arrays).
Guess = Callable[[np.ndarray, np.ndarray], np.ndarray]


@dataclass(frozen=True)
class Semilinear:
    """a·Δu + f(u) = 0 on the unit square, u = 0 on its boundary; ``f`` and its derivative
    ``df`` act elementwise on numpy arrays."""

    a: float
    f: Callable[[np.ndarray], np.ndarray]
    df: Callable[[np.ndarray], np.ndarray]


class SquareCollocation:
    """Chebyshev–Lobatto collocation of a :class:`Semilinear` problem with n + 1 points per
    direction. The unknowns are the values at the (n − 1)² interior grid points (the boundary
    ones are zero), in row-major order of (x_i, y_j); the Jacobian is dense and solved by LU."""

    def __init__(self, problem: Semilinear, n: int):
        self.problem = problem
        self.n = n
        inner = lobatto_points(n)[1:-1]
        x, y = np.meshgrid(inner, inner, indexing="ij")
        self.x, self.y = x.ravel(), y.ravel()
        d = differentiation_matrix(n)
        d2 = (d @ d)[1:-1, 1:-1]
        eye = np.eye(n - 1)
        self.laplacian = np.kron(d2, eye) + np.kron(eye, d2)

    def residual(self, u: np.ndarray) -> tuple[np.ndarray, float]:
        """a·Δu + f(u) at the interior points, and the scale of its terms (the larger max-norm
        of a·Δu and f(u)), which convergence is measured against."""
        diffusion = self.problem.a * (self.laplacian @ u)
        reaction = self.problem.f(u)
        return diffusion + reaction, max(np.abs(diffusion).max(), np.abs(reaction).max())

    def newton(
        self, u: np.ndarray, known: Sequence[np.ndarray], tol: float, max_iter: int
    ) -> np.ndarray | None:
        """Deflated Newton from ``u``: a root of M(u)·F(u) where the residual F is within
        ``tol`` of its terms' scale, or None when it fails to get there in ``max_iter`` steps.

        The exact Jacobian of M·F is M·J + F·∇Mᵀ, a rank-one change of J: by Sherman–Morrison
        its step is the plain Newton step d = −J⁻¹F scaled by τ = 1 / (1 − ∇log M · d), so the
        deflation costs no extra solve. Far from a solution that step can be huge or point
        away (τ < 0 near a known solution); backtracking on ‖M·F‖, which the step descends,
        keeps the iterates from running off to infinity."""
        with np.errstate(over="ignore", invalid="ignore"):  # a trial step may overflow f
            for _ in range(max_iter):
                residual, scale = self.residual(u)
                if np.abs(residual).max() <= tol * scale:
                    return u
                jacobian = self.problem.a * self.laplacian + np.diag(self.problem.df(u))
                step = scipy.linalg.solve(jacobian, -residual, check_finite=False)
                step *= deflation_scale(u, step, known)
                merit = deflation_factor(u, known) * np.linalg.norm(residual)
                u = self._backtrack(u, step, merit, known)
                if u is None:
                    return None
        return None

    def _backtrack(
        self, u: np.ndarray, step: np.ndarray, merit: float, known: Sequence[np.ndarray]
    ) -> np.ndarray | None:
        """u + t·step for the first t = 1, ½, ¼, … that lowers ‖M·F‖ (Armijo, slope 10⁻⁴)."""
        t = 1.0
        for _ in range(MAX_HALVINGS + 1):
            trial = u + t * step
            residual, _ = self.residual(trial)
            if deflation_factor(trial, known) * np.linalg.norm(residual) <= (1 - 1e-4 * t) * merit:
                return trial
            t /= 2
        return None

    def series(self, u: np.ndarray) -> ChebyshevSeries2D:
        """The interpolant of the interior values ``u`` (zero on the boundary)."""
        grid = np.zeros((self.n + 1, self.n + 1))
        grid[1:-1, 1:-1] = u.reshape(self.n - 1, self.n - 1)
        return ChebyshevSeries2D.from_grid(grid)


def rms(u: np.ndarray) -> float:
    """The root mean square of ``u``: the norm deflation and distinctness use."""
    return float(np.sqrt(np.mean(np.square(u))))


def deflation_factor(u: np.ndarray, known: Sequence[np.ndarray]) -> float:
    """M(u) = Π_i (‖u − u_i‖^(−p) + σ)."""
    return float(np.prod([rms(u - root) ** -DEFLATION_POWER + DEFLATION_SHIFT for root in known]))


def deflation_scale(u: np.ndarray, step: np.ndarray, known: Sequence[np.ndarray]) -> float:
    """τ = 1 / (1 − ∇log M(u) · step): each factor m_i = ‖e‖^(−p) + σ, e = u − u_i, with ‖·‖ the
    RMS over the n points, has ∇log m_i = −p ‖e‖^(−p−2) e / (n m_i)."""
    slope = 0.0
    for root in known:
        e = u - root
        norm_sq = e @ e / len(e)
        shrink = norm_sq ** (-DEFLATION_POWER / 2)
        slope -= DEFLATION_POWER * shrink * (e @ step) / (len(e) * norm_sq * (shrink + DEFLATION_SHIFT))
    return 1 / (1 - slope)
