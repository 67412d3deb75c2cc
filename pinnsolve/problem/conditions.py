"""Conditions: what a solution must satisfy besides the PDE, as pointwise signed values.

Every condition produces ``g = value − target`` on its own point set (one sign convention for all;
see :mod:`pinnsolve.constraints` for how ``g`` becomes a constraint or a penalty):

============  =========================================  ===================================
kind          value − target                              points
============  =========================================  ===================================
Dirichlet     ``u − h``                                   a boundary part
Neumann       ``∂u/∂n − h`` (outward normal)              a boundary part
Robin         ``a u + b ∂u/∂n − h``                       a boundary part
Periodic      ``u(x) − u(x')`` (or ``∂u/∂n`` matched)     part ``a`` and its image on part ``b``
Initial       ``u(x, t0) − u0`` / ``u_t(x, t0) − v0``     the ``initial`` part
Integral      ``|Ω| · mean u − c`` (one number)           quadrature points in the domain
Inequality    ``q − bound`` with ``q ≤`` or ``≥ bound``   the interior or a boundary part
============  =========================================  ===================================

``target`` is a number or a function ``(x, p) -> Tensor``; ``field`` defaults to the problem's only
field; ``name`` defaults to ``"<kind>_<part>"`` and must be unique within a problem.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar

import numpy as np
import torch
from torch import Tensor

from ..derivatives.fields import Coords, Fields
from .geometry import ALL_PARTS, BoundarySample, Geometry

if TYPE_CHECKING:
    from .params import Params

Target = float | Callable[[Coords, "Params"], Tensor]
INTERIOR = "interior"


@dataclass(frozen=True)
class Condition:
    """Base of every condition kind; see the module docstring."""

    part: str
    target: Target = 0.0
    field: str | None = None
    name: str | None = None

    kind: ClassVar[str] = "condition"
    #: "eq" (g = 0), "le" (g ≤ 0) or "ge" (g ≥ 0)
    sense: ClassVar[str] = "eq"
    #: True when g is one number for the whole point set (an integral), not one per point
    scalar: ClassVar[bool] = False

    def label(self) -> str:
        return self.name or f"{self.kind}_{self.part}"

    def constraint_sense(self) -> str:
        return self.sense

    def violation(self, g: Tensor) -> Tensor:
        """How far ``g`` is from allowed: ``|g|`` for an equality, the part beyond the bound for
        an inequality (0 where it holds)."""
        sense = self.constraint_sense()
        if sense == "eq":
            return g.abs()
        return (g if sense == "le" else -g).clamp(min=0.0)

    def n_values(self, n_points: int) -> int:
        """How many values ``g`` has on ``n_points`` points."""
        return 1 if self.scalar else n_points

    def check(self, geom: Geometry) -> str | None:
        """Why this condition cannot live on ``geom`` (or None)."""
        if self.part not in (*geom.parts, ALL_PARTS):
            return (
                f"unknown boundary part {self.part!r}; this domain has "
                f"{', '.join((*geom.parts, ALL_PARTS))}"
            )
        return None

    def place(
        self, geom: Geometry, parts: Mapping[str, BoundarySample], interior: np.ndarray
    ) -> BoundarySample:
        """The condition's points and normals, from the sampled parts (and interior)."""
        names = geom.spatial_parts() if self.part == ALL_PARTS else (self.part,)
        return BoundarySample(
            np.concatenate([parts[n].points for n in names]),
            np.concatenate([parts[n].normals for n in names]),
        )

    def target_values(self, x: Coords, p: Params) -> Tensor:
        ref = x.tensor
        if callable(self.target):
            value = torch.as_tensor(self.target(x, p), dtype=ref.dtype, device=ref.device)
            return value.expand(len(x))
        return torch.full((len(x),), float(self.target), dtype=ref.dtype, device=ref.device)

    def value(self, x: Coords, f: Fields, normals: Tensor, p: Params, field: str) -> Tensor:
        raise NotImplementedError

    def residual(self, x: Coords, f: Fields, normals: Tensor, p: Params, field: str) -> Tensor:
        """Pointwise ``g = value − target`` on this condition's points."""
        return self.value(x, f, normals, p, field) - self.target_values(x, p)


