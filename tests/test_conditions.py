"""Every condition kind, from TOML, enforced as MDMM constraints, against exact solutions."""

import math
from pathlib import Path

import numpy as np
import pytest
import torch

import pinnsolve as ps
from pinnsolve import ConfigError, Periodic
from pinnsolve.derivatives.fields import AutogradEngine, Coords
from pinnsolve.problem.conditions import condition_from_table
from pinnsolve.problem.geometry import Interval, Rectangle
from pinnsolve.problem.params import Params

DATA = Path(__file__).parent / "data"
FAST = """
[model]
hidden = [16, 16]
[sampling]
interior = 64
boundary = 32
[training]
optimizer = "lbfgs"
steps = {steps}
[polish]
method = "none"
[output]
plots = false
resolution = 41
"""


def solve_toml(tmp_path, problem, conditions, steps=400, extra=""):
    text = f'[problem]\nname = "{DATA / "plain_pdes.py"}:{problem}"\n'
    text += FAST.format(steps=steps) + extra + conditions
    f = tmp_path / "p.toml"
    f.write_text(text)
    return ps.solve(f, out=tmp_path / "run")


def test_neumann_and_robin(tmp_path):
    """u'' = u, −u'(0) = −1 (outward normal at x = 0 is −1), u(1) + u'(1) = 2e → u = eˣ."""
    result = solve_toml(tmp_path, "Helmholtz", """
[[conditions]]
kind = "neumann"
part = "xmin"
target = -1
[[conditions]]
kind = "robin"
part = "xmax"
a = 1.0
b = 1.0
target = "2*e"
""")  # fmt: skip
    (sol,) = result.solutions
    assert sol.rel_l2_error <= 1e-3
    assert set(sol.conditions) == {"neumann_xmin", "robin_xmax"}
    assert sol.max_infeasibility <= 1e-3


def test_periodic_with_integral(tmp_path):
    """Periodic value and derivative fix u up to a constant; ∫u = 0 fixes the constant."""
    result = solve_toml(tmp_path, "PeriodicPoisson", """
[[conditions]]
kind = "periodic"
part = "xmin"
other = "xmax"
[[conditions]]
kind = "periodic"
part = "xmin"
other = "xmax"
derivative = 1
[[conditions]]
kind = "integral"
target = 0
""")  # fmt: skip
    (sol,) = result.solutions
    assert sol.rel_l2_error <= 1e-3
    assert set(sol.conditions) == {"periodic_xmin_xmax", "periodic_xmin_xmax_d1", "integral"}


def test_initial_value_and_velocity(tmp_path):
    """Wave equation: u = sin πx at t = 0, u_t = 0 at t = 0, u = 0 at both ends."""
    result = solve_toml(tmp_path, "Wave", """
[[conditions]]
kind = "dirichlet"
part = "boundary"
[[conditions]]
kind = "initial"
target = "sin(pi*x)"
[[conditions]]
kind = "initial"
derivative = 1
""", steps=600)  # fmt: skip
    (sol,) = result.solutions
    assert sol.rel_l2_error <= 1e-2


def test_active_inequality_is_an_obstacle(tmp_path):
    """u = sin 2πx subject to u ≥ 0 → u ≈ max(sin 2πx, 0)."""
    result = solve_toml(tmp_path, "Projection", """
[[conditions]]
kind = "inequality"
op = ">="
target = 0
""", steps=600)  # fmt: skip
    (sol,) = result.solutions
    x = result.mesh.points[:, 0]
    u = sol.values["u"]
    obstacle = np.maximum(np.sin(2 * math.pi * x), 0.0)
    assert u.min() >= -2e-2
    assert np.sqrt(np.mean((u - obstacle) ** 2)) <= 2e-2
    assert sol.conditions["inequality_interior"]["max"] <= 2e-2


def test_penalty_per_condition_from_toml(tmp_path):
    result = solve_toml(tmp_path, "Helmholtz", """
[constraints.neumann_xmin]
method = "penalty"
weight = 100.0
[[conditions]]
kind = "neumann"
part = "xmin"
target = -1
[[conditions]]
kind = "dirichlet"
part = "xmax"
target = "e"
""")  # fmt: skip
    (sol,) = result.solutions
    assert sol.rel_l2_error <= 1e-3
    history = result.history[-1]
    assert "dirichlet_xmax_lambda_rms" in history and "neumann_xmin_lambda_rms" not in history


