"""Forward derivative engine: value, gradient and Hessian of an MLP in one pass, no double backward.

A residual such as ``−Δu − f`` needs second derivatives of the network with respect to its inputs.
Nested reverse-mode autograd (:class:`~pinnsolve.derivatives.fields.AutogradFields`) gets them by
differentiating a backward graph, which is slow (many small kernels, a graph of graphs) and cannot
be traced by ``torch.func`` transforms. For an MLP the derivatives can instead be carried forward
through the layers with the chain rule (a truncated Taylor "jet")::

    linear  z = W a + b:   ∂z = W ∂a,   ∂²z = W ∂²a
    σ(z):                  ∂a = σ'(z) ∂z,   ∂²a = σ''(z) ∂z ∂zᵀ + σ'(z) ∂²z

so the derivatives are ordinary tensors built by ordinary ops: one backward pass gives their
θ-gradient, and ``torch.func`` (vmap, jacrev, jvp) can transform them, which the Gauss–Newton
polish relies on. Orders above two fall back to autograd.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
from torch import Tensor

from .fields import AutogradEngine, AutogradFields, Coords, Engine, Fields

#: The highest derivative order the forward engine carries; higher orders use autograd.
MAX_ORDER = 2


@dataclass(frozen=True)
class Jet:
    """Outputs and their input derivatives at N points: ``value [N, m]``, ``grad [N, d, m]``
    (order ≥ 1) and, for order 2, either the Hessian ``hess [N, d, d, m]`` or only its diagonal
    ``hess_diag [N, d, m]`` (the pure second derivatives, enough for a Laplacian: d instead of
    d² rows per point through every layer), with d input coordinates and m outputs."""

    value: Tensor
    grad: Tensor | None = None
    hess: Tensor | None = None
    hess_diag: Tensor | None = None

    @property
    def order(self) -> int:
        if self.grad is None:
            return 0
        return 1 if self.hess is None and self.hess_diag is None else 2

    def linear(self, weight: Tensor, bias: Tensor | None) -> Jet:
        """The jet of ``a Wᵀ + b``: derivatives see only W."""
        value = self.value @ weight.T
        if bias is not None:
            value = value + bias
        grad = None if self.grad is None else self.grad @ weight.T
        hess = None if self.hess is None else self.hess @ weight.T
        hess_diag = None if self.hess_diag is None else self.hess_diag @ weight.T
        return Jet(value, grad, hess, hess_diag)

    def square_sum(self) -> Jet:
        """The jet of ``Σ_k a_k²`` over the outputs (one output): ``∂ = 2 Σ a_k ∂a_k``,
        ``∂² = 2 Σ (∂a_k ∂a_kᵀ + a_k ∂²a_k)``; a radial network's first feature."""
        value = self.value.square().sum(1, keepdim=True)
        grad = None if self.grad is None else 2 * (self.grad * self.value.unsqueeze(1)).sum(2)
        hess = None
        if self.hess is not None:
            outer = torch.einsum("nik,njk->nij", self.grad, self.grad)
            hess = 2 * (outer + (self.hess * self.value[:, None, None, :]).sum(3))
        hess_diag = None
        if self.hess_diag is not None:
            curved = self.hess_diag * self.value.unsqueeze(1)
            hess_diag = 2 * (self.grad.square() + curved).sum(2)
        keep = lambda t: None if t is None else t.unsqueeze(-1)  # noqa: E731
        return Jet(value, keep(grad), keep(hess), keep(hess_diag))

    def activate(self, derivatives: ActivationDerivatives) -> Jet:
        """The jet of ``σ(z)`` elementwise, from ``σ, σ', σ''`` at ``z``."""
        s0, s1, s2 = derivatives(self.value, self.order)
        grad = None if self.grad is None else s1.unsqueeze(1) * self.grad
        hess = None
        if self.hess is not None:
            outer = self.grad.unsqueeze(2) * self.grad.unsqueeze(1)
            hess = s2[:, None, None, :] * outer + s1[:, None, None, :] * self.hess
        hess_diag = None
        if self.hess_diag is not None:
            hess_diag = s2.unsqueeze(1) * self.grad.square() + s1.unsqueeze(1) * self.hess_diag
        return Jet(s0, grad, hess, hess_diag)


