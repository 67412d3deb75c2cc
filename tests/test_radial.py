"""A radial network (``[model] radial``): a function of the squared distance from the domain's
centre, with exact derivatives through the forward engine, its symmetry images, the checks that
keep it to domains it suits, and a solve against a radial closed form."""

import math

import numpy as np
import pytest
import torch

import pinnsolve as ps
from pinnsolve.ansatz import build_mlp, image_state
from pinnsolve.build import build_problem, validate
from pinnsolve.derivatives.fields import AutogradEngine
from pinnsolve.derivatives.forward import ForwardEngine
from pinnsolve.errors import ConfigError
from pinnsolve.io.config import from_dict
from pinnsolve.problem.pdes.ring import PoissonRing

F64, CPU = torch.float64, torch.device("cpu")
NAMES = ("x", "y", "z")


def _radial(dim: int, features: int = 0, seed: int = 0):
    bounds = (np.array([-1.0, 0.0, 2.0][:dim]), np.array([3.0, 2.0, 4.0][:dim]))
    return build_mlp(dim, 2, [12, 12], "tanh", "xavier_normal", bounds, seed, F64, CPU,
                     features, 2.0, radial=True)  # fmt: skip


@pytest.mark.parametrize("features", [0, 4])
@pytest.mark.parametrize("dim", [1, 2, 3])
def test_forward_derivatives_of_a_radial_network_match_autograd(dim, features):
    model = _radial(dim, features)
    pts = torch.rand(30, dim, generator=torch.Generator().manual_seed(1), dtype=F64) * 4 - 1
    names = NAMES[:dim]
    _, fa = AutogradEngine().fields(model, pts, ("u", "v"), names, names)
    _, ff = ForwardEngine(strict=True).fields(model, pts, ("u", "v"), names, names)
    requests = [()] + [(c,) for c in names] + [(a, b) for a in names for b in names]
    for field in ("u", "v"):
        for coords in requests:
            diff = (fa.d(field, *coords) - ff.d(field, *coords)).abs().max().item()
            assert diff <= 1e-10, (field, coords, diff)
        laplacian = (fa.lap(field) - ff.lap(field)).abs().max().item()
        assert laplacian <= 1e-10


def test_a_radial_network_depends_on_the_distance_from_the_centre_only():
    """Rotations about the bounding box's centre (not the origin; the box is not a square, so the
    rescaling must be isotropic) leave every output unchanged."""
    model = _radial(2)
    center = torch.tensor([1.0, 1.0], dtype=F64)
    x = torch.rand(100, 2, dtype=F64) * 2
    angle = 2.3
    rotation = torch.tensor([[math.cos(angle), -math.sin(angle)],
                             [math.sin(angle), math.cos(angle)]], dtype=F64)  # fmt: skip
    with torch.no_grad():
        turned = model((x - center) @ rotation.T + center)
        assert torch.allclose(turned, model(x), rtol=0, atol=1e-13)
        # and it is not constant
        assert (model(x) - model(x).mean(0)).abs().max() > 1e-2


def test_the_image_of_a_radial_network_under_a_reflection_about_its_centre():
    model = _radial(2)
    flip = np.array([[-1.0, 0.0], [0.0, 1.0]])
    state = image_state(model, model.state_dict(), flip, np.array([2.0, 0.0]), np.array([-1, 2]))
    image = _radial(2, seed=5)
    image.load_state_dict(state)
    x = torch.rand(50, 2, dtype=F64) * 2
    with torch.no_grad():
        assert torch.allclose(image(x), model(x) * torch.tensor([-1.0, 2.0], dtype=F64),
                              rtol=0, atol=1e-13)  # fmt: skip
    with pytest.raises(ValueError, match="only under rotations and reflections about"):
        image_state(model, model.state_dict(), flip, np.array([1.0, 0.0]), np.array([1, 1]))


def _config(problem: str, **extra) -> dict:
    data = {
        "problem": {"name": problem},
        "model": {"hidden": [12, 12], "radial": True},
        "sampling": {"interior": 400, "boundary": 32},
        "training": {"optimizer": "adam", "steps": 300, "lr": 1e-2},
        "polish": {"method": "gauss_newton", "gauss_newton_steps": 60},
        "output": {"plots": False, "resolution": 31},
    }
    for key, table in extra.items():
        data[key] = {**data.get(key, {}), **table}
    return data


@pytest.mark.parametrize(
    "problem, extra, key, message",
    [
        ("poisson2d", {}, "[model] radial", "not symmetric under rotations about its centre"),
        ("heat1d", {}, "[model] radial", "distance in space only"),
        ("poisson_ring", {"domain": {"type": "annulus", "inner": 0.5, "outer": 1.0,
                                     "center": [0.2, 0.0]}},
         None, None),
    ],
)  # fmt: skip
def test_a_radial_network_is_refused_where_it_cannot_fit(problem, extra, key, message):
    config = from_dict(_config(problem, **extra), source="case.toml")
    if key is None:  # an annulus about another centre is fine: the centre is the domain's
        validate(config)
        return
    with pytest.raises(ConfigError) as err:
        validate(config)
    text = str(err.value)
    assert "case.toml" in text and key in text and message in text and "\n" not in text


def test_a_symmetry_that_moves_the_centre_is_refused_for_a_radial_network():
    class ShiftedRing(PoissonRing):
        def symmetries(self, p):
            return [ps.Symmetry("u -> -u", fields={"u": -1.0}),
                    ps.Symmetry("turn", matrix=[[0.0, -1.0], [1.0, 0.0]])]  # fmt: skip

    ps.register("shifted_ring_radial_test")(ShiftedRing)
    config = from_dict(
        _config("shifted_ring_radial_test", explore={"strategy": "deflation", "attempts": 1}),
        "case.toml",
    )
    validate(config)  # both keep the distance from the centre (0, 0)

    class Translated(PoissonRing):
        def symmetries(self, p):
            return [ps.Symmetry("x -> -x + 0.1", matrix=[[-1.0, 0.0], [0.0, 1.0]],
                                offset=[0.1, 0.0])]  # fmt: skip

    ps.register("translated_ring_radial_test")(Translated)
    config = from_dict(
        _config("translated_ring_radial_test", explore={"strategy": "deflation", "attempts": 1}),
        "case.toml",
    )
    with pytest.raises(ConfigError, match=r"\[explore\] symmetries"):
        validate(config)


def test_a_radial_network_solves_the_annulus_to_its_closed_form(tmp_path):
    """−Δu = 4 on 1/2 < r < 1, u = 0 on both circles: u = 1 − r² + 3 ln r / (4 ln 2). A 12×12
    network of r² (193 parameters) gets there in few steps (measured 1.3e-5); the network of
    (x, y) with the same settings reaches 2.7e-3."""
    config = from_dict(_config("poisson_ring"))
    (sol,) = ps.solve(build_problem(config), config, out=tmp_path).solutions
    assert sol.rel_l2_error <= 1e-4
