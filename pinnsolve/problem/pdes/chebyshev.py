"""Chebyshev series for the bundled problems' reference solutions: evaluated in torch (any
dtype, device, differentiable by autograd), so a reference can be compared with a network and
pushed through a problem's own residual.

In 2D, on the unit square, the references of semilinear Dirichlet problems a·Δu + f(u) = 0 are
computed here too: Chebyshev–Lobatto collocation, and Newton deflated by the solutions already
found (:func:`solve_semilinear`), so that several solutions come out of a list of guesses."""

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


def sine_mode(m: int, k: int, amplitude: float) -> Guess:
    """The guess amplitude·sin(mπx)·sin(kπy): the Dirichlet Laplacian's (m, k) eigenfunction."""
    return lambda x, y: amplitude * np.sin(m * np.pi * x) * np.sin(k * np.pi * y)


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
        self.d2 = (d @ d)[1:-1, 1:-1]
        eye = np.eye(n - 1)
        self.laplacian = np.kron(self.d2, eye) + np.kron(eye, self.d2)

    def residual(self, u: np.ndarray) -> tuple[np.ndarray, float]:
        """a·Δu + f(u) at the interior points, and the scale of its terms (the larger max-norm
        of a·Δu and f(u)), which convergence is measured against. Δu is D²U + UD²ᵀ on the grid
        of values U rather than the (n − 1)⁴-entry ``laplacian`` times u: about n/2 times fewer
        operations, in products too small for BLAS to spread over threads (on a busy machine
        threaded matrix-vector products ran 40 times slower)."""
        grid = u.reshape(self.n - 1, self.n - 1)
        diffusion = self.problem.a * (self.d2 @ grid + grid @ self.d2.T).ravel()
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
        if any(rms(u - root) == 0 for root in known):
            return None  # M is infinite at a known solution: no step leads anywhere new
        with np.errstate(over="ignore", invalid="ignore"):  # a trial step may overflow f
            for _ in range(max_iter):
                residual, scale = self.residual(u)
                if np.abs(residual).max() <= tol * scale:
                    return u
                step = scipy.linalg.solve(self.jacobian(u), -residual, check_finite=False)
                step *= deflation_scale(u, step, known)
                merit = deflation_factor(u, known) * np.linalg.norm(residual)
                u = self._backtrack(u, step, merit, known)
                if u is None:
                    return None
        return None

    def polish(self, u: np.ndarray, tol: float, max_iter: int) -> np.ndarray | None:
        """Chord iterations from ``u`` (Newton with the Jacobian at ``u`` frozen) to within ``tol``,
        or None. From a coarser grid's solution they converge linearly at a rate about that
        solution's error, in a few steps, for one LU factorisation where Newton takes one per
        step."""
        factors = scipy.linalg.lu_factor(self.jacobian(u), check_finite=False)
        for _ in range(max_iter):
            residual, scale = self.residual(u)
            if np.abs(residual).max() <= tol * scale:
                return u
            u = u - scipy.linalg.lu_solve(factors, residual, check_finite=False)
        return None

    def jacobian(self, u: np.ndarray) -> np.ndarray:
        """a·Δ + diag(f'(u)), dense."""
        return self.problem.a * self.laplacian + np.diag(self.problem.df(u))

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
    RMS over the n points, has ∇log m_i = −p ‖e‖^(−p) / m_i · e / (n ‖e‖²)."""
    slope = 0.0
    for root in known:
        e = u - root
        norm = rms(e)
        shrink = norm**-DEFLATION_POWER
        slope -= (
            DEFLATION_POWER * shrink / (shrink + DEFLATION_SHIFT) * (e @ step) / (len(e) * norm**2)
        )
    return 1 / (1 - slope)


def relative_gap(u: np.ndarray, v: np.ndarray) -> float:
    """‖u − v‖ / max(‖u‖, ‖v‖) in RMS: 1 between u = 0 and any other solution."""
    return rms(u - v) / max(rms(u), rms(v), np.finfo(float).tiny)


def solve_semilinear(
    problem: Semilinear,
    guesses: Sequence[Guess],
    n: int,
    search_n: int | None = None,
    tol: float = 1e-10,
    max_iter: int = 50,
) -> list[ChebyshevSeries2D]:
    """Every distinct solution that deflated Newton reaches from ``guesses``, in the order found,
    as interpolants of degree ``n`` in each direction.

    Each guess is deflated by the solutions found before it. The search, where most Newton
    steps go (most of them on guesses that lead nowhere), runs on a coarser grid of
    ``search_n`` (default ``n``); each solution found there is then polished on the fine grid
    by chord iterations from its interpolant (:meth:`SquareCollocation.polish`). A polish that
    fails, or lands on a solution already polished, raises RuntimeError: the coarse grid is
    then too coarse to tell the solutions apart."""
    search = SquareCollocation(problem, search_n or n)
    found: list[np.ndarray] = []
    for guess in guesses:
        u = search.newton(guess(search.x, search.y), found, tol, max_iter)
        if u is not None and all(relative_gap(u, v) > SAME_SOLUTION for v in found):
            found.append(u)
    if search.n == n:
        return [search.series(u) for u in found]
    fine = SquareCollocation(problem, n)
    polished: list[np.ndarray] = []
    for u in found:
        coef = search.series(u).coef
        start = chebyshev.chebval2d(2 * fine.x - 1, 2 * fine.y - 1, coef)
        v = fine.polish(start, tol, max_iter)
        if v is None or any(relative_gap(v, w) <= SAME_SOLUTION for w in polished):
            raise RuntimeError(
                f"a solution found with {search.n + 1}² points did not polish into a new one "
                f"with {n + 1}²: search on a finer grid"
            )
        polished.append(v)
    return [fine.series(u) for u in polished]
