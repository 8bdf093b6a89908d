"""Gripper surface points: area-weighted samples of chosen links' meshes and primitives, placed by forward kinematics.

The points are drawn once (seeded) in each link's own frame, so the same point index is
the same material point on the gripper at every time step: trajectories of these points
are exact tracks of the robot, the action representation of PointWorld-style models.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np
import trimesh

from .kinematics import ForwardKinematics
from .urdf import SHAPES, MeshRef, RobotDescription

DEFAULT_GRIPPER_LINKS = ("panda_hand", "panda_leftfinger", "panda_rightfinger")


def geometry_mesh(ref: MeshRef) -> trimesh.Trimesh:
    """The surface of one link geometry in its own frame: the (scaled) mesh file, or the primitive
    tessellated finely enough that its facets lie within ~0.1% of its size from the true surface."""
    if ref.shape == "mesh":
        m = trimesh.load(ref.path, force="mesh", process=False)
        m.apply_scale(ref.scale)
        return m
    if ref.shape == "box":
        return trimesh.creation.box(extents=ref.size)
    if ref.shape == "cylinder":
        return trimesh.creation.cylinder(radius=ref.size[0], height=ref.size[1], sections=64)
    if ref.shape == "sphere":
        return trimesh.creation.icosphere(subdivisions=4, radius=ref.size[0])
    raise ValueError(f"unknown geometry shape {ref.shape!r}; supported: {SHAPES}")


def link_mesh(desc: RobotDescription, link: str, kind: str = "visual") -> trimesh.Trimesh:
    """All geometry of ``link`` (``kind`` = "visual" or "collision"; meshes and primitives) merged, in its frame."""
    if kind not in ("visual", "collision"):
        raise ValueError(f"mesh kind must be 'visual' or 'collision', got {kind!r}")
    refs = (desc.visual if kind == "visual" else desc.collision).get(link, ())
    parts = []
    for ref in refs:
        m = geometry_mesh(ref)
        m.apply_transform(ref.T_link_mesh)
        parts.append(m)
    if not parts:
        raise ValueError(f"link {link!r} has no {kind} geometry")
    return trimesh.util.concatenate(parts) if len(parts) > 1 else parts[0]


def sample_surface(mesh: trimesh.Trimesh, count: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """``count`` area-weighted uniform samples on ``mesh``'s surface and their face normals."""
    areas = mesh.area_faces
    faces = rng.choice(len(areas), size=count, p=areas / areas.sum())
    r1, r2 = rng.random(count), rng.random(count)
    s = np.sqrt(r1)
    bary = np.stack([1 - s, s * (1 - r2), s * r2], axis=1)
    tri = mesh.triangles[faces]
    points = np.einsum("nk,nkd->nd", bary, tri)
    return points, mesh.face_normals[faces]


def allocate(weights: np.ndarray, total: int) -> np.ndarray:
    """Split ``total`` into integer counts proportional to ``weights`` (largest remainder)."""
    raw = weights / weights.sum() * total
    counts = np.floor(raw).astype(int)
    order = np.argsort(-(raw - counts), kind="stable")
    counts[order[: total - counts.sum()]] += 1
    return counts


def finite_difference_motion(points: Any, dt: float, axis: int = 0) -> tuple[Any, Any]:
    """Velocity and acceleration of point tracks sampled every ``dt`` s along ``axis``: the gripper-point
    motion features of the point-flow formulation, defined once for the dataset and the planners.

    ``points`` is a numpy array or a torch tensor (the result has its type and dtype): the same
    element-wise operations in the same order give identical values for both. Second-order central
    differences inside, first order at the ends (``numpy.gradient``'s rule); zero along an axis of length 1.
    """
    velocity = _gradient(points, dt, axis)
    return velocity, _gradient(velocity, dt, axis)


def _gradient(x: Any, dt: float, axis: int) -> Any:
    axis = axis % x.ndim
    n = x.shape[axis]
    out = x * 0
    if n < 2:
        return out

    def at(start: int | None, stop: int | None) -> tuple:
        return (slice(None),) * axis + (slice(start, stop),)

    out[at(1, -1)] = (x[at(2, None)] - x[at(None, -2)]) / (2 * dt)
    out[at(0, 1)] = (x[at(1, 2)] - x[at(0, 1)]) / dt
    out[at(n - 1, None)] = (x[at(n - 1, None)] - x[at(n - 2, n - 1)]) / dt
    return out


