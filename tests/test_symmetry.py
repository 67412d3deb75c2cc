"""Symmetries: the image of a network under an affine point map and field factors is exact, a
symmetry that does not fit its problem is a one-line error, and the explorer finds a solution's
image without a search."""

import json
import math

import numpy as np
import pytest
import torch
from elastica_case import ELASTICA

from pinnsolve import Symmetry, solve
from pinnsolve.ansatz import build_mlp, image_state
from pinnsolve.errors import ConfigError, PinnsolveError
from pinnsolve.problem.geometry import Interval, Rectangle

F64, CPU = torch.float64, torch.device("cpu")


@pytest.mark.parametrize("features", [0, 8])
def test_the_image_network_is_the_mapped_function_exactly(features):
    """v(x) = S·f(A x + c) through the folded first and last layers, with a bounding box that
    is not [-1, 1]² (the input rescaling takes part) and two fields of different factors."""
    bounds = (np.array([-1.0, 0.5]), np.array([2.0, 3.0]))
    model = build_mlp(2, 2, [12, 12], "tanh", "xavier_normal", bounds, 3, F64, CPU,
                      fourier_features=features, fourier_scale=2.0)  # fmt: skip
    angle = 0.7
    a = np.array([[math.cos(angle), -math.sin(angle)], [math.sin(angle), math.cos(angle)]])
    c, s = np.array([0.3, -0.2]), np.array([-1.0, 2.5])
    image = build_mlp(2, 2, [12, 12], "tanh", "xavier_normal", bounds, 4, F64, CPU,
                      fourier_features=features, fourier_scale=2.0)  # fmt: skip
    image.load_state_dict(image_state(model, model.state_dict(), a, c, s))
    x = torch.rand(200, 2, dtype=F64) * 3 - 0.5
    with torch.no_grad():
        expected = model(x @ torch.tensor(a).T + torch.tensor(c)) * torch.tensor(s)
        got = image(x)
    assert torch.allclose(got, expected, rtol=0, atol=1e-12)
    assert not torch.allclose(got, model(x).detach(), atol=1e-3)  # the map did something


def test_a_symmetry_that_does_not_fit_is_a_one_line_error():
    square = Rectangle((0.0, 1.0), (0.0, 1.0))
    Symmetry("x -> 1 - x", [[-1.0, 0.0], [0.0, 1.0]], [1.0, 0.0]).check(square, ("u",), "p")
    cases = [
        (Symmetry("x -> x + 1", [[1.0, 0.0], [0.0, 1.0]], [1.0, 0.0]), "does not map the domain"),
        (Symmetry("flip", [[-1.0]], [1.0]), r"expected a 2×2 matrix and 2 offsets"),
        (Symmetry("v -> -v", fields={"v": -1.0}), r"unknown field\(s\) \['v'\]"),
        (Symmetry("nan", fields={"u": math.nan}), "field factors must be finite"),
    ]
    for symmetry, message in cases:
        with pytest.raises(PinnsolveError, match=message) as err:
            symmetry.check(square, ("u",), "problem 'p'")
        assert str(err.value).startswith(f"problem 'p', symmetry {symmetry.name!r}: ")
        assert "\n" not in str(err.value)
    Symmetry("x -> 1 - x", [[-1.0]], [1.0]).check(Interval(0.0, 1.0), ("u",), "p")


@pytest.mark.parametrize("symmetries", ["true", "false"])
def test_the_explorer_adds_the_image_of_a_solution_it_found(tmp_path, symmetries):
    """elastica1d at λ = 15 has u = 0 and a ± pair. Training finds u = 0 and the one search one
    of the pair; the other is its image under u -> -u, found without a search (and not found
    with symmetries off)."""
    f = tmp_path / "elastica.toml"
    f.write_text(ELASTICA.format(symmetries=symmetries))
    result = solve(f, out=tmp_path / "out")
    found = sorted(s.exact_branch for s in result.solutions)
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    images = [s for s in summary["solutions"] if s["provenance"]["strategy"] == "symmetry"]
    if symmetries == "false":
        assert len(found) == 2 and not images
        return
    assert found == [0, 1, 2]
    assert all(s.rel_l2_error <= 1e-5 for s in result.solutions)
    [image] = images
    assert image["provenance"]["image"]["symmetry"] == "u -> -u"
    assert image["provenance"]["image"]["of"]["strategy"] == "deflation"
    log = summary["explore"]["attempts"]
    assert [a["strategy"] for a in log] == ["training", "deflation", "symmetry"]
    assert log[-1]["outcome"] == "new" and log[-1]["search_steps"] == 0


def test_check_names_the_key_when_the_domain_breaks_a_symmetry(tmp_path):
    """A [domain] table that is not symmetric: the problem's symmetry is refused before any
    training, with the key that turns symmetries off."""
    f = tmp_path / "elastica.toml"
    f.write_text(ELASTICA.format(symmetries="true") + '[domain]\ntype = "interval"\nx = [0, 0.8]\n')
    with pytest.raises(ConfigError, match=r"\[explore\] symmetries.*x -> 1 - x.*does not map"):
        solve(f, out=tmp_path / "out")
