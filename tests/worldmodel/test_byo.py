"""Bring-your-own data: lifting 2D tracks, carrying scene flow, open3d helpers, BYO stores, store checks."""

import sys

import numpy as np
import pytest
import zarr

from worldmodel.data import PointFlowDataset, RolloutStore
from worldmodel.data.byo import build_episode, estimate_normals, rgbd_to_points, voxel_downsample
from worldmodel.data.lifting import (
    backproject_depth,
    fill_track_gaps,
    lift_tracks,
    project_points,
    tracks_from_scene_flow,
)
from worldmodel.data.writer import RolloutWriter

H, W, T = 48, 64, 6
K = np.array([[60.0, 0.0, (W - 1) / 2], [0.0, 60.0, (H - 1) / 2], [0.0, 0.0, 1.0]])


def look_at(eye, target, up=(0.0, 0.0, 1.0)) -> np.ndarray:
    """cam2world (4, 4) with OpenCV axes (x right, y down, z forward)."""
    z = np.asarray(target, float) - eye
    z /= np.linalg.norm(z)
    x = np.cross(z, up)
    x /= np.linalg.norm(x)
    c2w = np.eye(4)
    c2w[:3, :3] = np.stack([x, np.cross(z, x), z], axis=1)
    c2w[:3, 3] = eye
    return c2w


def rigid(t: int) -> tuple[np.ndarray, np.ndarray]:
    """Rotation about z by 0.08 t rad and translation (0.01 t, -0.005 t, 0): the object's pose at t."""
    a = 0.08 * t
    R = np.array([[np.cos(a), -np.sin(a), 0.0], [np.sin(a), np.cos(a), 0.0], [0.0, 0.0, 1.0]])
    return R, np.array([0.01 * t, -0.005 * t, 0.0])


def move(points: np.ndarray, t: int, centre: np.ndarray | None = None) -> np.ndarray:
    """Points (N, 3) given at t = 0 moved to time t (rotation about ``centre``, the origin by default)."""
    centre = np.zeros(3) if centre is None else centre
    R, d = rigid(t)
    return (points - centre) @ R.T + centre + d


def plane_depth(c2w: np.ndarray) -> np.ndarray:
    """Exact z-depth (H, W) of the table plane z = 0."""
    v, u = np.mgrid[0:H, 0:W]
    rays = np.stack([u, v, np.ones_like(u)], -1) @ np.linalg.inv(K).T @ c2w[:3, :3].T
    return -c2w[2, 3] / rays[..., 2]


OBLIQUE = np.stack([look_at(np.array([0.05 * t, -0.6, 0.5]), np.zeros(3)) for t in range(T)])  # a moving camera
TOP = look_at(np.array([0.0, 0.0, 0.8]), np.zeros(3), up=(0.0, 1.0, 0.0))


def test_lift_tracks_nearest_recovers_exact_3d_tracks_and_invalid_depth_hides_points():
    rng = np.random.default_rng(0)
    p0 = rng.uniform([-0.1, -0.1, 0.0], [0.1, 0.1, 0.08], (15, 3))
    truth = np.stack([move(p0, t) for t in range(T)])
    uv, z = project_points(truth, K, OBLIQUE)
    pix = np.rint(uv).astype(int)
    for t in range(T):
        assert len({tuple(q) for q in pix[t]}) == len(p0)  # distinct pixels: the depth map is unambiguous
    depth = np.zeros((T, H, W))
    depth[np.arange(T)[:, None], pix[..., 1], pix[..., 0]] = z
    depth[2, pix[2, 3, 1], pix[2, 3, 0]] = np.nan  # invalid depth -> not visible
    depth[4, pix[4, 5, 1], pix[4, 5, 0]] = 0.0
    vis2d = np.ones((T, len(p0)), bool)
    vis2d[1, 7] = False  # the 2D tracker lost it
    out = lift_tracks(uv, depth, K, OBLIQUE, visible=vis2d, sampling="nearest")
    hidden = np.zeros_like(vis2d)
    hidden[2, 3] = hidden[4, 5] = hidden[1, 7] = True
    np.testing.assert_array_equal(out.visible, ~hidden)
    assert np.all(np.isnan(out.points[hidden]))
    np.testing.assert_allclose(out.points[~hidden], truth[~hidden], atol=1e-6)
    off = lift_tracks(uv + np.array([W, 0.0]), depth, K, OBLIQUE, sampling="nearest")  # off the image
    assert not off.visible.any()


