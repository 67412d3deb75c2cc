"""Bundled problems, one module per family; importing this package registers them."""

from . import bbi_disk, bratu, elastica, heat, poisson  # noqa: F401
