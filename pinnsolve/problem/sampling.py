"""Point sets in the unit hypercube; geometries map them onto their domains.

Quasi-random sequences (Sobol, Halton) cover a domain more evenly than uniform random points at
the same count, which lowers the quadrature error of the mean-squared residual; ``grid`` gives
cell-centred points (never on the boundary, where interior residuals are not wanted).
"""

from __future__ import annotations

import math

import numpy as np
from scipy.stats import qmc

METHODS = ("uniform", "sobol", "halton", "grid")


def unit_samples(n: int, dim: int, method: str, seed: int) -> np.ndarray:
    """``n`` points in ``[0, 1]^dim`` (shape ``[n, dim]``, float64), reproducible from ``seed``.

    ``grid`` makes ``m^dim`` cell centres with ``m = ceil(n^(1/dim))`` and returns ``n`` of them
    picked by a seeded shuffle, so the count asked for is the count returned.
    """
    if n < 0:
        raise ValueError(f"number of points must be >= 0, got {n}")
    if dim == 0 or n == 0:
        return np.zeros((n, dim))
    if method == "uniform":
        return np.random.default_rng(seed).random((n, dim))
    if method == "sobol":
        # Sobol balance properties hold for powers of two; drawing the next power and truncating
        # keeps the requested count without scipy's warning.
        m = max(0, math.ceil(math.log2(n)))
        return qmc.Sobol(d=dim, scramble=True, seed=seed).random_base2(m)[:n]
    if method == "halton":
        return qmc.Halton(d=dim, scramble=True, seed=seed).random(n)
    if method == "grid":
        m = math.ceil(round(n ** (1.0 / dim), 9))
        axis = (np.arange(m) + 0.5) / m
        mesh = np.stack(np.meshgrid(*([axis] * dim), indexing="ij"), axis=-1).reshape(-1, dim)
        order = np.random.default_rng(seed).permutation(len(mesh))[:n]
        return mesh[np.sort(order)]
    raise ValueError(f"unknown sampling method {method!r}; expected one of {', '.join(METHODS)}")
