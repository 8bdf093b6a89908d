"""The MPM side of the deformable PushT4D task: the T block's particles, its solver and the gripper colliders.

A deformable T is ``sample_mesh`` particles filling the T prism (``block_particle_spacing``
apart, 2 per grid cell and axis), of one :mod:`physics.mpm.materials` material whose
density makes the block weigh 0.8 kg. The table is a Coulomb friction plane at z = 0; the
workspace walls are the grid's slip walls (see `LocalDomainSolver`). The hand and finger
links of the robot are kinematic `Box` colliders (each link's collision-mesh bounding box
in its own frame), posed at the start of every control step from the link poses of URDF
forward kinematics and moved at a constant linear + angular velocity that brings them to
the step's end poses over the 0.1 s frame (`pose_colliders`).

**Replay contract.** ``replay_solver(env_kwargs, x0, E)`` builds exactly the solver a
deformable PushT4D env builds at reset (the env builds its own through it), and
``pose_colliders`` is how the env moves its colliders; with an episode's recorded
``tracks[0]`` and ``collider_poses`` these reproduce its recorded ``tracks``::

    solver, colliders = replay_solver(env_kwargs, tracks[0], E)
    for t in range(T - 1):
        pose_colliders(colliders, collider_poses[t], collider_poses[t + 1], CONTROL_DT)
        solver.step(CONTROL_DT)          # solver.positions() ~ tracks[t + 1]
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import numpy as np
from scipy.spatial.transform import Rotation

from physics.mpm import Box, MPMSolver, Plane, sample_mesh
from physics.mpm.colliders import Collider
from physics.mpm.local_domain import LocalDomainSolver
from physics.mpm.materials import DruckerPrager, FixedCorotated, Material, VonMises, check_positive_moduli
from robots.gripper_points import DEFAULT_GRIPPER_LINKS, link_mesh

from ..robot_setup import make_robot
from . import geometry as geo
from .env import BLOCK_MATERIALS

MATERIALS = tuple(m for m in BLOCK_MATERIALS if m != "rigid")
DEFAULT_YOUNGS_MODULUS = {"jelly": 2.0e4, "plasticine": 2.0e4, "sand": 2.0e4}  # Pa
POISSON_RATIO = 0.3
PLASTICINE_YIELD_STRESS = 1.5e3  # Pa: holds its own weight (rho g h ~ 450 Pa), dents under a push
SAND_FRICTION_ANGLE = 30.0  # degrees
DEFAULT_SPACING = 0.004  # m: ~10.9k particles in the T
DEFAULT_DOMAIN = {"jelly": 0.32, "plasticine": 0.32, "sand": 0.44}  # m, side of the local MPM domain
DOMAIN_TOP = 0.064  # m: the grid reaches this far above the table
COLLIDER_LINKS = DEFAULT_GRIPPER_LINKS


@dataclass(frozen=True)
class BlockConfig:
    """The deformable block's settings, resolved from the env's keyword arguments.

    Args:
        material: "jelly" (fixed-corotated), "plasticine" (von Mises) or "sand" (Drucker-Prager).
        youngs_modulus: E in Pa (> 0).
        spacing: particle spacing in metres; the grid spacing is about twice it.
        domain_size: side of the square local MPM domain in metres.
        friction: Coulomb coefficient of the table and the gripper contacts.
        robot: robot variant (its hand and finger links are the colliders).
        device: Warp device of the solver.
    """

    material: str
    youngs_modulus: float
    spacing: float
    domain_size: float
    friction: float
    robot: str
    device: str

    @classmethod
    def from_env_kwargs(cls, kwargs: dict[str, Any], device: str | None = None) -> "BlockConfig":
        """Resolve (and check) the block settings of PushT4D kwargs; defaults as in the env."""
        material = kwargs.get("block_material", "jelly")
        if material not in MATERIALS:
            raise ValueError(f"unknown deformable block_material {material!r}; allowed: {MATERIALS}")
        E = kwargs.get("block_youngs_modulus")
        E = DEFAULT_YOUNGS_MODULUS[material] if E is None else E
        spacing = kwargs.get("block_particle_spacing", DEFAULT_SPACING)
        domain = kwargs.get("block_domain_size")
        domain = DEFAULT_DOMAIN[material] if domain is None else domain
        friction = kwargs.get("friction", 0.5)
        for name, value in (("block_youngs_modulus", E), ("block_particle_spacing", spacing),
                            ("block_domain_size", domain), ("friction", friction)):
            if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)) \
                    or not (math.isfinite(value) and value > 0):
                raise ValueError(f"{name} must be a finite number > 0, got {value!r}")
        if not 0.001 <= spacing <= 0.02:
            raise ValueError(f"block_particle_spacing must lie in [0.001, 0.02] m, got {spacing}")
        if not 0.3 <= domain <= geo.WORKSPACE:
            raise ValueError(f"block_domain_size must lie in [0.3, {geo.WORKSPACE}] m (it holds the whole T), "
                             f"got {domain}")
        device = kwargs.get("block_device", "cpu") if device is None else device
        return cls(material, float(E), float(spacing), float(domain), float(friction),
                   str(kwargs.get("robot", "panda")), str(device))

    @property
    def dx(self) -> float:
        """Grid spacing: the workspace is a whole number of cells about two particle spacings wide."""
        return geo.WORKSPACE / max(4, round(geo.WORKSPACE / (2.0 * self.spacing)))


def make_material(name: str, youngs_modulus: float | np.ndarray, density: float) -> Material:
    """The MPM material of a block material name with Young's modulus E (Pa) and density (kg/m^3)."""
    if name == "jelly":
        return FixedCorotated(youngs_modulus, POISSON_RATIO, density)
    if name == "plasticine":
        return VonMises(youngs_modulus, POISSON_RATIO, density, yield_stress=PLASTICINE_YIELD_STRESS)
    if name == "sand":
        return DruckerPrager(youngs_modulus, POISSON_RATIO, density, friction_angle_deg=SAND_FRICTION_ANGLE)
    raise ValueError(f"unknown deformable block material {name!r}; allowed: {MATERIALS}")