@dataclass(frozen=True)
class Dirichlet(Condition):
    """``u = h`` on the part."""

    kind: ClassVar[str] = "dirichlet"

    def value(self, x, f, normals, p, field):
        return f.value(field)


@dataclass(frozen=True)
class Neumann(Condition):
    """``∂u/∂n = h`` with the outward unit normal."""

    kind: ClassVar[str] = "neumann"

    def value(self, x, f, normals, p, field):
        return f.normal_derivative(field, normals)


@dataclass(frozen=True)
class Robin(Condition):
    """``a u + b ∂u/∂n = h`` with the outward unit normal."""

    a: float = 1.0
    b: float = 1.0

    kind: ClassVar[str] = "robin"

    def value(self, x, f, normals, p, field):
        return self.a * f.value(field) + self.b * f.normal_derivative(field, normals)


@dataclass(frozen=True)
class Initial(Condition):
    """Initial data at ``t = t0``: ``u = u0`` (``derivative=0``) or ``∂u/∂t = v0`` (``1``)."""

    part: str = "initial"
    derivative: int = 0

    kind: ClassVar[str] = "initial"

    def label(self) -> str:
        return self.name or ("initial" if self.derivative == 0 else f"initial_d{self.derivative}")

    def value(self, x, f, normals, p, field):
        return f.d(field, *([x.names[-1]] * self.derivative))


@dataclass(frozen=True)
class Periodic(Condition):
    """``u`` (``derivative=0``) or its normal derivative (``1``) equal on two opposite faces.

    ``part`` is one face (e.g. ``xmin``) and ``other`` the opposite one (``xmax``); the points
    are those sampled on ``part`` and their translates onto ``other``. With ``derivative=1`` the
    derivative along the axis is matched (``∂u/∂x`` on both faces, i.e. outward normal
    derivatives of opposite sign). ``target`` is ignored: g = value(x) − value(x').
    """

    other: str = ""
    derivative: int = 0

    kind: ClassVar[str] = "periodic"

    def label(self) -> str:
        suffix = "" if self.derivative == 0 else f"_d{self.derivative}"
        return self.name or f"periodic_{self.part}_{self.other}{suffix}"

    def check(self, geom):
        if self.part == ALL_PARTS or self.part not in geom.parts:
            return f"periodic 'part' must be one face of {', '.join(geom.parts)}, got {self.part!r}"
        if geom.opposite(self.part) != self.other:
            return (
                f"periodic faces must be opposite: {self.part!r} pairs with "
                f"{geom.opposite(self.part)!r}, got other={self.other!r}"
            )
        return None

    def place(self, geom, parts, interior):
        s = parts[self.part]
        image = geom.translate_to(self.other, s.points)
        # both halves carry part's normal, so ∂u/∂n is the same axis derivative on both faces
        return BoundarySample(
            np.concatenate([s.points, image]), np.concatenate([s.normals, s.normals])
        )

    def n_values(self, n_points):
        return n_points // 2

    def value(self, x, f, normals, p, field):
        v = f.value(field) if self.derivative == 0 else f.normal_derivative(field, normals)
        n = len(x) // 2
        return v[:n] - v[n:]

    def residual(self, x, f, normals, p, field):
        return self.value(x, f, normals, p, field)


