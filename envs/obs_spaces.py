"""Observation spaces shared by the tasks: the camera keys and the point-cloud keys (DESIGN §3)."""

from __future__ import annotations

import numpy as np
from gymnasium import spaces


def sensor_spaces(obs_mode: str, V: int, H: int, W: int, num_scene_points: int, num_gripper_points: int
                  ) -> dict[str, spaces.Box]:
    """The spaces of ``rgb``/``depth``/``segmentation``/``intrinsics``/``cam2world`` (modes ``rgbd`` and
    ``all``) and of ``scene_*``/``gripper_points`` (modes ``pointcloud`` and ``all``) for V cameras of H x W."""
    f32, inf = np.float32, np.inf
    d: dict[str, spaces.Box] = {}
    if obs_mode in ("rgbd", "all"):
        d.update(
            rgb=spaces.Box(0, 255, (V, H, W, 3), np.uint8),
            depth=spaces.Box(0.0, inf, (V, H, W), f32),
            segmentation=spaces.Box(0, 2, (V, H, W), np.int32),
            intrinsics=spaces.Box(-inf, inf, (V, 3, 3), f32),
            cam2world=spaces.Box(-inf, inf, (V, 4, 4), f32),
        )
    if obs_mode in ("pointcloud", "all"):
        N, Nr = num_scene_points, num_gripper_points
        d.update(
            scene_points=spaces.Box(-inf, inf, (N, 3), f32),
            scene_colors=spaces.Box(0.0, 1.0, (N, 3), f32),
            scene_normals=spaces.Box(-1.0, 1.0, (N, 3), f32),
            scene_labels=spaces.Box(0, 1, (N,), np.int32),
            gripper_points=spaces.Box(-inf, inf, (Nr, 3), f32),
        )
    return d
