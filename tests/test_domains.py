"""Polygons, annuli, set operations and meshes read from files: points inside and uniform by
area, boundary points uniform by length with unit outward normals, part names, evaluation meshes."""

from pathlib import Path

import meshio
import numpy as np
import pytest
import torch
from matplotlib.tri import Triangulation
from scipy import stats

from pinnsolve.problem import Annulus, Box, Disk, MeshDomain, Polygon, Rectangle, SpaceTime
from pinnsolve.problem.planar import simplex_measures, triangle_areas

PLATE = Path(__file__).resolve().parent.parent / "problems" / "plate.msh"
L_VERTICES = [(0, 0), (1, 0), (1, 1), (-1, 1), (-1, -1), (0, -1)]
L_EDGES = ["notch", "outer", "outer", "outer", "outer", "notch"]


def l_shape() -> Polygon:
    return Polygon(L_VERTICES, L_EDGES)


def plate_with_hole():
    return Rectangle((-1.0, 1.0), (-1.0, 1.0)) - Disk((0.0, 0.0), 0.5)


def assert_unit_and_outward(geom, sample, eps=1e-6):
    """Unit normals; a step along one leaves the domain, a step against it enters."""
    np.testing.assert_allclose(np.linalg.norm(sample.normals, axis=1), 1.0, rtol=1e-12)
    assert geom.contains(sample.points - eps * sample.normals).all()
    assert not geom.contains(sample.points + eps * sample.normals).any()


def chi2_p(counts, expected) -> float:
    return stats.chisquare(counts, expected * counts.sum() / expected.sum()).pvalue


def test_polygon_parts_grouped_by_name_lengths_area_and_orientation():
    g = l_shape()
    assert g.parts == ("notch", "outer")
    assert g.part_length("notch") == pytest.approx(2.0) and g.part_length("outer") == 6.0
    assert g.measure() == pytest.approx(3.0)
    clockwise = Polygon(L_VERTICES[::-1], ["a", "b", "c", "d", "e", "f"])
    assert clockwise.measure() == pytest.approx(3.0)
    # given clockwise, edge "a" runs from (0, -1) to (-1, -1); turned around, it keeps its name
    s = clockwise.sample_part("a", 20, "sobol", 0)
    np.testing.assert_allclose(s.points[:, 1], -1.0)
    np.testing.assert_allclose(s.normals, np.tile([0.0, -1.0], (20, 1)), atol=1e-15)
    assert Polygon([(0, 0), (1, 0), (0, 1)]).parts == ("edge0", "edge1", "edge2")


@pytest.mark.parametrize("part", ["notch", "outer"])
def test_polygon_boundary_points_are_on_the_part_with_outward_normals(part):
    g = l_shape()
    s = g.sample_part(part, 200, "sobol", 0)
    assert_unit_and_outward(g, s)
    on_notch = (np.abs(s.points[:, 0]) < 1e-12) | (np.abs(s.points[:, 1]) < 1e-12)
    assert on_notch.all() == (part == "notch")


def test_polygon_boundary_points_are_uniform_in_length():
    """The outer part's five edges (lengths 1, 2, 2, 1 and the 1 below) get points by length."""
    g = l_shape()
    s = g.sample_part("outer", 3000, "uniform", 3)
    x, y = s.points.T
    edge = np.select(
        [np.isclose(x, 1), np.isclose(y, 1), np.isclose(x, -1), np.isclose(y, -1)], [0, 1, 2, 3]
    )
    counts = np.bincount(edge, minlength=4)
    assert chi2_p(counts, np.array([1.0, 2.0, 2.0, 1.0])) > 1e-3


