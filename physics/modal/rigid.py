"""Rigid-body motions of a meshed body and how many of them its supports leave free.

A connected body has six infinitesimal rigid motions (three translations, three
rotations ``w x (x - c)``); clamping nodes removes those that do not vanish on the
clamped nodes. The count is exact (a rank computation), so the eigen-solver can drop
exactly that many zero-frequency modes instead of guessing from a threshold.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
from numpy.typing import NDArray
from scipy.sparse.csgraph import connected_components

__all__ = ["rigid_basis", "count_rigid_modes"]


def rigid_basis(points: NDArray[np.float64]) -> NDArray[np.float64]:
    """(3P, 6) displacements of ``points`` under unit translations and rotations about their centroid."""
    r = points - points.mean(axis=0)
    basis = np.zeros((len(points), 3, 6))
    basis[:, :, :3] = np.eye(3)
    for k in range(3):  # rotation about axis k: e_k x r
        basis[:, :, 3 + k] = np.cross(np.eye(3)[k], r)
    return basis.reshape(-1, 6)


def count_rigid_modes(
    nodes: NDArray[np.float64], elements: NDArray[np.int64], fixed_nodes: NDArray[np.bool_]
) -> int:
    """Number of zero-energy rigid motions left by clamping ``fixed_nodes``, summed over connected parts."""
    n = len(nodes)
    cols = elements.ravel()
    rows = np.repeat(np.arange(len(elements)), elements.shape[1])
    incidence = sp.csr_matrix((np.ones(len(cols)), (rows, cols)), shape=(len(elements), n))
    adjacency = incidence.T @ incidence
    count_parts, labels = connected_components(adjacency, directed=False)
    used = np.zeros(n, dtype=bool)
    used[cols] = True
    total = 0
    for part in range(count_parts):
        members = (labels == part) & used
        if not members.any():
            continue
        clamped = members & fixed_nodes
        if not clamped.any():
            total += 6
            continue
        scale = np.ptp(nodes[members], axis=0).max() or 1.0
        basis = rigid_basis(nodes[members] / scale)
        at_clamp = basis.reshape(-1, 3, 6)[clamped[members]].reshape(-1, 6)
        total += 6 - int(np.linalg.matrix_rank(at_clamp, tol=1e-9))
    return total
