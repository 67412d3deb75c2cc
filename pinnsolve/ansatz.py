"""Neural ansätze: the functions whose parameters training adjusts.

The MLP rescales its inputs from the domain's bounding box to ``[-1, 1]`` first: PINN training is
badly conditioned when coordinates span very different ranges (a time axis of 0…100 next to a
space axis of 0…1), and the rescaling is a fixed affine map, so derivatives stay exact.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence

import numpy as np
import torch
from torch import Tensor, nn

from .derivatives.forward import ACTIVATION_DERIVATIVES, Jet, input_jet

#: ``(sin, its derivatives)`` for the Fourier feature layer's forward jet
_SINE = ACTIVATION_DERIVATIVES["sin"]


class Sine(nn.Module):
    """``sin(x)``: SIREN-style activation (smooth, periodic; good for oscillating solutions)."""

    def forward(self, x: Tensor) -> Tensor:
        return torch.sin(x)


class FourierFeatures(nn.Module):
    """``[sin(x B), cos(x B)]`` of the rescaled coordinates x, with ``count`` fixed frequency
    vectors (the columns of B) drawn from N(0, scale²) (random Fourier features: Tancik et al.
    2020; for PINNs Wang, Wang & Perdikaris 2021).

    Why: an MLP of smooth activations learns high frequencies last and slowly (spectral bias);
    a solution such as sin²(20 r²) on the unit disk is then out of reach of a small network
    (a 3×32 tanh MLP fitted to it by least squares stays at relative L2 0.40), while two tanh
    layers of 32 behind 64 features of scale 10 reach 4e-3 in 20 Levenberg–Marquardt steps. The
    frequencies are buffers, not parameters: they come from the seed, and the Gauss–Newton
    Jacobian does not grow with them. The layer is ``sin(x W + b)`` with W = [B, B] and
    b = [0, π/2], so the forward jet is a linear map and a sine.
    """

    def __init__(self, in_dim: int, count: int, scale: float):
        super().__init__()
        frequencies = torch.randn(in_dim, count, dtype=torch.float64) * scale
        self.register_buffer("weight", torch.cat([frequencies, frequencies], 1).T.contiguous())
        quarter_turn = torch.full((count,), torch.pi / 2, dtype=torch.float64)
        self.register_buffer("bias", torch.cat([torch.zeros_like(quarter_turn), quarter_turn]))

    def forward(self, x: Tensor) -> Tensor:
        return torch.sin(x @ self.weight.T + self.bias)


class RadialInput(nn.Module):
    """``2|z|² − 1`` of the rescaled coordinates z: the network becomes a function of the
    squared distance from the domain's centre, so every function it can represent is radially
    symmetric.

    Why: a problem whose solutions of interest are radial (``bbi_disk``: u* = sin²(20 r²) and a
    second radial solution) is in effect one-dimensional in ρ = r². A network of ρ represents
    such a solution with a few hundred parameters, where a network of (x, y) must learn the
    rings in two dimensions (measured on ``bbi_disk``: rel L2 0.25 after 30 minutes). The
    squared distance, not the distance, keeps the network smooth at the centre. The rescaling in
    front is isotropic for a radial network (:class:`MLP`), so |z| is the Euclidean distance
    over one length."""

    def forward(self, z: Tensor) -> Tensor:
        return 2 * z.square().sum(1, keepdim=True) - 1


ACTIVATIONS = {
    "tanh": nn.Tanh,
    "sin": Sine,
    "silu": nn.SiLU,
    "gelu": nn.GELU,
    "softplus": nn.Softplus,
    "sigmoid": nn.Sigmoid,
}

INITS = {
    "xavier_normal": nn.init.xavier_normal_,
    "xavier_uniform": nn.init.xavier_uniform_,
}


class MLP(nn.Module):
    """``in_dim → hidden… → out_dim`` with one activation, Glorot-initialised weights, zero biases.

    ``lo``/``hi`` (the domain's bounding box) set the input rescaling; a smooth activation is
    required because residuals differentiate the network twice (ReLU has no second derivative).
    ``fourier_features`` > 0 puts a :class:`FourierFeatures` layer of that many frequencies
    (standard deviation ``fourier_scale``) between the rescaling and the first linear layer.
    ``radial`` makes the network a function of the squared distance from the box's centre
    (:class:`RadialInput`, first; the rescaling then divides every axis by the box's largest
    half-width).
    """

    def __init__(
        self,
        in_dim: int,
        out_dim: int,
        hidden: Sequence[int] = (32, 32),
        activation: str = "tanh",
        init: str = "xavier_normal",
        lo: Sequence[float] | np.ndarray | None = None,
        hi: Sequence[float] | np.ndarray | None = None,
        fourier_features: int = 0,
        fourier_scale: float = 1.0,
        radial: bool = False,
    ):
        super().__init__()
        self.activation = activation
        if activation not in ACTIVATIONS:
            raise ValueError(
                f"unknown activation {activation!r}; expected one of {', '.join(ACTIVATIONS)}"
            )
        if init not in INITS:
            raise ValueError(f"unknown init {init!r}; expected one of {', '.join(INITS)}")
        lo = torch.as_tensor(np.zeros(in_dim) if lo is None else lo, dtype=torch.float64)
        hi = torch.as_tensor(np.ones(in_dim) if hi is None else hi, dtype=torch.float64)
        half_width = (hi - lo) / 2
        if radial:
            half_width = half_width.max().expand(in_dim).clone()
        self.register_buffer("center", (hi + lo) / 2)
        self.register_buffer("half_width", half_width)
        layers: list[nn.Module] = []
        if radial:
            layers.append(RadialInput())
            in_dim = 1
        if fourier_features > 0:
            layers.append(FourierFeatures(in_dim, fourier_features, fourier_scale))
            in_dim = 2 * fourier_features
        widths = [in_dim, *hidden, out_dim]
        for i, (a, b) in enumerate(zip(widths[:-1], widths[1:], strict=True)):
            linear = nn.Linear(a, b)
            INITS[init](linear.weight)
            nn.init.zeros_(linear.bias)
            layers.append(linear)
            if i < len(widths) - 2:
                layers.append(ACTIVATIONS[activation]())
        self.net = nn.Sequential(*layers)

    def forward(self, x: Tensor) -> Tensor:
        return self.net((x - self.center) / self.half_width)

    def jet(self, x: Tensor, order: int = 2, diagonal: bool = False) -> Jet:
        """Outputs with their input derivatives up to ``order`` (≤ 2) in one forward pass
        (the forward derivative engine; see :mod:`pinnsolve.derivatives.forward`); ``diagonal``: of
        the second derivatives only the pure ones (``hess_diag``)."""
        jet = input_jet(x, self.center, self.half_width, order, diagonal)
        derivatives = ACTIVATION_DERIVATIVES[self.activation]
        for layer in self.net:
            if isinstance(layer, RadialInput):
                jet = jet.square_sum().linear(jet.value.new_full((1, 1), 2.0),
                                              jet.value.new_full((1,), -1.0))  # fmt: skip
            elif isinstance(layer, FourierFeatures):
                jet = jet.linear(layer.weight, layer.bias).activate(_SINE)
            elif isinstance(layer, nn.Linear):
                jet = jet.linear(layer.weight, layer.bias)
            else:
                jet = jet.activate(derivatives)
        return jet


def build_mlp(
    in_dim: int,
    out_dim: int,
    hidden: Sequence[int],
    activation: str,
    init: str,
    bounds: tuple[np.ndarray, np.ndarray] | None,
    seed: int,
    dtype: torch.dtype,
    device: torch.device,
    fourier_features: int = 0,
    fourier_scale: float = 1.0,
    radial: bool = False,
) -> MLP:
    """An :class:`MLP` whose initial weights (and Fourier frequencies) depend only on ``seed``
    (not on global RNG state)."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        lo, hi = bounds if bounds is not None else (None, None)
        model = MLP(in_dim, out_dim, hidden, activation, init, lo, hi, fourier_features,
                    fourier_scale, radial)  # fmt: skip
    return model.to(device=device, dtype=dtype)


def image_state(
    model: MLP, state: dict[str, Tensor], matrix: np.ndarray, offset: np.ndarray,
    factors: np.ndarray,
) -> dict[str, Tensor]:  # fmt: skip
    """The parameters of ``x ↦ S·f(A x + c)`` where f is ``model`` holding ``state``: the image of
    a solution under a symmetry (:mod:`pinnsolve.problem.symmetry`), as a network of the same
    architecture, so that it is polished and catalogued like any other.

    Exact, no fitting: after the input rescaling z = D⁻¹(x − center), the point map is
    z ↦ M z + m with M = D⁻¹ A D and m = D⁻¹(A·center + c − center), which folds into the first
    layer (a linear layer, or the Fourier features' fixed frequencies); S scales the last layer's
    rows. A radial network (:class:`RadialInput`) is its own image under a rotation or
    reflection about its centre, and has none of the same architecture under another map
    (ValueError: :func:`radial_image_error` says so before any training)."""
    image = copy.deepcopy(model)
    image.load_state_dict(state)
    first, last = image.net[0], image.net[-1]
    like = {"dtype": last.weight.dtype, "device": last.weight.device}
    width, center = image.half_width.to(**like), image.center.to(**like)
    a = torch.as_tensor(matrix, **like)
    m_matrix = a * width[None, :] / width[:, None]
    m_offset = (a @ center + torch.as_tensor(offset, **like) - center) / width
    s = torch.as_tensor(factors, **like)
    with torch.no_grad():
        if isinstance(first, RadialInput):
            why = radial_image_error(m_matrix.cpu().numpy(), m_offset.cpu().numpy())
            if why:
                raise ValueError(why)
        else:
            first.bias.copy_(first.weight @ m_offset + first.bias)
            first.weight.copy_(first.weight @ m_matrix)
        last.weight.mul_(s[:, None])
        last.bias.mul_(s)
    return {name: t.detach().clone() for name, t in image.state_dict().items()}


def radial_image_error(matrix: np.ndarray, offset: np.ndarray) -> str | None:
    """Why a radial network has no image under the point map ``z ↦ M z + m`` (in its rescaled
    coordinates, where it depends on |z| only), or None when the map keeps |z|: M orthogonal
    and m zero, to 1e-9."""
    d = len(offset)
    if np.abs(matrix @ matrix.T - np.eye(d)).max() > 1e-9 or np.abs(offset).max() > 1e-9:
        return ("a radial network ([model] radial) has an image only under rotations and "
                "reflections about the domain's centre")  # fmt: skip
    return None
