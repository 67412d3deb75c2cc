"""Derivative engines: what a residual reads (field values, partial derivatives, operators).

A residual is written against :class:`Fields`, never against autograd directly::

    def residual(self, x, f, p):
        return -f.lap("u") - p.k * torch.exp(f.u)

so the engine underneath can change. :class:`AutogradFields` works for any network and any order by
nested ``torch.autograd.grad`` and caches every derivative it has computed (mixed partials are
assumed to commute, so ``d(u, "x", "y")`` and ``d(u, "y", "x")`` share one entry). A forward engine
that pushes derivatives through an MLP layer by layer can implement the same interface.

All values are 1-D tensors of length N (one entry per point).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence

import torch
from torch import Tensor


class Coords:
    """The points a residual is evaluated on, column by column: ``x.x``, ``x.t``, ``x["y"]``.

    ``x.tensor`` is the ``[N, dim]`` tensor itself (it may require grad: expressions built from its
    columns are differentiated correctly).
    """

    def __init__(self, tensor: Tensor, names: Sequence[str]):
        self.tensor = tensor
        self.names = tuple(names)

    def __getitem__(self, name: str) -> Tensor:
        try:
            return self.tensor[:, self.names.index(name)]
        except ValueError:
            raise KeyError(f"no coordinate {name!r}; coordinates are {self.names}") from None

    def __getattr__(self, name: str) -> Tensor:
        if name.startswith("_") or name in ("tensor", "names"):
            raise AttributeError(name)
        try:
            return self[name]
        except KeyError as err:
            raise AttributeError(str(err)) from None

    def __len__(self) -> int:
        return self.tensor.shape[0]


class Fields(ABC):
    """Field values and derivatives at a set of points; the interface every engine implements."""

    def __init__(
        self, field_names: Sequence[str], coord_names: Sequence[str], spatial: Sequence[str]
    ):
        self.field_names = tuple(field_names)
        self.coord_names = tuple(coord_names)
        self.spatial = tuple(spatial)

    @abstractmethod
    def value(self, field: str) -> Tensor:
        """The field's values, shape ``[N]``."""

    @abstractmethod
    def d(self, field: str, *coords: str) -> Tensor:
        """Partial derivative of ``field`` along ``coords`` in order, e.g. ``d("u", "x", "x")``."""

    def __getattr__(self, name: str) -> Tensor:
        if name.startswith("_") or name not in self.__dict__.get("field_names", ()):
            raise AttributeError(name)
        return self.value(name)

    def __getitem__(self, field: str) -> Tensor:
        return self.value(field)

    def grad(self, field: str) -> Tensor:
        """Spatial gradient, ``[N, n_spatial]``."""
        return torch.stack([self.d(field, c) for c in self.spatial], dim=1)

    def lap(self, field: str) -> Tensor:
        """Spatial Laplacian (the time coordinate is not included)."""
        return sum(self.d(field, c, c) for c in self.spatial)

    def div(self, fields: Sequence[str]) -> Tensor:
        """Divergence of the vector field whose components are ``fields`` (one per spatial axis)."""
        if len(fields) != len(self.spatial):
            raise ValueError(f"div needs {len(self.spatial)} components, got {len(fields)}")
        return sum(self.d(f, c) for f, c in zip(fields, self.spatial, strict=True))

    def normal_derivative(self, field: str, normals: Tensor) -> Tensor:
        """``∇u · n`` with the outward normals ``[N, n_spatial]`` of the boundary points."""
        return (self.grad(field) * normals[:, : len(self.spatial)]).sum(dim=1)


class AutogradFields(Fields):
    """Derivatives by nested reverse-mode autograd, with a cache; works for any network."""

    def __init__(self, x: Tensor, output: Tensor, field_names, coord_names, spatial):
        super().__init__(field_names, coord_names, spatial)
        self._x = x
        self._cache: dict[tuple[str, tuple[str, ...]], Tensor] = {
            (name, ()): output[:, i] for i, name in enumerate(self.field_names)
        }

    def value(self, field: str) -> Tensor:
        return self.d(field)

    def d(self, field: str, *coords: str) -> Tensor:
        key = (field, tuple(sorted(coords)))
        if key in self._cache:
            return self._cache[key]
        if field not in self.field_names:
            raise KeyError(f"no field {field!r}; fields are {self.field_names}")
        for c in coords:
            if c not in self.coord_names:
                raise KeyError(f"no coordinate {c!r}; coordinates are {self.coord_names}")
        lower = self.d(field, *coords[:-1])
        # Callers may evaluate metrics under no_grad; every op here must still build the graph
        # (a slice taken outside it would silently make higher derivatives zero).
        with torch.enable_grad():
            grad = None
            if lower.requires_grad:  # else the lower derivative is constant (linear network)
                (grad,) = torch.autograd.grad(
                    lower.sum(), self._x, create_graph=True, allow_unused=True
                )
            if grad is None:
                grad = torch.zeros_like(self._x)
            for i, c in enumerate(self.coord_names):
                self._cache[(field, tuple(sorted((*coords[:-1], c))))] = grad[:, i]
        return self._cache[key]


class Engine(ABC):
    """Builds :class:`Fields` for a network at given points."""

    name: str

    @abstractmethod
    def fields(
        self,
        model: Callable[[Tensor], Tensor],
        points: Tensor,
        field_names: Sequence[str],
        coord_names: Sequence[str],
        spatial: Sequence[str],
    ) -> tuple[Coords, Fields]:
        """The residual's ``x`` and ``f`` for ``model`` evaluated at ``points``."""


class AutogradEngine(Engine):
    """The generic engine: any ``model``, any derivative order."""

    name = "autograd"

    def fields(self, model, points, field_names, coord_names, spatial):
        x = points.detach().requires_grad_(True)
        with torch.enable_grad():  # derivatives are needed even when the caller is in no_grad
            out = model(x)
            fields = AutogradFields(x, out, field_names, coord_names, spatial)
        return Coords(x, coord_names), fields
