"""Gaussian splat rendering: analytic footprints, depth-ordered alpha blending, the floor, framing, bad inputs."""

import numpy as np
import pytest

import physics.render.gaussian_raster as gr
from physics.render import Floor, look_at, pinhole, preview_camera, project, render_gaussians

SIZE = 65  # odd: the principal point is the centre pixel (32, 32)
C = SIZE // 2
BLACK = (0.0, 0.0, 0.0)


def _head_on(distance: float = 2.0, size: int = SIZE, fovy: float = 40.0):
    """A camera on the world -z axis looking at the origin; camera axes equal the world's (u = +x, v = +y)."""
    return pinhole("head_on", look_at([0.0, 0.0, -distance], [0.0, 0.0, 0.0], [0.0, -1.0, 0.0]), size, size, fovy)


def _alpha(img: np.ndarray) -> np.ndarray:
    """Alpha of white Gaussians over black: the red channel in [0, 1]."""
    return img[..., 0].astype(np.float64) / 255.0


def _iso(sigma: float, n: int = 1) -> np.ndarray:
    return np.tile(np.eye(3) * sigma**2, (n, 1, 1))


def test_isotropic_gaussian_has_the_analytic_peak_and_falloff():
    cam, sigma, opacity = _head_on(), 0.2, 0.7
    img = render_gaussians(np.zeros((1, 3)), _iso(sigma), [opacity], [[1.0, 1.0, 1.0]], cam, background=BLACK)
    a = _alpha(img)
    assert abs(a[C, C] - opacity) <= 0.5 / 255 + 1e-9  # peak alpha = opacity
    assert np.unravel_index(np.argmax(a), a.shape) == (C, C)
    s_px = cam.fx * sigma / 2.0  # projected sigma f * sigma / z: 8.9 px
    r = np.arange(2, int(2 * s_px))
    for profile in (a[C, C + r], a[C, C - r], a[C + r, C], a[C - r, C]):  # symmetric radial falloff
        s_fit = np.sqrt(np.sum(r**4) / np.sum(-2.0 * r**2 * np.log(profile / opacity)))  # LSQ of log-alpha vs r²
        assert s_fit == pytest.approx(np.sqrt(s_px**2 + 0.3), rel=0.01)  # with the 0.3 px² dilation
        assert s_fit == pytest.approx(s_px, rel=0.02)
    assert np.all(a[C, C + int(3.5 * s_px):] == 0)  # nothing beyond the footprint's 3-sigma extent


def test_coincident_faint_gaussians_compose_analytically_and_size_is_respected():
    cam, white = _head_on(), np.ones((10, 3))
    a10 = _alpha(render_gaussians(np.zeros((10, 3)), _iso(0.05, 10), np.full(10, 0.05), white, cam, background=BLACK))
    assert a10[C, C] == pytest.approx(1 - 0.95**10, abs=1 / 255)  # front-to-back: 1 - prod(1 - alpha)
    # a haze of many faint Gaussians is much lighter than the same Gaussians opaque, not a set of solid dots
    rng = np.random.default_rng(0)
    means = np.c_[rng.uniform(-0.3, 0.3, (200, 2)), rng.uniform(-0.1, 0.1, 200)]
    haze = _alpha(render_gaussians(means, _iso(0.02, 200), np.full(200, 0.05), np.ones((200, 3)), cam, BLACK))
    solid = _alpha(render_gaussians(means, _iso(0.02, 200), np.full(200, 1.0), np.ones((200, 3)), cam, BLACK))
    region = solid > 0.5
    assert region.sum() > 300
    assert haze[region].mean() < 0.35 * solid[region].mean()
    assert haze.max() < 0.5
    # doubling sigma doubles the footprint's radius: four times the area above half the peak
    small, big = (_alpha(render_gaussians(np.zeros((1, 3)), _iso(s), [1.0], [[1, 1, 1]], cam, BLACK)) for s in
                  (0.03, 0.06))
    assert (big > 0.5).sum() / (small > 0.5).sum() == pytest.approx(4.0, rel=0.12)


def test_nearer_gaussian_dominates_and_swapping_depths_swaps_colours():
    cam = _head_on()
    red_blue = np.array([[1.0, 0, 0], [0, 0, 1.0]])
    for near, far in ((0, 1), (1, 0)):
        means = np.zeros((2, 3))
        means[near, 2], means[far, 2] = -0.3, 0.3
        px = render_gaussians(means, _iso(0.05, 2), [0.9, 0.9], red_blue, cam, background=BLACK)[C, C] / 255.0
        expected = 0.9 * red_blue[near] + 0.1 * 0.9 * red_blue[far]  # C = c1 a1 + c2 a2 (1 - a1)
        assert px == pytest.approx(expected, abs=0.6 / 255)


