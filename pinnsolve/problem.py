"""Problems: a PDE as a small Python class, its conditions, and the registry that names it.

A problem declares its domain, its fields and its parameters, and implements the residual::

    @register("bratu1d")
    class Bratu1D(Problem):
        \"\"\"Bratu's equation u'' + λ e^u = 0 on (0, 1), u = 0 at both ends.\"\"\"
        domain = Interval(0.0, 1.0)
        fields = ("u",)
        params = {"lam": Param(1.0, "Bratu parameter λ", min=0.0)}

        def residual(self, x, f, p):
            return f.d("u", "x", "x") + p.lam * torch.exp(f.u)

        def conditions(self, p):
            return [Dirichlet("boundary", 0.0)]

``x`` is a :class:`~pinnsolve.jet.Coords` (``x.x``, ``x.t``), ``f`` a :class:`~pinnsolve.jet.Fields`
(``f.u``, ``f.d("u", "x")``, ``f.lap("u")``), ``p`` the parameters (``p.lam``). The first line of
the docstring is the description ``pinnsolve problems`` shows.

Conditions follow one sign convention: each yields pointwise values ``g = value − target``
(Dirichlet: ``u − h``; Neumann: ``∂u/∂n − h`` with the outward normal; Initial:
``u(x, t0) − u0`` or, with ``derivative=1``, ``u_t(x, t0) − v0``). The trainer turns them into
a penalty or constraints.

A TOML file names a problem by registered name or as ``"my_pdes.py:MyProblem"`` (path relative to
the TOML file); installed packages can register problems under the entry-point group
``pinnsolve.problems``.
"""

from __future__ import annotations

import difflib
import importlib.util
import math
import sys
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any, ClassVar

import torch
from torch import Tensor

from .errors import ConfigError, PinnsolveError
from .geometry import ALL_PARTS, Geometry, SpaceTime
from .jet import Coords, Fields

Target = float | Callable[[Coords, "Params"], Tensor]


@dataclass(frozen=True)
class Param:
    """A declared problem parameter: default, one-line meaning and an optional range."""

    default: float
    doc: str = ""
    min: float | None = None
    max: float | None = None

    def range_text(self) -> str:
        lo = "-inf" if self.min is None else f"{self.min:g}"
        hi = "inf" if self.max is None else f"{self.max:g}"
        return f"[{lo}, {hi}]"


class Params(Mapping[str, float]):
    """Resolved parameter values with attribute access (``p.lam``); read-only."""

    def __init__(self, values: Mapping[str, float]):
        self._values = dict(values)

    def __getattr__(self, name: str) -> float:
        if name.startswith("_"):
            raise AttributeError(name)
        try:
            return self._values[name]
        except KeyError:
            raise AttributeError(f"no parameter {name!r}; parameters are {list(self)}") from None

    def __getitem__(self, name: str) -> float:
        return self._values[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._values)

    def __len__(self) -> int:
        return len(self._values)

    def __repr__(self) -> str:
        return f"Params({self._values})"


@dataclass(frozen=True)
class Condition:
    """A condition on a boundary part; subclasses say what ``value`` is compared with ``target``.

    ``target`` is a number or a function ``(x, p) -> Tensor[N]``; ``field`` defaults to the
    problem's only field; ``name`` defaults to ``"<kind>_<part>"`` (unique within a problem).
    """

    part: str
    target: Target = 0.0
    field: str | None = None
    name: str | None = None

    kind: ClassVar[str] = "condition"

    def label(self) -> str:
        return self.name or f"{self.kind}_{self.part}"

    def target_values(self, x: Coords, p: Params) -> Tensor:
        if callable(self.target):
            value = self.target(x, p)
            return torch.as_tensor(value, dtype=x.tensor.dtype, device=x.tensor.device).expand(
                len(x)
            )
        return torch.full(
            (len(x),), float(self.target), dtype=x.tensor.dtype, device=x.tensor.device
        )

    def value(self, f: Fields, field: str, normals: Tensor) -> Tensor:
        raise NotImplementedError

    def residual(self, x: Coords, f: Fields, normals: Tensor, p: Params, field: str) -> Tensor:
        """Pointwise ``g = value − target`` on this condition's points."""
        return self.value(f, field, normals) - self.target_values(x, p)


@dataclass(frozen=True)
class Dirichlet(Condition):
    """``u = h`` on the part: ``g = u − h``."""

    kind: ClassVar[str] = "dirichlet"

    def value(self, f, field, normals):
        return f.value(field)


@dataclass(frozen=True)
class Neumann(Condition):
    """``∂u/∂n = h`` with the outward unit normal: ``g = ∇u·n − h``."""

    kind: ClassVar[str] = "neumann"

    def value(self, f, field, normals):
        return f.normal_derivative(field, normals)


@dataclass(frozen=True)
class Initial(Condition):
    """Initial data at ``t = t0``: ``g = u − u0``, or ``g = ∂u/∂t − v0`` with ``derivative=1``."""

    part: str = "initial"
    derivative: int = 0

    kind: ClassVar[str] = "initial"

    def label(self) -> str:
        return self.name or ("initial" if self.derivative == 0 else f"initial_d{self.derivative}")

    def value(self, f, field, normals):
        time = f.coord_names[-1]
        return f.d(field, *([time] * self.derivative))


