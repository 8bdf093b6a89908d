"""The MPM side of a deformable pushed object: its particles, material, solver, gripper colliders and replay.

An object of MPM material is particles filling its closed mesh (`fill_particles`, ``spacing`` apart, 2 per grid
cell and axis) of one :mod:`physics.mpm.materials` material whose density makes the object weigh its mass. The
table is a Coulomb friction plane at z = 0; the workspace walls are the grid's slip walls (see
`LocalDomainSolver`, whose square domain follows the object). The gripper's contact links are kinematic `Box`
colliders (each link's collision-geometry bounding box in its own frame, `collider_boxes`), posed at the start of
every control step from the link poses of URDF forward kinematics and moved at a constant linear + angular
velocity that brings them to the step's end poses over the 0.1 s frame (`pose_colliders`).

**Replay contract.** `build_solver` makes exactly the solver an env makes at reset; with an episode's recorded
``tracks[0]`` and ``collider_poses`` it reproduces the recorded ``tracks``::

    solver, colliders = build_solver(config, tracks[0], E, halves)
    for t in range(T - 1):
        pose_colliders(colliders, collider_poses[t], collider_poses[t + 1], CONTROL_DT)
        solver.step(CONTROL_DT)          # solver.positions() ~ tracks[t + 1]

`replay_solver` does this from a Push4D-v0 store's ``env_kwargs`` (PushT4D-v0's block: `envs.pusht.mpm_block`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import trimesh
from scipy.spatial.transform import Rotation

from physics.mpm import Box, MPMSolver, Plane, sample_mesh
from physics.mpm.colliders import Collider
from physics.mpm.local_domain import LocalDomainSolver
from physics.mpm.materials import DruckerPrager, FixedCorotated, Material, VonMises, check_positive_moduli
from robots.gripper_points import link_mesh
from robots.urdf import RobotDescription

from .. import workspace as ws
from .env import MATERIALS as OBJECT_MATERIALS

MATERIALS = tuple(m for m in OBJECT_MATERIALS if m != "rigid")
DEFAULT_YOUNGS_MODULUS = {"jelly": 2.0e4, "plasticine": 2.0e4, "sand": 2.0e4}  # Pa
MAX_YOUNGS_MODULUS = 1e7  # Pa: the CFL substep count grows as sqrt(E) (~2700 substeps per step here)
POISSON_RATIO = 0.3
PLASTICINE_YIELD_STRESS = 1.5e3  # Pa: holds its own weight (rho g h ~ 450 Pa), dents under a push
SAND_FRICTION_ANGLE = 30.0  # degrees
DEFAULT_SPACING = 0.004  # m: ~10.9k particles in PushT4D's T
SPACING_RANGE = (0.001, 0.02)  # m
DEFAULT_DOMAIN = {"jelly": 0.32, "plasticine": 0.32, "sand": 0.44}  # m, side of the local MPM domain (a T's)
DOMAIN_MARGIN = 0.06  # m: the domain's side is at least the object's footprint diameter plus this (and 0.3 m)
DOMAIN_TOP = 0.064  # m: the grid reaches at least this far above the table ...
TOP_FACTOR = 1.6  # ... and at least this many times the object's height


def _positive(name: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)) \
            or not (math.isfinite(value) and value > 0):
        raise ValueError(f"{name} must be a finite number > 0, got {value!r}")
    return float(value)


@dataclass(frozen=True)
class MPMObjectConfig:
    """A deformable object's MPM settings.

    Args:
        material: "jelly" (fixed-corotated), "plasticine" (von Mises) or "sand" (Drucker-Prager).
        youngs_modulus: E in Pa (> 0).
        spacing: particle spacing in metres; the grid spacing is about twice it.
        domain_size: side of the square local MPM domain in metres.
        top: height of the grid above the table in metres.
        friction: Coulomb coefficient of the table and the gripper contacts.
        mass: the object's mass in kg.
        device: Warp device of the solver.
    """

    material: str
    youngs_modulus: float
    spacing: float
    domain_size: float
    top: float
    friction: float
    mass: float
    device: str = "cpu"

    @classmethod
    def resolve(cls, material: str, youngs_modulus: float | None, spacing: float, domain_size: float | None,
                friction: float, mass: float, extent: float, height: float, device: str = "cpu",
                names: tuple[str, str, str] = ("youngs_modulus", "particle_spacing", "domain_size"),
                ) -> "MPMObjectConfig":
        """Check the settings of an object ``extent`` m across (its footprint's diameter, `footprint_diameter`) and
        ``height`` m tall;
        None picks the material's default E and a domain holding the object. ``names`` are the env's argument
        names for E, the spacing and the domain (named in errors)."""
        if material not in MATERIALS:
            raise ValueError(f"unknown deformable material {material!r}; allowed: {MATERIALS}")
        E = DEFAULT_YOUNGS_MODULUS[material] if youngs_modulus is None else youngs_modulus
        E = _positive(names[0], E)
        if E > MAX_YOUNGS_MODULUS:
            raise ValueError(f"{names[0]} must be at most {MAX_YOUNGS_MODULUS:g} Pa (stiffer is 'rigid'), got {E:g}")
        spacing = _positive(names[1], spacing)
        if not SPACING_RANGE[0] <= spacing <= SPACING_RANGE[1]:
            raise ValueError(f"{names[1]} must lie in {list(SPACING_RANGE)} m, got {spacing}")
        smallest = max(0.3, extent + DOMAIN_MARGIN)
        domain = max(DEFAULT_DOMAIN[material], smallest) if domain_size is None else _positive(names[2], domain_size)
        if not smallest - 1e-9 <= domain <= ws.WORKSPACE:
            raise ValueError(f"{names[2]} must lie in [{smallest:.3g}, {ws.WORKSPACE}] m (it holds the whole object, "
                             f"{extent:.3g} m across, with a margin), got {domain}")
        return cls(material, E, spacing, float(domain), max(DOMAIN_TOP, TOP_FACTOR * height),
                   _positive("friction", friction), _positive("mass", mass), str(device))

    @property
    def dx(self) -> float:
        """Grid spacing: the workspace is a whole number of cells about two particle spacings wide."""
        return ws.WORKSPACE / max(4, round(ws.WORKSPACE / (2.0 * self.spacing)))


def footprint_diameter(footprint: Any) -> float:
    """The largest distance between two points of a shapely footprint (of its convex hull's vertices), m."""
    xy = np.asarray(footprint.convex_hull.exterior.coords)[:, :2]
    return float(np.max(np.linalg.norm(xy[:, None] - xy[None], axis=-1)))


def make_material(name: str, youngs_modulus: float | np.ndarray, density: float) -> Material:
    """The MPM material of a material name with Young's modulus E (Pa) and density (kg/m^3)."""
    if name == "jelly":
        return FixedCorotated(youngs_modulus, POISSON_RATIO, density)
    if name == "plasticine":
        return VonMises(youngs_modulus, POISSON_RATIO, density, yield_stress=PLASTICINE_YIELD_STRESS)
    if name == "sand":
        return DruckerPrager(youngs_modulus, POISSON_RATIO, density, friction_angle_deg=SAND_FRICTION_ANGLE)
    raise ValueError(f"unknown deformable material {name!r}; allowed: {MATERIALS}")


def fill_particles(mesh: trimesh.Trimesh, spacing: float, seed: int = 0) -> np.ndarray:
    """Particles (P, 3) ``spacing`` apart filling the closed ``mesh`` (its frame), fixed by ``seed``; read-only."""
    pts, _ = sample_mesh(np.asarray(mesh.vertices), np.asarray(mesh.faces), spacing, np.random.default_rng(seed))
    if len(pts) == 0:
        raise ValueError(f"no particle fits inside the object at spacing {spacing} m; use a finer particle spacing")
    pts.flags.writeable = False
    return pts


def collider_boxes(desc: RobotDescription, links: tuple[str, ...]) -> tuple[np.ndarray, np.ndarray]:
    """Centres (C, 3) and half extents (C, 3) of ``links``' collision-geometry bounding boxes, in the links'
    frames (a link without collision geometry: its visual geometry's)."""
    bounds = []
    for link in links:
        try:
            bounds.append(link_mesh(desc, link, "collision").bounds)
        except ValueError:
            bounds.append(link_mesh(desc, link, "visual").bounds)
    b = np.stack(bounds)
    return (b[:, 0] + b[:, 1]) / 2, (b[:, 1] - b[:, 0]) / 2


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


def build_solver(config: MPMObjectConfig, initial_positions: np.ndarray, youngs_modulus: float | np.ndarray,
                 halves: np.ndarray) -> tuple[MPMSolver, list]:
    """The MPM solver of an episode, its particles at rest at ``initial_positions`` (P, 3).

    ``youngs_modulus``: E in Pa, scalar or one per particle (``config.youngs_modulus`` is not used: a fit may
    give its own); ``halves`` (C, 3): the collider boxes' half extents (`collider_boxes`). Returns the solver
    (F = I, zero velocity) with the table and the gripper colliders added, and those colliders (not yet posed:
    see `pose_colliders`).
    """
    x = np.asarray(initial_positions, dtype=np.float64)
    if x.ndim != 2 or x.shape[1] != 3 or len(x) == 0 or not np.all(np.isfinite(x)):
        raise ValueError(f"initial_positions must be finite with shape (P, 3), P >= 1, got {x.shape}")
    E = np.asarray(youngs_modulus, dtype=np.float64)
    if E.shape not in ((), (len(x),)):
        raise ValueError(f"youngs_modulus must be > 0 (Pa), a scalar or one per particle ({len(x)}), "
                         f"got shape {E.shape}")
    check_positive_moduli("youngs_modulus", np.broadcast_to(E, (len(x),)), len(x))  # names any bad value
    volume = config.spacing**3
    material = make_material(config.material, float(E) if E.ndim == 0 else E, config.mass / (len(x) * volume))
    solver = LocalDomainSolver(config.dx, config.domain_size, ws.WORKSPACE, config.top, x, device=config.device)
    solver.add_particles(x, volume, material)
    solver.add_collider(Plane((0.0, 0.0, 0.0), (0.0, 0.0, 1.0), contact="friction", friction=config.friction))
    colliders: list[Collider] = []
    for h in np.asarray(halves, dtype=np.float64):
        colliders.append(solver.add_collider(Box((0.0, 0.0, 1.0), h, contact="friction", friction=config.friction)))
    return solver, colliders
