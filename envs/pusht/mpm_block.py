"""The MPM side of the deformable PushT4D task: the T block's particles and its solver from PushT4D kwargs.

A deformable T is particles filling the T prism (`rest_particles`, ``block_particle_spacing`` apart) of one
material whose density makes the block weigh 0.8 kg; the hand and finger links of the robot are its colliders
(``COLLIDER_LINKS``). Everything else (materials, solver, colliders, their motion) is the generic deformable
object's, `envs.push.mpm_object`.

**Replay contract.** ``replay_solver(env_kwargs, x0, E)`` builds exactly the solver a deformable PushT4D env
builds at reset (the env builds its own through it), and ``pose_colliders`` is how the env moves its colliders;
with an episode's recorded ``tracks[0]`` and ``collider_poses`` these reproduce its recorded ``tracks``::

    solver, colliders = replay_solver(env_kwargs, tracks[0], E)
    for t in range(T - 1):
        pose_colliders(colliders, collider_poses[t], collider_poses[t + 1], CONTROL_DT)
        solver.step(CONTROL_DT)          # solver.positions() ~ tracks[t + 1]
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

import numpy as np

from physics.mpm import MPMSolver
from robots.gripper_points import DEFAULT_GRIPPER_LINKS

from ..push.mpm_object import (
    DEFAULT_SPACING,
    MATERIALS,
    MPMObjectConfig,
    build_solver,
    collider_boxes,
    collider_poses,
    fill_particles,
    footprint_diameter,
    pose_colliders,
)
from ..robot_setup import make_robot
from . import geometry as geo

__all__ = ["COLLIDER_LINKS", "DEFAULT_SPACING", "MATERIALS", "block_config", "collider_poses", "link_boxes",
           "pose_colliders", "replay_solver", "rest_particles"]

COLLIDER_LINKS = DEFAULT_GRIPPER_LINKS
BLOCK_NAMES = ("block_youngs_modulus", "block_particle_spacing", "block_domain_size")  # PushT4D's argument names


def block_config(kwargs: dict[str, Any], device: str | None = None) -> MPMObjectConfig:
    """The deformable T's `MPMObjectConfig` from PushT4D kwargs (checked; defaults as in the env)."""
    material = kwargs.get("block_material", "jelly")
    if material not in MATERIALS:
        raise ValueError(f"unknown deformable block_material {material!r}; allowed: {MATERIALS}")
    return MPMObjectConfig.resolve(
        material, kwargs.get("block_youngs_modulus"), kwargs.get("block_particle_spacing", DEFAULT_SPACING),
        kwargs.get("block_domain_size"), kwargs.get("friction", 0.5), geo.MASS, footprint_diameter(geo.footprint()),
        geo.HEIGHT, kwargs.get("block_device", "cpu") if device is None else device, names=BLOCK_NAMES)


@lru_cache(maxsize=8)
def rest_particles(spacing: float, seed: int = 0) -> np.ndarray:
    """Particles (P, 3) filling the T prism in the block frame (bottom face at z = 0), fixed by ``seed``."""
    return fill_particles(geo.t_mesh(), spacing, seed)


@lru_cache(maxsize=4)
def link_boxes(robot: str) -> tuple[np.ndarray, np.ndarray]:
    """Centres (C, 3) and half extents (C, 3) of the collider links' collision-mesh bounding boxes, link frames."""
    return collider_boxes(make_robot(robot).desc, COLLIDER_LINKS)


def replay_solver(env_kwargs: dict, initial_positions: np.ndarray, youngs_modulus: float | np.ndarray,
                  device: str = "cpu") -> tuple[MPMSolver, list]:
    """The MPM solver of a deformable PushT4D episode, its particles at rest at ``initial_positions`` (P, 3).

    ``env_kwargs``: the env's kwargs (material, spacing, domain, friction, robot; the
    recorded E in them is ignored); ``youngs_modulus``: E in Pa, scalar or one per particle.
    Returns the solver (F = I, zero velocity) with the table and the gripper colliders
    added, and those colliders (in ``COLLIDER_LINKS`` order, not yet posed: see `pose_colliders`).
    """
    kwargs = dict(env_kwargs)
    config = block_config(kwargs, device=device)
    return build_solver(config, initial_positions, youngs_modulus, link_boxes(str(kwargs.get("robot", "panda")))[1])
