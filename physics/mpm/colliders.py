"""Kinematic colliders acting on grid velocities: planes, boxes, spheres, capsules, meshes.

A collider is a rigid body with a pose (position, rotation matrix) and a velocity
(linear, angular about its position) that the user may set every frame, e.g. from a
robot gripper's forward kinematics. During a frame the solver moves it with that
velocity; after the frame its pose has advanced by ``frame_dt``.

Contact is applied at grid nodes inside the collider (signed distance < 0) and, for
velocity approaching the surface (v_n < 0), at nodes less than one cell outside it
(``kernels.CONTACT_REACH``). Nodes strictly inside alone left contact dependent on where
the surface falls between node planes: with a floor on a node plane the plane itself was
free, particles on it drew ~97% of their velocity from free nodes, and a sand heap's
base slid and sank ~0.8 cell into a sticky floor (3D heaps 6 deg below the friction
angle). Acting on all nodes within a cell (also when they move away) made a sticky clamp
grab the material a cell beyond its face; acting there only against approach holds a
floor's load wherever it lies, and a clamp's band nodes only while they move into it.

The law acts on the velocity relative to the collider's velocity there,
v_rel = v - v_c, with n the outward normal and v_n = v_rel . n:

- ``"sticky"``: v = v_c.
- ``"slip"``: if v_n < 0, v = v_c + v_rel - v_n n (the tangential velocity is kept).
- ``"friction"``: if v_n < 0, as slip with the tangential part shortened by
  ``friction * |v_n|`` (Coulomb), stopping when it would reverse.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import warp as wp

PLANE = wp.constant(0)
BOX = wp.constant(1)
SPHERE = wp.constant(2)
CAPSULE = wp.constant(3)
MESH = wp.constant(4)

STICKY = wp.constant(0)
SLIP = wp.constant(1)
FRICTION = wp.constant(2)
CONTACT_MODES = {"sticky": int(STICKY), "slip": int(SLIP), "friction": int(FRICTION)}


@wp.struct
class ColliderData:
    """Kernel-side description of one collider at the start of a frame."""

    kind: int
    contact: int
    friction: float
    position: wp.vec3
    rotation: wp.mat33
    linear_velocity: wp.vec3
    angular_velocity: wp.vec3
    size: wp.vec3  # box half extents; sphere (r, 0, 0); capsule (r, half_height, 0); mesh (query distance, 0, 0)
    mesh: wp.uint64


def _vec3(name: str, value: object) -> np.ndarray:
    arr = np.asarray(value, dtype=np.float64)
    if arr.shape != (3,) or not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} must be 3 finite numbers, got {value!r}")
    return arr


def _rotation(value: object | None) -> np.ndarray:
    if value is None:
        return np.eye(3)
    R = np.asarray(value, dtype=np.float64)
    if R.shape != (3, 3) or not np.all(np.isfinite(R)):
        raise ValueError(f"rotation must be a finite 3x3 matrix, got shape {R.shape}")
    if not (np.allclose(R @ R.T, np.eye(3), atol=1e-5) and np.linalg.det(R) > 0.0):
        raise ValueError("rotation must be a proper rotation matrix (orthonormal, det +1)")
    return R


@dataclass(eq=False)
class Collider:
    """Base of kinematic colliders: pose, velocity and contact law.

    Args:
        position: reference point in metres (plane point, body centre).
        rotation: 3x3 rotation matrix (body frame to world), identity by default.
        contact: ``"sticky"``, ``"slip"`` or ``"friction"``.
        friction: Coulomb coefficient (>= 0) used by ``"friction"``.
        linear_velocity: m/s; angular_velocity: rad/s about ``position`` (world frame).
    """

    position: np.ndarray
    rotation: np.ndarray | None = None
    contact: str = "sticky"
    friction: float = 0.0
    linear_velocity: np.ndarray = field(default_factory=lambda: np.zeros(3))
    angular_velocity: np.ndarray = field(default_factory=lambda: np.zeros(3))

    kind = -1

    def __post_init__(self) -> None:
        if self.contact not in CONTACT_MODES:
            raise ValueError(f"unknown contact mode {self.contact!r}; allowed: {', '.join(CONTACT_MODES)}")
        if not (np.isfinite(self.friction) and self.friction >= 0.0):
            raise ValueError(f"friction must be finite and >= 0, got {self.friction}")
        self.position = _vec3("position", self.position)
        self.rotation = _rotation(self.rotation)
        self.linear_velocity = _vec3("linear_velocity", self.linear_velocity)
        self.angular_velocity = _vec3("angular_velocity", self.angular_velocity)
        self.version = 0

    def set_pose(self, position: object, rotation: object | None = None) -> None:
        """Place the collider (world position, optional 3x3 rotation matrix)."""
        self.position = _vec3("position", position)
        if rotation is not None:
            self.rotation = _rotation(rotation)
        self.version += 1

    def set_velocity(self, linear: object | None = None, angular: object | None = None) -> None:
        """Set the linear (m/s) and/or angular (rad/s, world frame) velocity."""
        if linear is not None:
            self.linear_velocity = _vec3("linear", linear)
        if angular is not None:
            self.angular_velocity = _vec3("angular", angular)
        self.version += 1

    def advance(self, dt: float) -> None:
        """Move the pose forward by ``dt`` seconds at the current velocity."""
        self.position = self.position + dt * self.linear_velocity
        self.rotation = rotation_from_rotvec(dt * self.angular_velocity) @ self.rotation
        self.version += 1

    def _size(self) -> tuple[float, float, float]:
        return (0.0, 0.0, 0.0)

    def _mesh_id(self, device: str) -> int:
        return 0

    def data(self, device: str) -> ColliderData:
        """The kernel-side struct for this collider on ``device``."""
        d = ColliderData()
        d.kind = self.kind
        d.contact = CONTACT_MODES[self.contact]
        d.friction = float(self.friction)
        d.position = wp.vec3(*self.position)
        d.rotation = wp.mat33(*self.rotation.ravel())
        d.linear_velocity = wp.vec3(*self.linear_velocity)
        d.angular_velocity = wp.vec3(*self.angular_velocity)
        d.size = wp.vec3(*self._size())
        d.mesh = wp.uint64(self._mesh_id(device))
        return d


def collider_array(colliders: list[Collider], device: str) -> wp.array:
    """The kernel-side `ColliderData` of ``colliders`` as one device array (in order)."""
    return wp.array([c.data(device) for c in colliders], dtype=ColliderData, device=device)


def rotation_from_rotvec(rotvec: np.ndarray) -> np.ndarray:
    """Rotation matrix of a rotation vector (axis times angle), Rodrigues' formula."""
    angle = float(np.linalg.norm(rotvec))
    if angle < 1e-12:
        return np.eye(3)
    k = rotvec / angle
    K = np.array([[0.0, -k[2], k[1]], [k[2], 0.0, -k[0]], [-k[1], k[0], 0.0]])
    return np.eye(3) + np.sin(angle) * K + (1.0 - np.cos(angle)) * (K @ K)


