"""The registry that names problems: bundled ones, installed plugins' and ``file.py:Class``.

A TOML file names a problem by registered name or as ``"my_pdes.py:MyProblem"`` (path relative to
the TOML file); installed packages can register problems under the entry-point group
``pinnsolve.problems``. The bundled problems (:mod:`pinnsolve.problem.pdes`) register themselves
when :mod:`pinnsolve.problem` is imported, so the registry does not import them.
"""

from __future__ import annotations

from collections.abc import Callable
from importlib.metadata import entry_points
from pathlib import Path

from ..errors import ConfigError, did_you_mean
from ..user_code import Registry, class_spec, load_class
from .base import Problem

_REGISTRY = Registry(Problem, "problem")
_PLUGINS_LOADED = False


def register(name: str) -> Callable[[type[Problem]], type[Problem]]:
    """Class decorator: make a problem known by ``name`` (TOML files, ``pinnsolve problems``)."""
    return _REGISTRY.register(name)


def registered() -> dict[str, type[Problem]]:
    """All registered problems: the bundled ones and those of installed plugins."""
    global _PLUGINS_LOADED
    if not _PLUGINS_LOADED:
        _PLUGINS_LOADED = True
        for ep in entry_points(group="pinnsolve.problems"):
            obj = ep.load()
            if (
                isinstance(obj, type)
                and issubclass(obj, Problem)
                and ep.name not in _REGISTRY.classes
            ):
                register(ep.name)(obj)
    return dict(sorted(_REGISTRY.classes.items()))


def get_problem(spec: str, base_dir: Path | None = None) -> type[Problem]:
    """Resolve a registered name or ``"path/to/file.py:ClassName"`` (relative to ``base_dir``)."""
    if ":" in spec:
        return load_class(spec, base_dir or Path.cwd(), Problem, "problem", "[problem] name")
    problems = registered()
    if spec not in problems:
        raise ConfigError(
            f"unknown problem {spec!r}{did_you_mean(spec, problems)}; registered problems: "
            f"{', '.join(problems)} (or use 'file.py:ClassName')",
            key="[problem] name",
        )
    return problems[spec]


def problem_spec(cls: type[Problem], base_dir: Path) -> str:
    """How a TOML file names ``cls``: its registered name, else ``"file.py:ClassName"``
    (:func:`~pinnsolve.user_code.class_spec`), else (a class without a file) its
    ``module.ClassName``."""
    if registered().get(cls.name) is cls:
        return cls.name
    return class_spec(cls, base_dir) or f"{cls.__module__}.{cls.__qualname__}"
