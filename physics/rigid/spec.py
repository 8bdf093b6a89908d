"""Engine-neutral description of a rigid tabletop scene: static boxes, one free body, a robot, cameras.

Tasks (in ``envs``) fill these dataclasses; every rigid backend builds its engine's model
from them, so all engines simulate the same geometry, masses, robot and cameras.
Units are SI; quaternions are (w, x, y, z); camera extrinsics use OpenCV axes
(x right, y down, z forward).
"""

from __future__ import annotations

from dataclasses import KW_ONLY, dataclass, field
from typing import NoReturn

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
    """The free rigid body, in one of two forms (exactly one of ``boxes`` and ``hulls``):

    - boxes: ``boxes`` with total ``mass`` spread uniformly over their volume (the engines derive the centre of
      mass and inertia; the boxes must be symmetric about the body frame's axes);
    - convex pieces: ``hulls``, each a (V, 3) array of points in the body frame (at least 4, not coplanar) whose
      convex hull is one collision piece, with explicit mass properties used as given by every engine: ``mass``,
      ``com`` (3,) in the body frame and ``inertia`` (3, 3) about the centre of mass in body-frame axes
      (symmetric, positive definite, principal moments obeying the triangle inequality). ``visual`` = (vertices
      (N, 3), faces (F, 3)) is the drawn mesh in the body frame (None: the hulls are drawn), in colour ``rgba``.

    ``feet``: centres of massless contact spheres of ``foot_radius`` (body frame) that carry the body on the
    table (either form). Three feet make the support pressure statically determinate, so every engine computes
    the same friction forces and torque for the same motion. The body's pose everywhere (`RigidBackend.reset`,
    `RigidBackend.body_pose7`) is that of the body frame, not of the centre of mass. Bad input raises
    ``ValueError`` naming the body and the problem.
    """

    name: str
    boxes: tuple[Box, ...] = ()
    _: KW_ONLY
    mass: float
    feet: tuple[tuple[float, float, float], ...] = ()
    foot_radius: float = 0.005
    hulls: tuple[np.ndarray, ...] = ()
    com: tuple[float, float, float] | None = None
    inertia: np.ndarray | None = None
    visual: tuple[np.ndarray, np.ndarray] | None = None
    rgba: tuple[float, float, float, float] = (0.8, 0.8, 0.8, 1.0)

    def __post_init__(self):
        def fail(problem: str) -> NoReturn:
            raise ValueError(f"free body {self.name!r}: {problem}")

        if bool(self.boxes) == bool(len(self.hulls)):
            fail("give exactly one of boxes and hulls" + (", not both" if self.boxes else " (got neither)"))
        if not (np.isfinite(self.mass) and self.mass > 0):
            fail(f"mass must be positive and finite, got {self.mass!r}")
        if self.boxes:
            if self.com is not None or self.inertia is not None or self.visual is not None:
                fail("com, inertia and visual belong to the hull form; boxes have uniform density and are drawn")
            return
        object.__setattr__(self, "hulls", tuple(_hull(self.name, i, h) for i, h in enumerate(self.hulls)))
        if self.com is None or self.inertia is None:
            fail("hulls need explicit com and inertia")
        com = np.asarray(self.com, dtype=float)
        if com.shape != (3,) or not np.all(np.isfinite(com)):
            fail(f"com must be 3 finite numbers, got {self.com!r}")
        object.__setattr__(self, "com", tuple(float(v) for v in com))
        object.__setattr__(self, "inertia", _inertia(self.name, self.inertia))
        if self.visual is not None:
            object.__setattr__(self, "visual", _visual_mesh(self.name, self.visual))


def _readonly(a: np.ndarray) -> np.ndarray:
    a = np.array(a, dtype=float)
    a.flags.writeable = False
    return a