def _frame_with_z(normal: np.ndarray) -> np.ndarray:
    """A rotation matrix whose third column is the unit vector ``normal``."""
    n = normal / np.linalg.norm(normal)
    helper = np.array([1.0, 0.0, 0.0]) if abs(n[0]) < 0.9 else np.array([0.0, 1.0, 0.0])
    t = np.cross(helper, n)
    t /= np.linalg.norm(t)
    return np.stack([t, np.cross(n, t), n], axis=1)


class Plane(Collider):
    """Half-space collider: material is kept on the side ``normal`` points to."""

    kind = int(PLANE)

    def __init__(self, point: object, normal: object, contact: str = "sticky", friction: float = 0.0,
                 **kw: object) -> None:
        n = _vec3("normal", normal)
        if np.linalg.norm(n) < 1e-12:
            raise ValueError("normal must be a non-zero vector")
        super().__init__(position=point, rotation=_frame_with_z(n), contact=contact, friction=friction, **kw)  # type: ignore[arg-type]

    @property
    def normal(self) -> np.ndarray:
        """Unit outward normal in the world frame."""
        return self.rotation[:, 2].copy()


class Box(Collider):
    """Oriented box of the given half extents centred at ``position``."""

    kind = int(BOX)

    def __init__(self, position: object, half_extents: object, rotation: object | None = None,
                 contact: str = "sticky", friction: float = 0.0, **kw: object) -> None:
        self.half_extents = _vec3("half_extents", half_extents)
        if np.any(self.half_extents <= 0.0):
            raise ValueError(f"half_extents must be > 0, got {self.half_extents}")
        super().__init__(position=position, rotation=rotation, contact=contact, friction=friction, **kw)  # type: ignore[arg-type]

    def _size(self) -> tuple[float, float, float]:
        return tuple(float(h) for h in self.half_extents)  # type: ignore[return-value]


