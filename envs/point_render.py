"""Render point sets (MPM particles, deformed surface samples) into RGB-D cameras by splatting.

Each point is drawn as a screen-space disc of its world ``radius`` (pixel radius
f * radius / z) at its own depth, with a z-buffer: a pixel keeps the nearest sample among
the splats covering it and the frame it is composited onto (e.g. the rigid engine's
rendering of the table, walls and robot). Depth stays in metres along the optical axis, so
the fused point clouds and visibility tests of rigid scenes apply unchanged.

A pixel's colour and label are its nearest sample's (ties go to the lower point index, so the
result is deterministic); its depth is the mean depth of the samples of that front surface
covering it, which removes the bias toward the camera of taking the nearest sample alone.
"""

from __future__ import annotations

import numpy as np

from physics.rigid.base import Frames
from physics.rigid.spec import Camera

from .cameras import project

MAX_SPLAT_PX = 6


def _splat_offsets(max_px: int) -> np.ndarray:
    """Pixel offsets (K, 2) of the disc of radius ``max_px``, ordered by distance from its centre."""
    r = np.arange(-max_px, max_px + 1)
    du, dv = np.meshgrid(r, r)
    off = np.stack([du.ravel(), dv.ravel()], 1)
    d2 = (off**2).sum(1)
    off = off[d2 <= max_px**2 + max_px]
    return off[np.argsort((off**2).sum(1), kind="stable")]


_OFFSETS = _splat_offsets(MAX_SPLAT_PX)
_OFFSET_D2 = (_OFFSETS**2).sum(1)


def splat_camera(
    points: np.ndarray, radius: float | np.ndarray, cam: Camera
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Splat ``points`` (N, 3) into ``cam``: (pixel index (P,), depth (P,), nearest point's index (P,)).

    One entry per covered pixel (flat index v * W + u); pixels no splat covers are absent. The
    depth is the mean over the front surface's samples covering the pixel (see below).
    """
    points = np.asarray(points, dtype=np.float64)
    if points.ndim != 2 or points.shape[1] != 3:
        raise ValueError(f"points must have shape (N, 3), got {points.shape}")
    n = len(points)
    radius = np.broadcast_to(np.asarray(radius, dtype=np.float64), (n,))
    if n and not (np.all(np.isfinite(points)) and np.all(radius > 0)):
        raise ValueError("points must be finite and radius positive")
    u, v, z = project(points, cam)
    front = z > 1e-6
    idx = np.nonzero(front)[0]
    u, v, z = u[front], v[front], z[front]
    rpx = np.minimum(cam.fx * radius[idx] / z, MAX_SPLAT_PX)
    # every point covers the offsets within its pixel radius (at least its own pixel); the offsets are
    # sorted by distance, so only the first ones up to the largest radius need testing
    r2 = np.maximum(rpx, 0.5) ** 2
    reach = int(np.searchsorted(_OFFSET_D2, r2.max(), side="right")) if len(r2) else 1
    cover = _OFFSET_D2[None, :reach] <= r2[:, None]
    pi, oi = np.nonzero(cover)
    uu = np.rint(u[pi]).astype(np.int64) + _OFFSETS[oi, 0]
    vv = np.rint(v[pi]).astype(np.int64) + _OFFSETS[oi, 1]
    inside = (uu >= 0) & (uu < cam.width) & (vv >= 0) & (vv < cam.height)
    pix = (vv * cam.width + uu)[inside]
    depth = z[pi][inside]
    point = idx[pi][inside]
    # by pixel, then nearest, then lowest index: one sort of a packed key (pixel: 22 bits; depth: the bits of a
    # positive float32, which order as the floats do; point: 11 bits, or a stable sort where there are more)
    if n < 2**11 and cam.width * cam.height < 2**22:
        key = (pix.astype(np.uint64) << np.uint64(42)) | (depth.astype(np.float32).view(np.uint32).astype(np.uint64)
                                                         << np.uint64(11)) | point.astype(np.uint64)
        order = np.argsort(key)
    else:
        order = np.lexsort((point, depth, pix))
    pix, depth, point = pix[order], depth[order], point[order]
    start = np.ones(len(pix), dtype=bool)
    start[1:] = pix[1:] != pix[:-1]
    group = np.cumsum(start) - 1
    first = np.nonzero(start)[0]
    # The front surface: samples within a band behind the nearest one (two splat radii or three
    # pixel footprints, whichever is deeper). Their mean depth is the surface's depth at the
    # pixel centre, where the nearest sample alone would be biased toward the camera.
    z0 = depth[first]
    band = np.maximum(2.0 * radius[point[first]], 3.0 * z0 / cam.fx)
    front = depth <= (z0 + band)[group]
    count = np.bincount(group, weights=front, minlength=len(first))
    mean = np.bincount(group, weights=np.where(front, depth, 0.0), minlength=len(first)) / count
    return pix[first], mean.astype(np.float32), point[first]

def splat_points(
    points: np.ndarray,
    colors: np.ndarray,
    labels: np.ndarray | int,
    radius: float | np.ndarray,
    cameras: tuple[Camera, ...],
    base: Frames | None = None,
) -> Frames:
    """Render ``points`` (N, 3) with ``colors`` (N, 3, uint8 or floats in [0, 1]) and segmentation
    ``labels`` (N or scalar) into every camera, composited by depth onto ``base`` frames (or an
    empty background: depth 0, label 0, black).
    """
    points = np.asarray(points, dtype=np.float64)
    n = len(points)
    colors = np.asarray(colors)
    if colors.dtype != np.uint8:
        colors = np.clip(np.rint(np.asarray(colors, dtype=np.float64) * 255.0), 0, 255).astype(np.uint8)
    colors = np.broadcast_to(colors, (n, 3))
    labels = np.broadcast_to(np.asarray(labels, dtype=np.int32), (n,))
    V = len(cameras)
    H, W = cameras[0].height, cameras[0].width
    if base is None:
        rgb = np.zeros((V, H, W, 3), np.uint8)
        depth = np.zeros((V, H, W), np.float32)
        seg = np.zeros((V, H, W), np.int32)
    else:
        rgb, depth, seg = base.rgb.copy(), base.depth.copy(), base.segmentation.copy()
    for c, cam in enumerate(cameras):
        pix, z, point = splat_camera(points, radius, cam)
        d = depth[c].reshape(-1)
        nearer = (d[pix] <= 0) | (z < d[pix])
        pix, z, point = pix[nearer], z[nearer], point[nearer]
        d[pix] = z
        seg[c].reshape(-1)[pix] = labels[point]
        rgb[c].reshape(-1, 3)[pix] = colors[point]
    return Frames(rgb, depth, seg)
