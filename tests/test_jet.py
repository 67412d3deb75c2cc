"""Derivative operators against functions whose derivatives are known in closed form."""

import math

import pytest
import torch

from pinnsolve.derivatives.fields import AutogradEngine


def model_2d(x):
    """u = sin(x) y², v = x y + eˣ (two fields, so cross-field caching is exercised)."""
    X, Y = x[:, 0], x[:, 1]
    return torch.stack([torch.sin(X) * Y**2, X * Y + torch.exp(X)], dim=1)


@pytest.fixture
def fields():
    pts = torch.rand(50, 2, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    x, f = AutogradEngine().fields(model_2d, pts, ("u", "v"), ("x", "y"), ("x", "y"))
    return pts, x, f


def test_values_and_first_derivatives(fields):
    pts, x, f = fields
    X, Y = pts[:, 0], pts[:, 1]
    torch.testing.assert_close(f.u, torch.sin(X) * Y**2)
    torch.testing.assert_close(f.d("u", "x"), torch.cos(X) * Y**2)
    torch.testing.assert_close(f.d("u", "y"), 2 * torch.sin(X) * Y)
    torch.testing.assert_close(f.d("v", "x"), Y + torch.exp(X))
    torch.testing.assert_close(x.x, X)


def test_second_and_mixed_derivatives(fields):
    pts, _, f = fields
    X, Y = pts[:, 0], pts[:, 1]
    torch.testing.assert_close(f.d("u", "x", "x"), -torch.sin(X) * Y**2)
    torch.testing.assert_close(f.d("u", "y", "y"), 2 * torch.sin(X))
    torch.testing.assert_close(f.d("u", "x", "y"), 2 * torch.cos(X) * Y)
    torch.testing.assert_close(f.d("u", "y", "x"), 2 * torch.cos(X) * Y)
    torch.testing.assert_close(f.d("u", "x", "x", "x"), -torch.cos(X) * Y**2)


def test_operators(fields):
    pts, _, f = fields
    X, Y = pts[:, 0], pts[:, 1]
    torch.testing.assert_close(f.lap("u"), -torch.sin(X) * Y**2 + 2 * torch.sin(X))
    torch.testing.assert_close(f.grad("v"), torch.stack([Y + torch.exp(X), X], dim=1))
    # div (u, v) = u_x + v_y
    torch.testing.assert_close(f.div(["u", "v"]), torch.cos(X) * Y**2 + X)
    normals = torch.tensor([[0.6, 0.8]], dtype=torch.float64).expand(len(X), 2)
    torch.testing.assert_close(
        f.normal_derivative("u", normals), 0.6 * torch.cos(X) * Y**2 + 1.6 * torch.sin(X) * Y
    )


def test_time_is_not_part_of_the_laplacian():
    pts = torch.rand(20, 2, dtype=torch.float64)
    model = lambda x: torch.sin(math.pi * x[:, :1]) * torch.exp(-x[:, 1:])  # noqa: E731
    _, f = AutogradEngine().fields(model, pts, ("u",), ("x", "t"), ("x",))
    X, T = pts[:, 0], pts[:, 1]
    torch.testing.assert_close(f.lap("u"), -(math.pi**2) * torch.sin(math.pi * X) * torch.exp(-T))
    torch.testing.assert_close(f.d("u", "t"), -torch.sin(math.pi * X) * torch.exp(-T))
    assert f.grad("u").shape == (20, 1)


def test_derivative_of_linear_function_is_zero_not_an_error():
    pts = torch.rand(5, 1, dtype=torch.float64)
    _, f = AutogradEngine().fields(lambda x: 3 * x, pts, ("u",), ("x",), ("x",))
    torch.testing.assert_close(f.d("u", "x", "x"), torch.zeros(5, dtype=torch.float64))


def test_unknown_names_are_clear_errors(fields):
    _, x, f = fields
    with pytest.raises(KeyError, match="no field 'w'"):
        f.d("w", "x")
    with pytest.raises(KeyError, match="no coordinate 'z'"):
        f.d("u", "z")
    with pytest.raises(AttributeError, match="no coordinate 'z'"):
        _ = x.z


def test_derivatives_work_under_no_grad(fields):
    pts, _, _ = fields
    with torch.no_grad():
        _, f = AutogradEngine().fields(model_2d, pts, ("u", "v"), ("x", "y"), ("x", "y"))
        lap = f.lap("u")
    X, Y = pts[:, 0], pts[:, 1]
    torch.testing.assert_close(lap, -torch.sin(X) * Y**2 + 2 * torch.sin(X))