class Sphere(Collider):
    """Ball of radius ``radius`` centred at ``position``."""

    kind = int(SPHERE)

    def __init__(self, position: object, radius: float, contact: str = "sticky", friction: float = 0.0,
                 **kw: object) -> None:
        if not (np.isfinite(radius) and radius > 0.0):
            raise ValueError(f"radius must be > 0, got {radius}")
        self.radius = float(radius)
        super().__init__(position=position, contact=contact, friction=friction, **kw)  # type: ignore[arg-type]

    def _size(self) -> tuple[float, float, float]:
        return (self.radius, 0.0, 0.0)


class Capsule(Collider):
    """Capsule: points within ``radius`` of the segment z in [-half_height, half_height] (body frame)."""

    kind = int(CAPSULE)

    def __init__(self, position: object, radius: float, half_height: float, rotation: object | None = None,
                 contact: str = "sticky", friction: float = 0.0, **kw: object) -> None:
        if not (np.isfinite(radius) and radius > 0.0 and np.isfinite(half_height) and half_height >= 0.0):
            raise ValueError(f"capsule needs radius > 0 and half_height >= 0, got {radius}, {half_height}")
        self.radius = float(radius)
        self.half_height = float(half_height)
        super().__init__(position=position, rotation=rotation, contact=contact, friction=friction, **kw)  # type: ignore[arg-type]

    def _size(self) -> tuple[float, float, float]:
        return (self.radius, self.half_height, 0.0)


class TriMesh(Collider):
    """Closed triangle mesh (body-frame vertices) placed at ``position`` / ``rotation``.

    Inside/outside comes from Warp's mesh query (sign from the face normals), so the
    mesh should be closed with outward-facing triangles. ``query_distance`` bounds the
    search for the nearest face (metres).
    """

    kind = int(MESH)

    def __init__(self, vertices: object, faces: object, position: object = (0.0, 0.0, 0.0),
                 rotation: object | None = None, contact: str = "sticky", friction: float = 0.0,
                 query_distance: float = 1.0, **kw: object) -> None:
        self.vertices = np.asarray(vertices, dtype=np.float32)
        self.faces = np.asarray(faces, dtype=np.int32)
        if self.vertices.ndim != 2 or self.vertices.shape[1] != 3 or not np.all(np.isfinite(self.vertices)):
            raise ValueError(f"vertices must be a finite (V, 3) array, got shape {self.vertices.shape}")
        if self.faces.ndim != 2 or self.faces.shape[1] != 3 or len(self.faces) == 0:
            raise ValueError(f"faces must be a non-empty (F, 3) integer array, got shape {self.faces.shape}")
        if self.faces.min() < 0 or self.faces.max() >= len(self.vertices):
            raise ValueError(f"faces index vertices outside [0, {len(self.vertices)})")
        if not (np.isfinite(query_distance) and query_distance > 0.0):
            raise ValueError(f"query_distance must be > 0, got {query_distance}")
        self.query_distance = float(query_distance)
        self._meshes: dict[str, wp.Mesh] = {}
        super().__init__(position=position, rotation=rotation, contact=contact, friction=friction, **kw)  # type: ignore[arg-type]

    def _size(self) -> tuple[float, float, float]:
        return (self.query_distance, 0.0, 0.0)

    def _mesh_id(self, device: str) -> int:
        if device not in self._meshes:
            points = wp.array(self.vertices, dtype=wp.vec3, device=device)
            indices = wp.array(self.faces.ravel(), dtype=wp.int32, device=device)
            self._meshes[device] = wp.Mesh(points=points, indices=indices)
        return int(self._meshes[device].id)


@wp.func
def collider_pose(c: ColliderData, t: float):
    """Position and rotation of collider ``c`` after moving for ``t`` seconds."""
    angle = wp.length(c.angular_velocity) * t
    R = c.rotation
    if angle > 0.0:
        q = wp.quat_from_axis_angle(wp.normalize(c.angular_velocity), angle)
        R = wp.quat_to_matrix(q) * c.rotation
    return c.position + c.linear_velocity * t, R