def test_polygon_interior_is_uniform_by_area():
    """χ² on twelve squares of side 1/2 covering the L: each holds a twelfth of the points."""
    g = l_shape()
    pts = g.sample_interior(6000, "uniform", 1)
    assert g.contains(pts).all()
    cells = np.floor((pts + 1) / 0.5).astype(int)
    index = cells[:, 0] * 4 + cells[:, 1]
    counts = np.bincount(index, minlength=16)
    notch = [8, 9, 12, 13]  # x in [0, 1], y in [-1, 0]
    assert counts[notch].sum() == 0
    assert chi2_p(np.delete(counts, notch), np.ones(12)) > 1e-3


def test_bad_polygons():
    with pytest.raises(ValueError, match="crosses itself: edges 0 and 2"):
        Polygon([(0, 0), (1, 1), (1, 0), (0, 1)])
    with pytest.raises(ValueError, match="6 edges to name, got 2"):
        Polygon(L_VERTICES, ["a", "b"])
    with pytest.raises(ValueError, match="at least 3 vertices"):
        Polygon([(0, 0), (1, 0)])


def test_polygon_corner_distance_is_to_the_nearest_vertex():
    g = l_shape()
    d = g.corner_distance(torch.tensor([[0.1, 0.0], [0.5, 0.5], [-0.5, -0.9]], dtype=torch.float64))
    assert d.tolist() == pytest.approx([0.1, np.sqrt(0.5), np.hypot(0.5, 0.1)])
    assert Annulus().corner_distance(torch.zeros(2, 2, dtype=torch.float64)) is None


def test_annulus_radii_are_area_uniform_and_normals_outward():
    g = Annulus((1.0, 2.0), inner=0.5, outer=1.5)
    pts = g.sample_interior(4000, "uniform", 0)
    r2 = ((pts - [1.0, 2.0]) ** 2).sum(axis=1)
    assert stats.kstest((r2 - 0.25) / (2.25 - 0.25), "uniform").pvalue > 1e-3
    for part, radius in (("outer", 1.5), ("inner", 0.5)):
        s = g.sample_part(part, 100, "sobol", 0)
        np.testing.assert_allclose(np.linalg.norm(s.points - [1.0, 2.0], axis=1), radius)
        assert_unit_and_outward(g, s)
    assert g.measure() == pytest.approx(np.pi * 2.0)
    with pytest.raises(ValueError, match="0 < inner < outer"):
        Annulus(inner=1.0, outer=1.0)


def test_difference_membership_parts_lengths_and_the_cut_edges_normals():
    g = plate_with_hole()
    assert g.parts == ("xmin", "xmax", "ymin", "ymax", "circle")
    pts = np.random.default_rng(0).uniform(-1.2, 1.2, (2000, 2))
    expected = (np.abs(pts).max(axis=1) <= 1) & (np.linalg.norm(pts, axis=1) > 0.5)
    np.testing.assert_array_equal(g.contains(pts), expected)
    assert g.measure() == pytest.approx(4 - np.pi / 4, rel=1e-4)
    assert g.part_length("circle") == pytest.approx(np.pi, rel=1e-3)
    hole = g.sample_part("circle", 300, "sobol", 0)
    np.testing.assert_allclose(np.linalg.norm(hole.points, axis=1), 0.5)
    np.testing.assert_allclose(hole.normals, -hole.points / 0.5)  # out of the plate: inwards
    for part in g.parts:
        assert_unit_and_outward(g, g.sample_part(part, 200, "sobol", 1))


def test_difference_interior_is_uniform_and_misses_the_hole():
    g = plate_with_hole()
    pts = g.sample_interior(8000, "uniform", 2)
    assert g.contains(pts).all()
    # χ² on the four quadrants (equal areas by symmetry) and on r² outside the hole's square
    quadrant = (pts[:, 0] > 0) * 2 + (pts[:, 1] > 0)
    assert chi2_p(np.bincount(quadrant, minlength=4), np.ones(4)) > 1e-3
    ring = np.linalg.norm(pts, axis=1) < 1
    r2 = (pts[ring] ** 2).sum(axis=1)
    assert stats.kstest((r2 - 0.25) / 0.75, "uniform").pvalue > 1e-3


