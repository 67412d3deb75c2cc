"""Bundled problems, one module per family; importing this package registers them."""

from . import allen_cahn2d, bbi_disk, bratu, bratu2d, elastica, heat, lshape, poisson, ring  # noqa: F401