def test_override_for_unknown_condition_is_an_error(tmp_path):
    with pytest.raises(ConfigError, match=r"\[constraints.dirichlet_xmn\]: no condition named "
                       r"'dirichlet_xmn' \(did you mean 'dirichlet_xmin'\?\)"):  # fmt: skip
        solve_toml(tmp_path, "Helmholtz", """
[constraints.dirichlet_xmn]
weight = 3.0
[[conditions]]
kind = "dirichlet"
part = "xmin"
""")  # fmt: skip


@pytest.mark.parametrize(("table", "message"), [
    ({"kind": "dirichlet", "part": "top"}, "unknown boundary part 'top'"),
    ({"kind": "dirichlet", "part": "xmin", "target": "sin(y)"}, "#1 target: unknown name 'y'"),
    ({"kind": "inequality", "quantity": "v**2"}, "#1 quantity: unknown name 'v'"),
    ({"kind": "periodic", "part": "xmin", "other": "xmin"}, "periodic faces must be opposite"),
    ({"kind": "initial"}, "unknown boundary part 'initial'"),
])  # fmt: skip
def test_bad_conditions_from_toml(tmp_path, table, message):
    text = f'[problem]\nname = "{DATA / "plain_pdes.py"}:Helmholtz"\n[[conditions]]\n'
    text += "".join(f"{k} = {v!r}\n".replace("'", '"') for k, v in table.items())
    f = tmp_path / "p.toml"
    f.write_text(text)
    with pytest.raises(ps.PinnsolveError, match=message) as err:
        ps.solve(f, out=tmp_path / "run")
    assert "\n" not in str(err.value)


def test_sign_conventions():
    """g = value − target for every kind; an inequality's g is quantity − bound."""
    pts = torch.tensor([[0.0], [1.0]], dtype=torch.float64)
    model = lambda x: 2 * x + 1  # noqa: E731  u = 2x + 1, u' = 2
    x, f = AutogradEngine().fields(model, pts, ("u",), ("x",), ("x",))
    normals = torch.tensor([[-1.0], [1.0]], dtype=torch.float64)
    p = Params({})
    g = lambda table: condition_from_table(table, ("x",), ("u",), p, "w").residual(  # noqa: E731
        x, f, normals, p, "u"
    )
    assert g({"kind": "dirichlet", "part": "xmin", "target": 0.5}).tolist() == [0.5, 2.5]
    assert g({"kind": "neumann", "part": "xmin", "target": 1}).tolist() == [-3.0, 1.0]
    assert g({"kind": "robin", "part": "xmin", "a": 2.0, "b": 1.0, "target": 0}).tolist() == [
        0.0, 8.0,
    ]  # fmt: skip
    assert g({"kind": "inequality", "op": "<=", "target": 2}).tolist() == [-1.0, 1.0]


def test_periodic_points_pair_opposite_faces():
    geom = Rectangle((0.0, 2.0), (0.0, 1.0))
    s = geom.sample_part("xmin", 8, "sobol", 0)
    placed = Periodic("xmin", other="xmax").place(geom, {"xmin": s}, np.zeros((0, 2)))
    a, b = placed.points[:8], placed.points[8:]
    np.testing.assert_array_equal(a[:, 1], b[:, 1])
    assert (a[:, 0] == 0).all() and (b[:, 0] == 2).all()
    assert Interval(0, 1).opposite("xmax") == "xmin"


def test_integral_uses_the_domain_measure():
    class P(ps.Problem):
        domain = Rectangle((0.0, 2.0), (0.0, 3.0))

        def conditions(self, p):
            return [ps.Integral(target=1.0)]

    ((cond, _),) = P().checked_conditions()
    assert cond.volume == 6.0
    pts = torch.rand(100, 2, dtype=torch.float64)
    x, f = AutogradEngine().fields(lambda y: torch.ones(len(y), 1, dtype=y.dtype), pts,
                                   ("u",), ("x", "y"), ("x", "y"))  # fmt: skip
    g = cond.residual(Coords(pts, ("x", "y")), f, pts * 0, Params({}), "u")
    assert g.shape == () and g.item() == pytest.approx(5.0)  # ∫1 = 6, minus the target 1