@dataclass(frozen=True)
class GripperTrajectory:
    """Gripper points over time: positions, normals, velocity and acceleration (T, Nr, 3), time (T,)."""

    points: np.ndarray
    normals: np.ndarray
    velocity: np.ndarray
    acceleration: np.ndarray
    time: np.ndarray

    def features(self, num_frequencies: int = 4) -> np.ndarray:
        """Per-point features (T, Nr, 12 + 2F): position, normal, velocity, acceleration, sin/cos time."""
        T, N, _ = self.points.shape
        freqs = 2.0 ** np.arange(num_frequencies) * np.pi
        phase = self.time[:, None] * freqs[None, :] / max(self.time[-1], 1e-9)
        emb = np.concatenate([np.sin(phase), np.cos(phase)], axis=1)
        emb = np.broadcast_to(emb[:, None, :], (T, N, emb.shape[1]))
        return np.concatenate([self.points, self.normals, self.velocity, self.acceleration, emb], axis=-1)


class GripperPoints:
    """``num_points`` surface samples on ``links`` (area-weighted across links), fixed by ``seed``.

    ``local_points``/``local_normals`` (Nr, 3) live in the frame of link ``links[link_ids[i]]``.
    Place them with `place` from link poses (..., len(links), 4, 4), or with `from_joints`
    from a joint vector through forward kinematics.
    """

    def __init__(
        self,
        desc: RobotDescription,
        links: Sequence[str] = DEFAULT_GRIPPER_LINKS,
        num_points: int = 256,
        seed: int = 0,
        mesh: str = "visual",
    ):
        if int(num_points) <= 0:
            raise ValueError(f"num_points must be a positive integer, got {num_points}")
        self.desc = desc
        self.links = tuple(links)
        for link in self.links:
            desc.link_index(link)
        meshes = [link_mesh(desc, link, mesh) for link in self.links]
        counts = allocate(np.array([m.area for m in meshes]), int(num_points))
        rng = np.random.default_rng(seed)
        pts, nrm, ids = [], [], []
        for i, (m, c) in enumerate(zip(meshes, counts, strict=True)):
            p, n = sample_surface(m, int(c), rng)
            pts.append(p)
            nrm.append(n)
            ids.append(np.full(int(c), i))
        self.local_points = np.concatenate(pts)
        self.local_normals = np.concatenate(nrm)
        self.link_ids = np.concatenate(ids)
        self._local_h = np.concatenate([self.local_points, np.ones((len(self.local_points), 1))], axis=1)

    @property
    def num_points(self) -> int:
        """Number of gripper points Nr."""
        return len(self.local_points)

    def place(self, link_poses: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """World points and normals (..., Nr, 3) from the poses of ``links`` (..., len(links), 4, 4)."""
        T = self._point_poses(link_poses)
        points = np.einsum("...nij,nj->...ni", T[..., :3, :], self._local_h)
        normals = np.einsum("...nij,nj->...ni", T[..., :3, :3], self.local_normals)
        return points, normals

    def place_points(self, link_poses: np.ndarray) -> np.ndarray:
        """The world points (..., Nr, 3) of `place` alone (the same values)."""
        return np.einsum("...nij,nj->...ni", self._point_poses(link_poses)[..., :3, :], self._local_h)

    def _point_poses(self, link_poses: np.ndarray) -> np.ndarray:
        """The pose (..., Nr, 4, 4) of every point's link."""
        link_poses = np.asarray(link_poses)
        if link_poses.shape[-3:] != (len(self.links), 4, 4):
            raise ValueError(f"link_poses must have shape (..., {len(self.links)}, 4, 4), got {link_poses.shape}")
        return link_poses[..., self.link_ids, :, :]

    def from_joints(
        self, fk: ForwardKinematics, q: np.ndarray, base: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """World points and normals (..., Nr, 3) for joint vectors ``q`` (..., D) via ``fk``."""
        return self.place(fk.link_poses(q, self.links, base))

    def trajectory(self, link_pose_traj: np.ndarray, dt: float) -> GripperTrajectory:
        """Trajectory features from link poses over time (T, len(links), 4, 4) sampled every ``dt`` s.

        Velocity and acceleration are finite differences (second order inside, first order at
        the ends); a single-step trajectory has zero velocity and acceleration.
        """
        if dt <= 0:
            raise ValueError(f"dt must be positive, got {dt}")
        points, normals = self.place(link_pose_traj)
        vel, acc = finite_difference_motion(points, dt)
        return GripperTrajectory(points, normals, vel, acc, np.arange(len(points)) * dt)

    def joint_trajectory(
        self, fk: ForwardKinematics, q_traj: np.ndarray, dt: float, base_traj: np.ndarray | None = None
    ) -> GripperTrajectory:
        """Trajectory features for a joint-space trajectory (T, D) (and optional base poses (T, 4, 4))."""
        return self.trajectory(fk.link_poses(q_traj, self.links, base_traj), dt)