def test_union_drops_shared_and_coincident_edges():
    """An L from two rectangles: the edges inside are no boundary, the ones both rectangles
    share (x = -1 for y in [0, 1], y = 1 for x in [-1, 0]) are counted once."""
    g = Rectangle((-1.0, 1.0), (0.0, 1.0)) | Rectangle((-1.0, 0.0), (-1.0, 1.0))
    assert g.measure() == pytest.approx(3.0, rel=1e-4)
    for part in ("xmin", "xmax", "ymin", "ymax"):
        assert g.part_length(part) == pytest.approx(2.0, rel=1e-3)
        assert_unit_and_outward(g, g.sample_part(part, 200, "sobol", 0))
    left = g.sample_part("xmin", 4000, "uniform", 0).points[:, 1]
    assert chi2_p(np.histogram(left, bins=4, range=(-1, 1))[0], np.ones(4)) > 1e-3
    corners = g.corners()  # the re-entrant corner (0, 0) is where the two outlines cross
    assert np.linalg.norm(corners, axis=1).min() < 1e-3
    assert len(corners) == 6


def test_intersection_and_its_errors():
    g = Disk((0.0, 0.0), 1.0) & Rectangle((0.0, 2.0), (-2.0, 2.0))  # a half disk
    assert g.parts == ("circle", "xmin")
    assert g.measure() == pytest.approx(np.pi / 2, rel=1e-4)
    assert g.part_length("xmin") == pytest.approx(2.0, rel=1e-3)
    assert_unit_and_outward(g, g.sample_part("xmin", 100, "sobol", 0))
    with pytest.raises(ValueError, match="empty intersection"):
        Disk((0.0, 0.0), 1.0) & Rectangle((2.0, 3.0), (0.0, 1.0))
    with pytest.raises(ValueError, match="samples by rejection"):
        SpaceTime(plate_with_hole())


@pytest.mark.parametrize("geom", [l_shape(), Annulus(), plate_with_hole()], ids=repr)
def test_clipped_eval_meshes_cover_the_domain_only(geom):
    mesh = geom.eval_mesh(41)
    ((kind, tri),) = mesh.cells
    corners = mesh.points[tri]
    assert kind == "triangle" and geom.contains(corners.mean(axis=1)).all()
    # the polygon is tiled exactly; curved boundaries lose their circular segments (< 1 %)
    assert triangle_areas(corners).sum() == pytest.approx(geom.measure(), rel=1e-2)


def test_mesh_domain_parts_normals_and_area_uniform_sampling():
    g = MeshDomain(PLATE)
    assert g.parts == ("inner", "outer")
    assert g.part_length("outer") == pytest.approx(8.0)
    for part in g.parts:
        assert_unit_and_outward_mesh(g, g.sample_part(part, 200, "sobol", 0))
    pts = g.sample_interior(20000, "uniform", 0)
    ((_, tri),) = [c for c in g.cells if c[0] == "triangle"]
    found = Triangulation(g.points[:, 0], g.points[:, 1], tri).get_trifinder()(*pts.T)
    assert (found >= 0).all()
    counts = np.bincount(found, minlength=len(tri))
    assert chi2_p(counts, triangle_areas(g.points[tri])) > 1e-3


def assert_unit_and_outward_mesh(g, sample):
    """On the plate, outward is away from the centre on the hole's facets (inner) and across
    the square's sides (outer)."""
    np.testing.assert_allclose(np.linalg.norm(sample.normals, axis=1), 1.0, rtol=1e-12)
    r = np.linalg.norm(sample.points, axis=1)
    radial = (sample.normals * sample.points).sum(axis=1) / r
    if np.all(r < 0.6):  # the hole: normals point to the centre
        assert (radial < -0.99).all()
    else:
        assert (radial > 0.7).all() and np.allclose(np.abs(sample.normals).max(axis=1), 1.0)