class Problem:
    """Base class of every PDE; see the module docstring for what a subclass declares."""

    name: ClassVar[str] = ""
    domain: ClassVar[Geometry]
    fields: ClassVar[tuple[str, ...]] = ("u",)
    params: ClassVar[dict[str, Param]] = {}

    def __init__(self, **params: float):
        self._check_declaration()
        values = {}
        for key, value in params.items():
            if key not in self.params:
                raise ConfigError(
                    f"problem {self.label()!r} has no parameter {key!r}"
                    + _suggest(key, self.params)
                    + f"; its parameters are: {', '.join(self.params) or 'none'}",
                    key=f"[problem.params] {key}",
                )
            values[key] = self._check_param(key, value)
        self.p = Params({k: values.get(k, spec.default) for k, spec in self.params.items()})

    @classmethod
    def label(cls) -> str:
        return cls.name or cls.__name__

    @classmethod
    def description(cls) -> str:
        doc = (cls.__doc__ or "").strip()
        return doc.splitlines()[0] if doc else ""

    def _check_param(self, key: str, value: Any) -> float:
        spec = self.params[key]
        where = f"[problem.params] {key}"
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ConfigError(f"expected a number, got {value!r}", key=where)
        value = float(value)
        lo = -math.inf if spec.min is None else spec.min
        hi = math.inf if spec.max is None else spec.max
        if not (math.isfinite(value) and lo <= value <= hi):
            raise ConfigError(f"expected a number in {spec.range_text()}, got {value:g}", key=where)
        return value

    @classmethod
    def _check_declaration(cls) -> None:
        where = f"problem class {cls.__name__}"
        if not isinstance(getattr(cls, "domain", None), Geometry):
            raise PinnsolveError(f"{where}: 'domain' must be a Geometry (Interval, Disk, ...)")
        if not cls.fields or len(set(cls.fields)) != len(cls.fields):
            raise PinnsolveError(f"{where}: 'fields' must be distinct names, got {cls.fields}")
        clash = set(cls.fields) & set(cls.domain.coords)
        if clash:
            raise PinnsolveError(f"{where}: field names {sorted(clash)} clash with coordinates")
        for key, spec in cls.params.items():
            if not isinstance(spec, Param):
                raise PinnsolveError(f"{where}: params[{key!r}] must be a Param(default, doc)")

    def geometry(self) -> Geometry:
        """The domain; override when it depends on the parameters."""
        return self.domain

    @property
    def time_dependent(self) -> bool:
        return isinstance(self.geometry(), SpaceTime)

    @property
    def spatial_coords(self) -> tuple[str, ...]:
        coords = self.geometry().coords
        return coords[:-1] if self.time_dependent else coords

    def residual(self, x: Coords, f: Fields, p: Params) -> Tensor | tuple[Tensor, ...]:
        """The PDE residual(s) at interior points: one ``[N]`` tensor per equation."""
        raise NotImplementedError(f"{type(self).__name__} must implement residual(x, f, p)")

    def conditions(self, p: Params) -> list[Condition]:
        """Boundary and initial conditions."""
        return []

    def exact(self, x: Coords, p: Params) -> Any:
        """Known solution(s), or ``None``: a tensor (one field), a dict field → tensor, or a list
        of those when the problem has several solutions."""
        return None

    def residuals(self, x: Coords, f: Fields) -> list[Tensor]:
        """:meth:`residual` as a list of ``[N]`` tensors."""
        out = self.residual(x, f, self.p)
        if isinstance(out, Tensor):
            out = (out,)
        return [r.expand(len(x)) if r.dim() == 0 else r for r in out]

    def exact_solutions(self, x: Coords) -> list[dict[str, Tensor]]:
        """:meth:`exact` normalised to a list of ``{field: [N] tensor}`` (empty when unknown)."""
        out = self.exact(x, self.p)
        if out is None:
            return []
        branches = out if isinstance(out, list | tuple) else [out]
        return [b if isinstance(b, Mapping) else {self.fields[0]: b} for b in branches]

    def checked_conditions(self) -> list[tuple[Condition, str]]:
        """The conditions with their field resolved, validated against the domain."""
        geom = self.geometry()
        result, labels = [], set()
        for cond in self.conditions(self.p):
            where = f"problem {self.label()!r}, condition {cond.label()!r}"
            if cond.part != ALL_PARTS and cond.part not in geom.parts:
                raise PinnsolveError(
                    f"{where}: unknown boundary part {cond.part!r}; this domain has "
                    f"{', '.join((*geom.parts, ALL_PARTS))}"
                )
            field = cond.field or self.fields[0]
            if field not in self.fields:
                raise PinnsolveError(f"{where}: unknown field {field!r}; fields: {self.fields}")
            if cond.label() in labels:
                raise PinnsolveError(f"{where}: two conditions share this name; give one a name=")
            labels.add(cond.label())
            result.append((cond, field))
        return result


_REGISTRY: dict[str, type[Problem]] = {}
_LOADED = False


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
    global _LOADED
    if not _LOADED:
        _LOADED = True
        from . import pdes  # noqa: F401  (registers the bundled problems)

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
            f"unknown problem {spec!r}{_suggest(spec, problems)}; registered problems: "
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
            raise ConfigError(
                f"importing {path.name} failed: {type(err).__name__}: {err}", key=key
            ) from err
    cls = getattr(module, class_name, None)
    if cls is None:
        found = [
            n for n, v in vars(module).items() if isinstance(v, type) and issubclass(v, Problem)
        ]
        raise ConfigError(
            f"{path.name} has no class {class_name!r}{_suggest(class_name, found)}; "
            f"problem classes there: {', '.join(found) or 'none'}",
            key=key,
        )
    if not (isinstance(cls, type) and issubclass(cls, Problem)) or cls is Problem:
        raise ConfigError(f"{class_name!r} in {path.name} is not a Problem subclass", key=key)
    return cls


def _suggest(word: str, options) -> str:
    close = difflib.get_close_matches(word, list(options), n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""
