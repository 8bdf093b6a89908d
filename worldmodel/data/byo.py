"""Bring your own data: your recordings as rollout-store episodes for point-flow training.

`build_episode` turns 3D point tracks (from `worldmodel.data.lifting`: lifted 2D tracks or a
4D reconstruction's scene flow), static points and, if you have them, robot/gripper points
into one episode of the rollout schema (DESIGN §5, schema version 2): per step
``scene_points``/``scene_colors``/``scene_normals``/``scene_labels`` (Ns points; label 1 =
tracked object point, 0 = static), ``scene_track_ids`` (Ns, int32; the track each scene
point is, -1 = static/untracked), ``tracks`` (K, 3, float32; every track's position, with
occlusions bridged by `fill_track_gaps`; NaN for a track never seen), ``track_visible``
(K, bool; observed, not filled in) and ``gripper_points`` (Nr, 3) when given. Write it with
the simulator's own writer, `worldmodel.data.writer.RolloutWriter` (crash-safe, resumable; all
episodes of a store share Ns, K and Nr, hence ``num_tracks``), and read it with
`RolloutStore` / `PointFlowDataset`, whose targets then come from the tracks. (This module
only builds arrays: ``worldmodel`` depends on the on-disk schema, never on ``envs``.)

Without gripper points the episode has no ``gripper_points`` key: `PointFlowDataset` then
yields empty gripper arrays (H + 1, 0, 3), which suits scene-only flow forecasting, but the
action-conditioned models (S x A -> S) need the robot's points; a single tool-centre point
per step (T, 1, 3) is the least to supply.

open3d (optional extra ``worldmodel4d[byo]``) does RGB-D to points, normals and voxel
downsampling; it is imported only when one of those functions runs.

Example::

    from .writer import RolloutWriter
    from worldmodel.data import PointFlowDataset
    from worldmodel.data.byo import build_episode, rgbd_to_points
    from worldmodel.data.lifting import lift_tracks

    lifted = lift_tracks(uv, depth, K, cam2world, visible=vis_2d)   # (T, N, 2) tracks -> 3D
    static, static_rgb = rgbd_to_points(rgb[0], depth[0] * ~object_mask[0], K, cam2world[0])
    steps = build_episode(lifted.points, lifted.visible, static, static_colors=static_rgb,
                          gripper_points=gripper, num_scene_points=1024, voxel_size=0.005,
                          viewpoint=cam2world[0, :3, 3])
    RolloutWriter("mine.zarr", {"source": "byo", "fps": 10}).add_episode(steps, seed=0)
    dataset = PointFlowDataset("mine.zarr", horizon=10, dt=0.1)
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from .lifting import fill_track_gaps, per_frame

GREY = 0.5


def _open3d() -> Any:
    """The open3d module, or an ImportError naming the extra that installs it."""
    try:
        import open3d
    except ImportError as err:
        raise ImportError("this function needs open3d: pip install 'worldmodel4d[byo]' (or open3d-cpu)") from err
    return open3d


def _cloud(points: np.ndarray) -> Any:
    """An open3d point cloud of (N, 3) points."""
    o3d = _open3d()
    p = np.asarray(points, dtype=np.float64)
    if p.ndim != 2 or p.shape[1] != 3:
        raise ValueError(f"points must have shape (N, 3), got {p.shape}")
    return o3d.geometry.PointCloud(o3d.utility.Vector3dVector(p))


def rgbd_to_points(rgb: np.ndarray, depth: np.ndarray, intrinsics: np.ndarray, cam2world: np.ndarray | None = None,
                   max_depth: float = 1000.0) -> tuple[np.ndarray, np.ndarray]:
    """World points (M, 3) and colours (M, 3) in [0, 1] of the valid pixels of one RGB-D frame (open3d).

    ``rgb`` (H, W, 3) uint8 or in [0, 1]; ``depth`` (H, W) metric z-depth (0/NaN/inf or beyond
    ``max_depth`` = no point); ``intrinsics`` 3x3 OpenCV without skew; ``cam2world`` 4x4 or None.
    """
    o3d = _open3d()
    d = np.asarray(depth, dtype=np.float32)
    if d.ndim != 2:
        raise ValueError(f"depth must have shape (H, W), got {d.shape}")
    c = np.asarray(rgb)
    if c.shape != d.shape + (3,):
        raise ValueError(f"rgb must have shape {d.shape + (3,)}, got {c.shape}")
    c = c if c.dtype == np.uint8 else np.clip(np.rint(c.astype(np.float64) * 255.0), 0, 255).astype(np.uint8)
    K = per_frame(intrinsics, 1, (3, 3), "intrinsics")[0]
    if K[0, 1] != 0.0:
        raise ValueError("intrinsics with skew (K[0, 1] != 0) are not supported by open3d; "
                         "use worldmodel.data.lifting.backproject_depth")
    H, W = d.shape
    cam = o3d.camera.PinholeCameraIntrinsic(W, H, K[0, 0], K[1, 1], K[0, 2], K[1, 2])
    d = np.where(np.isfinite(d) & (d > 0), d, 0.0).astype(np.float32)  # open3d skips 0
    image = o3d.geometry.RGBDImage.create_from_color_and_depth(
        o3d.geometry.Image(np.ascontiguousarray(c)), o3d.geometry.Image(d),
        depth_scale=1.0, depth_trunc=float(max_depth), convert_rgb_to_intensity=False)
    c2w = per_frame(cam2world, 1, (4, 4), "cam2world")[0]
    pcd = o3d.geometry.PointCloud.create_from_rgbd_image(image, cam, np.linalg.inv(c2w))
    return np.asarray(pcd.points), np.asarray(pcd.colors)


def estimate_normals(points: np.ndarray, knn: int = 20, radius: float | None = None,
                     viewpoint: np.ndarray | None = None) -> np.ndarray:
    """Unit normals (N, 3) of a point set (open3d PCA over the ``knn`` nearest neighbours, within
    ``radius`` if given), each turned to face ``viewpoint`` (3,) (default: the origin)."""
    o3d = _open3d()
    if knn < 3:
        raise ValueError(f"knn must be at least 3 (a plane needs 3 points), got {knn}")
    pcd = _cloud(points)
    search = (o3d.geometry.KDTreeSearchParamKNN(int(knn)) if radius is None
              else o3d.geometry.KDTreeSearchParamHybrid(float(radius), int(knn)))
    pcd.estimate_normals(search)
    eye = np.zeros(3) if viewpoint is None else np.asarray(viewpoint, dtype=np.float64).reshape(3)
    pcd.orient_normals_towards_camera_location(eye)
    return np.asarray(pcd.normals)


def voxel_downsample(points: np.ndarray, voxel_size: float, colors: np.ndarray | None = None
                     ) -> tuple[np.ndarray, np.ndarray | None]:
    """One point (the mean) per occupied voxel of side ``voxel_size`` m, with mean colours (open3d)."""
    if not voxel_size > 0:
        raise ValueError(f"voxel_size must be positive (metres), got {voxel_size}")
    o3d = _open3d()
    pcd = _cloud(points)
    if colors is not None:
        pcd.colors = o3d.utility.Vector3dVector(_unit(colors, len(pcd.points), "colors"))
    down = pcd.voxel_down_sample(float(voxel_size))
    return np.asarray(down.points), (np.asarray(down.colors) if colors is not None else None)


def _unit(colors: np.ndarray | None, n: int, name: str, steps: int | None = None) -> np.ndarray:
    """Colours (n, 3), or (steps, n, 3) from (n, 3) or (steps, n, 3), in [0, 1] from uint8 or float
    input; grey when None."""
    shape = (n, 3) if steps is None else (steps, n, 3)
    if colors is None:
        return np.full(shape, GREY)
    c = np.asarray(colors)
    if c.shape not in ((n, 3), shape):
        raise ValueError(f"{name} must have shape {(n, 3)}" + ("" if steps is None else f" or {shape}") +
                         f", got {c.shape}")
    return np.array(np.broadcast_to(c / 255.0 if c.dtype == np.uint8 else c.astype(np.float64), shape))


def _even_subset(available: int, count: int) -> np.ndarray:
    """``count`` indices spread evenly over range(``available``), repeating when there are too few."""
    if available == 0 or count == 0:
        return np.zeros(0, np.intp)
    if count <= available:
        return (np.arange(count) * available) // count
    return np.arange(count) % available


def _facing(normals: np.ndarray, points: np.ndarray, eye: np.ndarray) -> np.ndarray:
    """``normals`` (N, 3) flipped where they point away from ``eye`` (3,)."""
    away = np.sum(normals * (eye - points), axis=-1) < 0
    return np.where(away[:, None], -normals, normals)


def _normals(points: np.ndarray, knn: int, eye: np.ndarray) -> np.ndarray:
    """`estimate_normals` facing ``eye``; with fewer than 3 points, the unit directions towards ``eye``."""
    if len(points) >= 3:
        return estimate_normals(points, knn=knn, viewpoint=eye)
    to_eye = eye - points
    return to_eye / np.maximum(np.linalg.norm(to_eye, axis=-1, keepdims=True), 1e-12)


def _static_per_step(static_points: np.ndarray | Sequence[np.ndarray] | None,
                     static_colors: np.ndarray | Sequence[np.ndarray] | None, T: int, voxel_size: float | None,
                     knn: int, eyes: np.ndarray) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """The static (points, colours, normals) of every step from one fixed set or one set per step,
    voxel-downsampled; normals from the whole (downsampled) set, facing each step's viewpoint."""
    if static_points is None:
        sets, cols = [np.zeros((0, 3))], [None]
    elif isinstance(static_points, np.ndarray) and static_points.ndim == 2:
        sets, cols = [static_points], [static_colors]
    else:
        sets = list(static_points)
        cols = [None] * len(sets) if static_colors is None else list(static_colors)
        if len(sets) != T or len(cols) != T:
            raise ValueError(f"per-step static_points/static_colors need one array per step ({T}), "
                             f"got {len(sets)} and {len(cols)}")
    out = []
    for i, (pts, col) in enumerate(zip(sets, cols, strict=True)):
        pts = np.asarray(pts, dtype=np.float64).reshape(-1, 3)
        col = _unit(col, len(pts), "static_colors")
        if voxel_size is not None and len(pts):
            pts, col = voxel_downsample(pts, voxel_size, col)
        out.append((pts, col, _normals(pts, knn, eyes[i])))
    if len(out) == T:
        return out
    pts, col, nrm = out[0]
    return [(pts, col, _facing(nrm, pts, eyes[t])) for t in range(T)]


