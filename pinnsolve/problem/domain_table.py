"""A domain from a problem file's ``[domain]`` table, in place of the problem class's own.

Three forms::

    [domain]                         [domain]                    [domain]
    mesh = "plate.msh"               type = "polygon"            shape = "plate - hole"
                                     vertices = [[0, 0], ...]    [domain.plate]
                                     edges = ["a", ...]          type = "rectangle"
                                                                 x = [-1, 1]
                                                                 y = [-1, 1]
                                                                 [domain.hole]
                                                                 type = "disk"
                                                                 radius = 0.3

A ``shape`` combines the named sub-tables with ``|`` (union), ``-`` (difference), ``&``
(intersection) and parentheses, with Python's precedence (``-`` before ``&`` before ``|``); it is
parsed here, never evaluated. Every error is a :class:`~pinnsolve.errors.ConfigError` naming the
key.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..errors import ConfigError, did_you_mean
from .domain import Geometry
from .geometry import Box, Disk, Interval, Rectangle
from .mesh_domain import MeshDomain
from .shapes import Annulus, Polygon

#: Keys of each ``type``, required ones first; ``center`` and ``edges`` may be left out.
TYPES: dict[str, tuple[str, ...]] = {
    "interval": ("x",),
    "rectangle": ("x", "y"),
    "box": ("lo", "hi"),
    "disk": ("radius", "center"),
    "annulus": ("inner", "outer", "center"),
    "polygon": ("vertices", "edges"),
}
_OPTIONAL = {"center", "edges"}


def domain_from_table(table: dict[str, Any], base_dir: Path, coords: tuple[str, ...]) -> Geometry:
    """The geometry a ``[domain]`` table describes, with the problem's spatial ``coords``; a mesh
    path is relative to ``base_dir`` (the problem file's folder)."""
    if "mesh" in table:
        _only(table, ("mesh",), "[domain]")
        path = table["mesh"]
        if not isinstance(path, str):
            raise ConfigError(f"expected a file name, got {path!r}", key="[domain] mesh")
        return _build(lambda: MeshDomain(base_dir / path, coords[:2]), coords, "[domain] mesh")
    if "shape" in table:
        shapes = {k: v for k, v in table.items() if k != "shape"}
        for name, sub in shapes.items():
            if not isinstance(sub, dict):
                raise ConfigError(
                    "expected a table [domain.<name>] for each shape of `shape`",
                    key=f"[domain] {name}",
                )  # fmt: skip
        built = {name: _primitive(sub, f"[domain.{name}]", coords) for name, sub in shapes.items()}
        expr = table["shape"]
        if not isinstance(expr, str):
            raise ConfigError(
                f"expected a string such as 'a - b', got {expr!r}", key="[domain] shape"
            )
        return _build(lambda: _ShapeParser(expr, built).parse(), coords, "[domain] shape")
    return _primitive(table, "[domain]", coords)


def _primitive(table: dict[str, Any], where: str, coords: tuple[str, ...]) -> Geometry:
    kind = table.get("type")
    if kind not in TYPES:
        raise ConfigError(
            f"expected type = one of {', '.join(map(repr, TYPES))}, got {kind!r}"
            + did_you_mean(str(kind), TYPES)
            + (" (or a `mesh` or `shape` key)" if where == "[domain]" else ""),
            key=f"{where} type",
        )
    keys = TYPES[kind]
    _only(table, ("type", *keys), where)
    missing = [k for k in keys if k not in table and k not in _OPTIONAL]
    if missing:
        raise ConfigError(f"a {kind} needs {', '.join(missing)}", key=where)
    v = {k: _value(k, table[k], f"{where} {k}") for k in keys if k in table}
    center = {"center": v["center"]} if "center" in v else {}
    make: Callable[[], Geometry] = {
        "interval": lambda: Interval(*v["x"], coord=coords[0]),
        "rectangle": lambda: Rectangle(v["x"], v["y"], coords=coords[:2]),
        "box": lambda: Box(v["lo"], v["hi"], coords if len(v["lo"]) == len(coords) else None),
        "disk": lambda: Disk(radius=v["radius"], coords=coords[:2], **center),
        "annulus": lambda: Annulus(inner=v["inner"], outer=v["outer"], coords=coords[:2], **center),
        "polygon": lambda: Polygon(v["vertices"], v.get("edges"), coords=coords[:2]),
    }[kind]
    return _build(make, coords, where)


def _build(make: Callable[[], Geometry], coords: tuple[str, ...], where: str) -> Geometry:
    """``make()``, its complaints as one-line config errors, and a check of its dimension."""
    try:
        geom = make()
    except ValueError as err:
        raise ConfigError(str(err), key=where) from None
    if geom.dim != len(coords):
        raise ConfigError(
            f"the problem has {len(coords)} space coordinates ({', '.join(coords)}), this "
            f"domain has {geom.dim}",
            key=where,
        )  # fmt: skip
    return geom


def _only(table: dict[str, Any], allowed: tuple[str, ...], where: str) -> None:
    for key in table:
        if key not in allowed:
            raise ConfigError(
                f"unknown key{did_you_mean(key, allowed)}; expected {', '.join(allowed)}",
                key=f"{where} {key}",
            )


def _is_number(x: Any) -> bool:
    return isinstance(x, int | float) and not isinstance(x, bool)


def _value(key: str, value: Any, where: str) -> Any:
    """A key's value checked for its shape: a pair, a vector, a list of points or names."""
    if key in ("radius", "inner", "outer"):
        if not _is_number(value) or value <= 0:
            raise ConfigError(f"expected a number > 0, got {value!r}", key=where)
        return float(value)
    if key == "edges":
        if not isinstance(value, list) or not all(isinstance(e, str) for e in value):
            raise ConfigError(f"expected a list of part names, got {value!r}", key=where)
        return value
    if key == "vertices":
        ok = isinstance(value, list) and all(
            isinstance(p, list) and len(p) == 2 and all(map(_is_number, p)) for p in value
        )
        if not ok:
            raise ConfigError(f"expected a list of [x, y] points, got {value!r}", key=where)
        return value
    size = {"x": 2, "y": 2, "center": 2}.get(key)  # lo, hi: any length (the box checks)
    if not (isinstance(value, list) and all(map(_is_number, value)) and value) or (
        size and len(value) != size
    ):
        expected = f"[{', '.join(['a', 'b'][: size or 2])}]" if size else "a list of numbers"
        raise ConfigError(f"expected {expected}, got {value!r}", key=where)
    return [float(x) for x in value]


class _ShapeParser:
    """Recursive descent over ``name``, ``-``, ``&``, ``|`` and parentheses (Python's
    precedence: ``-`` binds tightest, ``|`` loosest)."""

    TOKEN = re.compile(r"\s*(?:([A-Za-z_][A-Za-z0-9_]*)|([-&|()]))")

    def __init__(self, text: str, shapes: dict[str, Geometry]):
        self.text, self.shapes, self.used = text, shapes, set()
        self.tokens: list[str] = []
        pos = 0
        while pos < len(text.rstrip()):
            m = self.TOKEN.match(text, pos)
            if not m:
                raise ValueError(f"cannot read {text[pos:].strip()!r} in shape {text!r}")
            self.tokens.append(m.group(1) or m.group(2))
            pos = m.end()
        self.pos = 0

    def parse(self) -> Geometry:
        geom = self._expr()
        if self.pos != len(self.tokens):
            raise ValueError(f"unexpected {self.tokens[self.pos]!r} in shape {self.text!r}")
        unused = sorted(set(self.shapes) - self.used)
        if unused:
            raise ValueError(f"[domain.{unused[0]}] is not used in shape {self.text!r}")
        return geom

    def _peek(self) -> str | None:
        return self.tokens[self.pos] if self.pos < len(self.tokens) else None

    def _binary(self, op: str, operand: Callable[[], Geometry]) -> Geometry:
        geom = operand()
        while self._peek() == op:
            self.pos += 1
            right = operand()
            geom = {"|": geom.__or__, "&": geom.__and__, "-": geom.__sub__}[op](right)
        return geom

    def _expr(self) -> Geometry:
        return self._binary("|", self._term)

    def _term(self) -> Geometry:
        return self._binary("&", self._factor)

    def _factor(self) -> Geometry:
        return self._binary("-", self._atom)

    def _atom(self) -> Geometry:
        token = self._peek()
        self.pos += 1
        if token == "(":
            geom = self._expr()
            if self._peek() != ")":
                raise ValueError(f"a parenthesis is not closed in shape {self.text!r}")
            self.pos += 1
            return geom
        if token is None or not re.fullmatch(r"[A-Za-z_]\w*", token):
            raise ValueError(f"expected a shape's name, got {token or 'the end'} in {self.text!r}")
        if token not in self.shapes:
            raise ValueError(
                f"unknown shape {token!r}{did_you_mean(token, self.shapes)}; the shapes are the "
                f"tables [domain.<name>]: {', '.join(self.shapes) or 'none'}"
            )
        self.used.add(token)
        return self.shapes[token]
