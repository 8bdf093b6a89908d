"""Geometry and mass properties of free bodies made of convex pieces (`spec.FreeBody` with ``hulls``).

Engine-neutral helpers the backends build hull bodies with: the principal frame of an inertia
tensor, triangulated convex hulls, hulls shrunk by a collision margin, and the mass properties of
a set of convex pieces of uniform density (for callers that have geometry but no measured inertia), and a
spread-out subset of many points.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import trimesh
from scipy.optimize import linprog
from scipy.spatial import ConvexHull, HalfspaceIntersection


def principal_axes(inertia: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Principal moments (3,) and axes ``R`` (3, 3, columns, a proper rotation) of a symmetric inertia tensor:
    ``inertia = R @ diag(moments) @ R.T``. An already diagonal tensor keeps its own axes and order (R = I)."""
    inertia = np.asarray(inertia, dtype=float)
    if np.abs(inertia - np.diag(np.diag(inertia))).max() <= 1e-12 * np.abs(inertia).max():
        return np.diag(inertia).copy(), np.eye(3)
    moments, R = np.linalg.eigh(inertia)
    if np.linalg.det(R) < 0:
        R[:, 2] = -R[:, 2]
    return moments, R


def hull_mesh(points: np.ndarray) -> trimesh.Trimesh:
    """The convex hull of ``points`` (V, 3) as a closed triangle mesh with outward faces."""
    return trimesh.convex.convex_hull(np.asarray(points, dtype=float))


def shrink_hull(points: np.ndarray, margin: float) -> np.ndarray:
    """Vertices of the convex hull of ``points`` with every face moved inward by ``margin`` (an engine's collision
    margin then grows it back). A piece thinner than 4 ``margin`` is shrunk by a quarter of its inscribed
    sphere's diameter instead (it stays a solid; the engine's hull is then slightly larger than the piece)."""
    points = np.asarray(points, dtype=float)
    hull = ConvexHull(points)
    planes = hull.equations  # n.x + d <= 0 inside, |n| = 1
    # the inscribed sphere (Chebyshev centre): maximise r with n.x + r <= -d
    lp = linprog(c=[0, 0, 0, -1], A_ub=np.hstack([planes[:, :3], np.ones((len(planes), 1))]), b_ub=-planes[:, 3],
                 bounds=[(None, None)] * 3 + [(0, None)], method="highs")
    centre, radius = lp.x[:3], lp.x[3]
    shrink = min(margin, 0.5 * radius)
    inner = planes.copy()
    inner[:, 3] += shrink
    return HalfspaceIntersection(inner, centre).intersections


def spread_points(points: np.ndarray, n: int) -> np.ndarray:
    """``points`` (P, 3) if P <= ``n``, else ``n`` of them spread out by farthest-point sampling (deterministic:
    from the first point, each next one the farthest from those taken)."""
    points = np.asarray(points, dtype=float)
    if len(points) <= n:
        return points
    taken = [0]
    dist = np.linalg.norm(points - points[0], axis=1)
    for _ in range(n - 1):
        taken.append(int(np.argmax(dist)))
        dist = np.minimum(dist, np.linalg.norm(points - points[taken[-1]], axis=1))
    return points[taken]


def uniform_mass_properties(hulls: Sequence[np.ndarray], mass: float) -> tuple[np.ndarray, np.ndarray]:
    """Centre of mass (3,) and inertia (3, 3) about it of convex pieces (their hulls, assumed not to overlap)
    sharing ``mass`` with uniform density."""
    meshes = [hull_mesh(h) for h in hulls]
    volumes = np.array([m.volume for m in meshes])
    density = mass / volumes.sum()
    centres = np.array([m.center_mass for m in meshes])
    com = (volumes[:, None] * centres).sum(axis=0) / volumes.sum()
    inertia = np.zeros((3, 3))
    for m, v, c in zip(meshes, volumes, centres, strict=True):
        d = c - com
        inertia += density * m.moment_inertia + density * v * (d @ d * np.eye(3) - np.outer(d, d))
    return com, inertia