def test_lift_tracks_bilinear_and_median_on_planar_depth():
    grid = np.stack(np.meshgrid(np.linspace(-0.12, 0.12, 4), np.linspace(-0.12, 0.12, 4)), -1).reshape(-1, 2)
    p0 = np.concatenate([grid, np.zeros((16, 1))], 1)  # on the table, several pixels apart
    truth = np.stack([move(p0, t) for t in range(T)])
    depth = np.stack([plane_depth(c) for c in OBLIQUE])
    uv, _ = project_points(truth, K, OBLIQUE)
    out = lift_tracks(uv, depth, K, OBLIQUE)
    assert out.visible.all()
    np.testing.assert_allclose(out.points, truth, atol=2e-4)  # bilinear z on a plane: tiny curvature error
    noisy = depth.copy()
    pix = np.rint(uv).astype(int)
    noisy[np.arange(T)[:, None], pix[..., 1], pix[..., 0]] += 0.3  # a flying pixel under every track
    assert np.abs(lift_tracks(uv, noisy, K, OBLIQUE, sampling="nearest").points - truth).max() > 0.1
    robust = lift_tracks(uv, noisy, K, OBLIQUE, window=3)  # median of 3x3 at each bilinear neighbour
    np.testing.assert_allclose(robust.points, truth, atol=1e-3)
    with pytest.raises(ValueError, match="window"):
        lift_tracks(uv, depth, K, OBLIQUE, window=2)
    with pytest.raises(ValueError, match="sampling"):
        lift_tracks(uv, depth, K, OBLIQUE, sampling="cubic")
    with pytest.raises(ValueError, match="cam2world"):
        lift_tracks(uv, depth, K, OBLIQUE[:2])


def test_fill_track_gaps_interpolates_linear_motion_and_holds_ends():
    t = np.arange(8, dtype=float)[:, None, None]
    p = np.concatenate([t * np.array([0.01, 0.0, 0.02]), np.ones((8, 1, 3))], 1)
    vis = np.ones((8, 2), bool)
    vis[2:5, 0] = False
    vis[:3, 1] = vis[6:, 1] = False
    filled = fill_track_gaps(np.where(vis[..., None], p, np.nan), vis)
    np.testing.assert_allclose(filled[:, 0], p[:, 0], atol=1e-12)
    np.testing.assert_allclose(filled[:, 1], 1.0)
    assert np.all(np.isnan(fill_track_gaps(p, np.zeros((8, 2), bool))))


def disc_scene(convention: str):
    """A disc (radius 0.08 m, 0.02 m above the table) moving rigidly under a top-down camera, rendered
    exactly: depth per frame, scene flow in the given convention, and the disc's mask in frame 0."""
    table = plane_depth(TOP)
    top = table * (TOP[2, 3] - 0.02) / TOP[2, 3]  # the disc's plane z = 0.02
    lid = backproject_depth(top[None], K, TOP)[0].reshape(-1, 3)
    body = [((lid - rigid(t)[1]) @ rigid(t)[0]) for t in range(T)]  # disc-plane points at t, in the disc frame
    on_disc = np.stack([(np.linalg.norm(b[:, :2], axis=-1) < 0.08).reshape(H, W) for b in body])
    depth = np.where(on_disc, top, table)
    if convention == "first":
        flow = np.stack([np.where(on_disc[0, ..., None], (move(lid, t) - lid).reshape(H, W, 3), 0.0) for t in range(T)])
    else:  # motion t -> t+1 of the surface point seen at each pixel of frame t
        flow = np.stack([np.where(on_disc[t, ..., None], (move(body[t], t + 1) - lid).reshape(H, W, 3), 0.0)
                         for t in range(T - 1)])
    return depth, flow, on_disc[0], backproject_depth(depth[:1], K, TOP)[0]


@pytest.mark.parametrize("convention", ["first", "previous"])
def test_scene_flow_carries_the_moving_disc_and_the_mask_separates_it(convention):
    depth, flow, inside0, world0 = disc_scene(convention)
    rgb = np.zeros((H, W, 3), np.uint8)
    rgb[inside0] = 255
    scene = tracks_from_scene_flow(depth, K, TOP, flow, flow_from=convention, dynamic_mask=inside0.astype(float),
                                   colors=rgb)
    assert len(scene.object_tracks[0]) == inside0.sum() and len(scene.static_points) == inside0.size - inside0.sum()
    assert np.all(scene.object_colors == 1.0) and np.all(scene.static_colors == 0.0)
    truth = np.stack([move(scene.object_tracks[0], t) for t in range(T)])
    core = np.linalg.norm(scene.object_tracks[0, :, :2], axis=-1) < 0.05  # away from the disc's edge
    np.testing.assert_allclose(scene.object_tracks[:, core], truth[:, core], atol=1e-6)
    assert scene.object_visible[:, core].all()
    u, v = scene.object_pixels.T.astype(int)
    np.testing.assert_allclose(scene.object_tracks[0], world0[v, u], atol=1e-12)
    unmasked = tracks_from_scene_flow(depth, K, TOP, flow, flow_from=convention, motion_threshold=1e-3)
    assert len(unmasked.object_tracks[0]) == inside0.sum()  # without a mask: the points that move


