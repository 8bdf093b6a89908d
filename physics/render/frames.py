"""Rendered frames of a set of cameras and the segmentation labels every renderer writes.

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
RENDER_MODES = ("rgb_array", "depth_array", "rgbd_tuple")


@dataclass
class Frames:
    """Rendered images of all cameras: rgb (V,H,W,3) uint8, depth (V,H,W) float32 metres, labels (V,H,W)
    int32 (`LABEL_STATIC`, `LABEL_OBJECT`, `LABEL_ROBOT`)."""

    rgb: np.ndarray
    depth: np.ndarray
    segmentation: np.ndarray

    def side_by_side(self, render_mode: str) -> np.ndarray | tuple[np.ndarray, np.ndarray]:
        """All cameras side by side, as ``render_mode`` asks: RGB (H, V*W, 3) uint8 (``"rgb_array"``),
        depth (H, V*W) metres (``"depth_array"``) or both (``"rgbd_tuple"``)."""
        if render_mode not in RENDER_MODES:
            raise ValueError(f"unknown render_mode {render_mode!r}; allowed: {RENDER_MODES}")
        rgb = np.concatenate(list(self.rgb), axis=1)
        depth = np.concatenate(list(self.depth), axis=1)
        if render_mode == "rgb_array":
            return rgb
        if render_mode == "depth_array":
            return depth
        return rgb, depth
