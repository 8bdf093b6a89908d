"""Nested-dissection ordering of mesh nodes and its separator tree.

Recursive coordinate bisection: split the nodes at the median of their widest axis, take
the nodes of one half that touch the other half as the separator, order both halves
recursively and the separator after them. The result is a post-ordered tree of node
groups (leaves and separators) whose DOFs are contiguous in the final ordering: the
structure a multifrontal Cholesky factorisation runs on (:mod:`.cholesky`). On 3D meshes
it keeps fronts ``O(n^(2/3))``, far less fill than minimum-degree orderings.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
from numpy.typing import NDArray

__all__ = ["SeparatorTree", "node_adjacency", "nested_dissection"]


@dataclass(frozen=True)
class SeparatorTree:
    """DOF ordering with its elimination tree of groups.

    ``order`` (n,) lists the DOFs to eliminate first to last; group ``g`` owns
    ``order[ptr[g]:ptr[g+1]]``; groups are in post-order and ``parent[g] > g`` (-1 at roots).
    """

    order: NDArray[np.int64]
    ptr: NDArray[np.int64]
    parent: NDArray[np.int64]


def node_adjacency(elements: NDArray[np.int64], num_nodes: int) -> sp.csr_matrix:
    """Node-node adjacency (N, N) of nodes that share an element."""
    cols = elements.ravel()
    rows = np.repeat(np.arange(len(elements)), elements.shape[1])
    incidence = sp.csr_matrix((np.ones(len(cols), dtype=np.int32), (rows, cols)), shape=(len(elements), num_nodes))
    return (incidence.T @ incidence).tocsr()


def _bisect(points: NDArray[np.float64], idx: NDArray[np.int64], adjacency: sp.csr_matrix):
    coord = points[idx, int(np.argmax(np.ptp(points[idx], axis=0)))]
    in_left = coord < np.median(coord)
    if not in_left.any() or in_left.all():
        in_left = np.zeros(len(idx), dtype=bool)
        in_left[np.argsort(coord, kind="stable")[: len(idx) // 2]] = True
    left, right = idx[in_left], idx[~in_left]
    touches = np.asarray(adjacency[left][:, right].sum(axis=1)).ravel() > 0
    return left[~touches], right, left[touches]


def nested_dissection(
    points: NDArray[np.float64],
    adjacency: sp.csr_matrix,
    dofs_per_node: NDArray[np.int64],
    leaf_size: int = 64,
) -> SeparatorTree:
    """Separator tree over the DOFs of mesh nodes at ``points``.

    ``dofs_per_node`` (N, 3) holds each node's DOF numbers, -1 for a clamped DOF; groups
    of at most ``leaf_size`` nodes are not split further.
    """
    groups: list[NDArray[np.int64]] = []
    parents: list[int] = []
    emitted: list[int] = []

    def new_group(idx: NDArray[np.int64], parent: int) -> int:
        groups.append(idx)
        parents.append(parent)
        return len(groups) - 1

    def visit(idx: NDArray[np.int64], parent: int) -> None:
        if len(idx) <= leaf_size:
            emitted.append(new_group(idx, parent))
            return
        left, right, sep = _bisect(points, idx, adjacency)
        s = new_group(sep, parent)
        visit(left, s)
        visit(right, s)
        emitted.append(s)

    visit(np.arange(len(points)), -1)
    position = np.empty(len(groups), dtype=np.int64)
    position[emitted] = np.arange(len(emitted))
    parent = np.array([position[parents[g]] if parents[g] >= 0 else -1 for g in emitted], dtype=np.int64)
    owned = [dofs_per_node[groups[g]].ravel() for g in emitted]
    owned = [d[d >= 0] for d in owned]
    ptr = np.concatenate([[0], np.cumsum([len(d) for d in owned])]).astype(np.int64)
    return SeparatorTree(order=np.concatenate(owned).astype(np.int64), ptr=ptr, parent=parent)