def input_jet(
    x: Tensor, center: Tensor, half_width: Tensor, order: int, diagonal: bool = False
) -> Jet:
    """The jet of the rescaled input ``(x − c) / h``: gradient ``diag(1/h)``, Hessian zero
    (``diagonal``: only its diagonal is carried)."""
    if not 0 <= order <= MAX_ORDER:
        raise ValueError(f"the forward engine carries orders 0…{MAX_ORDER}, got {order}")
    n, d = x.shape
    value = (x - center) / half_width
    if order == 0:
        return Jet(value)
    grad = torch.diag_embed(1.0 / half_width).expand(n, d, d)
    if order < 2:
        return Jet(value, grad)
    if diagonal:
        return Jet(value, grad, hess_diag=x.new_zeros(n, d, d))
    return Jet(value, grad, x.new_zeros(n, d, d, d))


#: ``(z, order) → (σ(z), σ'(z), σ''(z))``; derivatives above ``order`` may be None.
ActivationDerivatives = Callable[[Tensor, int], tuple[Tensor, Tensor | None, Tensor | None]]


def _tanh(z, order):
    t = torch.tanh(z)
    if order == 0:
        return t, None, None
    d1 = 1 - t * t
    return t, d1, -2 * t * d1


def _sin(z, order):
    s = torch.sin(z)
    return s, (torch.cos(z) if order else None), -s


def _sigmoid(z, order):
    s = torch.sigmoid(z)
    d1 = s * (1 - s)
    return s, d1, d1 * (1 - 2 * s)


def _silu(z, order):
    s = torch.sigmoid(z)
    return z * s, s * (1 + z * (1 - s)), s * (1 - s) * (2 + z * (1 - 2 * s))


def _gelu(z, order):
    cdf = 0.5 * (1 + torch.erf(z / 2**0.5))
    pdf = torch.exp(-0.5 * z * z) / (2 * torch.pi) ** 0.5
    return z * cdf, cdf + z * pdf, pdf * (2 - z * z)


def _softplus(z, order):
    # nn.Softplus is linear above its threshold (20); match it so both engines agree exactly
    linear = z > 20
    s = torch.sigmoid(z)
    d1 = torch.where(linear, torch.ones_like(z), s)
    d2 = torch.where(linear, torch.zeros_like(z), s * (1 - s))
    return torch.nn.functional.softplus(z), d1, d2


ACTIVATION_DERIVATIVES: dict[str, ActivationDerivatives] = {
    "tanh": _tanh,
    "sin": _sin,
    "sigmoid": _sigmoid,
    "silu": _silu,
    "gelu": _gelu,
    "softplus": _softplus,
}


