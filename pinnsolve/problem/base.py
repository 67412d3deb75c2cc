"""The Problem base class: a PDE as a small Python class (domain, fields, parameters, residual,
conditions).

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

``x`` is a :class:`~pinnsolve.derivatives.fields.Coords` (``x.x``, ``x.t``), ``f`` a
:class:`~pinnsolve.derivatives.fields.Fields` (``f.u``, ``f.d("u", "x")``, ``f.lap("u")``), ``p``
the parameters (``p.lam``). The first line of the docstring is the description ``pinnsolve
problems`` shows.

Conditions (:mod:`pinnsolve.problem.conditions`) follow one sign convention: each yields pointwise
values ``g = value − target``; the trainer turns them into MDMM constraints or a penalty.

How a file names a problem (a registered name or ``file.py:Class``):
:mod:`pinnsolve.problem.registry`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any, ClassVar

from torch import Tensor

from ..derivatives.fields import Coords, Fields
from ..errors import ConfigError, PinnsolveError, did_you_mean
from .conditions import Condition, Integral
from .geometry import Geometry, SpaceTime
from .params import Param, Params
from .symmetry import Symmetry


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
                    + did_you_mean(key, self.params)
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
        if not spec.contains(value):
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

    def use_domain(self, space: Geometry) -> None:
        """Solve on ``space`` instead of the class's domain (a file's ``[domain]`` table): the
        same coordinates, and for a time-dependent problem the same time interval."""
        own = self.geometry()
        geom = space
        if isinstance(own, SpaceTime):
            try:
                geom = SpaceTime(space, (own.t0, own.t1), own.coords[-1])
            except ValueError as err:
                raise PinnsolveError(str(err)) from None
        if geom.coords != own.coords:
            raise PinnsolveError(
                f"the domain's coordinates {geom.coords} differ from the problem's {own.coords}"
            )
        self.domain = geom
        if self.geometry() is not geom:
            raise PinnsolveError(
                f"problem {self.label()!r} builds its domain from its parameters (it overrides "
                "geometry()), so a [domain] table cannot replace it"
            )

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

    def terms(self, x: Coords, f: Fields, p: Params) -> Sequence[Tensor] | None:
        """Optional: the terms whose sum is the residual (of every equation), e.g.
        ``(f.lap("u"), p.lam * torch.exp(f.u))`` for Δu + λeᵘ. When given, the residual is
        measured relative to the RMS of the largest term where that exceeds 1 (``[explore]
        accept_residual``, the ``[polish]`` tolerances), so that a tolerance means the same at
        any scale of the equation; otherwise it is measured as it is (absolute)."""
        return None

    def symmetries(self, p: Params) -> list[Symmetry]:
        """Optional: maps that take a solution to a solution
        (:class:`~pinnsolve.problem.symmetry.Symmetry`), e.g. ``u -> -u`` for an odd
        nonlinearity, mirror images on a symmetric domain. The explorer polishes the image of
        every solution it finds under each (``[explore] symmetries``)."""
        return []

    def checked_symmetries(self) -> list[Symmetry]:
        """:meth:`symmetries`, each validated against the domain and the fields."""
        out = list(self.symmetries(self.p))
        for symmetry in out:
            if not isinstance(symmetry, Symmetry):
                raise PinnsolveError(
                    f"problem {self.label()!r}: symmetries() must return Symmetry objects, got "
                    f"{type(symmetry).__name__}"
                )
            symmetry.check(self.geometry(), self.fields, f"problem {self.label()!r}")
        return out

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

    def checked_conditions(self, extra: list[Condition] = ()) -> list[tuple[Condition, str]]:
        """The conditions (the problem's and ``extra`` ones) with their field resolved, validated
        against the domain; integrals get the domain's measure."""
        geom = self.geometry()
        result, labels = [], set()
        for cond in [*self.conditions(self.p), *extra]:
            where = f"problem {self.label()!r}, condition {cond.label()!r}"
            problem = cond.check(geom)
            if problem:
                raise PinnsolveError(f"{where}: {problem}")
            if isinstance(cond, Integral) and cond.volume is None:
                cond = replace(cond, volume=geom.measure())
            field = cond.field or self.fields[0]
            if field not in self.fields:
                raise PinnsolveError(f"{where}: unknown field {field!r}; fields: {self.fields}")
            if cond.label() in labels:
                raise PinnsolveError(f"{where}: two conditions share this name; give one a name=")
            labels.add(cond.label())
            result.append((cond, field))
        return result
