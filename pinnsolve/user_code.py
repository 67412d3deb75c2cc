"""Classes from a user's own ``.py`` file, named in a TOML file as ``"file.py:ClassName"`` (a
path relative to the TOML file): problems (``[problem] name``) and explorer strategies
(``[explore] strategy``). Below every layer, so that each registry can use it."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

from .errors import ConfigError, did_you_mean


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
