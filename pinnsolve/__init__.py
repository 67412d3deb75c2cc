"""pinnsolve: a physics-informed PDE solver that looks for all the solutions of a nonlinear PDE.

Public names are re-exported here; everything else is an implementation module.
"""

from .errors import ConfigError, PinnsolveError
from .io.config import Config, load_config
from .io.results import Result, Solution
from .optim.bbi import BBI, BBIConfig
from .problem import (
    Annulus,
    Box,
    Condition,
    Dirichlet,
    Disk,
    Inequality,
    Initial,
    Integral,
    Interval,
    MeshDomain,
    Neumann,
    Param,
    Periodic,
    Polygon,
    Problem,
    Rectangle,
    Robin,
    SpaceTime,
    Symmetry,
    get_problem,
    register,
    registered,
)
from .solver import solve
from .sweep import sweep
from .version import __version__

__all__ = [
    "Annulus", "BBI", "BBIConfig", "Box", "Condition", "Config", "ConfigError", "Dirichlet",
    "Disk", "Inequality", "Initial", "Integral", "Interval", "MeshDomain", "Neumann", "Param",
    "Periodic", "PinnsolveError", "Polygon", "Problem", "Rectangle", "Result", "Robin",
    "Solution", "SpaceTime", "Symmetry",
    "__version__", "get_problem", "load_config", "register", "registered", "solve", "sweep",
]  # fmt: skip
