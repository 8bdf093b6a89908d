"""Solid volume of splats (voxel closing + flood fill + surface at the outermost Gaussians) and its pieces."""

from __future__ import annotations

import numpy as np
import pytest

from physics.splats import GaussianSplats, PlyFile, box_splats, fill_interior, sphere_splats
from physics.splats.solid import solid_components, solid_fill
from physics.splats.synthetic import torus_splats, volume_splats

R = 0.1
SPACING = 0.005  # the job's default: dx / 2 for a 0.2 m object at grid_res 48 is about 0.0052


def _join(*parts: GaussianSplats) -> GaussianSplats:
    return GaussianSplats(PlyFile(np.concatenate([p.ply.vertex for p in parts])))


def _ball_points(inner: float = 0.0) -> np.ndarray:
    """Centres filling the ball of radius R (shell inner..R): a 1 cm lattice inside plus a surface layer at R."""
    rng = np.random.default_rng(7)
    g = np.mgrid[-R:R + 1e-9:0.01, -R:R + 1e-9:0.01, -R:R + 1e-9:0.01].reshape(3, -1).T
    r = np.linalg.norm(g, axis=1)
    return np.concatenate([g[(r < R - 0.005) & (r >= inner)], sphere_splats((0, 0, 0), R, 0.008, rng).positions])


def _shape(name: str) -> tuple[GaussianSplats, float]:
    rng = np.random.default_rng(0)
    size = np.array([0.2, 0.12, 0.16])
    if name == "hollow sphere":
        return sphere_splats((0.3, -0.1, 0.2), R, 0.008, rng), 4 / 3 * np.pi * R**3
    if name == "torus":
        return torus_splats((0.0, 0.0, 0.0), 0.1, 0.04, 0.006, rng), 2 * np.pi**2 * 0.1 * 0.04**2
    if name == "box":
        return box_splats(-size / 2, size / 2, 0.008, rng), float(np.prod(size))
    if name == "box with sealed cavity":  # a closed capture: the cavity was never seen, it counts as solid
        return _join(box_splats(-size / 2, size / 2, 0.008, rng), box_splats(-size / 4, size / 4, 0.008, rng)), \
            float(np.prod(size))
    if name == "opaque solid ball":
        return volume_splats(_ball_points(), 0.008, rng), 4 / 3 * np.pi * R**3
    if name == "fully opaque thick shell":
        return volume_splats(_ball_points(0.6 * R), 0.01, rng), 4 / 3 * np.pi * R**3
    raise KeyError(name)


SHAPES = ["hollow sphere", "torus", "box", "box with sealed cavity", "opaque solid ball", "fully opaque thick shell"]


@pytest.mark.parametrize("name", SHAPES)
def test_solid_volume_matches_the_exact_volume(name):
    splats, exact = _shape(name)
    fill = solid_fill(splats, SPACING)
    assert fill.volume == pytest.approx(exact, rel=0.03)
    assert len(fill.positions) * SPACING**3 == pytest.approx(exact, rel=0.03)  # the particles too
    assert fill.num_particles == len(fill.positions) > 0


def test_opaque_bodies_are_filled_where_the_threshold_fill_found_nothing():
    splats, exact = _shape("opaque solid ball")
    assert fill_interior(splats, SPACING).volume < 0.05 * exact  # the old ray-marching fill: (almost) nothing inside
    fill = solid_fill(splats, SPACING)
    centre = np.argmin(np.linalg.norm(fill.origin + np.argwhere(fill.inside) * SPACING, axis=1))
    assert np.linalg.norm(fill.origin + np.argwhere(fill.inside)[centre] * SPACING) < SPACING  # the centre is solid
    shell, exact = _shape("fully opaque thick shell")
    assert fill_interior(shell, SPACING).volume < 0.6 * exact
    assert solid_fill(shell, SPACING).volume == pytest.approx(exact, rel=0.03)


def test_torus_hole_stays_empty_and_volume_hardly_depends_on_the_threshold():
    splats, _ = _shape("torus")
    fill = solid_fill(splats, SPACING)
    rho = np.linalg.norm(fill.positions[:, :2], axis=1)
    assert np.all(rho > 0.06 - SPACING) and np.all(rho < 0.14 + SPACING)
    sphere, exact = _shape("hollow sphere")
    volumes = [solid_fill(sphere, SPACING, opacity_threshold=t).volume for t in (0.1, 0.35, 0.7)]
    assert max(volumes) / min(volumes) < 1.02
    assert all(v == pytest.approx(exact, rel=0.03) for v in volumes)


def test_holey_faint_shell_is_sealed_and_bad_arguments_are_refused():
    rng = np.random.default_rng(6)
    n = int(4 * np.pi * R**2 / 0.01**2)
    d = rng.normal(size=(n, 3))
    d /= np.linalg.norm(d, axis=1, keepdims=True)
    faint = GaussianSplats.from_arrays(R * d, np.full((n, 3), 0.003), np.tile([1.0, 0.0, 0.0, 0.0], (n, 1)),
                                       np.full(n, 0.3), np.zeros((n, 1, 3)))
    assert solid_fill(faint, SPACING).volume == pytest.approx(4 / 3 * np.pi * R**3, rel=0.05)
    with pytest.raises(ValueError, match="opacity_threshold"):
        solid_fill(faint, SPACING, opacity_threshold=1.0)
    with pytest.raises(ValueError, match="close"):
        solid_fill(faint, SPACING, close=-1)
    with pytest.raises(ValueError, match="rng"):
        solid_fill(faint, SPACING, jitter=0.3)
    jittered = solid_fill(faint, SPACING, rng=np.random.default_rng(1), jitter=0.5)
    assert np.abs(jittered.positions - solid_fill(faint, SPACING).positions).max() <= 0.25 * SPACING + 1e-12


def test_solid_components_are_face_connected_pieces_by_size():
    grid = np.zeros((10, 10, 10), dtype=bool)
    grid[1:4, 1:4, 1:4] = True  # 27
    grid[4, 4, 4] = True  # touches the first only at a corner: a separate piece
    grid[6:9, 6:9, 1:9] = True  # 72
    labels, sizes = solid_components(grid)
    assert sizes.tolist() == [72, 27, 1]
    assert labels[7, 7, 5] == 1 and labels[2, 2, 2] == 2 and labels[4, 4, 4] == 3 and labels[0, 0, 0] == 0
