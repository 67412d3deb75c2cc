"""pinnsolve: a physics-informed PDE solver that looks for all the solutions of a nonlinear PDE.

Public names are re-exported here; everything else is an implementation module.
"""

__version__ = "0.1.0"

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
from .config import Config, load_config
from .errors import ConfigError, PinnsolveError
from .geometry import Box, Disk, Interval, Rectangle, SpaceTime
from .problem import Param, Problem, get_problem, register, registered
from .results import Result, Solution
from .solver import solve

__all__ = [
    "Box", "Condition", "Config", "ConfigError", "Dirichlet", "Disk", "Inequality", "Initial",
    "Integral", "Interval", "Neumann", "Param", "Periodic", "PinnsolveError", "Problem",
    "Rectangle", "Result", "Robin", "Solution", "SpaceTime", "__version__", "get_problem",
    "load_config", "register", "registered", "solve",
]  # fmt: skip