@wp.func
def box_sdf(p: wp.vec3, h: wp.vec3):
    """Signed distance and outward normal of an axis-aligned box of half extents h."""
    q = wp.vec3(wp.abs(p[0]) - h[0], wp.abs(p[1]) - h[1], wp.abs(p[2]) - h[2])
    s = wp.vec3(wp.sign(p[0]), wp.sign(p[1]), wp.sign(p[2]))
    inside = wp.max(q[0], wp.max(q[1], q[2]))
    if inside > 0.0:
        outer = wp.vec3(wp.max(q[0], 0.0) * s[0], wp.max(q[1], 0.0) * s[1], wp.max(q[2], 0.0) * s[2])
        return wp.length(outer), wp.normalize(outer)
    if q[0] >= q[1] and q[0] >= q[2]:
        return inside, wp.vec3(s[0], 0.0, 0.0)
    if q[1] >= q[2]:
        return inside, wp.vec3(0.0, s[1], 0.0)
    return inside, wp.vec3(0.0, 0.0, s[2])


@wp.func
def local_sdf(c: ColliderData, p: wp.vec3):
    """Signed distance (negative inside) and outward normal in the collider's frame."""
    if c.kind == PLANE:
        return p[2], wp.vec3(0.0, 0.0, 1.0)
    if c.kind == BOX:
        return box_sdf(p, c.size)
    if c.kind == SPHERE:
        return wp.length(p) - c.size[0], wp.normalize(p)
    if c.kind == CAPSULE:
        axis_point = wp.vec3(0.0, 0.0, wp.clamp(p[2], -c.size[1], c.size[1]))
        return wp.length(p - axis_point) - c.size[0], wp.normalize(p - axis_point)
    query = wp.mesh_query_point_sign_normal(c.mesh, p, c.size[0])
    if not query.result:
        return 1.0e10, wp.vec3(0.0)
    closest = wp.mesh_eval_position(c.mesh, query.face, query.u, query.v)
    dist = wp.length(p - closest)
    normal = wp.mesh_eval_face_normal(c.mesh, query.face)
    if dist > 1.0e-9:
        normal = wp.normalize(p - closest) * query.sign
    return dist * query.sign, normal


@wp.func
def apply_contact(mode: int, friction: float, v: wp.vec3, v_c: wp.vec3, n: wp.vec3):
    """Sticky / slip / Coulomb-friction response of velocity v against a body moving at v_c."""
    if mode == STICKY:
        return v_c
    v_rel = v - v_c
    vn = wp.dot(v_rel, n)
    if vn >= 0.0:
        return v
    v_t = v_rel - vn * n
    if mode == FRICTION:
        vt_norm = wp.length(v_t)
        if vt_norm > 0.0:
            v_t = v_t * wp.max(0.0, 1.0 + friction * vn / vt_norm)
    return v_c + v_t


@wp.func
def collide(c: ColliderData, x: wp.vec3, v: wp.vec3, t: float, reach: float):
    """Grid velocity at world point x after contact with collider c at time t in the frame.

    Inside (signed distance < 0) the contact law always applies; in the band
    0 <= distance < ``reach`` only to velocity approaching the surface (v_rel . n < 0).
    """
    if c.kind == BOX or c.kind == SPHERE or c.kind == CAPSULE:
        # outside the body's bounding sphere by reach: phi >= reach, the velocity is kept (cheap early out)
        radius = wp.where(c.kind == BOX, wp.length(c.size), c.size[0] + c.size[1]) + reach
        if wp.length_sq(x - (c.position + c.linear_velocity * t)) >= radius * radius:
            return v
    pos, R = collider_pose(c, t)
    phi, n_local = local_sdf(c, wp.transpose(R) * (x - pos))
    if phi >= reach:
        return v
    v_c = c.linear_velocity + wp.cross(c.angular_velocity, x - pos)
    n = R * n_local
    if phi >= 0.0 and wp.dot(v - v_c, n) >= 0.0:
        return v
    return apply_contact(c.contact, c.friction, v, v_c, n)


__all__ = ["Collider", "Plane", "Box", "Sphere", "Capsule", "TriMesh", "ColliderData", "CONTACT_MODES",
           "collider_array", "rotation_from_rotvec"]
