"""Point splatting: depth matches the surface the points sample, z-buffering and compositing."""

import numpy as np
import pytest

from physics.render import Frames, backproject, orbit_cameras, pixel_rays, splat_points


def _grid(z: float, half: float, step: float) -> np.ndarray:
    g = np.arange(-half, half + 1e-9, step)
    x, y = np.meshgrid(g, g)
    return np.stack([x.ravel(), y.ravel(), np.full(x.size, z)], 1)


def test_splatted_plane_has_the_planes_depth():
    cams = orbit_cameras(2, 64, 64)
    pts = _grid(0.02, 0.1, 0.004)
    f = splat_points(pts, np.full((len(pts), 3), 0.5), 1, 0.003, cams)
    for c, cam in enumerate(cams):
        hit = f.depth[c] > 0
        assert hit.sum() > 100
        world = backproject(f.depth[c], pixel_rays(cam), cam.cam2world)[hit]
        # every covered pixel back-projects onto the plane, inside the square (splat radius slack)
        assert np.abs(world[:, 2] - 0.02).max() < 2 * 0.003  # a splat is a constant-depth disc
        assert np.median(np.abs(world[:, 2] - 0.02)) < 0.001  # mean front depth: unbiased
        assert np.abs(world[:, :2]).max() < 0.1 + 0.012
        assert np.all(f.segmentation[c][hit] == 1) and np.all(f.segmentation[c][~hit] == 0)
        assert np.all(f.rgb[c][hit] == 128)


def test_nearer_points_win_and_base_frames_composite_by_depth():
    cams = orbit_cameras(1, 48, 48, radius=0.01, height_m=0.8)  # nearly top-down
    low, high = _grid(0.0, 0.05, 0.003), _grid(0.03, 0.05, 0.003)
    pts = np.concatenate([low, high])
    cols = np.concatenate([np.tile([1.0, 0, 0], (len(low), 1)), np.tile([0, 0, 1.0], (len(high), 1))])
    labels = np.concatenate([np.full(len(low), 3), np.full(len(high), 4)])
    f = splat_points(pts, cols, labels, 0.003, cams)
    hit = f.depth[0] > 0
    centre = f.segmentation[0][24, 24]
    assert centre == 4 and f.rgb[0][24, 24].tolist() == [0, 0, 255]
    # a base frame nearer than the points everywhere hides them; a farther one is overwritten
    for base_depth, expect in ((0.1, 7), (5.0, 4)):
        base = Frames(np.zeros((1, 48, 48, 3), np.uint8), np.full((1, 48, 48), base_depth, np.float32),
                      np.full((1, 48, 48), 7, np.int32))
        g = splat_points(pts, cols, labels, 0.003, cams, base)
        assert g.segmentation[0][24, 24] == expect
        assert np.all(g.depth[0][~hit] == base_depth)
    # deterministic
    f2 = splat_points(pts, cols, labels, 0.003, cams)
    assert np.array_equal(f.depth, f2.depth) and np.array_equal(f.rgb, f2.rgb)


def test_bad_points_raise():
    cams = orbit_cameras(1, 16, 16)
    with pytest.raises(ValueError, match="finite"):
        splat_points(np.array([[np.nan, 0, 0]]), np.zeros((1, 3)), 1, 0.01, cams)
    with pytest.raises(ValueError, match="shape"):
        splat_points(np.zeros((3, 2)), np.zeros((3, 3)), 1, 0.01, cams)
