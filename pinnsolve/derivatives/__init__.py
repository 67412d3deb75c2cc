"""Derivatives of the network's fields at collocation points: the :class:`Coords` and
:class:`Fields` a residual reads, and the engines that compute them (autograd for any model and
order; forward jets through the MLP's layers). Imports nothing of pinnsolve but its errors."""

from .fields import AutogradEngine, Coords, Engine, Fields
from .forward import ForwardEngine, Jet, engine_named

__all__ = ["AutogradEngine", "Coords", "Engine", "Fields", "ForwardEngine", "Jet", "engine_named"]
