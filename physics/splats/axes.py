"""Which way is up in a capture: named axes, ground-plane detection and the rotation to z-up.

3DGS captures come in the frame of their reconstruction: z up (Blender-style exports),
y down (COLMAP / OpenCV cameras), anything else. The simulation runs z-up; :func:`up_rotation`
gives the rotation taking the file's up direction to +z.

``up=auto`` (:func:`detect_up`): a RANSAC plane fit to the Gaussian centres; the plane is
taken as the ground when it holds at least ``min_support`` (25 %) of the (sampled) centres,
at least 90 % of the rest lie on one side of it (up is the normal towards them), and no
second such plane holds half as many (a plate's two faces, a box's sides are ambiguous).
A normal within 10 degrees of a file axis snaps to it. Otherwise no up is found and the
caller falls back to +z with a warning.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["UP_CHOICES", "GroundPlane", "parse_up", "ground_plane", "detect_up", "up_rotation"]

UP_CHOICES = ("auto", "+x", "-x", "+y", "-y", "+z", "-z")


def parse_up(value: object) -> np.ndarray | None:
    """The unit up vector named by ``value`` (``+x``, ``x``, ``-y``, ... or a 3-vector), or None for ``auto``."""
    if isinstance(value, str):
        name = value.strip().lower()
        if name == "auto":
            return None
        if name in ("x", "y", "z"):
            name = "+" + name
        if name in UP_CHOICES:
            axis = np.zeros(3)
            axis["xyz".index(name[1])] = 1.0 if name[0] == "+" else -1.0
            return axis
        raise ValueError(f"up must be one of {', '.join(UP_CHOICES)} or a 3-vector, got {value!r}")
    vec = np.asarray(value, dtype=np.float64)
    if vec.shape != (3,) or not np.all(np.isfinite(vec)) or np.linalg.norm(vec) == 0.0:
        raise ValueError(f"up must be one of {', '.join(UP_CHOICES)} or a non-zero 3-vector, got {value!r}")
    return vec / np.linalg.norm(vec)


def _best_plane(x: np.ndarray, tol: float, rng: np.random.Generator,
                tries: int) -> tuple[np.ndarray, float, np.ndarray]:
    """RANSAC: the plane (unit normal n, offset d with n.x = d) with the most centres within ``tol``, and them."""
    best_n, best_d, best_in = np.array([0.0, 0.0, 1.0]), 0.0, np.zeros(len(x), dtype=bool)
    picks = rng.integers(0, len(x), (tries, 3))
    for a, b, c in picks:
        n = np.cross(x[b] - x[a], x[c] - x[a])
        norm = np.linalg.norm(n)
        if norm < 1e-12:
            continue
        n = n / norm
        inliers = np.abs(x @ n - n @ x[a]) <= tol
        if inliers.sum() > best_in.sum():
            best_n, best_d, best_in = n, float(n @ x[a]), inliers
    return best_n, best_d, best_in


def _ground(x: np.ndarray, tol: float, rng: np.random.Generator, tries: int,
            min_support: float) -> tuple[np.ndarray | None, np.ndarray]:
    """A plane with ``min_support`` of the centres and 90 % of the rest on one side: (up normal or None, inliers)."""
    n, d, inliers = _best_plane(x, tol, rng, tries)
    side = x[~inliers] @ n - d
    if inliers.sum() < min_support * len(x) or len(side) == 0:
        return None, inliers
    above = float(np.mean(side > 0.0))
    if max(above, 1.0 - above) < 0.9:
        return None, inliers
    return (n if above >= 0.5 else -n), inliers


@dataclass
class GroundPlane:
    """A detected ground plane.

    ``up``: unit normal (snapped to a file axis within 10 degrees); ``offset``: up . x on the plane; ``support``:
    fraction of the centres on it; ``extent_ratio``: the plane's in-plane extent over that of the centres off it
    (10-90 percentile boxes), > 1 when the ground reaches past what stands on it, as in a scene.
    """

    up: np.ndarray
    offset: float
    support: float
    extent_ratio: float


def ground_plane(positions: np.ndarray, rng: np.random.Generator, min_support: float = 0.25,
                 tries: int = 300, max_points: int = 20000) -> GroundPlane | None:
    """The dominant ground plane of the centres (see the module docstring), or None when there is none."""
    if not isinstance(rng, np.random.Generator):
        raise ValueError(f"rng must be a numpy.random.Generator, got {type(rng).__name__}")
    x = np.asarray(positions, dtype=np.float64)
    if len(x) < 16:
        return None
    if len(x) > max_points:
        x = x[rng.choice(len(x), max_points, replace=False)]
    lo, hi = np.percentile(x, 5, axis=0), np.percentile(x, 95, axis=0)
    tol = 0.01 * float(np.linalg.norm(hi - lo))
    if tol <= 0.0:
        return None
    up, inliers = _ground(x, tol, rng, tries, min_support)
    if up is None or (~inliers).sum() < 3:
        return None
    if _best_plane(x[~inliers], tol, rng, tries)[2].sum() >= 0.5 * inliers.sum():
        return None  # two comparable planes (a plate's faces): ambiguous
    axis = int(np.argmax(np.abs(up)))
    if abs(up[axis]) >= np.cos(np.radians(10.0)):
        snapped = np.zeros(3)
        snapped[axis] = np.sign(up[axis])
        up = snapped
    flat = x - np.outer(x @ up, up)  # in-plane coordinates
    span_on = np.ptp(np.percentile(flat[inliers], [10, 90], axis=0), axis=0).max()
    span_off = np.ptp(np.percentile(flat[~inliers], [10, 90], axis=0), axis=0).max()
    return GroundPlane(up, float(np.median(x[inliers] @ up)), float(inliers.mean()),
                       float(span_on / max(span_off, 1e-12)))


def detect_up(positions: np.ndarray, rng: np.random.Generator, min_support: float = 0.25) -> np.ndarray | None:
    """Up from a dominant ground plane of the centres (:func:`ground_plane`), or None when it cannot be told."""
    ground = ground_plane(positions, rng, min_support)
    return None if ground is None else ground.up


def up_rotation(up: np.ndarray) -> np.ndarray:
    """The rotation (3, 3) taking the unit vector ``up`` to +z (the smallest one; diag(1, -1, -1) for -z)."""
    u = np.asarray(up, dtype=np.float64)
    u = u / np.linalg.norm(u)
    z = np.array([0.0, 0.0, 1.0])
    c = float(u @ z)
    if c > 1.0 - 1e-12:
        return np.eye(3)
    if c < -1.0 + 1e-12:
        return np.diag([1.0, -1.0, -1.0])
    v = np.cross(u, z)
    vx = np.array([[0.0, -v[2], v[1]], [v[2], 0.0, -v[0]], [-v[1], v[0], 0.0]])
    R = np.eye(3) + vx + vx @ vx / (1.0 + c)
    return np.rint(R) if np.allclose(R, np.rint(R), atol=1e-12) else R
