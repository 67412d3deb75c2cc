"""A file's ``[domain]`` table: the three forms, what they build, and one-line errors from
``pinnsolve check`` naming the file and the key."""

import shutil
from pathlib import Path

import meshio
import pytest
from click.testing import CliRunner

from pinnsolve.build import build_problem, validate
from pinnsolve.cli import main
from pinnsolve.io.config import from_dict, load_config, to_toml
from pinnsolve.problem import Annulus, MeshDomain, Polygon, Rectangle, SpaceTime
from pinnsolve.problem.domain import Difference, Union

ROOT = Path(__file__).resolve().parents[1]
PLATE_WITH_HOLE = """
[problem]
name = "poisson_ring"
[domain]
shape = "plate - hole"
[domain.plate]
type = "rectangle"
x = [-1, 1]
y = [-1, 1]
[domain.hole]
type = "disk"
radius = 0.5
"""


def problem_of(tmp_path, text):
    f = tmp_path / "p.toml"
    f.write_text(text)
    return build_problem(load_config(f))


def test_a_shape_combines_named_tables_with_pythons_precedence(tmp_path):
    geom = problem_of(tmp_path, PLATE_WITH_HOLE).geometry()
    assert isinstance(geom, Difference) and geom.parts == ("xmin", "xmax", "ymin", "ymax", "circle")
    text = PLATE_WITH_HOLE.replace('"plate - hole"', '"plate - hole | hole"')
    geom = problem_of(tmp_path, text).geometry()  # (plate - hole) | hole: the plate again
    assert isinstance(geom, Union) and geom.measure() == pytest.approx(4.0, rel=1e-4)
    assert geom.parts == ("xmin", "xmax", "ymin", "ymax")  # the hole's edge bounds nothing now


def test_polygon_annulus_and_mesh_tables(tmp_path):
    lshape = '[problem]\nname = "laplace_lshape"\n[domain]\ntype = "polygon"\n' \
        'vertices = [[0, 0], [2, 0], [2, 1], [0, 1]]\nedges = ["b", "r", "t", "l"]\n'  # fmt: skip
    geom = problem_of(tmp_path, lshape).geometry()
    assert isinstance(geom, Polygon) and geom.parts == ("b", "r", "t", "l")
    ring = '[problem]\nname = "laplace_lshape"\n[domain]\ntype = "annulus"\ninner = 1\nouter = 2\n'
    assert isinstance(problem_of(tmp_path, ring).geometry(), Annulus)
    shutil.copy(ROOT / "problems" / "plate.msh", tmp_path / "plate.msh")
    mesh = '[problem]\nname = "poisson_ring"\n[domain]\nmesh = "plate.msh"\n'  # next to the file
    assert isinstance(problem_of(tmp_path, mesh).geometry(), MeshDomain)


def test_a_time_dependent_problem_keeps_its_time_interval(tmp_path):
    text = '[problem]\nname = "heat1d"\n[domain]\ntype = "interval"\nx = [0, 2]\n'
    geom = problem_of(tmp_path, text).geometry()
    assert isinstance(geom, SpaceTime) and geom.coords == ("x", "t")
    assert geom.bounds()[1].tolist() == [2.0, 1.0]


def test_the_resolved_file_keeps_the_domain():
    config = from_dict({"problem": {"name": "poisson_ring"}, "domain": {
        "shape": "a - b", "a": {"type": "rectangle", "x": [0, 1], "y": [0, 1]},
        "b": {"type": "polygon", "vertices": [[0, 0], [0.5, 0], [0, 0.5]]}}})  # fmt: skip
    import tomllib

    again = from_dict(tomllib.loads(to_toml(config.to_dict())))
    assert again.domain == config.domain and again.digest() == config.digest()
    assert isinstance(build_problem(again).geometry(), Difference)


@pytest.mark.parametrize(("domain", "key", "message"), [
    ('type = "circle"', "[domain] type",
     "expected type = one of 'interval', 'rectangle', 'box', 'disk', 'annulus', 'polygon'"),
    ('type = "disk"\nradius = -1', "[domain] radius", "expected a number > 0, got -1"),
    ('type = "disk"\nradius = 1\nradius_ = 2', "[domain] radius_", "unknown key"),
    ('type = "annulus"\ninner = 2\nouter = 1', "[domain]", "0 < inner < outer"),
    ('type = "polygon"\nvertices = [[0, 0], [1, 1], [1, 0], [0, 1]]', "[domain]",
     "the polygon crosses itself"),
    ('type = "box"\nlo = [0, 0, 0]\nhi = [1, 1, 1]', "[domain]",
     "the problem has 2 space coordinates (x, y), this domain has 3"),
    ('shape = "a & b"\n[domain.a]\ntype = "disk"\nradius = 1\n[domain.b]\ntype = "rectangle"\n'
     'x = [2, 3]\ny = [0, 1]', "[domain] shape", "empty intersection"),
    ('shape = "a - hol"\n[domain.a]\ntype = "disk"\nradius = 1\n[domain.hole]\ntype = "disk"\n'
     'radius = 0.5', "[domain] shape", "unknown shape 'hol' (did you mean 'hole'?)"),
    ('shape = "a - (a"\n[domain.a]\ntype = "disk"\nradius = 1', "[domain] shape",
     "a parenthesis is not closed"),
    ('mesh = "missing.msh"', "[domain] mesh", "cannot read mesh"),
    ('mesh = "bare.vtu"', "[domain] mesh", "has no boundary groups"),
])  # fmt: skip
def test_check_reports_a_bad_domain_in_one_line(tmp_path, domain, key, message):
    meshio.write(tmp_path / "bare.vtu", meshio.Mesh(
        [[0, 0, 0], [1, 0, 0], [0, 1, 0]], [("triangle", [[0, 1, 2]])]))  # fmt: skip
    f = tmp_path / "p.toml"
    f.write_text(f'[problem]\nname = "poisson_ring"\n[domain]\n{domain}\n')
    result = CliRunner().invoke(main, ["check", str(f)])
    assert result.exit_code == 2, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"error: {f}: {key}: "), lines
    assert message in lines[0] and "Traceback" not in result.output


def test_a_condition_on_a_part_the_new_domain_lacks_is_named(tmp_path):
    f = tmp_path / "p.toml"
    f.write_text(
        '[problem]\nname = "laplace_lshape"\n[domain]\ntype = "rectangle"\nx = [0, 1]\n'
        'y = [0, 1]\n[[conditions]]\nkind = "neumann"\npart = "notch"\n'
    )
    result = CliRunner().invoke(main, ["check", str(f)])
    assert result.exit_code == 2
    assert "[[conditions]] #1: " in result.output and "unknown boundary part 'notch'" in (
        result.output
    )


def test_a_problem_with_its_own_domain_rule_refuses_a_table(tmp_path):
    from pinnsolve.problem import Problem

    class Sized(Problem):
        domain = Rectangle((0, 1), (0, 1))

        def geometry(self):
            return Rectangle((0, 2), (0, 1))

    with pytest.raises(Exception, match="overrides geometry"):
        Sized().use_domain(Annulus())
    assert validate(load_config(ROOT / "problems" / "poisson_plate.toml"))[0].geometry().parts == (
        "inner",
        "outer",
    )
