"""The registry that names problems: bundled ones, installed plugins' and ``file.py:Class``.

A TOML file names a problem by registered name or as ``"my_pdes.py:MyProblem"`` (path relative to
the TOML file); installed packages can register problems under the entry-point group
``pinnsolve.problems``. The bundled problems (:mod:`pinnsolve.problem.pdes`) register themselves
when :mod:`pinnsolve.problem` is imported, so the registry does not import them.
"""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import Callable
from importlib.metadata import entry_points
from pathlib import Path

from ..errors import ConfigError, did_you_mean
from .base import Problem

_REGISTRY: dict[str, type[Problem]] = {}
_PLUGINS_LOADED = False


def register(name: str) -> Callable[[type[Problem]], type[Problem]]:
    """Class decorator: make a problem known by ``name`` (TOML files, ``pinnsolve problems``)."""

    def decorate(cls: type[Problem]) -> type[Problem]:
        if not (isinstance(cls, type) and issubclass(cls, Problem)):
            raise TypeError(f"@register({name!r}) expects a Problem subclass")
        existing = _REGISTRY.get(name)
        if existing is not None and existing.__qualname__ != cls.__qualname__:
            raise ValueError(f"problem name {name!r} is already registered by {existing}")
        cls.name = name
        _REGISTRY[name] = cls
        return cls

    return decorate


def registered() -> dict[str, type[Problem]]:
    """All registered problems: the bundled ones and those of installed plugins."""
    global _PLUGINS_LOADED
    if not _PLUGINS_LOADED:
        _PLUGINS_LOADED = True
        for ep in entry_points(group="pinnsolve.problems"):
            obj = ep.load()
            if isinstance(obj, type) and issubclass(obj, Problem) and ep.name not in _REGISTRY:
                register(ep.name)(obj)
    return dict(sorted(_REGISTRY.items()))


def get_problem(spec: str, base_dir: Path | None = None) -> type[Problem]:
    """Resolve a registered name or ``"path/to/file.py:ClassName"`` (relative to ``base_dir``)."""
    if ":" in spec:
        return _load_from_file(spec, base_dir or Path.cwd())
    problems = registered()
    if spec not in problems:
        raise ConfigError(
            f"unknown problem {spec!r}{did_you_mean(spec, problems)}; registered problems: "
            f"{', '.join(problems)} (or use 'file.py:ClassName')",
            key="[problem] name",
        )
    return problems[spec]


def _load_from_file(spec: str, base_dir: Path) -> type[Problem]:
    file_part, _, class_name = spec.rpartition(":")
    key = "[problem] name"
    path = (base_dir / file_part).resolve()
    if not path.is_file():
        raise ConfigError(f"problem file {str(path)!r} does not exist", key=key)
    module_name = f"pinnsolve_user_{abs(hash(str(path)))}"
    module = sys.modules.get(module_name)
    if module is None:
        loader_spec = importlib.util.spec_from_file_location(module_name, path)
        module = importlib.util.module_from_spec(loader_spec)
        sys.modules[module_name] = module
        try:
            loader_spec.loader.exec_module(module)
        except Exception as err:
            del sys.modules[module_name]
            text = " ".join(str(err).split())  # the error line must stay one line
            raise ConfigError(
                f"importing {path.name} failed: {type(err).__name__}: {text}", key=key
            ) from err
    cls = getattr(module, class_name, None)
    if cls is None:
        found = [
            n for n, v in vars(module).items() if isinstance(v, type) and issubclass(v, Problem)
        ]
        raise ConfigError(
            f"{path.name} has no class {class_name!r}{did_you_mean(class_name, found)}; "
            f"problem classes there: {', '.join(found) or 'none'}",
            key=key,
        )
    if not (isinstance(cls, type) and issubclass(cls, Problem)) or cls is Problem:
        raise ConfigError(f"{class_name!r} in {path.name} is not a Problem subclass", key=key)
    return cls
