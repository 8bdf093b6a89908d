"""Render point sets (MPM particles, deformed surface samples) into RGB-D cameras by splatting.

Each point is drawn as a screen-space disc of its world ``radius`` (pixel radius
f * radius / z) at its own depth, with a z-buffer: a pixel keeps the nearest sample among
the splats covering it and the frame it is composited onto (e.g. the rigid engine's
rendering of the table, walls and robot). Depth stays in metres along the optical axis, so
the fused point clouds and visibility tests of rigid scenes apply unchanged.

A pixel's colour and label are its nearest sample's (ties go to the lower point index, so the
result is deterministic); its depth is the mean depth of the samples of that front surface
covering it, which removes the bias toward the camera of taking the nearest sample alone.

The covering runs as two Warp kernels, one thread per point: ``nearest_splat`` keeps the least
packed (depth, index) key per pixel with an atomic min, ``front_surface_depth`` sums the depths
within the front band of that nearest sample.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import warp as wp

from .cameras import Camera, project
from .frames import Frames

MAX_SPLAT_PX = 6
EMPTY = np.uint64(2**64 - 1)  # the z-buffer key of a pixel no splat covers
INDEX_MASK = 2**32 - 1  # the low bits of a key: the point's index


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


@wp.struct
class Discs:
    """Screen-space discs: per point its pixel centre and squared pixel radius; the disc's pixel offsets sorted
    by distance from its centre, their squared distances; the image size."""

    centre: wp.array(dtype=wp.vec2i)
    r2: wp.array(dtype=wp.float64)
    offsets: wp.array(dtype=wp.vec2i)
    offset_d2: wp.array(dtype=wp.float64)
    width: int
    height: int


@wp.func
def covered_pixel(discs: Discs, i: int, o: int):
    """Flat index of the pixel at offset ``o`` of disc ``i``: -1 outside the image, -2 beyond the disc (and so
    for every later offset)."""
    pix = int(-2)
    if discs.offset_d2[o] <= discs.r2[i]:
        u = discs.centre[i][0] + discs.offsets[o][0]
        v = discs.centre[i][1] + discs.offsets[o][1]
        pix = -1
        if u >= 0 and u < discs.width and v >= 0 and v < discs.height:
            pix = v * discs.width + u
    return pix


@wp.kernel
def nearest_splat(discs: Discs, key: wp.array(dtype=wp.uint64), nearest: wp.array(dtype=wp.uint64)):
    """z-buffer: every pixel point i's disc covers keeps the least key (depth's float32 bits, then index)."""
    i = wp.tid()
    for o in range(discs.offsets.shape[0]):
        pix = covered_pixel(discs, i, o)
        if pix == -2:
            break
        if pix >= 0:
            wp.atomic_min(nearest, pix, key[i])


@wp.kernel
def front_surface_depth(
    discs: Discs,
    z: wp.array(dtype=wp.float64),
    radius: wp.array(dtype=wp.float64),
    fx: wp.array(dtype=wp.float64),
    nearest: wp.array(dtype=wp.uint64),
    total: wp.array(dtype=wp.float64),
    count: wp.array(dtype=wp.float64),
):
    """Sum the depths of the points within the front band of each pixel they cover (see the module docstring)."""
    i = wp.tid()
    for o in range(discs.offsets.shape[0]):
        pix = covered_pixel(discs, i, o)
        if pix == -2:
            break
        if pix >= 0:
            first = int(nearest[pix] & wp.uint64(INDEX_MASK))
            z0 = z[first]
            if z[i] <= z0 + wp.max(wp.float64(2.0) * radius[first], wp.float64(3.0) * z0 / fx[0]):
                wp.atomic_add(total, pix, z[i])
                wp.atomic_add(count, pix, wp.float64(1.0))


class _SplatArrays:
    """Arrays for splatting up to ``capacity`` points into ``width`` x ``height`` pixels and the recorded launches
    that fill them (numpy views share their memory)."""

    def __init__(self, capacity: int, width: int, height: int):
        dev, n, pixels = "cpu", capacity, width * height
        types = {"centre": (n, wp.vec2i), "key": (n, wp.uint64), "z": (n, wp.float64), "r2": (n, wp.float64),
                 "radius": (n, wp.float64), "fx": (1, wp.float64), "nearest": (pixels, wp.uint64),
                 "total": (pixels, wp.float64), "count": (pixels, wp.float64)}
        a = {name: wp.zeros(size, dtype=dtype, device=dev) for name, (size, dtype) in types.items()}
        discs = Discs()
        discs.centre, discs.r2, discs.width, discs.height = a["centre"], a["r2"], width, height
        discs.offsets = wp.array(_OFFSETS.astype(np.int32), dtype=wp.vec2i, device=dev)
        discs.offset_d2 = wp.array(_OFFSET_D2.astype(np.float64), dtype=wp.float64, device=dev)
        self.nearest_launch = wp.launch(nearest_splat, dim=n, device=dev, record_cmd=True, inputs=[discs, a["key"]],
                                        outputs=[a["nearest"]])
        self.front_launch = wp.launch(front_surface_depth, dim=n, device=dev, record_cmd=True,
                                      inputs=[discs, a["z"], a["radius"], a["fx"], a["nearest"]],
                                      outputs=[a["total"], a["count"]])
        self.discs = discs
        self.arrays, self.capacity = a, capacity
        self.view = {name: arr.numpy() for name, arr in a.items()}


@lru_cache(maxsize=8)
def _splat_arrays(capacity: int, width: int, height: int) -> _SplatArrays:
    """The process's `_SplatArrays` of this size (splatting reuses them: calls run one at a time)."""
    return _SplatArrays(capacity, width, height)


