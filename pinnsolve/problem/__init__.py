"""What a problem is: the :class:`Problem` class, its parameters, conditions, domains, collocation
sampling, the whitelisted TOML expressions, the registry that names problems, and the bundled
PDE families (:mod:`pinnsolve.problem.pdes`, registered on import). Imports only
:mod:`pinnsolve.derivatives` and the errors: a problem knows nothing of networks or training."""

from . import pdes  # noqa: E402, F401, I001  (last: the bundled problems register themselves)
from .base import Problem
from .conditions import (
    Condition,
    Dirichlet,
    Inequality,
    Initial,
    Integral,
    Neumann,
    Periodic,
    Robin,
)
from .geometry import Box, Disk, Geometry, Interval, Rectangle, SpaceTime
from .mesh_domain import MeshDomain
from .params import Param, Params
from .registry import get_problem, register, registered
from .shapes import Annulus, Polygon
from .symmetry import Symmetry

__all__ = [
    "Annulus", "Box", "Condition", "Dirichlet", "Disk", "Geometry", "Inequality", "Initial",
    "Integral", "Interval", "MeshDomain", "Neumann", "Param", "Params", "Periodic", "Polygon",
    "Problem", "Rectangle", "Robin", "SpaceTime", "Symmetry", "get_problem", "register",
    "registered",
]  # fmt: skip
