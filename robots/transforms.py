"""Rotation helpers for rigid-body poses (quaternions are (w, x, y, z)): matrices, poses, rigid fits."""

from __future__ import annotations

import numpy as np


def quat_to_mat(q: np.ndarray) -> np.ndarray:
    """Unit quaternions (..., 4) as (w, x, y, z) -> rotation matrices (..., 3, 3)."""
    q = np.asarray(q, dtype=float)
    if q.shape == (4,):  # the per-step case, without array-stacking overhead
        w, x, y, z = (q / np.sqrt(q @ q)).tolist()
        return np.array(
            [
                [1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)],
                [2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)],
                [2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)],
            ]
        )
    q = q / np.linalg.norm(q, axis=-1, keepdims=True)
    w, x, y, z = np.moveaxis(q, -1, 0)
    return np.stack(
        [
            np.stack([1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)], -1),
            np.stack([2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)], -1),
            np.stack([2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)], -1),
        ],
        -2,
    )


def pose_matrix(pose7: np.ndarray) -> np.ndarray:
    """(..., 7) poses -> (..., 4, 4) homogeneous transforms."""
    pose7 = np.asarray(pose7, dtype=float)
    T = np.zeros(pose7.shape[:-1] + (4, 4))
    T[..., :3, :3] = quat_to_mat(pose7[..., 3:])
    T[..., :3, 3] = pose7[..., :3]
    T[..., 3, 3] = 1.0
    return T


def kabsch_transform(rest: np.ndarray, current: np.ndarray) -> np.ndarray:
    """4x4 rigid transform T with current ~ T @ rest (least squares over the points (P, 3), equal weights)."""
    rest = np.asarray(rest, dtype=np.float64)
    current = np.asarray(current, dtype=np.float64)
    if rest.shape != current.shape or rest.ndim != 2 or rest.shape[1] != 3 or len(rest) < 3:
        raise ValueError(f"rest and current must both have shape (P, 3) with P >= 3, got {rest.shape}, {current.shape}")
    mu_r, mu_c = rest.mean(0), current.mean(0)
    H = (rest - mu_r).T @ (current - mu_c)
    U, _, Vt = np.linalg.svd(H)
    d = np.sign(np.linalg.det(Vt.T @ U.T))
    R = Vt.T @ np.diag([1.0, 1.0, d]) @ U.T
    T = np.eye(4)
    T[:3, :3] = R
    T[:3, 3] = mu_c - R @ mu_r
    return T
