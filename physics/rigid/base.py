"""The rigid-backend interface every engine implements for tabletop pushing tasks.

A backend simulates a `Scene`: one free body on a table, a robot whose tool is held at a
fixed height and servoed toward an xy target, and fixed cameras. One `step` advances one
control period. Targets move toward the commanded xy at most ``robot.max_speed`` m/s (a
speed-limited setpoint the servo tracks), so any commanded target gives smooth motion.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass

import numpy as np

from physics.render import Camera, Frames

from .spec import Box, Scene


@dataclass
class SimState:
    """A complete, copyable snapshot of a backend (physics and controller state)."""

    physics: np.ndarray
    controller: np.ndarray
    time: float

    def copy(self) -> "SimState":
        """A deep copy."""
        return SimState(self.physics.copy(), self.controller.copy(), float(self.time))


class RigidBackend(ABC):
    """Interface of a rigid engine (MuJoCo, PyBullet) for a `Scene`."""

    scene: Scene

    @abstractmethod
    def reset(self, body_pose7: np.ndarray, tcp_xy: np.ndarray) -> None:
        """Place the free body at (x, y, z, qw, qx, qy, qz) and the tool at ``tcp_xy``, at rest."""

    @abstractmethod
    def step(self, target_xy: np.ndarray) -> None:
        """Advance one control period toward the tool target ``target_xy``."""

    @abstractmethod
    def body_pose7(self) -> np.ndarray:
        """Pose of the free body: (x, y, z, qw, qx, qy, qz)."""

    @abstractmethod
    def tcp_xy(self) -> np.ndarray:
        """Current xy of the tool centre point."""

    @abstractmethod
    def robot_qpos(self) -> np.ndarray:
        """Robot joint values: arm joints (or base x, y when floating) then the fixed joints."""

    @abstractmethod
    def link_poses(self, names: tuple[str, ...]) -> np.ndarray:
        """The engine's own world poses (len(names), 4, 4) of robot links."""

    @abstractmethod
    def get_state(self) -> SimState:
        """Snapshot the complete simulation state."""

    @abstractmethod
    def set_state(self, state: SimState) -> None:
        """Restore a snapshot taken by `get_state`."""

    @abstractmethod
    def render(self) -> Frames:
        """Render every camera of the scene (the observations' images: no decorations)."""

    @abstractmethod
    def render_views(self, cameras: tuple[Camera, ...], decorations: bool = True) -> Frames:
        """Render any ``cameras`` (one image size) at the current state, with the scene's decorations unless
        ``decorations`` is False (videos and figures; the simulation is unchanged)."""

    def placed_decorations(self) -> list[Box]:
        """The scene's decorations placed in the world for the current gantry position (floating robots carry
        the ``"x"`` and ``"xy"`` ones; without a gantry they stay where they are)."""
        decorations = self.scene.decorations
        if not decorations:
            return []
        gantry = self.robot_qpos()[:2] if self.scene.robot.floating else np.zeros(2)
        out = []
        for d in decorations:
            shift = {"world": (0.0, 0.0), "x": (gantry[0], 0.0), "xy": (gantry[0], gantry[1])}[d.carried]
            pos = (d.box.pos[0] + float(shift[0]), d.box.pos[1] + float(shift[1]), d.box.pos[2])
            out.append(Box(d.box.name, d.box.half_size, pos, d.box.quat, d.box.rgba))
        return out

    def close(self) -> None:  # noqa: B027  (optional: engines without resources keep this no-op)
        """Release engine resources (rendering contexts, connections)."""