def test_zero_opacity_behind_camera_and_no_gaussians_render_the_background_exactly():
    cam, bg = _head_on(), (0.2, 0.4, 0.6)
    expected = np.broadcast_to(np.array([51, 102, 153], np.uint8), (SIZE, SIZE, 3))
    rng = np.random.default_rng(1)
    means = rng.uniform(-0.2, 0.2, (50, 3))
    cols = rng.uniform(0, 1, (50, 3))
    np.testing.assert_array_equal(render_gaussians(means, _iso(0.05, 50), np.zeros(50), cols, cam, bg), expected)
    behind = means + [0.0, 0.0, -4.0]  # behind the camera at z = -2
    np.testing.assert_array_equal(render_gaussians(behind, _iso(0.05, 50), np.ones(50), cols, cam, bg), expected)
    empty = render_gaussians(np.zeros((0, 3)), np.zeros((0, 3, 3)), np.zeros(0), np.zeros((0, 3)), cam, bg)
    np.testing.assert_array_equal(empty, expected)


def test_anisotropic_covariance_gives_an_oriented_elliptical_footprint():
    cam, theta = _head_on(), np.radians(30.0)
    major = np.array([np.cos(theta), np.sin(theta), 0.0])
    minor = np.array([-np.sin(theta), np.cos(theta), 0.0])
    cov = 0.12**2 * np.outer(major, major) + 0.04**2 * np.outer(minor, minor) + 0.04**2 * np.outer(*[[0, 0, 1]] * 2)
    a = _alpha(render_gaussians(np.zeros((1, 3)), cov[None], [1.0], [[1, 1, 1]], cam, background=BLACK))
    v, u = np.mgrid[:SIZE, :SIZE].astype(float)
    w = a / a.sum()
    mu = np.array([(w * u).sum(), (w * v).sum()])
    du, dv = u - mu[0], v - mu[1]
    moments = np.array([[(w * du * du).sum(), (w * du * dv).sum()], [(w * du * dv).sum(), (w * dv * dv).sum()]])
    evals, evecs = np.linalg.eigh(moments)
    angle = np.degrees(np.arctan2(evecs[1, 1], evecs[0, 1])) % 180.0  # image (u right, v down) = world (x, y)
    assert angle == pytest.approx(30.0, abs=1.5)
    s = cam.fx / 2.0 * np.array([0.04, 0.12])  # projected sigmas, squared plus the 0.3 px² dilation
    assert evals[1] / evals[0] == pytest.approx((s[1] ** 2 + 0.3) / (s[0] ** 2 + 0.3), rel=0.08)


def _floor_scene():
    cam = pinhole("top", look_at([0.0, -0.9, 0.7], [0.0, 0.0, 0.0], [0.0, 0.0, 1.0]), 96, 72, 50.0)
    return cam, Floor(point=np.zeros(3), normal=np.array([0.0, 0.0, 2.0]), half_extent=0.5)


def _floor_rays(cam, floor: Floor):
    """World ray directions (H, W, 3) with camera z = 1, the depth of their plane hits (H, W) and which land on
    the square."""
    v, u = np.mgrid[: cam.height, : cam.width].astype(float)
    rays = np.stack([(u - cam.cx) / cam.fx, (v - cam.cy) / cam.fy, np.ones_like(u)], -1) @ cam.cam2world[:3, :3].T
    eye = cam.cam2world[:3, 3]
    s = ((floor.point - eye) @ floor.normal) / (rays @ floor.normal)
    q = eye + s[..., None] * rays - floor.point
    e1, e2 = floor.axes()
    a, b = q @ e1, q @ e2
    inside = (s > 0) & (np.abs(a) <= floor.half_extent) & (np.abs(b) <= floor.half_extent)
    return rays, s, inside, (a, b)


def test_floor_is_a_depth_tested_checkerboard():
    cam, floor = _floor_scene()
    none = np.zeros((0, 3))
    bare = render_gaussians(none, np.zeros((0, 3, 3)), np.zeros(0), none, cam, floor=floor)
    rays, depth, inside, (a, b) = _floor_rays(cam, floor)
    parity = (np.floor(a / floor.cell) + np.floor(b / floor.cell)).astype(int) % 2
    grey = np.where(parity == 0, gr.FLOOR_GREYS[0], gr.FLOOR_GREYS[1])
    expected = np.rint(np.where(inside[..., None], grey[..., None], 1.0) * 255).astype(np.uint8)
    assert (bare != expected).any(-1).mean() < 0.01  # only float32 ties at cell edges may differ
    assert inside.mean() > 0.3 and (~inside).mean() > 0.1
    greys = {int(np.rint(g * 255)) for g in gr.FLOOR_GREYS}
    assert greys <= set(np.unique(bare[..., 0]).tolist())

    eye, red = cam.cam2world[:3, 3], [[1.0, 0.0, 0.0]]

    def on_ray(v: int, u: int, t: float) -> np.ndarray:  # the point at depth t on pixel (v, u)'s ray
        return (eye + t * rays[v, u])[None]

    v, u = 40, 48
    assert inside[v, u]
    above = on_ray(v, u, 0.8 * depth[v, u])  # an opaque Gaussian above the floor covers it
    img = render_gaussians(above, _iso(0.03), [1.0], red, cam, floor=floor)
    assert img[v, u] / 255.0 == pytest.approx(0.99 * np.array(red[0]) + 0.01 * bare[v, u] / 255.0, abs=0.6 / 255)
    below = on_ray(v, u, 1.2 * depth[v, u])  # under the square: hidden entirely
    np.testing.assert_array_equal(render_gaussians(below, _iso(0.03), [1.0], red, cam, floor=floor), bare)
    v, u = np.argwhere(~inside & (depth > 0))[0]
    beside = on_ray(v, u, 1.2 * depth[v, u])  # below the plane but off the square: seen past its edge
    img = render_gaussians(beside, _iso(0.03), [1.0], red, cam, floor=floor)
    assert img[v, u].tolist() == [255, 3, 3]  # 0.99 red + 0.01 white sky


