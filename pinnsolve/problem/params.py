"""A problem's parameters: what a class declares (:class:`Param`) and the values a run uses
(:class:`Params`, read as ``p.lam`` in a residual). Their own module because conditions and
problems both read them, and neither should import the other for it."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass


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
