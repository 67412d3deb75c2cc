"""Optimizers of pinnsolve beyond torch's own: BBI (energy-conserving descent with bounces)."""

from . import bbi
from .bbi import *  # noqa: F403  (the public names are bbi.__all__)

__all__ = list(bbi.__all__)
