"""Rendering: pinhole cameras (OpenCV conventions), frames and labels, z-buffered point splatting.

The rigid engines render into the same `Frames` with the same labels.

- :mod:`physics.render.cameras`: the `Camera` model, placement (``look_at``, ``pinhole``,
  ``orbit_cameras``, ``resized``), projection of world points (``project``) and back-projection of depth
  images (``pixel_rays``, ``backproject``).
- :mod:`physics.render.frames`: `Frames` (RGB, depth, segmentation of all cameras), the
  segmentation labels every renderer writes, the render modes and ``colorize_depth`` (depth as
  a colour image, for videos).
- :mod:`physics.render.splatting`: ``splat_points`` draws point sets (MPM particles, deformed
  surface samples, robot link samples) into RGB-D cameras as depth-tested discs (two Warp kernels;
  imported on first use, so the cameras alone do not load Warp).
- :mod:`physics.render.gaussian_raster`: ``render_gaussians`` draws 3D Gaussian splats (EWA projection,
  tile-based front-to-back alpha blending, as 3DGS) over an optional checkerboard ``Floor``; ``preview_camera``
  frames a point set (Warp kernels, imported on first use).
"""

from typing import Any

from .cameras import Camera, backproject, look_at, orbit_cameras, pinhole, pixel_rays, project, resized
from .frames import (
    ARRAY_RENDER_MODES,
    LABEL_OBJECT,
    LABEL_ROBOT,
    LABEL_STATIC,
    RENDER_MODES,
    Frames,
    colorize_depth,
    depth_range,
)

__all__ = [
    "ARRAY_RENDER_MODES", "Camera", "Frames", "LABEL_OBJECT", "LABEL_ROBOT", "LABEL_STATIC", "RENDER_MODES",
    "backproject", "colorize_depth", "depth_range", "look_at", "orbit_cameras", "pinhole", "pixel_rays", "project",
    "resized", "splat_points", "Floor", "preview_camera", "render_gaussians",
]

_GAUSSIAN_RASTER = ("Floor", "preview_camera", "render_gaussians")


def __getattr__(name: str) -> Any:
    if name == "splat_points":
        from .splatting import splat_points

        return splat_points
    if name in _GAUSSIAN_RASTER:
        from . import gaussian_raster

        return getattr(gaussian_raster, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
