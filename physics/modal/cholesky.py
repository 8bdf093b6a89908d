"""Multifrontal sparse Cholesky ``A = L L^T`` over a separator tree, dense fronts in LAPACK.

For each group ``g`` of the tree (children before parents) the dense front ``F`` on the
rows ``own_g + boundary_g`` gathers the columns ``own_g`` of ``A`` and the update
matrices of the children (extend-add); then ``L11 = chol(F11)``,
``L21 = F21 L11^-T`` and the update ``U = F22 - L21 L21^T`` goes to the parent. The
boundary of a group is every later DOF coupled to its subtree. All arithmetic happens
in BLAS-3 calls on dense blocks, so the factorisation runs at dense-matrix speed and
solves with many right-hand sides cost little more than with one.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
from numpy.typing import NDArray
from scipy.linalg import blas, lapack

__all__ = ["MultifrontalCholesky"]


class MultifrontalCholesky:
    """Cholesky factor of an SPD matrix ``A`` already permuted into separator-tree order.

    ``ptr`` (G + 1,) delimits the DOFs each group owns; ``parent`` (G,) is the tree
    (post-order, -1 at roots). :meth:`solve` returns ``A^-1 b`` for b of shape (n,) or (n, m).
    Raises ``ValueError`` if ``A`` is not positive definite.
    """

    def __init__(self, A: sp.spmatrix, ptr: NDArray[np.int64], parent: NDArray[np.int64]) -> None:
        lower = sp.tril(sp.csc_matrix(A)).tocsc()  # column j holds rows >= j
        lower.sort_indices()
        self.n = A.shape[0]
        num_groups = len(parent)
        children: list[list[int]] = [[] for _ in range(num_groups)]
        for g, p in enumerate(parent):
            if p >= 0:
                children[p].append(g)
        self.own: list[slice] = []
        self.boundary: list[NDArray[np.int64]] = []
        self.l11: list[NDArray[np.float64]] = []
        self.l21: list[NDArray[np.float64]] = []
        updates: dict[int, NDArray[np.float64]] = {}
        for g in range(num_groups):
            start, end = int(ptr[g]), int(ptr[g + 1])
            rows = lower.indices[lower.indptr[start] : lower.indptr[end]]
            pieces = [rows[rows >= end]] + [self.boundary[c][self.boundary[c] >= end] for c in children[g]]
            bnd = np.unique(np.concatenate(pieces)) if pieces else np.zeros(0, dtype=np.int64)
            front_index = np.concatenate([np.arange(start, end), bnd])
            nown, size = end - start, len(front_index)
            front = np.zeros((size, size))
            block = lower[:, start:end].tocoo()  # rows are global, in [start, n)
            local = np.searchsorted(front_index, block.row)
            front[local, block.col] = block.data
            for c in children[g]:
                if c not in updates:
                    continue
                pos = np.searchsorted(front_index, self.boundary[c])
                front[np.ix_(pos, pos)] += updates.pop(c)
            if nown:
                l11, info = lapack.dpotrf(front[:nown, :nown], lower=1, clean=1, overwrite_a=0)
                if info != 0:
                    raise ValueError("matrix is not positive definite (Cholesky pivot <= 0)")
                # L21 = F21 L11^-T  <=>  solve L11 X = F21^T, L21 = X^T
                l21 = (blas.dtrsm(1.0, l11, front[nown:, :nown], side=1, lower=1, trans_a=1) if len(bnd)
                       else np.zeros((0, nown)))
                self.l11.append(np.asfortranarray(l11))
                self.l21.append(np.ascontiguousarray(l21))
            else:
                l21 = np.zeros((len(bnd), 0))
                self.l11.append(np.zeros((0, 0)))
                self.l21.append(l21)
            if len(bnd) and parent[g] >= 0:
                # U = F22 - L21 L21^T (full symmetric block, lower half is enough for extend-add)
                f22 = front[nown:, nown:]
                updates[g] = f22 - l21 @ l21.T if nown else f22
            self.own.append(slice(start, end))
            self.boundary.append(bnd)

    @property
    def nnz(self) -> int:
        """Stored entries of L (diagonal blocks counted in full)."""
        return sum(a.size + b.size for a, b in zip(self.l11, self.l21, strict=True))

    def solve(self, b: NDArray[np.float64]) -> NDArray[np.float64]:
        """``A^-1 b`` by a forward sweep up the tree and a backward sweep down it."""
        y = np.array(b, dtype=np.float64, order="C", copy=True)
        vec = y.ndim == 1
        if vec:
            y = y[:, None]
        for own, bnd, l11, l21 in zip(self.own, self.boundary, self.l11, self.l21, strict=True):
            if l11.size == 0:
                continue
            x = blas.dtrsm(1.0, l11, y[own], lower=1)
            y[own] = x
            if len(bnd):
                y[bnd] -= l21 @ x
        for own, bnd, l11, l21 in zip(self.own[::-1], self.boundary[::-1], self.l11[::-1], self.l21[::-1], strict=True):
            if l11.size == 0:
                continue
            rhs = y[own] - l21.T @ y[bnd] if len(bnd) else y[own]
            y[own] = blas.dtrsm(1.0, l11, rhs, lower=1, trans_a=1)
        return y[:, 0] if vec else y
