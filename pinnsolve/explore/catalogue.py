"""The catalogue of solutions an exploration found: each with its parameters, its fields on the
comparison points and where it came from; a candidate is new when it is farther than
``distance`` (:func:`~pinnsolve.explore.deflation.relative_distance`) from every entry."""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from typing import Any

import numpy as np
from torch import Tensor

from .deflation import relative_distance


@dataclass
class Found:
    """One accepted solution: its parameters, its fields on the deflation points, its provenance
    (strategy, attempt, history step) and how well it solves the problem."""

    model_state: dict[str, Tensor]
    values: Tensor
    provenance: dict[str, Any]
    residual_rms: float
    infeasibility: float

    def sort_key(self) -> tuple[float, float]:
        """A stable order: by field norm, then by mean value (so ``±u`` pairs sit together)."""
        v = self.values.double()
        return (round(float(v.square().mean().sqrt()), 6), round(float(v.mean()), 6))


class Catalogue:
    """The distinct solutions found, in the order found."""

    def __init__(self, distance: float, floor: float):
        self.distance = distance
        self.floor = floor
        self.entries: list[Found] = []

    def match(self, values: Tensor) -> int | None:
        """Index of the solution ``values`` duplicates (the closest within ``distance``)."""
        return closest(values, [e.values for e in self.entries], self.distance, self.floor)

    def sorted(self) -> list[Found]:
        return sorted(self.entries, key=Found.sort_key)

    def state_dict(self) -> list[dict]:
        return [asdict(e) for e in self.entries]

    def load_state_dict(self, state: list[dict], like: Tensor) -> None:
        self.entries = [replace(Found(**e), values=e["values"].to(like)) for e in state]


def closest(values: Tensor, known: list[Tensor], distance: float, floor: float) -> int | None:
    """Index of the field set in ``known`` that ``values`` duplicates: the closest one, when its
    :func:`~pinnsolve.deflation.relative_distance` is within ``distance``."""
    gaps = [relative_distance(values, k, floor) for k in known]
    if not gaps or min(gaps) > distance:
        return None
    return int(np.argmin(gaps))
