"""The tabletop workspace the pushing tasks share: table, walls, default goal, planar poses (metres).

Table top at z = 0; a square workspace of side ``WORKSPACE`` centred at the origin, closed by
walls ``WALL_HEIGHT`` high and ``WALL_THICKNESS`` thick. A planar pose (x, y, yaw) places an
object frame at (x, y), turned counter-clockwise by yaw about +z. PushT4D-v0 (`envs.pusht`) and
Push4D-v0 (`envs.push`) build their rigid scenes with `make_scene`.
"""

from __future__ import annotations

import numpy as np

from physics.rigid.spec import Box, Camera, FreeBody, Scene
from robots.control import CONTROL_DT
from robots.transforms import quat_to_mat

from .robot_setup import RobotSetup, gantry_decorations

WORKSPACE = 0.853
WALL_HEIGHT = 0.05
WALL_THICKNESS = 0.02
GOAL_POSE = (0.0, 0.0, np.pi / 4)  # the default goal (PushT4D-v0's)
SUCCESS_COVERAGE = 0.95
TABLE_RGBA = (0.78, 0.74, 0.68, 1.0)
WALL_RGBA = (0.45, 0.45, 0.5, 1.0)


def rect_box(name: str, rect: tuple[float, float, float, float], z0: float, z1: float, rgba) -> Box:
    """A box spanning ``rect`` = (xmin, ymin, xmax, ymax) in xy and [z0, z1] in z."""
    xmin, ymin, xmax, ymax = rect
    return Box(
        name,
        ((xmax - xmin) / 2, (ymax - ymin) / 2, (z1 - z0) / 2),
        ((xmin + xmax) / 2, (ymin + ymax) / 2, (z0 + z1) / 2),
        rgba=rgba,
    )


def table() -> Box:
    """The table: top face at z = 0, larger than the workspace."""
    return rect_box("table", (-0.75, -0.75, 0.75, 0.75), -0.04, 0.0, TABLE_RGBA)


def walls() -> tuple[Box, ...]:
    """Four walls, 0.05 m high, closing the square workspace."""
    h, t, H = WORKSPACE / 2, WALL_THICKNESS, WALL_HEIGHT
    return (
        rect_box("wall_south", (-h - t, -h - t, h + t, -h), 0.0, H, WALL_RGBA),
        rect_box("wall_north", (-h - t, h, h + t, h + t), 0.0, H, WALL_RGBA),
        rect_box("wall_west", (-h - t, -h, -h, h), 0.0, H, WALL_RGBA),
        rect_box("wall_east", (h, -h, h + t, h), 0.0, H, WALL_RGBA),
    )


def make_scene(
    robot: RobotSetup, cameras: tuple[Camera, ...], body: FreeBody | None, friction: float = 0.5,
    timestep: float = 0.005, control_dt: float = CONTROL_DT,
) -> Scene:
    """The workspace `Scene` with ``body`` (the pushed object), ``robot``, ``cameras`` and body/table Coulomb
    ``friction`` (and, for the hanging arm, its gantry drawn as visual-only decorations)."""
    return Scene(
        table=table(),
        statics=walls(),
        body=body,
        robot=robot.model,
        cameras=cameras,
        timestep=timestep,
        control_dt=control_dt,
        static_friction=friction,
        decorations=gantry_decorations(robot, WORKSPACE / 2),
    )


def wrap_angle(a: np.ndarray | float) -> np.ndarray | float:
    """Angle wrapped to [-pi, pi)."""
    return (np.asarray(a) + np.pi) % (2 * np.pi) - np.pi


def rot_z(yaw: float) -> np.ndarray:
    """3x3 rotation about +z."""
    c, s = np.cos(yaw), np.sin(yaw)
    return np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])


def pose7_from_pose3(pose: np.ndarray, z: float) -> np.ndarray:
    """(x, y, yaw) -> (x, y, z, qw, qx, qy, qz) with the frame ``z`` above the table."""
    x, y, yaw = pose
    return np.array([x, y, z, np.cos(yaw / 2), 0.0, 0.0, np.sin(yaw / 2)])


def pose3_from_pose7(pose7: np.ndarray, R: np.ndarray | None = None) -> np.ndarray:
    """(..., 7) -> planar (x, y, yaw) with yaw the heading of the frame's x axis (``R``: its rotation, if known)."""
    R = quat_to_mat(np.asarray(pose7)[..., 3:]) if R is None else R
    yaw = np.arctan2(R[..., 1, 0], R[..., 0, 0])
    if np.ndim(yaw) == 0:
        return np.array([pose7[0], pose7[1], yaw])
    return np.stack([pose7[..., 0], pose7[..., 1], yaw], -1)


def transform_points(T: np.ndarray, points: np.ndarray) -> np.ndarray:
    """Apply a 4x4 transform to points (N, 3)."""
    return points @ T[:3, :3].T + T[:3, 3]
