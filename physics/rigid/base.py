"""The rigid-backend interface every engine implements for tabletop pushing tasks.

A backend simulates a `Scene`: one free body on a table, a robot whose tool is held at a
fixed height and servoed toward an xy target, and fixed cameras. One `step` advances one
control period. Targets move toward the commanded xy at most ``robot.max_speed`` m/s (a
speed-limited setpoint the servo tracks), so any commanded target gives smooth motion.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, replace

import numpy as np

from physics.render import Camera, Frames

from .spec import Box, Light, Scene


@dataclass
class SimState:
    """A complete, copyable snapshot of a backend (physics and controller state)."""

    physics: np.ndarray
    controller: np.ndarray
    time: float

    def copy(self) -> "SimState":
        """A deep copy."""
        return SimState(self.physics.copy(), self.controller.copy(), float(self.time))


def _rgba(value, what: str) -> tuple[float, float, float, float]:
    """``value`` (rgb or rgba in [0, 1]) as an rgba tuple, or ValueError naming ``what``."""
    c = np.asarray(value, dtype=float).ravel()
    if c.size not in (3, 4) or not np.all((c >= 0) & (c <= 1)):
        raise ValueError(f"{what} must be 3 or 4 numbers in [0, 1] (rgb or rgba), got {value!r}")
    return tuple(float(v) for v in (c if c.size == 4 else np.append(c, 1.0)))


class RigidBackend(ABC):
    """Interface of a rigid engine (MuJoCo, PyBullet) for a `Scene`.

    Per-episode changes that need no rebuild (the ``set_*`` methods: the free body's mass and colour, the
    body/statics friction, the table's colour, the light, the cameras' poses) keep ``scene`` describing what is
    simulated now; ``built_scene`` stays the scene the engine was built from, and ``light`` is None while the
    scene's own light is used. A changed geometry (another body, another robot) needs a new backend.
    """

    scene: Scene
    built_scene: Scene
    light: Light | None = None
    SKIPS_ROBOT_RGB = False  # whether ``render(robot_rgb=False)`` draws cheaper frames than ``render()``

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
    def render(self, robot_rgb: bool = True) -> Frames:
        """Render every camera of the scene (the observations' images: no decorations). ``robot_rgb=False``: the
        robot's pixels may keep any colour (frames for a point cloud, which drops them; a backend may draw them
        cheaper); depth, labels and all other pixels are unchanged."""

    @abstractmethod
    def render_views(self, cameras: tuple[Camera, ...], decorations: bool = True) -> Frames:
        """Render any ``cameras`` (one image size) at the current state, with the scene's decorations unless
        ``decorations`` is False (videos and figures; the simulation is unchanged)."""

    # ------------------------------------------------------- per-episode changes
    def set_body_mass(self, mass: float) -> None:
        """Give the free body ``mass`` kg with the same shape and uniform density: its inertia is the built body's
        scaled by ``mass / built mass``, its centre of mass unchanged (as if the scene had been built with it)."""
        body = self._require_body()
        if not (np.isfinite(mass) and mass > 0):
            raise ValueError(f"free body {body.name!r}: mass must be positive and finite, got {mass!r}")
        built = self.built_scene.body
        inertia = None if built.inertia is None else np.asarray(built.inertia) * (float(mass) / built.mass)
        self.scene = replace(self.scene, body=replace(body, mass=float(mass), inertia=inertia))
        self._apply_body_mass(float(mass) / built.mass)

    def set_friction(self, friction: float) -> None:
        """Set the Coulomb coefficient between the free body and the statics (table and walls:
        ``Scene.static_friction``) for the coming steps."""
        if not (np.isfinite(friction) and friction >= 0):
            raise ValueError(f"friction must be a finite number >= 0, got {friction!r}")
        self.scene = replace(self.scene, static_friction=float(friction))
        self._apply_friction_coefficient(float(friction))

    def set_body_rgba(self, rgba) -> None:
        """Draw the free body in colour ``rgba`` (rgb or rgba in [0, 1])."""
        body = self._require_body()
        body = replace(body, rgba=_rgba(rgba, "body colour"))
        if body.boxes:
            body = replace(body, boxes=tuple(replace(b, rgba=body.rgba) for b in body.boxes))
        self.scene = replace(self.scene, body=body)
        self._apply_body_rgba(body.rgba)

    def set_table_rgba(self, rgba) -> None:
        """Draw the table in colour ``rgba`` (rgb or rgba in [0, 1]); the walls keep theirs."""
        self.scene = replace(self.scene, table=replace(self.scene.table, rgba=_rgba(rgba, "table colour")))
        self._apply_table_rgba(self.scene.table.rgba)

    def set_light(self, light: Light | None) -> None:
        """Light the scene with the directional ``light`` (None: the scene's own light, as built)."""
        self.light = light
        self._apply_light(light)

    def set_cameras(self, cameras: tuple[Camera, ...]) -> None:
        """Render the observations from ``cameras`` (as many as the scene's, the same image size) from now on."""
        cameras = tuple(cameras)
        old = self.scene.cameras
        if len(cameras) != len(old) or any((c.width, c.height) != (old[0].width, old[0].height) for c in cameras):
            raise ValueError(f"set_cameras needs {len(old)} cameras of {old[0].width}x{old[0].height} px (the "
                             f"scene's), got {[(c.width, c.height) for c in cameras]}")
        self._apply_cameras(cameras)
        self.scene = replace(self.scene, cameras=cameras)

    def _require_body(self):
        if self.scene.body is None:
            raise ValueError("this scene has no free body (Scene.body is None)")
        return self.scene.body

    @abstractmethod
    def _apply_body_mass(self, ratio: float) -> None:
        """Engine part of `set_body_mass`: the built body's mass and inertia times ``ratio``."""

    @abstractmethod
    def _apply_friction_coefficient(self, friction: float) -> None:
        """Engine part of `set_friction`."""

    @abstractmethod
    def _apply_body_rgba(self, rgba: tuple[float, float, float, float]) -> None:
        """Engine part of `set_body_rgba`."""

    @abstractmethod
    def _apply_table_rgba(self, rgba: tuple[float, float, float, float]) -> None:
        """Engine part of `set_table_rgba`."""

    @abstractmethod
    def _apply_light(self, light: Light | None) -> None:
        """Engine part of `set_light`."""

    @abstractmethod
    def _apply_cameras(self, cameras: tuple[Camera, ...]) -> None:
        """Engine part of `set_cameras` (checked: as many as before, the same image size)."""

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
