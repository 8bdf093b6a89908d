"""Push4D-v0 with an object of MPM material (``material`` != "rigid"), and the MPM object both push tasks share.

`MPMObject` turns a push task (`envs.push.env.Push4DEnv` or its T instance, PushT4D-v0) into one whose object is
MPM particles pushed by the URDF gripper's kinematic colliders (`envs.push.mpm_object`); `DeformablePush4DEnv`
is Push4D-v0's, `envs.pusht.deformable.DeformablePushT4DEnv` PushT4D-v0's. Imported only for a deformable object
(they load Warp).
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np
from scipy.spatial import cKDTree
from scipy.spatial.transform import Rotation

from physics.mpm import MPMSolver
from physics.render import LABEL_OBJECT, Camera, Frames, splat_points
from physics.rigid import Scene
from robots.control import CONTROL_DT
from robots.transforms import kabsch_transform, pose_matrix

from .. import workspace as ws
from ..base import scene_track_ids
from ..objects import RigidObject, load_object
from ..robot_setup import make_gripper, make_robot
from .env import Push4DEnv
from .mpm_object import (
    DEFAULT_SPACING,
    MPMObjectConfig,
    build_solver,
    collider_boxes,
    collider_poses,
    fill_particles,
    footprint_diameter,
    pose_colliders,
)
from .particle_footprint import footprint_coverage

SPLAT_RADIUS = 0.75  # particle spacings: splats of neighbouring particles overlap, no holes


class MPMObject:
    """The MPM object of a push task (a mixin before the task's class: ``class X(MPMObject, Push4DEnv)``).

    The subclass calls `_init_mpm` at the end of its ``__init__`` with the object's `MPMObjectConfig` and its rest
    particles (object frame, bottom at z = 0). The rigid backend still simulates the robot; the object is
    particles: at reset at rest at the start pose (F = I; an object reaching past a wall is moved inside), every
    step advanced over the 0.1 s frame with the gripper's contact links as box colliders moving from their old to
    their new poses. Its pose is the Kabsch fit of the particles to their rest shape, its coverage the particles'
    footprint's (`envs.push.particle_footprint`), its tracked points the particles nearest the rigid task's
    surface points; ``info`` adds ``tracks``, ``track_visible``, ``scene_track_ids`` and ``collider_poses``.
    """

    MPM_OBJECT = True  # the class builds an MPM object (`Push4DEnv` refuses other materials than "rigid")

    def _init_mpm(self, config: MPMObjectConfig, rest_local: np.ndarray) -> None:
        """Particles ``rest_local`` (P, 3) of material ``config``; tracks and goal points from them."""
        self.mpm_config = config
        self.rest_local = rest_local
        self.track_index = cKDTree(rest_local).query(self.object_local)[1].astype(np.int64)
        self.object_local = rest_local[self.track_index]
        self.goal_object_points = self._points_at(self.goal_pose)
        self._box_centres, self._box_halves = collider_boxes(self.robot.desc, self.robot.gripper_links)
        self.mpm: MPMSolver | None = None
        self.colliders: list = []
        self._collider_poses = np.zeros((len(self._box_centres), 7))
        self._x = np.zeros((len(rest_local), 3))
        self._visible = np.ones(len(rest_local), dtype=bool)  # every particle's last z-buffer test

    def _particle_rgb(self) -> np.ndarray:
        """The colour the particles are splatted with: the object's."""
        return np.asarray(self.object.color[:3])

    def _make_scene(self, friction: float) -> Scene:
        """The rigid backend's scene without the object (table, walls, robot, cameras)."""
        return dataclasses.replace(super()._make_scene(friction), body=None)

    def _rest_z(self) -> float:
        """The particles' frame rests on the table (their lowest point at z = 0)."""
        return 0.0

    # ------------------------------------------------------------- simulation
    def _current_collider_poses(self) -> np.ndarray:
        links = self.robot.link_poses(self.sim.robot_qpos(), self.robot.gripper_links)
        return collider_poses(links, self._box_centres)

    def _reset_sim(self, pose: np.ndarray, ee_xy: np.ndarray) -> None:
        """Robot at ``ee_xy``; a fresh MPM object at rest at planar pose ``pose`` (built by `build_solver`)."""
        super()._reset_sim(pose, ee_xy)
        x0 = ws.transform_points(pose_matrix(ws.pose7_from_pose3(pose, 0.0)), self.rest_local)
        limit = ws.WORKSPACE / 2 - self.mpm_config.spacing  # an object reaching past a wall is moved inside
        x0[:, :2] += np.maximum(0.0, -limit - x0[:, :2].min(0)) - np.maximum(0.0, x0[:, :2].max(0) - limit)
        # float32-exact positions: a replay from the recorded tracks[0] starts from the same state
        x0 = x0.astype(np.float32).astype(np.float64)
        self.mpm, self.colliders = build_solver(self.mpm_config, x0, self.mpm_config.youngs_modulus,
                                                self._box_halves)
        self._collider_poses = self._current_collider_poses()

    def _step_physics(self, target: np.ndarray) -> None:
        """Rigid robot step, then the MPM frame with the colliders moving from the old to the new link poses."""
        start = self._collider_poses
        super()._step_physics(target)
        end = self._current_collider_poses()
        pose_colliders(self.colliders, start, end, CONTROL_DT)
        self.mpm.step(CONTROL_DT)
        self._collider_poses = end

    # ------------------------------------------------------------ observation
    def _object_state(self) -> tuple[np.ndarray, np.ndarray, float, np.ndarray]:
        """Best-fit pose7, planar pose, footprint coverage and tracked particles of the deformed object."""
        x = self._x = self.mpm.positions()
        T = kabsch_transform(self.rest_local, x)
        xyzw = Rotation.from_matrix(T[:3, :3]).as_quat()
        quat = np.array([xyzw[3], *xyzw[:3]])
        pose7 = np.concatenate([T[:3, 3], quat if quat[0] >= 0 else -quat])
        pose3 = ws.pose3_from_pose7(pose7, T[:3, :3])
        cov = footprint_coverage(x, self.mpm_config.spacing, self.object.footprint, self.goal_pose)
        return pose7, pose3, cov, x[self.track_index].astype(np.float32)

    def _render_frames(self) -> Frames:
        """The rigid scene's frames with the particles splatted in (label 1)."""
        return self._splat(self.cameras, self.sim.render())

    def _render_views(self, cameras: tuple[Camera, ...], decorations: bool = True) -> Frames:
        """`_render_frames` for any cameras (the rigid scene's views, decorations included, with the particles)."""
        return self._splat(cameras, self.sim.render_views(cameras, decorations))

    def _splat(self, cameras: tuple[Camera, ...], base: Frames) -> Frames:
        return splat_points(self._x, self._particle_rgb(), LABEL_OBJECT, SPLAT_RADIUS * self.mpm_config.spacing,
                            cameras, base=base)

    def _object_visibility(self, info: dict, frames: Frames) -> np.ndarray:
        """One z-buffer test of every particle (kept for ``track_visible``); the object points' share of it."""
        self._visible = self.fuser.visible(self._x, frames.depth, frames.segmentation, LABEL_OBJECT,
                                           tol=2.0 * self.mpm_config.spacing)
        return self._visible[self.track_index]

    def _track_info(self, obs: dict, info: dict) -> None:
        """Every particle's track, its visibility (all True without cameras), the particle each object scene point
        shows and the colliders' poses."""
        x = self._x
        visible = self._visible if self._frames is not None else np.ones(len(x), dtype=bool)
        info.update(tracks=x.astype(np.float32), track_visible=visible, scene_track_ids=scene_track_ids(obs, x),
                    collider_poses=self._collider_poses.copy())

    # ------------------------------------------------------------------ state
    def _save_state(self) -> tuple:
        """The rigid robot, the particles and the colliders."""
        return (super()._save_state(), self.mpm.get_state(), self._collider_poses.copy())

    def _restore_state(self, state: tuple) -> None:
        rigid, particles, poses = state
        super()._restore_state(rigid)
        self.mpm.set_state(particles)
        self._collider_poses = poses.copy()
        self._x = self.mpm.positions()


def object_mpm_config(obj: RigidObject, material: str, youngs_modulus: float | None, particle_spacing: float,
                      domain_size: float | None, friction: float, device: str) -> MPMObjectConfig:
    """The checked `MPMObjectConfig` of Push4D's object ``obj`` (its mass, footprint and height) in ``material``."""
    return MPMObjectConfig.resolve(material, youngs_modulus, particle_spacing, domain_size, friction, obj.mass,
                             footprint_diameter(obj.footprint), obj.height, device)


class DeformablePush4DEnv(MPMObject, Push4DEnv):
    """Push4D-v0 with an object of MPM material (``gym.make("Push4D-v0", object=..., material="jelly")``).

    Everything of `envs.push.env.Push4DEnv` holds (spaces, action, reset distributions, reward, termination,
    ``info``, bad input -> ValueError, same seed -> same observations) with these changes.

    **Object.** Particles ``particle_spacing`` apart (default 4 mm, 2 per grid cell and axis) fill the object's
    closed mesh (an extruded polygon, a library shape or mesh, the user's mesh file or URDF), standing on the
    table at reset (F = I, at rest), with the object's mass (from its geometry and density, or given):
    ``"jelly"`` fixed-corotated elastic, ``"plasticine"`` von Mises (yield stress 1.5 kPa, keeps dents),
    ``"sand"`` Drucker-Prager (30 deg, cohesionless: it slumps and spreads). ``youngs_modulus`` is E in Pa
    (default 2e4, at most 1e7; the CFL substep count grows as sqrt(E)), Poisson ratio 0.3. The table is a
    Coulomb friction plane (``friction``, or the object's own); the walls are slip planes. The gripper's contact
    links are kinematic box colliders (their collision geometry's bounding boxes) posed every step from URDF
    forward kinematics and moved at constant velocity over the step (the object does not push back on the
    gripper). The MPM grid covers a ``domain_size`` square around the object (default: the material's 0.32 m,
    sand 0.44 m, or the object's footprint diameter plus 0.06 m if larger) that follows it, and reaches 1.6 times
    the object's height (at least 0.064 m) above the table; ``mpm_device`` is the Warp device.

    **Observation.** Particles are splatted into the same cameras in the object's colour (label 1), so ``rgbd``,
    ``pointcloud`` and ``all`` are as in the rigid task.

    **Info** as in the rigid task, from the particles: ``object_pose``/``object_pose7`` the best-fit rigid
    transform (Kabsch) of the particles to their rest shape, ``coverage`` from the particles' footprint
    (`envs.push.particle_footprint`), ``object_points`` K fixed particles (those nearest the rigid task's K surface
    points; exact tracks), ``goal_object_points`` the same particles in the rest shape at the goal. Also
    ``tracks`` (P, 3) float32 every particle's position, ``track_visible`` (P,) bool (z-buffer test; all True in
    ``state`` mode), ``scene_track_ids`` (Ns,) int32 the particle each object scene point was sampled from (-1
    for static points), ``collider_poses`` (C, 7) the colliders' poses (x, y, z, qw, qx, qy, qz) in the
    gripper's contact-link order. `replay_solver` rebuilds an episode's solver from the store's ``env_kwargs``.

    **Arguments** (besides the rigid task's): ``material`` ("jelly", "plasticine", "sand"), ``youngs_modulus``
    (Pa, > 0; None: the material's default), ``particle_spacing`` (m, in [0.001, 0.02]), ``domain_size`` (m),
    ``mpm_device`` ("cpu", "cuda"). One object per env (not a list or a split) and no ``randomize``: a pool or
    drawn factors raise ValueError.
    """

    def __init__(self, material: str = "jelly", youngs_modulus: float | None = None,
                 particle_spacing: float = DEFAULT_SPACING, domain_size: float | None = None,
                 mpm_device: str = "cpu", **kwargs: Any):
        if kwargs.get("randomize"):
            raise ValueError(f"randomize applies to rigid objects; material={material!r} takes none (got "
                             f"{kwargs['randomize']!r})")
        super().__init__(material=material, **kwargs)
        if len(self.pool) > 1:
            self.close()
            raise ValueError(f"material={material!r} takes one object, not a list or a split of {len(self.pool)}")
        config = object_mpm_config(self.object, material, youngs_modulus, particle_spacing, domain_size,
                                   self._default_friction(), mpm_device)
        self._init_mpm(config, fill_particles(self.object.mesh, config.spacing, self.seed_points))


def replay_solver(env_kwargs: dict, initial_positions: np.ndarray, youngs_modulus: float | np.ndarray,
                  device: str = "cpu") -> tuple[MPMSolver, list]:
    """The MPM solver of a deformable Push4D-v0 episode (a store's ``env_kwargs``), its particles at rest at
    ``initial_positions`` (P, 3), with E ``youngs_modulus`` (Pa, scalar or one per particle).

    Returns the solver (F = I, zero velocity) with the table and the gripper colliders, and those colliders (in the
    gripper's contact-link order, not yet posed: see `envs.push.mpm_object.pose_colliders`).
    """
    kw = dict(env_kwargs)
    obj = load_object(kw.get("object", "T"))
    robot = make_robot("panda") if kw.get("robot") == "panda" else make_gripper(kw.get("gripper", "panda_hand"))
    friction = obj.friction if obj.friction is not None else kw.get("friction", 0.5)
    config = object_mpm_config(obj, kw.get("material", "jelly"), kw.get("youngs_modulus"),
                               kw.get("particle_spacing", DEFAULT_SPACING), kw.get("domain_size"), friction, device)
    return build_solver(config, initial_positions, youngs_modulus, collider_boxes(robot.desc, robot.gripper_links)[1])
