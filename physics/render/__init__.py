"""Rendering without a rigid engine: pinhole cameras (OpenCV conventions) and z-buffered point splatting.

- :mod:`physics.render.cameras`: camera placement (``look_at``, ``pinhole``), projection of
  world points (``project``) and back-projection of depth images (``pixel_rays``, ``backproject``).
- :mod:`physics.render.splatting`: ``splat_points`` draws point sets (MPM particles, deformed
  surface samples, robot link samples) into RGB-D cameras as depth-tested discs (two Warp kernels;
  imported on first use, so the cameras alone do not load Warp).
"""

from typing import Any

from .cameras import backproject, look_at, pinhole, pixel_rays, project

__all__ = ["backproject", "look_at", "pinhole", "pixel_rays", "project", "splat_points"]


def __getattr__(name: str) -> Any:
    if name == "splat_points":
        from .splatting import splat_points

        return splat_points
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
