"""The forward derivative engine against nested autograd (the reference), and engine selection."""

import numpy as np
import pytest
import torch

from pinnsolve.ansatz import ACTIVATIONS, build_mlp
from pinnsolve.derivatives.fields import AutogradEngine
from pinnsolve.derivatives.forward import ForwardEngine, engine_named

NAMES = ("x", "y", "z")


def _mlp(dim, activation="tanh", seed=0, features=0):
    lo, hi = -np.ones(dim), 2 * np.ones(dim)
    return build_mlp(dim, 2, [12, 12], activation, "xavier_normal", (lo, hi), seed,
                     torch.float64, torch.device("cpu"), features, 3.0)  # fmt: skip


def _both(model, dim, strict=True):
    pts = torch.rand(40, dim, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    pts = 3 * pts - 1
    names = NAMES[:dim]
    _, fa = AutogradEngine().fields(model, pts, ("u", "v"), names, names)
    _, ff = ForwardEngine(strict=strict).fields(model, pts, ("u", "v"), names, names)
    return fa, ff, names


@pytest.mark.parametrize("features", [0, 5])
@pytest.mark.parametrize("activation", sorted(ACTIVATIONS))
@pytest.mark.parametrize("dim", [1, 2, 3])
def test_forward_matches_autograd_to_1e_10(activation, dim, features):
    fa, ff, names = _both(_mlp(dim, activation, features=features), dim)
    for field in ("u", "v"):
        requests = [()] + [(c,) for c in names] + [(a, b) for a in names for b in names]
        for coords in requests:
            diff = (fa.d(field, *coords) - ff.d(field, *coords)).abs().max().item()
            assert diff <= 1e-10, (field, coords, diff)


def test_fourier_features_are_fixed_sines_and_cosines_of_the_rescaled_coordinates():
    model = _mlp(2, features=5)
    layer = model.net[0]
    frequencies = layer.weight[:5].T  # [d, count]
    assert torch.equal(layer.weight[5:].T, frequencies)
    x = torch.rand(7, 2, dtype=torch.float64)
    z = ((x - model.center) / model.half_width) @ frequencies
    expected = torch.cat([torch.sin(z), torch.cos(z)], 1)
    assert torch.allclose(
        layer((x - model.center) / model.half_width), expected, rtol=0, atol=1e-14
    )
    trainable = sum(p.numel() for p in model.parameters())
    assert trainable == (10 * 12 + 12) + (12 * 12 + 12) + (12 * 2 + 2)  # the frequencies are not
    assert torch.equal(_mlp(2, features=5).net[0].weight, layer.weight)  # from the seed
    assert not torch.equal(_mlp(2, seed=1, features=5).net[0].weight, layer.weight)
    wide = build_mlp(1, 1, [4], "tanh", "xavier_normal", None, 0, torch.float64,
                     torch.device("cpu"), 4000, 7.0).net[0].weight[:4000]  # fmt: skip
    assert wide.std().item() == pytest.approx(7.0, rel=0.05)


def test_parameter_gradients_match_autograd():
    """Training differentiates the jets with respect to θ: both engines give the same gradient."""
    model = _mlp(2)
    grads = []
    for engine in (AutogradEngine(), ForwardEngine(strict=True)):
        model.zero_grad()
        pts = torch.rand(30, 2, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
        _, f = engine.fields(model, pts, ("u", "v"), ("x", "y"), ("x", "y"))
        loss = (f.lap("u") + torch.exp(f.v) * f.d("u", "x", "y")).square().mean()
        loss.backward()
        grads.append(torch.cat([p.grad.reshape(-1) for p in model.parameters()]))
    assert (grads[0] - grads[1]).abs().max().item() <= 1e-10


def test_third_order_falls_back_to_autograd_unless_strict():
    fa, ff, _ = _both(_mlp(1), 1, strict=False)
    diff = (fa.d("u", "x", "x", "x") - ff.d("u", "x", "x", "x")).abs().max().item()
    assert diff <= 1e-10
    _, strict, _ = _both(_mlp(1), 1, strict=True)
    with pytest.raises(ValueError, match="autograd engine"):
        strict.d("u", "x", "x", "x")


def test_unknown_field_or_coordinate_is_a_clear_error():
    _, ff, _ = _both(_mlp(2), 2)
    with pytest.raises(KeyError, match="no field 'w'"):
        ff.d("w")
    with pytest.raises(KeyError, match="no coordinate 't'"):
        ff.d("u", "t")


def test_network_without_jets():
    def plain(x):
        return torch.stack([x[:, 0] ** 3, x[:, 0]], dim=1)

    pts = torch.linspace(0, 1, 5, dtype=torch.float64)[:, None]
    _, f = ForwardEngine().fields(plain, pts, ("u", "v"), ("x",), ("x",))  # auto: autograd
    torch.testing.assert_close(f.d("u", "x", "x"), 6 * pts[:, 0])
    with pytest.raises(ValueError, match="jet"):
        ForwardEngine(strict=True).fields(plain, pts, ("u", "v"), ("x",), ("x",))


def test_engine_selection():
    assert engine_named("autograd").name == "autograd"
    assert engine_named("auto", "cpu").name == "autograd"  # measured faster on CPU
    assert engine_named("forward", "cpu").name == "forward"
    with pytest.raises(ValueError, match="unknown derivative engine"):
        engine_named("symbolic")


def test_pure_second_derivatives_carry_only_the_hessian_diagonal():
    """A Laplacian needs d, not d², second-derivative rows per point: the diagonal jet gives the
    same values, and a mixed derivative switches the engine to full Hessians from then on."""
    model = _mlp(3)
    pts = torch.rand(25, 3, generator=torch.Generator().manual_seed(3), dtype=torch.float64)
    full, diag = model.jet(pts, 2), model.jet(pts, 2, diagonal=True)
    assert diag.hess is None and diag.order == 2
    expected = torch.diagonal(full.hess, dim1=1, dim2=2).transpose(1, 2)
    assert (diag.hess_diag - expected).abs().max().item() <= 1e-13
    engine = ForwardEngine(strict=True)
    _, f = engine.fields(model, pts, ("u", "v"), NAMES, NAMES)
    f.lap("u")
    assert f._jet.hess is None and not engine.mixed
    f.d("v", "x", "z")
    assert f._jet.hess is not None and engine.mixed
    _, again = engine.fields(model, pts, ("u", "v"), NAMES, NAMES)
    again.d("u", "y", "y")
    assert again._jet.hess is not None  # full at once: no diagonal jet computed first
