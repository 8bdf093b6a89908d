"""``render_mode="human"``: the tasks' frames streamed live to a rerun viewer window.

A viewer needs a display and the optional ``rerun-sdk`` package (``pip install
'worldmodel4d[viewer]'``); `require_human_viewer` checks both when an env is made with
``render_mode="human"`` and says what to use instead where they are missing: ``render_mode="rgb_array"``
with ``gymnasium.wrappers.RecordVideo`` for videos, or a recorded store viewed with ``wm4d view``.
"""

from __future__ import annotations

import os
import sys
from typing import Any

import numpy as np

from physics.render import Camera, Frames

INSTEAD = ("use render_mode='rgb_array' (videos: gymnasium.wrappers.RecordVideo) or record episodes with "
           "`wm4d collect` and open them with `wm4d view data=PATH.zarr episode=K out=FILE.rrd`")


def has_display() -> bool:
    """Whether this process can open a window: always on macOS and Windows, else with $DISPLAY or $WAYLAND_DISPLAY."""
    if sys.platform in ("darwin", "win32"):
        return True
    return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))


def require_human_viewer() -> None:
    """ValueError (saying why and what to use instead) unless a rerun viewer window can be opened here."""
    if not has_display():
        raise ValueError("render_mode='human' opens a viewer window, but this process has no display ($DISPLAY and "
                         f"$WAYLAND_DISPLAY are unset); {INSTEAD}")
    try:
        import rerun  # noqa: F401
    except ImportError:
        raise ValueError("render_mode='human' shows the frames in a rerun viewer, which needs the optional "
                         f"package rerun-sdk (pip install 'worldmodel4d[viewer]'); or {INSTEAD}") from None


class HumanViewer:
    """Streams every observed step (camera images, point clouds, gripper and object points) to a rerun viewer,
    spawned on the first frame. ``log(step, frames, cameras, obs, info)`` after each reset and step."""

    def __init__(self, name: str):
        require_human_viewer()
        self.name = name
        self._rec: Any = None
        self._frame = 0  # frames shown so far (the "frame" timeline runs across episodes; "step" restarts)

    def _open(self, rec: Any) -> None:
        """Connect the recording to a viewer: spawn one (a separate process) or join the one already running."""
        rec.spawn()

    def log(self, step: int, frames: Frames, cameras: tuple[Camera, ...], obs: dict, info: dict) -> None:
        """Show the state at episode step ``step``."""
        import rerun as rr

        if self._rec is None:
            self._rec = rr.RecordingStream(f"worldmodel4d/{self.name}")
            self._open(self._rec)
            self._rec.log("world", rr.ViewCoordinates.RIGHT_HAND_Z_UP, static=True)
        rec = self._rec
        rec.set_time("frame", sequence=self._frame)
        rec.set_time("step", sequence=int(step))
        self._frame += 1
        for cam, rgb, depth in zip(cameras, frames.rgb, frames.depth, strict=True):
            path = f"world/cameras/{cam.name}"
            T = np.asarray(cam.cam2world, dtype=float)
            rec.log(path, rr.Transform3D(translation=T[:3, 3], mat3x3=T[:3, :3]))
            rec.log(f"{path}/image", rr.Pinhole(image_from_camera=cam.intrinsics, resolution=[cam.width, cam.height],
                                                camera_xyz=rr.ViewCoordinates.RDF))
            rec.log(f"{path}/image/rgb", rr.Image(rgb))
            rec.log(f"{path}/image/depth", rr.DepthImage(depth, meter=1.0))
        if "scene_points" in obs:
            rec.log("world/scene", rr.Points3D(obs["scene_points"], colors=obs["scene_colors"], radii=0.003))
        if "gripper_points" in obs:
            rec.log("world/gripper", rr.Points3D(obs["gripper_points"], colors=[255, 140, 0], radii=0.003))
        if "object_points" in info:
            rec.log("world/object_points", rr.Points3D(info["object_points"], colors=[220, 40, 40], radii=0.002))
        for key in ("coverage", "object_distance"):
            if key in info:
                rec.log(f"metrics/{key}", rr.Scalars(float(info[key])))

    def close(self) -> None:
        """Flush what was sent; the viewer window stays open."""
        if self._rec is not None:
            self._rec.flush()
            self._rec = None
