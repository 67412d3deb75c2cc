"""The package version (its own module so that any module may read it without a circle)."""

__version__ = "0.1.0"