def _hull(name: str, i: int, points) -> np.ndarray:
    """Hull ``i`` of body ``name`` as a read-only (V, 3) float array, checked to span a volume."""
    v = np.asarray(points, dtype=float)
    if v.ndim != 2 or v.shape[1] != 3 or not np.all(np.isfinite(v)):
        raise ValueError(f"free body {name!r}: hull {i} must be a (V, 3) array of finite points, got shape {v.shape}")
    s = np.linalg.svd(v - v.mean(axis=0), compute_uv=False) if len(v) >= 4 else np.zeros(3)
    if len(v) < 4 or s[0] <= 0 or s[2] <= 1e-6 * s[0]:
        raise ValueError(f"free body {name!r}: hull {i} needs at least 4 non-coplanar points (it has no volume)")
    return _readonly(v)


def _inertia(name: str, inertia) -> np.ndarray:
    """``inertia`` as a read-only (3, 3) array, checked symmetric, positive definite, triangle inequality."""
    I_ = np.asarray(inertia, dtype=float)
    if I_.shape != (3, 3) or not np.all(np.isfinite(I_)):
        raise ValueError(f"free body {name!r}: inertia must be a finite (3, 3) matrix, got shape {I_.shape}")
    scale = np.abs(I_).max()
    if np.abs(I_ - I_.T).max() > 1e-9 * scale:
        raise ValueError(f"free body {name!r}: inertia must be symmetric")
    I_ = (I_ + I_.T) / 2
    moments = np.linalg.eigvalsh(I_)
    if scale == 0 or moments[0] <= 1e-12 * scale:
        raise ValueError(f"free body {name!r}: inertia must be positive definite, principal moments {moments}")
    if moments[2] > (moments[0] + moments[1]) * (1 + 1e-9):
        raise ValueError(f"free body {name!r}: inertia violates the triangle inequality (principal moments "
                         f"{moments}: the largest exceeds the sum of the others, no mass distribution has them)")
    return _readonly(I_)


def _visual_mesh(name: str, mesh) -> tuple[np.ndarray, np.ndarray]:
    """The visual mesh (vertices (N, 3) float, faces (F, 3) int), checked, read-only."""
    try:
        vertices, faces = mesh
    except (TypeError, ValueError):
        raise ValueError(f"free body {name!r}: visual must be (vertices, faces)") from None
    v, f = np.asarray(vertices, dtype=float), np.asarray(faces)
    if v.ndim != 2 or v.shape[1] != 3 or not np.all(np.isfinite(v)):
        raise ValueError(f"free body {name!r}: visual vertices must be a finite (N, 3) array, got shape {v.shape}")
    if (f.ndim != 2 or f.shape[1] != 3 or len(f) == 0 or not np.issubdtype(f.dtype, np.integer)
            or f.min() < 0 or f.max() >= len(v)):
        raise ValueError(f"free body {name!r}: visual faces must be a non-empty (F, 3) integer array indexing "
                         f"its {len(v)} vertices")
    f = np.array(f, dtype=np.int64)
    f.flags.writeable = False
    return _readonly(v), f


@dataclass(frozen=True)
class Light:
    """A directional light: ``direction`` (3,), the unit vector its light travels along (world; pointing down,
    z < 0), and ``intensity``, a factor of the scene's own directional light (1: as bright as the built scene's;
    each engine scales its diffuse term by it). ValueError for a direction that is not finite and downward or an
    intensity that is not positive."""

    direction: tuple[float, float, float]
    intensity: float = 1.0

    def __post_init__(self):
        d = np.asarray(self.direction, dtype=float).ravel()
        if d.shape != (3,) or not np.all(np.isfinite(d)) or not d[2] < 0:
            raise ValueError(f"light direction must be 3 finite numbers pointing down (z < 0), got {self.direction!r}")
        if not (np.isfinite(self.intensity) and self.intensity > 0):
            raise ValueError(f"light intensity must be a positive finite number, got {self.intensity!r}")
        object.__setattr__(self, "direction", tuple(float(v) for v in d / np.linalg.norm(d)))
        object.__setattr__(self, "intensity", float(self.intensity))


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
