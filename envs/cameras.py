"""Where the tasks put their cameras, and how a render mode shows them.

The pinhole model itself (placement, projection, back-projection, in OpenCV conventions) is
:mod:`physics.render.cameras`.
"""

from __future__ import annotations

import numpy as np

from physics.render.cameras import look_at, pinhole
from physics.rigid.base import Frames
from physics.rigid.spec import Camera

__all__ = ["orbit_cameras", "side_by_side"]


def orbit_cameras(
    num: int, width: int, height: int, radius: float = 0.9, height_m: float = 0.8, fovy_deg: float = 45.0,
    azimuth0_deg: float = -135.0, target: tuple[float, float, float] = (0.0, 0.0, 0.0),
) -> tuple[Camera, ...]:
    """``num`` cameras evenly spaced in azimuth on a circle, looking obliquely down at ``target``."""
    if num <= 0:
        raise ValueError(f"num_cameras must be a positive integer, got {num}")
    cams = []
    for i in range(num):
        a = np.radians(azimuth0_deg + 360.0 * i / num)
        eye = np.array([radius * np.cos(a), radius * np.sin(a), height_m])
        cams.append(pinhole(f"cam{i}", look_at(eye, target), width, height, fovy_deg))
    return tuple(cams)


def side_by_side(frames: Frames, render_mode: str) -> np.ndarray | tuple[np.ndarray, np.ndarray]:
    """All cameras of ``frames`` side by side, as ``render_mode`` asks: RGB (H, V*W, 3) uint8
    (``"rgb_array"``), depth (H, V*W) metres (``"depth_array"``) or both (``"rgbd_tuple"``)."""
    rgb = np.concatenate(list(frames.rgb), axis=1)
    depth = np.concatenate(list(frames.depth), axis=1)
    if render_mode == "rgb_array":
        return rgb
    if render_mode == "depth_array":
        return depth
    return rgb, depth
