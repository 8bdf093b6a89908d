"""Geometry of the Push-T task in metres: the T block, its poses, the goal, coverage and surface points.

Block frame: origin at the midpoint of the bar's outer edge, at the bottom face (which rests
``PAD_CLEARANCE`` = 1 mm above the table on three contact pads); footprint = bar x in [-0.10, 0.10],
y in [0, 0.05] union stem x in [-0.025, 0.025], y in [0.05, 0.20]; height 0.04 m. A planar pose
(x, y, yaw) rotates the footprint counter-clockwise by yaw about +z and moves the origin to (x, y),
as in gym-pusht.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import shapely
import trimesh
from shapely.geometry import Polygon, box

from robots.gripper_points import sample_surface

from .. import workspace
from ..objects.shapes import T_BAR, T_HEIGHT, T_MASS, T_STEM
from ..workspace import (  # noqa: F401 - the workspace's names, as PushT4D's geometry has always offered them
    GOAL_POSE,
    SUCCESS_COVERAGE,
    WALL_HEIGHT,
    WALL_THICKNESS,
    WORKSPACE,
    pose3_from_pose7,
    rot_z,
    transform_points,
    wrap_angle,
)

BAR, STEM, HEIGHT, MASS = T_BAR, T_STEM, T_HEIGHT, T_MASS  # the library's T (`envs.objects.shapes`)
PAD_CLEARANCE = 0.001  # the block rests on three pads that reach this far below it


def _area(r: tuple[float, float, float, float]) -> float:
    return (r[2] - r[0]) * (r[3] - r[1])


AREA = _area(BAR) + _area(STEM)
# centre of mass of the uniform T (block frame), from the two rectangles' centroids
COM_LOCAL = np.array(
    [
        0.0,
        (_area(BAR) * (BAR[1] + BAR[3]) / 2 + _area(STEM) * (STEM[1] + STEM[3]) / 2) / AREA,
        HEIGHT / 2,
    ]
)


@lru_cache(maxsize=1)
def footprint() -> Polygon:
    """The T footprint in the block frame (a shapely polygon)."""
    return shapely.union(box(*BAR), box(*STEM)).normalize()


@lru_cache(maxsize=1)
def footprint_vertices() -> np.ndarray:
    """Closed ring (9, 2) of the T footprint vertices in the block frame."""
    return np.asarray(footprint().exterior.coords)


def footprint_at(pose: np.ndarray) -> Polygon:
    """The footprint placed at planar pose (x, y, yaw)."""
    x, y, yaw = (float(v) for v in pose)
    c, s = np.cos(yaw), np.sin(yaw)
    v = footprint_vertices() @ np.array([[c, s], [-s, c]]) + (x, y)
    return shapely.polygons(v)


@lru_cache(maxsize=4)
def _goal_polygon(goal: tuple[float, float, float]) -> Polygon:
    poly = footprint_at(goal)
    shapely.prepare(poly)
    return poly


def coverage(pose: np.ndarray, goal: tuple[float, float, float] = GOAL_POSE) -> float:
    """area(goal T intersect block T) / area(goal T) on the exact footprint polygons."""
    goal_poly = _goal_polygon(tuple(float(g) for g in goal))
    return float(shapely.area(shapely.intersection(goal_poly, footprint_at(pose))) / AREA)






def pose7_from_pose3(pose: np.ndarray, z: float = PAD_CLEARANCE) -> np.ndarray:
    """(x, y, yaw) -> (x, y, z, qw, qx, qy, qz); the default z is the block's resting height on its pads."""
    return workspace.pose7_from_pose3(pose, z)




def com_pose(pose: np.ndarray) -> np.ndarray:
    """Planar pose of the centre of mass for block pose (x, y, yaw)."""
    x, y, yaw = pose
    c = rot_z(yaw)[:2, :2] @ COM_LOCAL[:2]
    return np.array([x + c[0], y + c[1], yaw])




@lru_cache(maxsize=1)
def t_mesh() -> trimesh.Trimesh:
    """Watertight triangle mesh of the T prism in the block frame."""
    return trimesh.creation.extrude_polygon(footprint(), HEIGHT)


@lru_cache(maxsize=8)
def surface_points(count: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """``count`` area-uniform points (and outward normals) on the T's top and side faces (block frame).

    The bottom face rests on the table and is never seen, so it is not sampled. The same
    (count, seed) always gives the same points: they are the block's material tracks.
    """
    if count <= 0:
        raise ValueError(f"count must be positive, got {count}")
    mesh = t_mesh()
    keep = mesh.face_normals[:, 2] > -0.5
    sub = mesh.submesh([np.flatnonzero(keep)], append=True)
    pts, nrm = sample_surface(sub, count, np.random.default_rng(seed))
    pts.flags.writeable = False
    nrm.flags.writeable = False
    return pts, nrm


def inside_block(local: np.ndarray, tol: float = 1e-3) -> np.ndarray:
    """Whether block-frame points (N, 3) lie in the T solid grown by ``tol`` (m)."""
    x, y, z = local[:, 0], local[:, 1], local[:, 2]
    in_z = (z >= -tol) & (z <= HEIGHT + tol)

    def in_rect(r):
        return (x >= r[0] - tol) & (x <= r[2] + tol) & (y >= r[1] - tol) & (y <= r[3] + tol)

    return in_z & (in_rect(BAR) | in_rect(STEM))


def distance_to_footprint(pose: np.ndarray, xy: np.ndarray) -> float:
    """Planar distance (m) from point ``xy`` to the footprint at ``pose`` (0 inside)."""
    return float(footprint_at(pose).distance(shapely.Point(float(xy[0]), float(xy[1]))))
