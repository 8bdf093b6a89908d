"""Engine-neutral description of a rigid tabletop scene: static boxes, one free body, a robot, cameras.

Tasks (in ``envs``) fill these dataclasses; every rigid backend builds its engine's model
from them, so all engines simulate the same geometry, masses, robot and cameras.
Units are SI; quaternions are (w, x, y, z); camera extrinsics use OpenCV axes
(x right, y down, z forward).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from physics.render.cameras import Camera
from robots.control import CONTROL_DT


@dataclass(frozen=True)
class Box:
    """A box geometry: ``half_size`` (3,), placed at ``pos``/``quat`` in its parent frame."""

    name: str
    half_size: tuple[float, float, float]
    pos: tuple[float, float, float] = (0.0, 0.0, 0.0)
    quat: tuple[float, float, float, float] = (1.0, 0.0, 0.0, 0.0)
    rgba: tuple[float, float, float, float] = (0.8, 0.8, 0.8, 1.0)


CARRIERS = ("world", "x", "xy")  # what a `Decoration` moves with


@dataclass(frozen=True)
class Decoration:
    """A visual-only box (e.g. the gantry that carries a floating robot): no collision, no mass, no effect on the
    simulation, drawn only by `RigidBackend.render_views` (never in the cameras that observations come from).

    ``box`` is placed in the world; ``carried`` says what it moves with: ``"world"`` (fixed), ``"x"`` (the
    floating robot's gantry x slide: a bridge), ``"xy"`` (both slides: the carriage).
    """

    box: Box
    carried: str = "world"

    def __post_init__(self):
        if self.carried not in CARRIERS:
            raise ValueError(f"decoration {self.box.name!r}: carried must be one of {CARRIERS}, got {self.carried!r}")


@dataclass(frozen=True)
class FreeBody:
    """A rigid body made of boxes, with total ``mass`` spread uniformly over their volume.

    ``feet``: centres of massless contact spheres of ``foot_radius`` (body frame) that carry
    the body on the table. Three feet make the support pressure statically determinate, so
    every engine computes the same friction forces and torque for the same motion.
    """

    name: str
    boxes: tuple[Box, ...]
    mass: float
    feet: tuple[tuple[float, float, float], ...] = ()
    foot_radius: float = 0.005


@dataclass(frozen=True)
class MeshGeom:
    """A geometry on a link, placed by ``T_link_mesh``: a mesh file (``shape="mesh"``: ``path``, ``scale`` per
    axis) or a primitive centred on its frame (``"box"``: ``size`` = full extents (x, y, z); ``"cylinder"``:
    (radius, length along z); ``"sphere"``: (radius,)), as in `robots.urdf.MeshRef`."""

    path: str
    T_link_mesh: np.ndarray
    scale: tuple[float, float, float] = (1.0, 1.0, 1.0)
    rgba: tuple[float, float, float, float] = (0.9, 0.9, 0.9, 1.0)
    shape: str = "mesh"
    size: tuple[float, ...] = ()


@dataclass(frozen=True)
class Link:
    """One link of an articulated robot and the joint to its parent (``parent`` None: the base link)."""

    name: str
    parent: str | None
    joint_name: str
    joint_type: str  # "fixed", "revolute", "prismatic"
    joint_origin: np.ndarray  # T_parent_link at joint value 0
    joint_axis: np.ndarray
    joint_range: tuple[float, float] = (-np.inf, np.inf)
    visual: tuple[MeshGeom, ...] = ()
    collision: tuple[MeshGeom, ...] = ()
    mass: float = 0.1


@dataclass(frozen=True)
class RobotModel:
    """An articulated robot held at a fixed tool height and orientation, driven by an xy target.

    ``floating=True``: the base link rides two horizontal slide joints (x, y) at
    ``base_pose``'s height and orientation (a gantry), servoed to the target, while
    ``arm_joints`` (if any) are servoed to hold ``rest_q``; else the base is fixed at
    ``base_pose`` and ``arm_joints`` are servoed to inverse-kinematics targets.
    The tool centre point is ``tcp_offset`` in link ``tcp_link``; it is held at height
    ``tcp_height`` with the link frame's orientation ``tcp_quat`` (world).
    Only links in ``contact_links`` collide, and only with the free body, with Coulomb
    coefficient ``friction``. A gantry-mounted tool stalls (its setpoint stops where the tool is,
    for the rest of the control period) once the free body pushes it back horizontally with more
    than ``max_push_force`` N at the end of two servo periods in a row (a sustained push, not an
    impact), as a force-limited robot would: a body jammed against a wall is pressed with a
    bounded force instead of being squeezed into it, tilted up or ridden over.
    """

    name: str
    links: tuple[Link, ...]
    base_pose: np.ndarray
    floating: bool
    arm_joints: tuple[str, ...]
    fixed_joint_values: dict[str, float]
    tcp_link: str
    tcp_offset: tuple[float, float, float]
    tcp_height: float
    tcp_quat: tuple[float, float, float, float]
    rest_q: tuple[float, ...] = ()
    contact_links: tuple[str, ...] = ()
    max_speed: float = 1.0
    stiffness: float = 4000.0
    max_push_force: float = np.inf
    friction: float = 0.5


@dataclass(frozen=True)
class Scene:
    """Everything a rigid backend simulates: ``table`` and ``statics`` (label 0), ``body`` (label 1), ``robot``
    (label 2).

    ``body`` may be None: a scene of table, walls, robot and cameras only, for tasks whose
    object another engine simulates (e.g. an MPM block); the backend's ``reset`` then ignores
    its body pose and ``body_pose7`` raises.

    ``table`` is a box whose top face is the support surface (engines may model it as a
    plane). ``static_friction`` is the Coulomb coefficient between the free body and the
    statics (the robot's is ``robot.friction``): each engine sets its per-geometry values so
    that these pair values come out of its own combination rule. ``timestep`` is the physics
    step; ``control_dt`` the period of one `step` call. ``decorations`` are visual-only boxes
    (`Decoration`) that only `RigidBackend.render_views` draws.
    """

    table: Box
    statics: tuple[Box, ...]
    body: FreeBody | None
    robot: RobotModel
    cameras: tuple[Camera, ...]
    timestep: float = 0.002
    control_dt: float = CONTROL_DT
    static_friction: float = 0.5
    extra: dict = field(default_factory=dict)
    decorations: tuple[Decoration, ...] = ()
