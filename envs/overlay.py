"""Drawing 3D points over the env's camera images (videos of plans and predicted flow)."""

from __future__ import annotations

import numpy as np

from physics.render.cameras import project


def draw_points(image: np.ndarray, cameras, layers: list[tuple[np.ndarray, tuple[int, int, int]]],
                scale: int = 1, radius: int = 1) -> np.ndarray:
    """``image`` (H, V*W, 3), all cameras side by side as the env renders them, upscaled by
    ``scale`` with every layer's world points (N, 3) drawn as squares of its RGB colour."""
    out = np.repeat(np.repeat(image, scale, 0), scale, 1).copy()
    W = image.shape[1] // len(cameras)
    for v, cam in enumerate(cameras):
        for points, color in layers:
            u, vv, z = project(np.asarray(points, np.float64), cam)
            keep = (z > 0) & (u >= 0) & (u < W) & (vv >= 0) & (vv < image.shape[0])
            cols = ((u[keep] + v * W) * scale).round().astype(int)
            rows = (vv[keep] * scale).round().astype(int)
            for dr in range(-radius, radius + 1):
                for dc in range(-radius, radius + 1):
                    r = np.clip(rows + dr, 0, out.shape[0] - 1)
                    c = np.clip(cols + dc, v * W * scale, (v + 1) * W * scale - 1)
                    out[r, c] = color
    return out
