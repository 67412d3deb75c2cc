"""A problem's parameters: what a class declares (:class:`Param`) and the values a run uses
(:class:`Params`, read as ``p.lam`` in a residual). Their own module because conditions and
problems both read them, and neither should import the other for it."""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping
from dataclasses import dataclass


@dataclass(frozen=True)
class Param:
    """A declared problem parameter: default, one-line meaning and an optional range, its ends
    inclusive (``min``, ``max``) or exclusive (``above``, ``below``: ``ε > 0`` is
    ``Param(0.1, "ε", above=0)``)."""

    default: float
    doc: str = ""
    min: float | None = None
    max: float | None = None
    above: float | None = None
    below: float | None = None

    def __post_init__(self):
        if self.min is not None and self.above is not None:
            raise TypeError("Param: give min (inclusive) or above (exclusive), not both")
        if self.max is not None and self.below is not None:
            raise TypeError("Param: give max (inclusive) or below (exclusive), not both")

    def contains(self, value: float) -> bool:
        """Whether ``value`` is finite and within the range."""
        return (
            math.isfinite(value)
            and (self.min is None or value >= self.min)
            and (self.max is None or value <= self.max)
            and (self.above is None or value > self.above)
            and (self.below is None or value < self.below)
        )

    @property
    def lowest(self) -> float | None:
        """The lower end (inclusive or not); None when unbounded below."""
        return self.min if self.above is None else self.above

    @property
    def highest(self) -> float | None:
        """The upper end (inclusive or not); None when unbounded above."""
        return self.max if self.below is None else self.below

    def range_text(self) -> str:
        """``[0, inf]``, or ``(0, inf]`` with an exclusive end."""
        lo = "-inf" if self.lowest is None else f"{self.lowest:g}"
        hi = "inf" if self.highest is None else f"{self.highest:g}"
        opening = "(" if self.above is not None else "["
        closing = ")" if self.below is not None else "]"
        return f"{opening}{lo}, {hi}{closing}"


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
