"""Bundled problems, one module per family; importing this package registers them."""

from . import bratu, heat, poisson  # noqa: F401
