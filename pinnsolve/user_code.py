"""Classes named in a TOML file: registered under a name (:class:`Registry`), or from a user's
own ``.py`` file as ``"file.py:ClassName"`` (a path relative to the TOML file; :func:`load_class`).
Problems (``[problem] name``) and explorer strategies (``[explore] strategy``) are named both
ways. Below every layer, so that each registry can use it."""

from __future__ import annotations

import importlib.util
import inspect
import sys
from collections.abc import Callable
from pathlib import Path

from .errors import ConfigError, did_you_mean


class Registry:
    """Subclasses of ``base`` by name; ``what`` names their kind in messages."""

    def __init__(self, base: type, what: str):
        self.base, self.what = base, what
        self.classes: dict[str, type] = {}

    def register(self, name: str) -> Callable[[type], type]:
        """Class decorator: make a class known as ``name`` (it gets ``cls.name = name``); a
        second class under a taken name is an error, the same class again (a reloaded module)
        is not."""

        def decorate(cls: type) -> type:
            if not (isinstance(cls, type) and issubclass(cls, self.base)):
                raise TypeError(f"registering {name!r} expects a {self.base.__name__} subclass")
            existing = self.classes.get(name)
            if existing is not None and existing.__qualname__ != cls.__qualname__:
                raise ValueError(f"{self.what} name {name!r} is already registered by {existing}")
            cls.name = name
            self.classes[name] = cls
            return cls

        return decorate


def load_class(spec: str, base_dir: Path, base: type, what: str, key: str) -> type:
    """The subclass of ``base`` that ``spec`` (``"path/to/file.py:ClassName"``) names, the file
    imported once per path. Every failure is a one-line :class:`~pinnsolve.errors.ConfigError`
    at ``key``; ``what`` names the kind of class in it (``problem``, ``strategy``)."""
    file_part, _, class_name = spec.rpartition(":")
    path = (base_dir / file_part).resolve()
    if path.suffix != ".py":
        raise ConfigError(f"expected 'file.py:ClassName' with a Python file, got {spec!r}", key=key)
    if not path.is_file():
        raise ConfigError(f"{what} file {str(path)!r} does not exist", key=key)
    module = _import(path, key)
    cls = getattr(module, class_name, None)
    if cls is None:
        found = [n for n, v in vars(module).items() if isinstance(v, type) and issubclass(v, base)]
        raise ConfigError(
            f"{path.name} has no class {class_name!r}{did_you_mean(class_name, found)}; "
            f"{what} classes there: {', '.join(found) or 'none'}",
            key=key,
        )
    if not (isinstance(cls, type) and issubclass(cls, base)) or cls is base:
        raise ConfigError(
            f"{class_name!r} in {path.name} is not a {base.__name__} subclass", key=key
        )
    return cls


def _import(path: Path, key: str):
    module_name = f"pinnsolve_user_{abs(hash(str(path)))}"
    module = sys.modules.get(module_name)
    if module is not None:
        return module
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
    return module


def class_spec(cls: type, base_dir: Path) -> str | None:
    """``"file.py:ClassName"`` for a class defined in a file (the path relative to ``base_dir``
    when it lies below it, else absolute): what a TOML file would name it by. None when a TOML
    file could not name it (no file: defined interactively; or inside a function)."""
    try:
        path = Path(inspect.getfile(cls)).resolve()
    except (TypeError, OSError):
        return None
    if path.suffix != ".py" or "<locals>" in cls.__qualname__:
        return None
    if path.is_relative_to(base_dir.resolve()):
        path = path.relative_to(base_dir.resolve())
    return f"{path.as_posix()}:{cls.__qualname__}"
