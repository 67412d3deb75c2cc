"""Geometries: points inside, parts and outward normals, evaluation meshes; samplers."""

import numpy as np
import pytest

from pinnsolve.problem.geometry import Box, Disk, Interval, Rectangle, SpaceTime
from pinnsolve.problem.sampling import METHODS, unit_samples


@pytest.mark.parametrize("method", METHODS)
def test_unit_samples_count_range_and_reproducibility(method):
    a = unit_samples(100, 2, method, seed=3)
    assert a.shape == (100, 2)
    assert np.all((a >= 0) & (a <= 1))
    np.testing.assert_array_equal(a, unit_samples(100, 2, method, seed=3))
    if method != "grid":
        assert not np.array_equal(a, unit_samples(100, 2, method, seed=4))


def test_grid_points_are_cell_centres_off_the_boundary():
    a = unit_samples(16, 2, "grid", seed=0)
    assert sorted(np.unique(a[:, 0])) == [0.125, 0.375, 0.625, 0.875]


def test_unknown_method():
    with pytest.raises(ValueError, match="unknown sampling method 'sobel'"):
        unit_samples(4, 1, "sobel", 0)


def test_rectangle_parts_and_normals():
    r = Rectangle((0.0, 2.0), (-1.0, 1.0))
    assert r.parts == ("xmin", "xmax", "ymin", "ymax")
    pts = r.sample_interior(200, "sobol", 0)
    assert pts[:, 0].min() >= 0 and pts[:, 0].max() <= 2 and np.abs(pts[:, 1]).max() <= 1
    s = r.sample_part("xmax", 10, "uniform", 0)
    np.testing.assert_array_equal(s.points[:, 0], 2.0)
    np.testing.assert_array_equal(s.normals, np.tile([1.0, 0.0], (10, 1)))
    s = r.sample_part("ymin", 10, "uniform", 0)
    np.testing.assert_array_equal(s.points[:, 1], -1.0)
    np.testing.assert_array_equal(s.normals, np.tile([0.0, -1.0], (10, 1)))
    with pytest.raises(ValueError, match="unknown boundary part 'top'.*xmin"):
        r.sample_part("top", 3, "uniform", 0)


def test_interval_end_is_one_point():
    s = Interval(0.0, 1.0).sample_part("xmin", 50, "sobol", 0)
    assert s.points.tolist() == [[0.0]] and s.normals.tolist() == [[-1.0]]


def test_disk_points_normals_and_mesh():
    d = Disk(center=(1.0, 0.0), radius=2.0)
    pts = d.sample_interior(500, "halton", 0)
    assert np.all(np.linalg.norm(pts - [1.0, 0.0], axis=1) <= 2.0 + 1e-12)
    s = d.sample_part("circle", 64, "sobol", 0)
    np.testing.assert_allclose(np.linalg.norm(s.points - [1.0, 0.0], axis=1), 2.0)
    np.testing.assert_allclose(s.normals, (s.points - [1.0, 0.0]) / 2.0)
    mesh = d.eval_mesh(40)
    ((kind, tri),) = mesh.cells
    assert kind == "triangle" and tri.max() == len(mesh.points) - 1
    # triangles tile the polygonal disk: their areas sum to nearly πR²
    p = mesh.points[tri]
    a, b = p[:, 1] - p[:, 0], p[:, 2] - p[:, 0]
    areas = 0.5 * np.abs(a[:, 0] * b[:, 1] - a[:, 1] * b[:, 0])
    assert abs(areas.sum() - np.pi * 4) / (np.pi * 4) < 0.01


@pytest.mark.parametrize(("box", "kind", "npts", "ncells"), [
    (Interval(0, 1), "line", 11, 10),
    (Rectangle((0, 1), (0, 1)), "quad", 121, 100),
    (Box([0, 0, 0], [1, 2, 3]), "hexahedron", 1331, 1000),
])  # fmt: skip
def test_box_eval_meshes(box, kind, npts, ncells):
    mesh = box.eval_mesh(11)
    assert mesh.points.shape == (npts, box.dim)
    ((k, cells),) = mesh.cells
    assert k == kind and len(cells) == ncells and cells.max() == npts - 1


def test_box_parts_in_3d():
    b = Box([0, 0, 0], [1, 2, 3])
    s = b.sample_part("zmax", 5, "uniform", 1)
    np.testing.assert_array_equal(s.points[:, 2], 3.0)
    assert np.all(s.points[:, 1] <= 2.0)


def test_space_time():
    g = SpaceTime(Interval(0.0, 1.0), t=(0.0, 2.0))
    assert g.coords == ("x", "t") and g.parts == ("xmin", "xmax", "initial")
    assert g.spatial_parts() == ("xmin", "xmax")
    side = g.sample_part("xmax", 20, "sobol", 0)
    np.testing.assert_array_equal(side.points[:, 0], 1.0)
    assert side.points[:, 1].min() >= 0 and side.points[:, 1].max() <= 2
    np.testing.assert_array_equal(side.normals, np.tile([1.0, 0.0], (20, 1)))
    init = g.sample_part("initial", 20, "sobol", 0)
    np.testing.assert_array_equal(init.points[:, 1], 0.0)
    mesh = g.eval_mesh(11, time_slices=5)
    assert mesh.n_space == 11 and len(mesh.times) == 5 and len(mesh.points) == 55
    np.testing.assert_array_equal(mesh.points[11:22, 1], mesh.times[1])


def test_bad_geometries():
    with pytest.raises(ValueError, match="lo < hi"):
        Interval(1.0, 0.0)
    with pytest.raises(ValueError, match="positive radius"):
        Disk(radius=0.0)
    with pytest.raises(ValueError, match="clashes"):
        SpaceTime(Rectangle((0, 1), (0, 1), coords=("x", "t")))
