"""Lifting image-space observations to 3D point tracks (numpy only, vectorised over points).

Two sources of tracks for bring-your-own data (see `worldmodel.data.byo` for the store):

- `lift_tracks`: 2D point tracks (T, N, 2 pixel coordinates, e.g. from CoTracker) plus
  metric depth maps and cameras -> 3D tracks (T, N, 3) with visibility. This is
  Dream2Flow's 3D-object-flow extraction without the video model.
- `tracks_from_scene_flow`: the output of a feed-forward 4D reconstruction (per-view depth,
  camera poses and per-pixel world-frame scene flow as Any4D predicts; optional dynamic
  masks as PAGE-4D predicts) -> the pixels of frame 0 carried through time, split into
  tracked object points and static points.

Conventions (as the simulator's cameras, DESIGN §3): ``intrinsics`` are OpenCV 3x3
matrices, pixel (u, v) is column u, row v, with pixel centres at integer coordinates;
``depth`` is metric depth along the camera z axis (convert range-along-ray depth first);
``cam2world`` are 4x4 camera-to-world transforms with OpenCV axes (x right, y down,
z forward); ``None`` means the world frame is the camera frame. Intrinsics and poses are
given once (fixed camera) or per frame. A depth is invalid where it is 0, NaN, inf or
outside [``min_depth``, ``max_depth``]; points on invalid depth are not visible and their
positions are NaN.

Example::

    from worldmodel.data.lifting import lift_tracks, fill_track_gaps
    lifted = lift_tracks(uv, depth, K, cam2world, visible=vis_2d, sampling="bilinear", window=3)
    flow = lifted.points - lifted.points[:1]           # 3D object flow relative to frame 0 (NaN = unseen)
    tracks = fill_track_gaps(lifted.points, lifted.visible)  # occlusions bridged linearly in time

    # Any4D-style output (flow from the first view to every view) with PAGE-4D dynamic masks:
    scene = tracks_from_scene_flow(depth, K, cam2world, flow, flow_from="first", dynamic_mask=masks, colors=rgb)
    # -> scene.object_tracks (T, K, 3), scene.object_visible, scene.static_points; store them with
    #    worldmodel.data.byo.build_episode(scene.object_tracks, scene.object_visible, scene.static_points, ...)
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Callable, NamedTuple

import numpy as np

SAMPLING_MODES = ("bilinear", "nearest")
FLOW_CONVENTIONS = ("first", "previous")


class Tracks3D(NamedTuple):
    """3D tracks: ``points`` (T, N, 3) float64, NaN where not visible; ``visible`` (T, N) bool."""

    points: np.ndarray
    visible: np.ndarray


@dataclass(frozen=True)
class TrackedScene:
    """Pixels of frame 0 carried through time by scene flow (see `tracks_from_scene_flow`).

    ``object_tracks`` (T, K, 3) world positions of the dynamic points, ``object_visible``
    (T, K) whether frame t sees each of them (always true at t = 0), ``object_pixels`` (K, 2)
    their (u, v) in frame 0; ``static_points`` (M, 3) the other valid pixels of frame 0;
    ``object_colors`` (K, 3) / ``static_colors`` (M, 3) in [0, 1] when colours were given.
    """

    object_tracks: np.ndarray
    object_visible: np.ndarray
    object_pixels: np.ndarray
    static_points: np.ndarray
    object_colors: np.ndarray | None = None
    static_colors: np.ndarray | None = None


def per_frame(x: np.ndarray | None, T: int, shape: tuple[int, ...], name: str) -> np.ndarray:
    """``x`` given once (``shape``) or per frame (T, *``shape``) as a float64 (T, *``shape``) array;
    ``None`` gives identity matrices."""
    if x is None:
        return np.broadcast_to(np.eye(shape[0]), (T,) + shape)
    a = np.asarray(x, dtype=np.float64)
    if a.shape == shape:
        return np.broadcast_to(a, (T,) + shape)
    if a.shape == (T,) + shape:
        return a
    raise ValueError(f"{name} must have shape {shape} (fixed) or {(T,) + shape} (per frame), got {a.shape}")


def project_points(points: np.ndarray, intrinsics: np.ndarray, cam2world: np.ndarray | None = None
                   ) -> tuple[np.ndarray, np.ndarray]:
    """Pixel coordinates (T, N, 2) and camera-frame depth z (T, N) of world points (T, N, 3)."""
    p = np.asarray(points, dtype=np.float64)
    T = p.shape[0]
    K, c2w = per_frame(intrinsics, T, (3, 3), "intrinsics"), per_frame(cam2world, T, (4, 4), "cam2world")
    cam = np.einsum("tji,tnj->tni", c2w[:, :3, :3], p - c2w[:, None, :3, 3])  # R^T (p - t)
    uvw = np.einsum("tij,tnj->tni", K, cam)
    with np.errstate(divide="ignore", invalid="ignore"):
        return uvw[..., :2] / uvw[..., 2:3], cam[..., 2]


def backproject_pixels(uv: np.ndarray, depth: np.ndarray, intrinsics: np.ndarray,
                       cam2world: np.ndarray | None = None) -> np.ndarray:
    """World points (T, N, 3) of pixels ``uv`` (T, N, 2) at metric z-depths ``depth`` (T, N)."""
    uv, z = np.asarray(uv, dtype=np.float64), np.asarray(depth, dtype=np.float64)
    T = uv.shape[0]
    K, c2w = per_frame(intrinsics, T, (3, 3), "intrinsics"), per_frame(cam2world, T, (4, 4), "cam2world")
    hom = np.concatenate([uv, np.ones_like(uv[..., :1])], axis=-1)
    rays = np.einsum("tij,tnj->tni", np.linalg.inv(K), hom)
    cam = rays / rays[..., 2:3] * z[..., None]
    return np.einsum("tij,tnj->tni", c2w[:, :3, :3], cam) + c2w[:, None, :3, 3]


def pixel_grid(height: int, width: int, stride: int = 1) -> np.ndarray:
    """(u, v) coordinates (M, 2) of every ``stride``-th pixel in both directions, row-major."""
    v, u = np.mgrid[0:height:stride, 0:width:stride]
    return np.stack([u.ravel(), v.ravel()], axis=-1).astype(np.float64)


def backproject_depth(depth: np.ndarray, intrinsics: np.ndarray, cam2world: np.ndarray | None = None,
                      min_depth: float = 0.0, max_depth: float = np.inf) -> np.ndarray:
    """Point maps (T, H, W, 3) of depth maps (T, H, W) in the world frame; NaN on invalid depth."""
    d = valid_depth(depth, min_depth, max_depth)
    T, H, W = d.shape
    uv = np.broadcast_to(pixel_grid(H, W), (T, H * W, 2))
    return backproject_pixels(uv, d.reshape(T, -1), intrinsics, cam2world).reshape(T, H, W, 3)


def valid_depth(depth: np.ndarray, min_depth: float = 0.0, max_depth: float = np.inf) -> np.ndarray:
    """Depth maps (T, H, W) as float64 with NaN wherever the depth is invalid (see the module docstring)."""
    d = np.asarray(depth, dtype=np.float64)
    if d.ndim != 3:
        raise ValueError(f"depth must have shape (T, H, W), got {d.shape}")
    if not 0.0 <= min_depth < max_depth:
        raise ValueError(f"need 0 <= min_depth < max_depth, got {min_depth} and {max_depth}")
    with np.errstate(invalid="ignore"):
        ok = np.isfinite(d) & (d > 0.0) & (d >= min_depth) & (d <= max_depth)
    return np.where(ok, d, np.nan)


def _interpolate(lookup: Callable[[np.ndarray, np.ndarray], np.ndarray], uv: np.ndarray, height: int,
                 width: int, sampling: str) -> np.ndarray:
    """Values (..., C) of a map at sub-pixel ``uv`` (..., 2) given ``lookup(rows, cols) -> (..., C)`` on
    integer pixels (NaN = invalid). NaN off the image and, for bilinear, wherever a neighbour with a
    non-zero weight is invalid."""
    if sampling not in SAMPLING_MODES:
        raise ValueError(f"sampling must be one of {SAMPLING_MODES}, got {sampling!r}")
    u, v = uv[..., 0], uv[..., 1]
    finite = np.isfinite(u) & np.isfinite(v)
    u, v = np.where(finite, u, -10.0), np.where(finite, v, -10.0)
    if sampling == "nearest":
        c, r = np.rint(u), np.rint(v)
        inside = (c >= 0) & (c <= width - 1) & (r >= 0) & (r <= height - 1)
        vals = lookup(np.clip(r, 0, height - 1).astype(np.intp), np.clip(c, 0, width - 1).astype(np.intp))
        return np.where(inside[..., None], vals, np.nan)
    if height < 2 or width < 2:
        raise ValueError(f"bilinear sampling needs maps of at least 2x2 pixels, got {height}x{width}; use 'nearest'")
    inside = (u >= 0) & (u <= width - 1) & (v >= 0) & (v <= height - 1)
    c0 = np.clip(np.floor(u), 0, width - 2).astype(np.intp)
    r0 = np.clip(np.floor(v), 0, height - 2).astype(np.intp)
    fu, fv = u - c0, v - r0
    out = 0.0
    for dr, dc, w in ((0, 0, (1 - fu) * (1 - fv)), (0, 1, fu * (1 - fv)), (1, 0, (1 - fu) * fv), (1, 1, fu * fv)):
        val = lookup(r0 + dr, c0 + dc)
        out = out + np.where((w > 0)[..., None], w[..., None] * val, 0.0)
    return np.where(inside[..., None], out, np.nan)


def _depth_lookup(depth: np.ndarray, frames: np.ndarray, window: int) -> Callable[[np.ndarray, np.ndarray], np.ndarray]:
    """Integer-pixel depth lookup (..., 1) into NaN-marked ``depth`` (T, H, W): the pixel itself, or the
    median of the valid depths in a ``window`` x ``window`` neighbourhood."""
    if window < 1 or window % 2 != 1:
        raise ValueError(f"window must be a positive odd integer (1 = no median), got {window}")
    _, H, W = depth.shape
    if window == 1:
        return lambda r, c: depth[frames, r, c][..., None]
    off = np.arange(window) - window // 2
    dr, dc = (o.ravel() for o in np.meshgrid(off, off, indexing="ij"))

    def lookup(r: np.ndarray, c: np.ndarray) -> np.ndarray:
        rr, cc = r[..., None] + dr, c[..., None] + dc
        ok = (rr >= 0) & (rr < H) & (cc >= 0) & (cc < W)
        vals = np.where(ok, depth[frames[..., None], np.clip(rr, 0, H - 1), np.clip(cc, 0, W - 1)], np.nan)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN windows stay NaN
            return np.nanmedian(vals, axis=-1)[..., None]

    return lookup


def sample_depth(depth: np.ndarray, uv: np.ndarray, sampling: str = "bilinear", window: int = 1,
                 min_depth: float = 0.0, max_depth: float = np.inf) -> np.ndarray:
    """Depth (T, N) of depth maps (T, H, W) at pixels ``uv`` (T, N, 2); NaN where invalid or off-image.

    ``sampling`` is "bilinear" or "nearest"; ``window`` > 1 (odd) replaces each pixel's depth by the
    median of the valid depths around it (robust to noise and flying pixels at depth edges).
    """
    d = valid_depth(depth, min_depth, max_depth)
    uv = np.asarray(uv, dtype=np.float64)
    if uv.ndim != 3 or uv.shape[0] != d.shape[0] or uv.shape[2] != 2:
        raise ValueError(f"uv must have shape (T={d.shape[0]}, N, 2), got {uv.shape}")
    frames = np.broadcast_to(np.arange(d.shape[0])[:, None], uv.shape[:2])
    return _interpolate(_depth_lookup(d, frames, int(window)), uv, d.shape[1], d.shape[2], sampling)[..., 0]


def lift_tracks(tracks_2d: np.ndarray, depth: np.ndarray, intrinsics: np.ndarray,
                cam2world: np.ndarray | None = None, visible: np.ndarray | None = None, *,
                sampling: str = "bilinear", window: int = 1, min_depth: float = 0.0,
                max_depth: float = np.inf) -> Tracks3D:
    """3D tracks of 2D point tracks ``tracks_2d`` (T, N, 2) on metric depth maps ``depth`` (T, H, W).

    ``visible`` (T, N) is the 2D tracker's visibility (default: all). A point is visible in 3D
    where it is visible in 2D, on the image and its sampled depth is valid; elsewhere its
    position is NaN (`fill_track_gaps` bridges occlusions). Sampling as in `sample_depth`.
    """
    uv = np.asarray(tracks_2d, dtype=np.float64)
    if uv.ndim != 3 or uv.shape[2] != 2:
        raise ValueError(f"tracks_2d must have shape (T, N, 2) pixel coordinates (u, v), got {uv.shape}")
    if np.shape(depth)[:1] != uv.shape[:1]:
        raise ValueError(f"depth must have one map per track frame: {uv.shape[0]} frames, got {np.shape(depth)}")
    vis = np.ones(uv.shape[:2], bool) if visible is None else np.asarray(visible, dtype=bool)
    if vis.shape != uv.shape[:2]:
        raise ValueError(f"visible must have shape {uv.shape[:2]} (T, N), got {vis.shape}")
    z = sample_depth(depth, uv, sampling, window, min_depth, max_depth)
    vis = vis & np.isfinite(z)
    points = backproject_pixels(uv, np.where(vis, z, 0.0), intrinsics, cam2world)
    return Tracks3D(np.where(vis[..., None], points, np.nan), vis)


def fill_track_gaps(points: np.ndarray, visible: np.ndarray) -> np.ndarray:
    """Tracks (T, N, 3) with the positions of frames where a point is not visible filled in: linear
    interpolation in time between visible frames, held constant before the first and after the last
    visible frame; NaN for points never visible."""
    p = np.asarray(points, dtype=np.float64)
    vis = np.asarray(visible, dtype=bool) & np.all(np.isfinite(p), axis=-1)
    T = p.shape[0]
    t = np.arange(T)[:, None]
    prev = np.maximum.accumulate(np.where(vis, t, -1), axis=0)
    nxt = np.minimum.accumulate(np.where(vis, t, T)[::-1], axis=0)[::-1]
    has_prev, has_next = prev >= 0, nxt < T
    prev, nxt = np.where(has_prev, prev, nxt), np.where(has_next, nxt, prev)  # hold at the ends
    never = ~(has_prev | has_next)
    prev, nxt = np.where(never, 0, prev), np.where(never, 0, nxt)
    cols = np.arange(p.shape[1])[None, :]
    span = np.maximum(nxt - prev, 1)
    w = np.where(nxt > prev, (t - prev) / span, 0.0)[..., None]
    filled = (1 - w) * p[prev, cols] + w * p[nxt, cols]
    return np.where(never[..., None], np.nan, filled)


def tracks_from_scene_flow(depth: np.ndarray, intrinsics: np.ndarray, cam2world: np.ndarray | None,
                           scene_flow: np.ndarray, *, flow_from: str = "first",
                           dynamic_mask: np.ndarray | None = None, mask_threshold: float = 0.5,
                           motion_threshold: float = 0.005, colors: np.ndarray | None = None,
                           stride: int = 1, occlusion_tolerance: float = 0.02, flow_sampling: str = "bilinear",
                           min_depth: float = 0.0, max_depth: float = np.inf) -> TrackedScene:
    """Track the valid pixels of frame 0 (every ``stride``-th) through a 4D reconstruction.

    ``depth`` (T, H, W) metric z-depth per view; ``scene_flow`` world-frame 3D motion per pixel:
    with ``flow_from="first"`` (Any4D) shape (T, H, W, 3), ``scene_flow[t]`` moves the point seen at
    a pixel of frame 0 to its position at t; with ``flow_from="previous"`` (two-frame scene flow)
    shape (T-1, H, W, 3), ``scene_flow[t]`` moves the point seen at a pixel of frame t to t+1 and
    the points are carried frame by frame (flow sampled where they project, ``flow_sampling``
    "bilinear" or "nearest"; a point off-image, occluded or on invalid flow keeps its last flow).
    A point is visible at t when it projects into view t in front of the camera and its depth
    agrees with the depth map within ``occlusion_tolerance`` (relative). Object points are those of
    ``dynamic_mask`` (H, W) or (T, H, W), frame 0 used, values > ``mask_threshold`` (PAGE-4D);
    without a mask, those that move more than ``motion_threshold`` metres. ``colors`` (H, W, 3) or
    (T, H, W, 3), uint8 or in [0, 1], gives the points' colours from frame 0.
    """
    d = valid_depth(depth, min_depth, max_depth)
    T, H, W = d.shape
    if flow_from not in FLOW_CONVENTIONS:
        raise ValueError(f"flow_from must be one of {FLOW_CONVENTIONS}, got {flow_from!r}")
    flow = np.asarray(scene_flow, dtype=np.float64)
    want = (T if flow_from == "first" else T - 1, H, W, 3)
    if flow.shape != want:
        raise ValueError(f"scene_flow with flow_from={flow_from!r} must have shape {want}, got {flow.shape}")
    if int(stride) < 1:
        raise ValueError(f"stride must be a positive integer, got {stride}")
    K, c2w = per_frame(intrinsics, T, (3, 3), "intrinsics"), per_frame(cam2world, T, (4, 4), "cam2world")
    uv = pixel_grid(H, W, int(stride))
    rows, cols = uv[:, 1].astype(np.intp), uv[:, 0].astype(np.intp)
    keep = np.isfinite(d[0, rows, cols])
    uv, rows, cols = uv[keep], rows[keep], cols[keep]
    p0 = backproject_pixels(uv[None], d[0, rows, cols][None], K[:1], c2w[:1])[0]
    if flow_from == "first":
        tracks = p0[None] + flow[:, rows, cols]
    else:
        tracks = _carry(p0, flow, d, K, c2w, occlusion_tolerance, flow_sampling)
    visible = _visible(tracks, d, K, c2w, occlusion_tolerance)
    visible[0] = True
    if dynamic_mask is not None:
        mask = np.asarray(dynamic_mask, dtype=np.float64)
        if mask.shape not in ((H, W), (T, H, W)):
            raise ValueError(f"dynamic_mask must have shape {(H, W)} or {(T, H, W)}, got {mask.shape}")
        dynamic = (mask if mask.ndim == 2 else mask[0])[rows, cols] > mask_threshold
    else:
        dynamic = np.nanmax(np.linalg.norm(tracks - p0, axis=-1), axis=0) > motion_threshold
    rgb = None if colors is None else _unit_colors(colors, (H, W))[rows, cols]
    return TrackedScene(
        object_tracks=tracks[:, dynamic], object_visible=visible[:, dynamic], object_pixels=uv[dynamic],
        static_points=p0[~dynamic], object_colors=None if rgb is None else rgb[dynamic],
        static_colors=None if rgb is None else rgb[~dynamic],
    )


def _visible(points: np.ndarray, depth: np.ndarray, K: np.ndarray, c2w: np.ndarray, tolerance: float) -> np.ndarray:
    """Depth test (T, N) of world points (T, N, 3) against NaN-marked depth maps (T, H, W)."""
    uv, z = project_points(points, K, c2w)
    seen = sample_depth(np.nan_to_num(depth), uv, "nearest")
    with np.errstate(invalid="ignore"):
        return (z > 0) & (np.abs(z - seen) <= tolerance * seen)


def _carry(p0: np.ndarray, flow: np.ndarray, depth: np.ndarray, K: np.ndarray, c2w: np.ndarray,
           tolerance: float, sampling: str) -> np.ndarray:
    """Points (N, 3) of frame 0 carried by frame-to-frame scene flow (T-1, H, W, 3) -> (T, N, 3)."""
    T, H, W = depth.shape
    out = np.empty((T,) + p0.shape)
    out[0] = p0
    last = np.zeros_like(p0)
    for t in range(T - 1):  # a loop over frames; every point of a frame at once
        p = out[t][None]
        uv, _ = project_points(p, K[t : t + 1], c2w[t : t + 1])
        f = _interpolate(lambda r, c, t=t: flow[t][r, c], uv, H, W, sampling)[0]
        ok = _visible(p, depth[t : t + 1], K[t : t + 1], c2w[t : t + 1], tolerance)[0] & np.all(np.isfinite(f), -1)
        last = np.where(ok[:, None], f, last)
        out[t + 1] = out[t] + last
    return out


def _unit_colors(colors: np.ndarray, hw: tuple[int, int]) -> np.ndarray:
    """Frame-0 colours (H, W, 3) in [0, 1] from (H, W, 3) or (T, H, W, 3), uint8 or float."""
    c = np.asarray(colors)
    c = c[0] if c.ndim == 4 else c
    if c.shape != hw + (3,):
        raise ValueError(f"colors must have shape {hw + (3,)} or (T, {hw[0]}, {hw[1]}, 3), got {np.shape(colors)}")
    return c / 255.0 if c.dtype == np.uint8 else c.astype(np.float64)