class ForwardFields(Fields):
    """:class:`Fields` served from a :class:`Jet`, computed lazily to the order first asked for.

    ``compute(order)`` evaluates the network's jet; a request for a higher order than the cached
    jet recomputes it once at that order. With ``compute_diagonal`` (an order-2 jet carrying only
    the Hessian's diagonal) pure second derivatives come from that cheaper jet; the first mixed
    one recomputes the full jet and calls ``on_mixed`` (so the engine can ask for the full jet at
    once next time). Orders above :data:`MAX_ORDER` go to ``fallback()`` (autograd fields at the
    same points) when given, else raise.
    """

    def __init__(
        self,
        compute: Callable[[int], Jet],
        field_names: Sequence[str],
        coord_names: Sequence[str],
        spatial: Sequence[str],
        fallback: Callable[[], Fields] | None = None,
        compute_diagonal: Callable[[], Jet] | None = None,
        on_mixed: Callable[[], None] | None = None,
    ):
        super().__init__(field_names, coord_names, spatial)
        self._compute = compute
        self._compute_diagonal = compute_diagonal
        self._on_mixed = on_mixed
        self._fallback = fallback
        self._fallback_fields: Fields | None = None
        self._jet: Jet | None = None

    def value(self, field: str) -> Tensor:
        return self.d(field)

    def d(self, field: str, *coords: str) -> Tensor:
        if field not in self.field_names:
            raise KeyError(f"no field {field!r}; fields are {self.field_names}")
        for c in coords:
            if c not in self.coord_names:
                raise KeyError(f"no coordinate {c!r}; coordinates are {self.coord_names}")
        order = len(coords)
        if order > MAX_ORDER:
            if self._fallback is None:
                raise ValueError(
                    f"the forward engine carries derivatives up to order {MAX_ORDER}; "
                    f"d({field!r}, {', '.join(map(repr, coords))}) needs the autograd engine"
                )
            if self._fallback_fields is None:
                self._fallback_fields = self._fallback()
            return self._fallback_fields.d(field, *coords)
        i = self.field_names.index(field)
        idx = [self.coord_names.index(c) for c in coords]
        self._ensure(order, mixed=order == 2 and idx[0] != idx[1])
        if order == 0:
            return self._jet.value[:, i]
        if order == 1:
            return self._jet.grad[:, idx[0], i]
        if self._jet.hess is None:
            return self._jet.hess_diag[:, idx[0], i]
        return self._jet.hess[:, idx[0], idx[1], i]

    def _ensure(self, order: int, mixed: bool) -> None:
        """Make the cached jet carry what a derivative of ``order`` (``mixed``: ∂²/∂a∂b) needs."""
        jet = self._jet
        if jet is not None and jet.order >= order and not (mixed and jet.hess is None):
            return
        if order == 2 and not mixed and self._compute_diagonal is not None:
            self._jet = self._compute_diagonal()
            return
        if mixed and self._on_mixed is not None:
            self._on_mixed()
        self._jet = self._compute(order)


def supports_jet(model: object) -> bool:
    """Whether ``model`` can push derivatives forward (has a ``jet(x, order)`` method)."""
    return callable(getattr(model, "jet", None))


class ForwardEngine(Engine):
    """Derivatives pushed forward through the network's layers (models with ``jet(x, order)``).

    With ``strict`` a model without ``jet`` is an error; otherwise (the ``auto`` engine) such a
    model, and any derivative above second order, goes to autograd.
    """

    def __init__(self, strict: bool = False):
        self.strict = strict
        self.name = "forward" if strict else "auto"
        #: a residual asked for a mixed second derivative: carry the full Hessian from now on
        self.mixed = False

    def fields(self, model, points, field_names, coord_names, spatial):
        if not supports_jet(model):
            if self.strict:
                raise ValueError(
                    f"the forward derivative engine needs a network with a jet() method "
                    f"(pinnsolve's MLP); {type(model).__name__} has none: use 'autograd'"
                )
            return AutogradEngine().fields(model, points, field_names, coord_names, spatial)
        x = points.detach()

        def fallback() -> Fields:
            xg = x.clone().requires_grad_(True)
            with torch.enable_grad():
                out = model(xg)
            return AutogradFields(xg, out, field_names, coord_names, spatial)

        def on_mixed() -> None:
            self.mixed = True

        diagonal = None if self.mixed else (lambda: model.jet(x, 2, diagonal=True))
        fields = ForwardFields(
            lambda order: model.jet(x, order), field_names, coord_names, spatial,
            fallback=None if self.strict else fallback, compute_diagonal=diagonal,
            on_mixed=on_mixed,
        )  # fmt: skip
        return Coords(x, coord_names), fields


ENGINES = ("auto", "forward", "autograd")


def engine_named(name: str, device: torch.device | str = "cpu") -> Engine:
    """The derivative engine a config names: ``forward`` (forward only, up to second order),
    ``autograd``, or ``auto``: on CUDA forward where the network supports it (autograd for the
    rest), on CPU autograd, the reference. With pure second derivatives carried as the Hessian's
    diagonal the forward engine measured at parity there (``benchmarks/step_speed.py``, BBI+MDMM
    step, MLP 4×64, one thread: 1.00× at N = 1k, 1.03× at 4k, 1.14× at 16k); with full Hessians
    it was 0.6–0.7×."""
    if name == "autograd" or (name == "auto" and torch.device(device).type != "cuda"):
        return AutogradEngine()
    if name in ("auto", "forward"):
        return ForwardEngine(strict=name == "forward")
    raise ValueError(f"unknown derivative engine {name!r}; expected one of {', '.join(ENGINES)}")
