"""Rendered frames of a set of cameras, the segmentation labels every renderer writes and the render modes.

Every renderer of the package (the rigid engines, point splatting of MPM particles and modal
surface samples) produces `Frames` with the same labels, so point-cloud fusion and visibility
tests are the same whatever drew the scene.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

LABEL_STATIC = 0  # table, walls and background
LABEL_OBJECT = 1  # the object a task moves
LABEL_ROBOT = 2  # the robot
# render modes of the tasks: images returned by render() (ARRAY_RENDER_MODES) and "human" (a viewer window)
ARRAY_RENDER_MODES = ("rgb_array", "depth_array", "rgbd_tuple", "depth_rgb")
RENDER_MODES = ARRAY_RENDER_MODES + ("human",)
# Turbo colour map (Mikhailov 2019), polynomial fit: rows r, g, b; coefficients of x^0 .. x^5
_TURBO = np.array([
    [0.13572138, 4.61539260, -42.66032258, 132.13108234, -152.94239396, 59.28637943],
    [0.09140261, 2.19418839, 4.84296658, -14.18503333, 4.27729857, 2.82956604],
    [0.10667330, 12.64194608, -60.58204836, 110.36276771, -89.90310912, 27.34824973],
])


def depth_range(depth: np.ndarray, low: float = 1.0, high: float = 99.0) -> tuple[float, float]:
    """A colour range (near, far) in metres for ``depth``: the ``low``/``high`` percentiles of its hits (> 0)."""
    hits = np.asarray(depth)[np.asarray(depth) > 0]
    if hits.size == 0:
        return 0.0, 1.0
    near, far = np.percentile(hits, [low, high])
    return float(near), float(max(far, near + 1e-6))


def colorize_depth(depth: np.ndarray, near: float | None = None, far: float | None = None) -> np.ndarray:
    """Depth (..., H, W) in metres as an RGB image (..., H, W, 3) uint8 for viewing and videos.

    Turbo colours from red (``near``) to blue (``far``), clipped beyond them; pixels where nothing
    was hit (depth 0) are black. ``near``/``far`` default to `depth_range` of ``depth`` itself; pass a
    fixed range to keep the colours of a video's frames comparable.
    """
    depth = np.asarray(depth, dtype=np.float64)
    if near is None or far is None:
        auto = depth_range(depth)
        near, far = (auto[0] if near is None else near), (auto[1] if far is None else far)
    x = np.clip((far - depth) / max(far - near, 1e-9), 0.0, 1.0)
    rgb = np.stack([np.polyval(c[::-1], x) for c in _TURBO], axis=-1)
    rgb = np.where((depth > 0)[..., None], np.clip(rgb, 0.0, 1.0), 0.0)
    return (rgb * 255 + 0.5).astype(np.uint8)


@dataclass
class Frames:
    """Rendered images of all cameras: rgb (V,H,W,3) uint8, depth (V,H,W) float32 metres, labels (V,H,W)
    int32 (`LABEL_STATIC`, `LABEL_OBJECT`, `LABEL_ROBOT`)."""

    rgb: np.ndarray
    depth: np.ndarray
    segmentation: np.ndarray

    def side_by_side(self, render_mode: str, depth_colors: tuple[float, float] | None = None
                     ) -> np.ndarray | tuple[np.ndarray, np.ndarray]:
        """All cameras side by side, as ``render_mode`` asks: RGB (H, V*W, 3) uint8 (``"rgb_array"``),
        depth (H, V*W) metres (``"depth_array"``), both (``"rgbd_tuple"``) or depth colour-mapped to RGB
        (H, V*W, 3) uint8 (``"depth_rgb"``, `colorize_depth` over the range ``depth_colors`` = (near, far))."""
        if render_mode not in ARRAY_RENDER_MODES:
            raise ValueError(f"unknown render_mode {render_mode!r} for images; allowed: {ARRAY_RENDER_MODES}")
        rgb = np.concatenate(list(self.rgb), axis=1)
        depth = np.concatenate(list(self.depth), axis=1)
        if render_mode == "rgb_array":
            return rgb
        if render_mode == "depth_array":
            return depth
        if render_mode == "depth_rgb":
            return colorize_depth(depth, *(depth_colors or (None, None)))
        return rgb, depth