def build_episode(tracks: np.ndarray, track_visible: np.ndarray | None = None,
                  static_points: np.ndarray | Sequence[np.ndarray] | None = None, *,
                  track_colors: np.ndarray | None = None,
                  static_colors: np.ndarray | Sequence[np.ndarray] | None = None,
                  gripper_points: np.ndarray | None = None, num_scene_points: int = 1024,
                  object_fraction: float = 0.5, num_tracks: int | None = None, voxel_size: float | None = None,
                  normal_knn: int = 20, viewpoint: np.ndarray | None = None) -> dict[str, np.ndarray]:
    """One episode (arrays with leading length T, keys as in the module docstring) from your tracks.

    ``tracks`` (T, K, 3) world positions, NaN where unknown; ``track_visible`` (T, K) (default:
    finite). ``static_points``: (M, 3) for a fixed background or a sequence of T arrays (M_t, 3),
    colours alike (uint8 or [0, 1]; grey by default), voxel-downsampled to ``voxel_size`` if given.
    Step t's scene holds up to ``object_fraction`` x ``num_scene_points`` of the tracks visible at t
    (spread evenly over the track ids, placed at their track positions) and static points for the
    rest, repeating points when there are too few. Normals by `estimate_normals` (``normal_knn``
    neighbours) on all visible tracks and, separately, all static points of a step, facing
    ``viewpoint`` ((3,) or (T, 3); default the origin). ``num_tracks`` pads K with never-seen tracks
    so that episodes with different K share one store. ``gripper_points`` (T, Nr, 3) or None.
    """
    p = np.asarray(tracks, dtype=np.float64)
    if p.ndim != 3 or p.shape[2] != 3 or p.shape[0] == 0:
        raise ValueError(f"tracks must have shape (T, K, 3) with T > 0, got {p.shape}")
    T, K, _ = p.shape
    vis = np.all(np.isfinite(p), axis=-1)
    if track_visible is not None:
        if np.shape(track_visible) != (T, K):
            raise ValueError(f"track_visible must have shape {(T, K)}, got {np.shape(track_visible)}")
        vis &= np.asarray(track_visible, dtype=bool)
    if num_scene_points <= 0:
        raise ValueError(f"num_scene_points must be a positive integer, got {num_scene_points}")
    if not 0.0 <= object_fraction <= 1.0:
        raise ValueError(f"object_fraction must lie in [0, 1], got {object_fraction}")
    if num_tracks is not None and num_tracks < K:
        raise ValueError(f"num_tracks ({num_tracks}) must be at least the number of tracks K = {K}")
    filled = fill_track_gaps(p, vis)
    track_rgb = _unit(track_colors, K, "track_colors", steps=T)
    eye = np.zeros(3) if viewpoint is None else np.asarray(viewpoint, np.float64)
    if eye.shape not in ((3,), (T, 3)):
        raise ValueError(f"viewpoint must have shape (3,) or {(T, 3)}, got {eye.shape}")
    eyes = np.broadcast_to(eye, (T, 3))
    statics = _static_per_step(static_points, static_colors, T, voxel_size, normal_knn, eyes)
    Ns = int(num_scene_points)
    keys = ("scene_points", "scene_colors", "scene_normals", "scene_labels", "scene_track_ids")
    rows: dict[str, list[np.ndarray]] = {k: [] for k in keys}
    for t in range(T):  # a loop over steps; the points of a step are handled at once
        seen = np.flatnonzero(vis[t])
        st_pts, st_col, st_nrm = statics[t]
        n_obj = Ns if len(st_pts) == 0 else min(len(seen), int(round(object_fraction * Ns)))
        if len(seen) == 0 and len(st_pts) == 0:
            raise ValueError(f"step {t} has no scene point: no track is visible and there are no static points")
        pick = _even_subset(len(seen), n_obj)
        ids = seen[pick]
        st = _even_subset(len(st_pts), Ns - len(ids))
        pts = np.concatenate([filled[t, ids], st_pts[st]])
        rows["scene_points"].append(pts)
        rows["scene_colors"].append(np.concatenate([track_rgb[t, ids], st_col[st]]))
        obj_nrm = _normals(filled[t, seen], normal_knn, eyes[t])  # from all visible tracks, not the subset
        rows["scene_normals"].append(np.concatenate([obj_nrm[pick], st_nrm[st]]))
        rows["scene_labels"].append(np.concatenate([np.ones(len(ids)), np.zeros(len(st))]))
        rows["scene_track_ids"].append(np.concatenate([ids, np.full(len(st), -1)]))
    pad = (num_tracks or K) - K
    episode = {
        "scene_points": np.stack(rows["scene_points"]).astype(np.float32),
        "scene_colors": np.stack(rows["scene_colors"]).astype(np.float32),
        "scene_normals": np.stack(rows["scene_normals"]).astype(np.float32),
        "scene_labels": np.stack(rows["scene_labels"]).astype(np.int32),
        "scene_track_ids": np.stack(rows["scene_track_ids"]).astype(np.int32),
        "tracks": np.pad(filled, ((0, 0), (0, pad), (0, 0)), constant_values=np.nan).astype(np.float32),
        "track_visible": np.pad(vis, ((0, 0), (0, pad))),
    }
    if gripper_points is not None:
        g = np.asarray(gripper_points, dtype=np.float32)
        if g.ndim != 3 or g.shape[0] != T or g.shape[2] != 3:
            raise ValueError(f"gripper_points must have shape (T={T}, Nr, 3), got {g.shape}")
        episode["gripper_points"] = g
    return episode