def test_mesh_domain_evaluation_mesh_is_the_file(tmp_path):
    read = meshio.read(PLATE)
    mesh = MeshDomain(PLATE).eval_mesh(101)
    np.testing.assert_array_equal(mesh.points, read.points[:, :2])
    assert [k for k, _ in mesh.cells] == [b.type for b in read.cells]
    for (_, data), block in zip(mesh.cells, read.cells, strict=True):
        np.testing.assert_array_equal(data, block.data)


def test_mesh_domain_errors(tmp_path):
    with pytest.raises(ValueError, match="cannot read mesh .*nothing.msh"):
        MeshDomain(tmp_path / "nothing.msh")
    garbage = tmp_path / "garbage.msh"
    garbage.write_text("$MeshFormat\nnot a mesh\n")
    with pytest.raises(ValueError, match="cannot read mesh .*garbage.msh"):
        MeshDomain(garbage)
    bare = tmp_path / "bare.vtu"
    square = meshio.Mesh([[0, 0, 0], [1, 0, 0], [0, 1, 0]], [("triangle", [[0, 1, 2]])])
    meshio.write(bare, square)
    with pytest.raises(ValueError, match="no boundary groups"):
        MeshDomain(bare)


def notched_cube():
    """The unit cube without the cube [½, 3/2]³ at one corner: a solid with three cut faces."""
    return Box((0, 0, 0), (1, 1, 1)) - Box((0.5, 0.5, 0.5), (1.5, 1.5, 1.5))


@pytest.mark.parametrize(("op", "volume", "area"), [
    ("-", 1 - 1 / 8, 6.0), ("|", 2 - 1 / 8, 12 - 1.5), ("&", 1 / 8, 1.5),
])  # fmt: skip
def test_set_operations_of_boxes_in_space(op, volume, area):
    """Volume, face areas, outward normals on every part (the cut faces included) and interior
    points inside, for the three operations on two overlapping cubes."""
    a, b = Box((0, 0, 0), (1, 1, 1)), Box((0.5, 0.5, 0.5), (1.5, 1.5, 1.5))
    g = {"-": a - b, "|": a | b, "&": a & b}[op]
    assert g.dim == 3 and g.parts == ("xmin", "xmax", "ymin", "ymax", "zmin", "zmax")
    assert g.measure() == pytest.approx(volume, rel=1e-3)
    assert sum(g.part_length(p) for p in g.parts) == pytest.approx(area, rel=1e-3)
    for part in g.parts:
        assert g.part_dim(part) == 2
        assert_unit_and_outward(g, g.sample_part(part, 300, "sobol", 1))
    assert g.contains(g.sample_interior(2000, "sobol", 0)).all()


def test_a_notched_cube_samples_uniformly_and_meshes_in_tetrahedra():
    g = notched_cube()
    pts = g.sample_interior(8000, "uniform", 2)
    octant = (pts >= 0.5).astype(int) @ np.array([1, 2, 4])  # which of the eight small cubes
    counts = np.bincount(octant, minlength=8)
    assert counts[7] == 0  # the notch
    assert chi2_p(counts[:7], np.ones(7)) > 1e-3
    # the cut face x = 1/2 (of the notch) points into the notch, towards +x
    cut = g.sample_part("xmin", 400, "sobol", 0)
    on_cut = np.isclose(cut.points[:, 0], 0.5)
    assert on_cut.sum() > 0.1 * len(cut.points)
    np.testing.assert_allclose(cut.normals[on_cut], [[1.0, 0.0, 0.0]] * int(on_cut.sum()))
    mesh = g.eval_mesh(12)
    [(kind, tets)] = mesh.cells
    assert kind == "tetra" and tets.shape[1] == 4
    corners = mesh.points[tets]
    assert g.contains(corners.mean(axis=1)).all()
    assert simplex_measures(corners).sum() == pytest.approx(7 / 8, rel=1e-2)
    assert g.corners().shape == (0, 3)