def test_scene_flow_refuses_bad_shapes():
    depth, flow, inside0, _ = disc_scene("first")
    with pytest.raises(ValueError, match="scene_flow"):
        tracks_from_scene_flow(depth, K, TOP, flow, flow_from="previous")
    with pytest.raises(ValueError, match="flow_from"):
        tracks_from_scene_flow(depth, K, TOP, flow, flow_from="backward")
    with pytest.raises(ValueError, match="dynamic_mask"):
        tracks_from_scene_flow(depth, K, TOP, flow, dynamic_mask=inside0[:10])


def test_open3d_normals_voxels_and_rgbd_points():
    rng = np.random.default_rng(2)
    n = np.array([0.3, -0.2, 1.0]) / np.linalg.norm([0.3, -0.2, 1.0])
    a = np.cross(n, [1.0, 0.0, 0.0])
    a /= np.linalg.norm(a)
    plane = rng.uniform(-0.2, 0.2, (500, 2)) @ np.stack([a, np.cross(n, a)])
    normals = estimate_normals(plane, knn=15, viewpoint=n)
    assert np.all(np.abs(normals @ n) > 0.999) and np.all(normals @ n > 0)  # +-n, turned to the viewpoint
    assert np.all(estimate_normals(plane, knn=15, viewpoint=-n) @ n < 0)
    cube = rng.uniform(0.0, 1.0, (5000, 3))
    down, colors = voxel_downsample(cube, 0.25, colors=np.full((5000, 3), 0.25))
    assert 27 <= len(down) <= 125 and np.allclose(colors, 0.25)
    depth = plane_depth(OBLIQUE[0])
    depth[:5] = 0.0
    pts, cols = rgbd_to_points(np.full((H, W, 3), 255, np.uint8), depth, K, OBLIQUE[0])
    ref = backproject_depth(depth[None], K, OBLIQUE[0])[0].reshape(-1, 3)
    np.testing.assert_allclose(pts, ref[np.isfinite(ref[:, 0])], atol=1e-5)
    assert np.allclose(cols, 1.0)
    with pytest.raises(ValueError, match="voxel_size"):
        voxel_downsample(cube, 0.0)


def test_missing_open3d_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "open3d", None)
    with pytest.raises(ImportError, match=r"worldmodel4d\[byo\]"):
        estimate_normals(np.zeros((5, 3)))


def byo_tracks(steps: int = 10):
    """Tracks of 30 object points moving rigidly over the table, a static grid, gripper points."""
    rng = np.random.default_rng(3)
    centre = np.array([0.05, 0.0, 0.02])
    p0 = centre + rng.uniform(-0.04, 0.04, (30, 3))
    tracks = np.stack([move(p0, t, centre) for t in range(steps)])
    g = np.stack(np.meshgrid(np.linspace(-0.3, 0.3, 12), np.linspace(-0.3, 0.3, 12)), -1).reshape(-1, 2)
    static = np.concatenate([g, np.zeros((len(g), 1))], 1)
    gripper = np.stack([centre + [0.0, -0.06 + 0.002 * t, 0.0] + rng.normal(0, 0.005, (4, 3)) for t in range(steps)])
    return tracks, static, gripper, centre