def splat_camera(
    points: np.ndarray, radius: float | np.ndarray, cam: Camera
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Splat ``points`` (N, 3) into ``cam``: (pixel index (P,), depth (P,), nearest point's index (P,)).

    One entry per covered pixel (flat index v * W + u), in pixel order; pixels no splat covers are
    absent. The depth is the mean over the front surface's samples covering the pixel (see the
    module docstring). Two Warp kernels on the CPU: the z-buffer of packed (depth, index) keys,
    then the front band's depth sums.
    """
    points = np.asarray(points, dtype=np.float64)
    if points.ndim != 2 or points.shape[1] != 3:
        raise ValueError(f"points must have shape (N, 3), got {points.shape}")
    n = len(points)
    radius = np.broadcast_to(np.asarray(radius, dtype=np.float64), (n,))
    if n and not (np.all(np.isfinite(points)) and np.all(radius > 0)):
        raise ValueError("points must be finite and radius positive")
    u, v, z = project(points, cam)
    idx = np.flatnonzero(z > 1e-6)
    m = len(idx)
    if m == 0:
        return np.zeros(0, np.int64), np.zeros(0, np.float32), np.zeros(0, np.int64)
    buf = _splat_arrays(max(256, 1 << int(np.ceil(np.log2(m)))), cam.width, cam.height)
    w, z = buf.view, z[idx]
    w["centre"][:m, 0], w["centre"][:m, 1] = np.rint(u[idx]), np.rint(v[idx])
    w["z"][:m], w["radius"][:m], w["fx"][0] = z, radius[idx], cam.fx
    # every point covers the offsets within its pixel radius (at least its own pixel)
    w["r2"][:m] = np.maximum(np.minimum(cam.fx * radius[idx] / z, MAX_SPLAT_PX), 0.5) ** 2
    # a positive float32's bits order as the floats do: the least key is the nearest point, ties to the lower index
    depth_bits = z.astype(np.float32).view(np.uint32).astype(np.uint64)
    w["key"][:m] = (depth_bits << np.uint64(32)) | np.arange(m, dtype=np.uint64)
    w["nearest"].fill(EMPTY)
    w["total"].fill(0.0)
    w["count"].fill(0.0)
    for launch in (buf.nearest_launch, buf.front_launch):
        launch.set_dim(m)
        launch.launch()
    pix = np.flatnonzero(w["nearest"] != EMPTY)
    first = (w["nearest"][pix] & np.uint64(INDEX_MASK)).astype(np.int64)
    return pix, (w["total"][pix] / w["count"][pix]).astype(np.float32), idx[first]


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