@lru_cache(maxsize=8)
def rest_particles(spacing: float, seed: int = 0) -> np.ndarray:
    """Particles (P, 3) filling the T prism in the block frame (bottom face at z = 0), fixed by ``seed``."""
    mesh = geo.t_mesh()
    pts, _ = sample_mesh(mesh.vertices, mesh.faces, spacing, np.random.default_rng(seed))
    pts.flags.writeable = False
    return pts


@lru_cache(maxsize=4)
def link_boxes(robot: str) -> tuple[np.ndarray, np.ndarray]:
    """Centres (C, 3) and half extents (C, 3) of the collider links' collision-mesh bounding boxes, link frames."""
    desc = make_robot(robot).desc
    bounds = np.stack([link_mesh(desc, link, "collision").bounds for link in COLLIDER_LINKS])
    return (bounds[:, 0] + bounds[:, 1]) / 2, (bounds[:, 1] - bounds[:, 0]) / 2


def collider_poses(link_poses: np.ndarray, centres: np.ndarray) -> np.ndarray:
    """(C, 7) poses (x, y, z, qw, qx, qy, qz) of the collider boxes from the links' world poses (C, 4, 4)."""
    pos = np.einsum("cij,cj->ci", link_poses[:, :3, :3], centres) + link_poses[:, :3, 3]
    xyzw = Rotation.from_matrix(link_poses[:, :3, :3]).as_quat()
    return np.concatenate([pos, xyzw[:, 3:], xyzw[:, :3]], axis=1)


def _check_poses(name: str, poses: np.ndarray, count: int) -> np.ndarray:
    p = np.asarray(poses, dtype=np.float64)
    if p.shape != (count, 7) or not np.all(np.isfinite(p)):
        raise ValueError(f"{name} must be finite with shape ({count}, 7) (x, y, z, qw, qx, qy, qz), got {p.shape}")
    return p


def pose_colliders(colliders: list, start_poses: np.ndarray, end_poses: np.ndarray, frame_dt: float) -> None:
    """Place ``colliders`` at ``start_poses`` (C, 7) with the constant velocities reaching ``end_poses`` in
    ``frame_dt`` s.

    The angular velocity (world frame, about each collider's centre) is the rotation vector
    of R_end R_start^T over ``frame_dt``; the linear velocity the centre's displacement over it.
    """
    if not (isinstance(frame_dt, (int, float)) and math.isfinite(frame_dt) and frame_dt > 0):
        raise ValueError(f"frame_dt must be a finite positive number of seconds, got {frame_dt!r}")
    start = _check_poses("start_poses", start_poses, len(colliders))
    end = _check_poses("end_poses", end_poses, len(colliders))
    R0 = Rotation.from_quat(np.concatenate([start[:, 4:], start[:, 3:4]], axis=1))
    R1 = Rotation.from_quat(np.concatenate([end[:, 4:], end[:, 3:4]], axis=1))
    omega = (R1 * R0.inv()).as_rotvec() / frame_dt
    R0m = R0.as_matrix()
    for c, p0, p1, R, w in zip(colliders, start[:, :3], end[:, :3], R0m, omega, strict=True):
        c.set_pose(p0, R)
        c.set_velocity((p1 - p0) / frame_dt, w)


def replay_solver(env_kwargs: dict, initial_positions: np.ndarray, youngs_modulus: float | np.ndarray,
                  device: str = "cpu") -> tuple[MPMSolver, list]:
    """The MPM solver of a deformable PushT4D episode, its particles at rest at ``initial_positions`` (P, 3).

    ``env_kwargs``: the env's kwargs (material, spacing, domain, friction, robot; the
    recorded E in them is ignored); ``youngs_modulus``: E in Pa, scalar or one per particle.
    Returns the solver (F = I, zero velocity) with the table and the gripper colliders
    added, and those colliders (in ``COLLIDER_LINKS`` order, not yet posed: see `pose_colliders`).
    """
    block = BlockConfig.from_env_kwargs(dict(env_kwargs), device=device)
    x = np.asarray(initial_positions, dtype=np.float64)
    if x.ndim != 2 or x.shape[1] != 3 or len(x) == 0 or not np.all(np.isfinite(x)):
        raise ValueError(f"initial_positions must be finite with shape (P, 3), P >= 1, got {x.shape}")
    E = np.asarray(youngs_modulus, dtype=np.float64)
    if E.shape not in ((), (len(x),)):
        raise ValueError(f"youngs_modulus must be > 0 (Pa), a scalar or one per particle ({len(x)}), "
                         f"got shape {E.shape}")
    check_positive_moduli("youngs_modulus", np.broadcast_to(E, (len(x),)), len(x))  # names any bad value
    volume = block.spacing**3
    material = make_material(block.material, float(E) if E.ndim == 0 else E, geo.MASS / (len(x) * volume))
    solver = LocalDomainSolver(block.dx, block.domain_size, geo.WORKSPACE, DOMAIN_TOP, x, device=block.device)
    solver.add_particles(x, volume, material)
    solver.add_collider(Plane((0.0, 0.0, 0.0), (0.0, 0.0, 1.0), contact="friction", friction=block.friction))
    centres, halves = link_boxes(block.robot)
    colliders: list[Collider] = []
    for h in halves:
        colliders.append(solver.add_collider(Box((0.0, 0.0, 1.0), h, contact="friction", friction=block.friction)))
    return solver, colliders
