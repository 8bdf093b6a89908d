"""PushT4D with a deformable T block: MPM particles pushed by the URDF gripper (``block_material`` != "rigid")."""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np
from scipy.spatial import cKDTree
from scipy.spatial.transform import Rotation

from physics.render import LABEL_OBJECT, Camera, Frames, splat_points
from physics.rigid import Scene
from robots.control import CONTROL_DT
from robots.transforms import kabsch_transform, pose_matrix

from ..base import scene_track_ids
from ..checks import positive_float
from . import geometry as geo
from .env import PushT4DEnv
from .footprint import footprint_coverage
from .mpm_block import (
    COLLIDER_LINKS,
    DEFAULT_SPACING,
    MATERIALS,
    BlockConfig,
    collider_poses,
    link_boxes,
    pose_colliders,
    replay_solver,
    rest_particles,
)
from .scene import BLOCK_RGBA

SPLAT_RADIUS = 0.75  # particle spacings: splats of neighbouring particles overlap, no holes
# stiffest block (Pa): the CFL substep count grows as sqrt(E) (~4000 substeps per step here); stiffer is "rigid"
MAX_BLOCK_YOUNGS_MODULUS = 1e7


class DeformablePushT4DEnv(PushT4DEnv):
    """PushT4D-v0 with a T block of MPM material (``gym.make("PushT4D-v0", block_material="jelly")``).

    Everything of `envs.pusht.env.PushT4DEnv` holds (spaces, action, reset distributions, reward,
    termination, bad input -> ValueError, same seed -> same observations) with these changes.

    **Block.** ~10.7k particles (``block_particle_spacing`` 4 mm, 2 per grid cell and axis)
    fill the T prism, standing on the table at reset (F = I, at rest; a T reaching past a wall
    is moved inside), 0.8 kg in all:
    ``"jelly"`` fixed-corotated elastic, ``"plasticine"`` von Mises (yield stress 1.5 kPa,
    keeps dents), ``"sand"`` Drucker-Prager (30 deg, cohesionless: it slumps and spreads).
    ``block_youngs_modulus`` is E in Pa (default 2e4 for each, at most 1e7; the CFL substep count
    grows as sqrt(E): ~180 substeps per 0.1 s step at 2e4). Poisson ratio 0.3. The table is a Coulomb
    friction plane (``friction``); the walls are slip planes. The hand and finger links are
    kinematic box colliders (their collision meshes' bounding boxes) posed every step from
    URDF forward kinematics of the rigid backend's robot (which still simulates the robot; the
    block does not push back on it) and moved at constant velocity over the step. The MPM
    grid covers a ``block_domain_size`` square (default 0.32 m, sand 0.44 m) around the block
    and follows it (see `physics.mpm.local_domain.LocalDomainSolver`); ``block_device`` is the Warp device.

    **Observation.** Particles are splatted into the same cameras (depth in metres, label 1),
    so ``rgbd``, ``pointcloud`` and ``all`` are as in the rigid task.

    **Info** as in the rigid task, from the particles: ``block_pose``/``block_pose7`` the
    best-fit rigid transform (Kabsch) of the particles to their rest shape, ``coverage`` from
    the particles' footprint (`envs.pusht.footprint.footprint_coverage`), ``object_points``
    K fixed particles (those nearest the rigid task's K surface points; exact tracks),
    ``goal_object_points`` the same particles in the rest shape at the goal. Also
    ``tracks`` (P, 3) float32: every particle's position; ``track_visible`` (P,) bool (z-buffer
    test; all True in ``state`` mode); ``scene_track_ids`` (Ns,) int32: the particle each
    block scene point was sampled from (nearest particle), -1 for static points (empty without
    a point cloud); ``collider_poses`` (C, 7): the colliders' poses (x, y, z, qw, qx, qy, qz),
    in ``envs.pusht.mpm_block.COLLIDER_LINKS`` order. ``envs.pusht.mpm_block.replay_solver`` and
    ``pose_colliders`` replay an episode from ``tracks[0]`` and ``collider_poses``.

    **Arguments** (besides the rigid task's): ``block_material``, ``block_youngs_modulus``
    (Pa, > 0, None: the material's default), ``block_particle_spacing`` (m), ``block_domain_size``
    (m), ``block_device`` ("cpu", "cuda").
    """

    BUILDS_MATERIALS = MATERIALS

    def __init__(
        self,
        block_material: str = "jelly",
        block_youngs_modulus: float | None = None,
        block_particle_spacing: float = DEFAULT_SPACING,
        block_domain_size: float | None = None,
        block_device: str = "cpu",
        **kwargs: Any,
    ):
        if block_youngs_modulus is not None:
            positive_float("block_youngs_modulus", block_youngs_modulus, MAX_BLOCK_YOUNGS_MODULUS, " Pa")
        block_kwargs = dict(block_material=block_material, block_youngs_modulus=block_youngs_modulus,
                            block_particle_spacing=block_particle_spacing, block_domain_size=block_domain_size,
                            block_device=block_device)
        self.solver_kwargs = {**kwargs, **block_kwargs}
        self.block = BlockConfig.from_env_kwargs(self.solver_kwargs)
        super().__init__(block_material=block_material, **kwargs)
        self.rest_local = rest_particles(self.block.spacing, kwargs.get("seed_points", 0))
        self.track_index = cKDTree(self.rest_local).query(self.object_local)[1].astype(np.int64)
        self.object_local = self.rest_local[self.track_index]
        self.goal_object_points = geo.transform_points(
            pose_matrix(geo.pose7_from_pose3(geo.GOAL_POSE, z=0.0)), self.object_local
        ).astype(np.float32)
        self._box_centres = link_boxes(self.block.robot)[0]
        self.mpm = None
        self.colliders: list = []
        self._collider_poses = np.zeros((len(COLLIDER_LINKS), 7))
        self._x = np.zeros((len(self.rest_local), 3))
        self._visible = np.ones(len(self.rest_local), dtype=bool)  # every particle's last z-buffer test

    def _make_scene(self, friction: float) -> Scene:
        """The rigid backend's scene without its block (table, walls, robot, cameras)."""
        return dataclasses.replace(super()._make_scene(friction), body=None)

    # ------------------------------------------------------------- simulation
    def _current_collider_poses(self) -> np.ndarray:
        links = self.robot.link_poses(self.sim.robot_qpos(), COLLIDER_LINKS)
        return collider_poses(links, self._box_centres)

    def _reset_sim(self, block_pose: np.ndarray, ee_xy: np.ndarray) -> None:
        """Robot at ``ee_xy``; a fresh MPM block at rest at ``block_pose`` (built by `replay_solver`)."""
        super()._reset_sim(block_pose, ee_xy)
        x0 = geo.transform_points(pose_matrix(geo.pose7_from_pose3(block_pose, z=0.0)), self.rest_local)
        limit = geo.WORKSPACE / 2 - self.block.spacing  # a T reaching past a wall is moved inside
        x0[:, :2] += np.maximum(0.0, -limit - x0[:, :2].min(0)) - np.maximum(0.0, x0[:, :2].max(0) - limit)
        # float32-exact positions: a replay from the recorded tracks[0] starts from the same state
        x0 = x0.astype(np.float32).astype(np.float64)
        self.mpm, self.colliders = replay_solver(self.solver_kwargs, x0, self.block.youngs_modulus, self.block.device)
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
        """Best-fit pose7, planar pose, footprint coverage and tracked particles of the deformed block."""
        x = self._x = self.mpm.positions()
        T = kabsch_transform(self.rest_local, x)
        xyzw = Rotation.from_matrix(T[:3, :3]).as_quat()
        quat = np.array([xyzw[3], *xyzw[:3]])
        pose7 = np.concatenate([T[:3, 3], quat if quat[0] >= 0 else -quat])
        pose3 = geo.pose3_from_pose7(pose7, T[:3, :3])
        cov = footprint_coverage(x, self.block.spacing)
        return pose7, pose3, cov, x[self.track_index].astype(np.float32)

    def _render_frames(self) -> Frames:
        """The rigid scene's frames with the particles splatted in (label 1)."""
        return splat_points(self._x, np.asarray(BLOCK_RGBA[:3]), LABEL_OBJECT, SPLAT_RADIUS * self.block.spacing,
                            self.cameras, base=self.sim.render())

    def _render_views(self, cameras: tuple[Camera, ...], decorations: bool = True) -> Frames:
        """`_render_frames` for any cameras (the rigid scene's views, decorations included, with the particles)."""
        return splat_points(self._x, np.asarray(BLOCK_RGBA[:3]), LABEL_OBJECT, SPLAT_RADIUS * self.block.spacing,
                            cameras, base=self.sim.render_views(cameras, decorations))

    def _object_visibility(self, info: dict, frames: Frames) -> np.ndarray:
        """One z-buffer test of every particle (kept for ``track_visible``); the object points' share of it."""
        self._visible = self.fuser.visible(self._x, frames.depth, frames.segmentation, LABEL_OBJECT,
                                           tol=2.0 * self.block.spacing)
        return self._visible[self.track_index]

    def _track_info(self, obs: dict, info: dict) -> None:
        """Every particle's track, its visibility (all True without cameras), the particle each block scene point
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