def test_byo_store_round_trips_through_the_dataset(tmp_path):
    tracks, static, gripper, centre = byo_tracks()
    vis = np.ones(tracks.shape[:2], bool)
    vis[3, :10] = False  # occluded at step 3: not in that step's scene
    ep = build_episode(tracks, vis, static, gripper_points=gripper, num_scene_points=64, object_fraction=0.25,
                       num_tracks=32, viewpoint=[0.0, 0.0, 1.0])
    assert ep["tracks"].shape == (10, 32, 3) and np.isnan(ep["tracks"][:, 30:]).all()
    assert ep["scene_points"].shape == (10, 64, 3) and ep["scene_track_ids"].dtype == np.int32
    ids = ep["scene_track_ids"]
    assert np.all((ids >= 0) == (ep["scene_labels"] == 1))
    assert not np.isin(np.arange(10), ids[3]).any() and np.isin(np.arange(10), ids[2]).any()
    np.testing.assert_allclose(np.abs(ep["scene_normals"][:, ids[0] < 0] @ [0, 0, 1.0]), 1.0, atol=1e-6)
    path = tmp_path / "byo.zarr"
    writer = RolloutWriter(path, {"source": "byo"})
    writer.add_episode(ep, seed=0)
    writer.add_episode(build_episode(tracks, None, static, num_scene_points=64, num_tracks=32,
                                     gripper_points=gripper), seed=1)
    store = RolloutStore(path)
    assert store.has_tracks and store.num_episodes == 2
    hor = 3
    ds = PointFlowDataset(path, horizon=hor, split="all")
    assert len(ds) == 2 * (10 - hor)
    for i in range(len(ds)):
        s = ds.sample(i)
        e, t = ds.index[i]
        ids = store.episode(int(e), ["scene_track_ids"])["scene_track_ids"][t]
        np.testing.assert_array_equal(ids >= 0, s.scene_labels == 1)
        obj = (ids >= 10) if e == 0 else (ids >= 0)  # episode 0's tracks 0-9 are interpolated at step 3
        for h in range(hor):
            R, d = rigid(t + h + 1)
            R0, d0 = rigid(t)
            expected = (s.scene_points[obj] - d0 - centre) @ R0 @ R.T + centre + d - s.scene_points[obj]
            np.testing.assert_allclose(s.target[h, obj], expected, atol=2e-6)
        static = ids < 0
        assert np.all(s.target[:, static] == 0) and np.all(s.previous_displacement[static] == 0)
        if t > 0:
            R, d = rigid(t - 1)
            R0, d0 = rigid(t)
            before = (s.scene_points[obj] - d0 - centre) @ R0 @ R.T + centre + d
            np.testing.assert_allclose(s.previous_displacement[obj], s.scene_points[obj] - before, atol=2e-6)
        else:
            assert np.all(s.previous_displacement == 0)
        assert s.gripper_points.shape == (hor + 1, 4, 3)
    aug = PointFlowDataset(path, horizon=hor, split="all", augment=True).sample(5)
    assert np.abs(aug.target).max() > 0.01


def test_byo_store_without_gripper_points_gives_empty_gripper_arrays(tmp_path):
    tracks, static, _, _ = byo_tracks(6)
    RolloutWriter(tmp_path / "s.zarr").add_episode(build_episode(tracks, None, static, num_scene_points=32), seed=0)
    s = PointFlowDataset(tmp_path / "s.zarr", horizon=2, split="all")[0]
    assert s["gripper_points"].shape == (3, 0, 3) and s["target"].shape == (2, 32, 3)
    with pytest.raises(ValueError, match="num_tracks"):
        build_episode(tracks, num_tracks=3)
    with pytest.raises(ValueError, match="no scene point"):
        build_episode(np.full((2, 3, 3), np.nan))


def test_reader_refuses_newer_schema_missing_keys_and_partial_tracks(tmp_path):
    tracks, static, gripper, _ = byo_tracks(6)
    ep = build_episode(tracks, None, static, gripper_points=gripper, num_scene_points=32)
    for name in ("newer", "old", "partial", "nometa"):
        RolloutWriter(tmp_path / f"{name}.zarr").add_episode(ep, seed=0)
    zarr.open_group(str(tmp_path / "newer.zarr"), mode="a").attrs["schema_version"] = 99
    with pytest.raises(ValueError, match="newer than this reader supports"):
        RolloutStore(tmp_path / "newer.zarr")
    zarr.open_group(str(tmp_path / "old.zarr"), mode="a").attrs["schema_version"] = 1  # old stores still load
    assert RolloutStore(tmp_path / "old.zarr").num_episodes == 1
    del zarr.open_group(str(tmp_path / "partial.zarr"), mode="a")["data/scene_track_ids"]
    with pytest.raises(ValueError, match="scene_track_ids"):
        RolloutStore(tmp_path / "partial.zarr")
    del zarr.open_group(str(tmp_path / "nometa.zarr"), mode="a")["meta/episode_ends"]
    with pytest.raises(ValueError, match=r"lacks required keys \['meta/episode_ends'\]"):
        RolloutStore(tmp_path / "nometa.zarr")
    bare = zarr.open_group(str(tmp_path / "bare.zarr"), mode="w", zarr_format=3)
    bare.create_group("data")
    with pytest.raises(ValueError, match="schema_version"):
        RolloutStore(tmp_path / "bare.zarr")
    nan = dict(ep, tracks=np.full_like(ep["tracks"], np.nan))
    RolloutWriter(tmp_path / "nan.zarr").add_episode(nan, seed=0)
    with pytest.raises(ValueError, match="NaN"):
        PointFlowDataset(tmp_path / "nan.zarr", horizon=2, split="all")
