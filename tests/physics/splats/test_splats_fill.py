"""Interior filling of closed splat surfaces (PhysGaussian opacity ray marching)."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from physics.splats import (
    GaussianSplats,
    PlyFile,
    box_splats,
    deform_splats,
    fill_interior,
    shared_cell_volumes,
    sphere_splats,
    surface_splats,
)


@pytest.mark.parametrize("radius, splat_spacing, spacing",
                         [(0.1, 0.01, 0.005), (0.1, 0.01, 0.01), (0.05, 0.008, 0.004)])
def test_sphere_of_splats_is_filled_to_its_volume(radius, splat_spacing, spacing):
    centre = np.array([0.31, -0.2, 0.55])
    splats = sphere_splats(centre, radius, splat_spacing, np.random.default_rng(0))
    fill = fill_interior(splats, spacing)
    expected = 4.0 / 3.0 * np.pi * radius**3 / spacing**3
    assert abs(len(fill.positions) / expected - 1.0) < 0.05
    r = np.linalg.norm(fill.positions - centre, axis=1)
    assert r.max() < radius + spacing  # nothing outside the shell
    nodes = fill.origin + np.argwhere(np.ones(fill.inside.shape, dtype=bool)) * spacing
    deep = np.linalg.norm(nodes - centre, axis=1) < radius - 1.5 * spacing
    assert np.all(fill.inside.ravel()[deep])  # no holes inside
    assert fill.volume == pytest.approx(len(fill.positions) * spacing**3)


def test_rotated_box_of_splats_is_filled_to_its_volume():
    rng = np.random.default_rng(1)
    size = np.array([0.2, 0.1, 0.15])
    splats = box_splats(-size / 2, size / 2, 0.008, rng)
    R = Rotation.from_rotvec([0.3, 0.5, 0.2]).as_matrix()
    turned = deform_splats(splats, splats.positions @ R.T + 0.1, np.broadcast_to(R, (len(splats), 3, 3)))
    fill = fill_interior(turned, 0.006)
    assert abs(fill.volume / np.prod(size) - 1.0) < 0.05
    local = (fill.positions - 0.1) @ R  # back in the box frame
    assert np.all(np.abs(local) < size / 2 + 0.006)


def test_torus_is_filled_but_its_hole_is_not():
    big, small, step = 0.1, 0.04, 0.006
    u, v = np.meshgrid(np.linspace(0, 2 * np.pi, 104, endpoint=False), np.linspace(0, 2 * np.pi, 42, endpoint=False),
                       indexing="ij")
    u, v = u.ravel(), v.ravel()
    normals = np.stack([np.cos(v) * np.cos(u), np.cos(v) * np.sin(u), np.sin(v)], axis=1)
    points = np.stack([(big + small * np.cos(v)) * np.cos(u), (big + small * np.cos(v)) * np.sin(u), small * np.sin(v)],
                      axis=1)
    fill = fill_interior(surface_splats(points, normals, step * 1.2, np.random.default_rng(2)), 0.004)
    assert abs(fill.volume / (2 * np.pi**2 * big * small**2) - 1.0) < 0.05
    rho = np.linalg.norm(fill.positions[:, :2], axis=1)
    assert np.all(rho > big - small - 0.004) and np.all(rho < big + small + 0.004)


def test_two_separate_spheres_fill_separately():
    rng = np.random.default_rng(3)
    a = sphere_splats((0.0, 0.0, 0.0), 0.05, 0.006, rng)
    b = sphere_splats((0.2, 0.0, 0.0), 0.05, 0.006, rng)
    both = a.ply.vertex.copy()
    splats = GaussianSplats(PlyFile(np.concatenate([both, b.ply.vertex])))
    fill = fill_interior(splats, 0.005)
    x = fill.positions[:, 0]
    assert np.all((np.abs(x) < 0.056) | (np.abs(x - 0.2) < 0.056))  # the gap between them stays empty
    assert abs(np.sum(x < 0.1) / np.sum(x > 0.1) - 1.0) < 0.02


def test_shared_cell_volumes_and_bad_arguments():
    rng = np.random.default_rng(4)
    points = rng.uniform(0.0, 0.1, (500, 3))
    vol = shared_cell_volumes(points, 0.02, np.zeros(3))
    cells = np.unique(np.floor(points / 0.02 + 0.5), axis=0)
    assert vol.sum() == pytest.approx(len(cells) * 0.02**3)
    splats = sphere_splats((0.0, 0.0, 0.0), 0.05, 0.01, rng)
    with pytest.raises(ValueError, match="opacity_threshold"):
        fill_interior(splats, 0.01, opacity_threshold=1.5)
    with pytest.raises(ValueError, match="rng"):
        fill_interior(splats, 0.01, jitter=0.5)
    with pytest.raises(ValueError, match="spacing"):
        fill_interior(splats, -0.01)
    jittered = fill_interior(splats, 0.01, rng=np.random.default_rng(5), jitter=0.5)
    exact = fill_interior(splats, 0.01)
    offset = jittered.positions - exact.positions
    assert np.all(np.abs(offset) <= 0.0025 + 1e-12) and np.abs(offset).max() > 0.001


def test_thin_plate_and_a_holey_faint_sphere_are_filled():
    rng = np.random.default_rng(6)
    plate = fill_interior(box_splats((0.0, 0.0, 0.0), (0.2, 0.2, 0.03), 0.005, rng), 0.005)
    assert abs(plate.volume / (0.2 * 0.2 * 0.03) - 1.0) < 0.05  # 6 nodes thick: too thin for regions
    # randomly placed faint splats, twice the fill spacing apart on average: a shell with holes
    n = int(4 * np.pi * 0.1**2 / 0.01**2)
    d = rng.normal(size=(n, 3))
    d /= np.linalg.norm(d, axis=1, keepdims=True)
    faint = GaussianSplats.from_arrays(0.1 * d, np.full((n, 3), 0.003), np.tile([1.0, 0.0, 0.0, 0.0], (n, 1)),
                                       np.full(n, 0.3), np.zeros((n, 1, 3)))
    fill = fill_interior(faint, 0.005)
    assert abs(fill.volume / (4.0 / 3.0 * np.pi * 0.1**3) - 1.0) < 0.05
