"""Chebyshev series for the bundled problems' reference solutions: evaluated in torch (any
dtype, device, differentiable by autograd), so a reference can be compared with a network and
pushed through a problem's own residual."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
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
