"""PushT4D with a deformable T block: MPM particles pushed by the URDF gripper (``block_material`` != "rigid")."""

from __future__ import annotations

from typing import Any

import numpy as np

from ..push.deformable import MPMObject
from ..push.mpm_object import DEFAULT_SPACING, MATERIALS
from .env import PushT4DEnv
from .mpm_block import block_config, rest_particles
from .scene import BLOCK_RGBA


class DeformablePushT4DEnv(MPMObject, PushT4DEnv):
    """PushT4D-v0 with a T block of MPM material (``gym.make("PushT4D-v0", block_material="jelly")``).

    Everything of `envs.pusht.env.PushT4DEnv` holds (spaces, action, reset distributions, reward,
    termination, bad input -> ValueError, same seed -> same observations) with these changes.

    **Block.** ~10.7k particles (``block_particle_spacing`` 4 mm, 2 per grid cell and axis)
    fill the T prism, standing on the table at reset (F = I, at rest; a T reaching past a wall
    is moved inside), 0.8 kg in all:
    ``"jelly"`` fixed-corotated elastic, ``"plasticine"`` von Mises (yield stress 1.5 kPa,
    keeps dents), ``"sand"`` Drucker-Prager (30 deg, cohesionless: it slumps and spreads).
    ``block_youngs_modulus`` is E in Pa (default 2e4 for each, at most 1e7; the CFL substep count
    grows as sqrt(E): ~165 substeps per 0.1 s step at 2e4 while pushed). Poisson ratio 0.3. The table is a Coulomb
    friction plane (``friction``); the walls are slip planes. The hand and finger links are
    kinematic box colliders (their collision meshes' bounding boxes) posed every step from
    URDF forward kinematics of the rigid backend's robot (which still simulates the robot; the
    block does not push back on it) and moved at constant velocity over the step. The MPM
    grid covers a ``block_domain_size`` square (default 0.32 m, sand 0.44 m) around the block
    and follows it (see `physics.mpm.local_domain.LocalDomainSolver`); ``block_device`` is the Warp device.
    The MPM object is the one Push4D-v0 has (`envs.push.deformable.MPMObject`).

    **Observation.** Particles are splatted into the same cameras (depth in metres, label 1),
    so ``rgbd``, ``pointcloud`` and ``all`` are as in the rigid task.

    **Info** as in the rigid task, from the particles: ``block_pose``/``block_pose7`` the
    best-fit rigid transform (Kabsch) of the particles to their rest shape, ``coverage`` from
    the particles' footprint (`envs.push.particle_footprint.footprint_coverage`), ``object_points``
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
        config = block_config({**kwargs, "block_material": block_material, "block_youngs_modulus": block_youngs_modulus,
                               "block_particle_spacing": block_particle_spacing,
                               "block_domain_size": block_domain_size, "block_device": block_device})
        super().__init__(block_material=block_material, **kwargs)
        self._init_mpm(config, rest_particles(config.spacing, kwargs.get("seed_points", 0)))

    def _particle_rgb(self) -> np.ndarray:
        return np.asarray(BLOCK_RGBA[:3])