@dataclass(frozen=True)
class Integral(Condition):
    """``∫_Ω u dx = c`` as one number: ``|Ω| · mean(u over quadrature points) − c``.

    On a space-time domain the integral is over space and time together.
    """

    part: str = INTERIOR
    #: |Ω|; filled in from the domain when the problem's conditions are checked
    volume: float | None = None

    kind: ClassVar[str] = "integral"
    scalar: ClassVar[bool] = True

    def label(self) -> str:
        return self.name or "integral"

    def check(self, geom):
        return None if self.part == INTERIOR else "an integral condition lives on 'interior'"

    def place(self, geom, parts, interior):
        return BoundarySample(interior, np.zeros_like(interior))

    def value(self, x, f, normals, p, field):
        return f.value(field).mean()

    def residual(self, x, f, normals, p, field):
        if self.volume is None:
            raise ValueError("Integral.volume is unset: resolve conditions via Problem")
        target = self.target(x, p) if callable(self.target) else self.target
        ref = x.tensor
        c = torch.as_tensor(target, dtype=ref.dtype, device=ref.device).reshape(())
        return self.volume * self.value(x, f, normals, p, field) - c


@dataclass(frozen=True)
class Inequality(Condition):
    """``q ≥ bound`` (``op=">="``) or ``q ≤ bound`` (``op="<="``) pointwise, where ``q`` is the
    field or ``quantity(x, f, p)``; ``target`` is the bound, ``part`` a boundary part or
    ``"interior"`` (the interior collocation points)."""

    part: str = INTERIOR
    op: str = ">="
    quantity: Callable[[Coords, Fields, Params], Tensor] | None = None

    kind: ClassVar[str] = "inequality"

    def constraint_sense(self) -> str:
        return {">=": "ge", "<=": "le"}[self.op]

    def check(self, geom):
        if self.op not in (">=", "<="):
            return f"op must be '>=' or '<=', got {self.op!r}"
        return None if self.part == INTERIOR else super().check(geom)

    def place(self, geom, parts, interior):
        if self.part == INTERIOR:
            return BoundarySample(interior, np.zeros_like(interior))
        return super().place(geom, parts, interior)

    def value(self, x, f, normals, p, field):
        if self.quantity is not None:
            return torch.as_tensor(self.quantity(x, f, p)).expand(len(x))
        return f.value(field)


_KINDS: dict[str, type[Condition]] = {
    cls.kind: cls for cls in (Dirichlet, Neumann, Robin, Periodic, Initial, Integral, Inequality)
}


def condition_from_table(
    table: Mapping[str, object],
    coords: tuple[str, ...],
    fields: tuple[str, ...],
    params: Params,
    where: str,
) -> Condition:
    """A condition from a ``[[conditions]]`` entry (already type-checked by the config).

    ``target`` may be a number or an expression in the coordinates and parameters; an
    inequality's ``quantity`` an expression that may also use the fields.
    """
    from .expressions import parse_expression

    entry = dict(table)
    cls = _KINDS[str(entry.pop("kind"))]
    target = entry.pop("target", 0.0)
    if isinstance(target, str):
        expr = parse_expression(target, (*coords, *params), where=f"{where} target")
        target = expr.value if expr.is_constant else _TargetExpression(expr, coords)
    quantity = entry.pop("quantity", None)
    if quantity is not None:
        expr = parse_expression(quantity, (*coords, *fields, *params), where=f"{where} quantity")
        entry["quantity"] = _QuantityExpression(expr, coords, fields)
    return cls(target=target, **entry)


class _TargetExpression:
    """``target(x, p)`` from a parsed expression (a class, not a lambda: conditions are compared
    and printed)."""

    def __init__(self, expr, coords):
        self.expr, self.coords = expr, coords

    def __call__(self, x: Coords, p: Params) -> Tensor:
        return self.expr({**p, **{c: x[c] for c in self.coords}})

    def __repr__(self) -> str:
        return repr(self.expr.text)


class _QuantityExpression(_TargetExpression):
    """``quantity(x, f, p)`` from a parsed expression over coordinates, fields and parameters."""

    def __init__(self, expr, coords, fields):
        super().__init__(expr, coords)
        self.fields = fields

    def __call__(self, x: Coords, f: Fields, p: Params) -> Tensor:
        env = {**p, **{c: x[c] for c in self.coords}}
        env.update({name: f.value(name) for name in self.fields if name in self.expr.names})
        return self.expr(env)