@pytest.mark.parametrize("up", ["+z", "-y"])
def test_preview_camera_frames_the_robust_bounds(up):
    rng = np.random.default_rng(2)
    pts = rng.normal(size=(5000, 3)) * [0.3, 0.1, 0.05] + [1.0, -2.0, 0.5]
    pts[:10] += 50.0  # outliers the robust bounds ignore
    cam = preview_camera(pts, up=up, width=160, height=120)
    lo, hi = np.percentile(pts, [1, 99], axis=0)
    corners = np.array([[x, y, z] for x in (lo[0], hi[0]) for y in (lo[1], hi[1]) for z in (lo[2], hi[2])])
    u, v, z = project(corners, cam)
    assert np.all(z > 0) and np.all((u >= 0) & (u <= cam.width - 1) & (v >= 0) & (v <= cam.height - 1))
    assert max(u.max() - u.min(), v.max() - v.min()) > 0.35 * cam.height  # framed, not a speck
    centre = 0.5 * (lo + hi)
    up_vec = gr._up_vector(up)
    _, vv, _ = project(np.array([centre, centre + 0.1 * up_vec]), cam)
    assert vv[1] < vv[0]  # up points up in the image
    img = render_gaussians(pts, _iso(0.02, len(pts)), np.full(len(pts), 0.8), np.zeros((len(pts), 3)), cam)
    assert (img < 128).all(-1).mean() > 0.05


def test_rendering_is_deterministic_order_free_and_chunking_free(monkeypatch):
    rng = np.random.default_rng(3)
    n = 400
    means = rng.uniform(-0.3, 0.3, (n, 3))
    A = rng.normal(size=(n, 3, 3)) * 0.03
    covs = A @ A.transpose(0, 2, 1)
    ops, cols = rng.uniform(0, 1, n), rng.uniform(0, 1, (n, 3))
    cam, floor = _head_on(size=48), Floor(np.array([0.0, 0.0, 0.25]), np.array([0.0, 0.0, -1.0]), 0.6, cell=0.1)
    first = render_gaussians(means, covs, ops, cols, cam, floor=floor)
    np.testing.assert_array_equal(render_gaussians(means, covs, ops, cols, cam, floor=floor), first)
    perm = rng.permutation(n)
    np.testing.assert_array_equal(render_gaussians(means[perm], covs[perm], ops[perm], cols[perm], cam, floor=floor),
                                  first)
    monkeypatch.setattr(gr, "MAX_TILE_ENTRIES", 16)  # one chunk per few Gaussians, blended front to back
    np.testing.assert_array_equal(render_gaussians(means, covs, ops, cols, cam, floor=floor), first)


def test_bad_inputs_raise_value_errors_that_say_what_is_wrong():
    cam, m, c, o, rgb = _head_on(), np.zeros((2, 3)), _iso(0.05, 2), np.ones(2), np.ones((2, 3))
    with pytest.raises(ValueError, match=r"covariances must have shape \(2, 3, 3\)"):
        render_gaussians(m, c[:1], o, rgb, cam)
    with pytest.raises(ValueError, match=r"means must have shape \(N, 3\)"):
        render_gaussians(np.zeros((2, 2)), c, o, rgb, cam)
    with pytest.raises(ValueError, match=r"colors must have shape"):
        render_gaussians(m, c, o, rgb[:, :2], cam)
    with pytest.raises(ValueError, match="means must be finite"):
        render_gaussians(np.array([[0, 0, np.nan], [0, 0, 0]]), c, o, rgb, cam)
    with pytest.raises(ValueError, match=r"opacities must lie in \[0, 1\]"):
        render_gaussians(m, c, [0.5, 1.5], rgb, cam)
    with pytest.raises(ValueError, match="background"):
        render_gaussians(m, c, o, rgb, cam, background=(0, 0, 2))
    with pytest.raises(ValueError, match="floor must be a Floor"):
        render_gaussians(m, c, o, rgb, cam, floor=(0, 0, 1))
    with pytest.raises(ValueError, match="normal must be a non-zero"):
        Floor(np.zeros(3), np.zeros(3), 1.0)
    with pytest.raises(ValueError, match="half_extent must be a positive"):
        Floor(np.zeros(3), np.array([0, 0, 1.0]), -1.0)
    with pytest.raises(ValueError, match="up must be one of"):
        preview_camera(m, up="up")
    with pytest.raises(ValueError, match=r"elevation_deg must lie in \(-90, 90\)"):
        preview_camera(m, elevation_deg=90.0)
    with pytest.raises(ValueError, match="at least one point"):
        preview_camera(np.zeros((0, 3)))
