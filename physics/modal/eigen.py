"""Lowest eigenpairs of ``K x = lambda M x`` by shift-invert Lanczos with a fast sparse factorisation.

ARPACK (``scipy.sparse.linalg.eigsh``, mode 3) iterates with ``(K - sigma M)^-1 M``; the
cost is one factorisation of ``K - sigma M`` plus one triangular solve per Lanczos step,
so the factorisation decides the speed. Backends:

- ``"multifrontal"`` (default when a separator tree is given): the built-in
  nested-dissection multifrontal Cholesky of :mod:`.cholesky` (BLAS-3 on dense fronts).
- ``"cholmod"``: CHOLMOD's supernodal Cholesky from the optional ``cholespy`` wheel.
- ``"splu"``: SuperLU in symmetric mode (diagonal pivots; the tree's ordering when
  given, else minimum degree on ``A + A^T``).

``K - sigma M`` is SPD for ``sigma`` below the spectrum. A final Rayleigh-Ritz step in
the converged subspace makes the vectors M-orthonormal to round-off, also inside
degenerate eigenspaces. Dense kernels run single-threaded when ``threadpoolctl`` is
installed: on a busy machine, OpenBLAS threads on small fronts are many times slower.
"""

from __future__ import annotations

import contextlib
from typing import Callable, Iterator, Literal

import numpy as np
import scipy.linalg as sla
import scipy.sparse as sp
from numpy.typing import NDArray
from scipy.sparse.linalg import LinearOperator, eigsh, splu

from .cholesky import MultifrontalCholesky
from .ordering import SeparatorTree

__all__ = ["Backend", "BACKENDS", "single_threaded_blas", "factorize", "lowest_eigenpairs", "rayleigh_ritz"]

Backend = Literal["auto", "multifrontal", "cholmod", "splu"]
BACKENDS = ("auto", "multifrontal", "cholmod", "splu")
DENSE_LIMIT = 200  # below this many DOFs a dense generalized eigensolver is simpler and exact
Solver = Callable[[NDArray[np.float64]], NDArray[np.float64]]


@contextlib.contextmanager
def single_threaded_blas() -> Iterator[None]:
    """Limit BLAS to one thread inside the block when ``threadpoolctl`` is available."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        yield
        return
    with threadpool_limits(limits=1, user_api="blas"):
        yield


def factorize(A: sp.spmatrix, backend: Backend = "auto", tree: SeparatorTree | None = None) -> Solver:
    """Factorise the SPD matrix ``A`` and return ``solve(b) -> A^-1 b`` (b: (n,) or (n, m)).

    With ``tree``, ``A`` must already be permuted into ``tree.order``. ``"auto"`` picks
    ``"multifrontal"`` when a tree is given, else ``"splu"``.
    """
    if backend not in BACKENDS:
        raise ValueError(f"unknown factorisation backend {backend!r}; allowed: {', '.join(BACKENDS)}")
    if backend == "auto":
        backend = "multifrontal" if tree is not None else "splu"
    if backend == "multifrontal":
        if tree is None:
            raise ValueError("backend 'multifrontal' needs a separator tree (physics.modal.ordering.nested_dissection)")
        return MultifrontalCholesky(A, tree.ptr, tree.parent).solve
    if backend == "cholmod":
        try:
            from cholespy import CholeskySolverD, MatrixType
        except ImportError as err:
            raise ValueError("backend 'cholmod' needs the optional package cholespy (pip install cholespy)") from err
        csr = sp.csr_matrix(A)
        chol = CholeskySolverD(
            A.shape[0], csr.indptr.astype(np.int32), csr.indices.astype(np.int32), csr.data.astype(np.float64),
            MatrixType.CSR,
        )

        def solve_cholmod(b: NDArray[np.float64]) -> NDArray[np.float64]:
            rhs = np.ascontiguousarray(b, dtype=np.float64)
            out = np.empty_like(rhs)
            chol.solve(rhs, out)
            return out

        return solve_cholmod
    lu = splu(
        sp.csc_matrix(A),
        permc_spec="NATURAL" if tree is not None else "MMD_AT_PLUS_A",
        diag_pivot_thresh=0.0,
        options={"SymmetricMode": True},
    )
    return lu.solve


def lowest_eigenpairs(
    K: sp.spmatrix,
    M: sp.spmatrix,
    count: int,
    sigma: float = 0.0,
    backend: Backend = "auto",
    tree: SeparatorTree | None = None,
    tol: float = 1e-10,
    rng: np.random.Generator | None = None,
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """The ``count`` eigenpairs of ``K x = lambda M x`` closest above ``sigma``.

    Returns ``(eigenvalues (count,) ascending, vectors (n, count))`` with
    ``vectors.T @ M @ vectors = I``. ``sigma`` must lie below the wanted eigenvalues
    (a small negative value when ``K`` is singular). ``tree`` is a nested-dissection
    separator tree of the DOFs (:func:`.ordering.nested_dissection`); ``rng`` draws the
    Lanczos start vector (default: seed 0, so results are reproducible).
    """
    n = K.shape[0]
    if not 1 <= count <= n:
        raise ValueError(f"count must be in [1, {n}] (the number of free DOFs), got {count}")
    if n <= DENSE_LIMIT or count >= n - 1:
        return sla.eigh(K.toarray(), M.toarray(), subset_by_index=(0, count - 1))
    if tree is not None:
        K = sp.csr_matrix(K)[tree.order][:, tree.order]
        M = sp.csr_matrix(M)[tree.order][:, tree.order]
    with single_threaded_blas():
        solve = factorize((K - sigma * M).tocsc(), backend, tree)
        op = LinearOperator((n, n), matvec=solve, matmat=solve, dtype=np.float64)
        ncv = min(n - 1, max(2 * count + 1, count + 32))
        start = (np.random.default_rng(0) if rng is None else rng).standard_normal(n)
        _, vecs = eigsh(K, k=count, M=M, sigma=sigma, OPinv=op, which="LM", ncv=ncv, tol=tol, v0=start)
    vals, vecs = rayleigh_ritz(K, M, vecs)
    if tree is not None:
        vecs[tree.order] = vecs.copy()
    return vals, vecs


def rayleigh_ritz(
    K: sp.spmatrix, M: sp.spmatrix, basis: NDArray[np.float64]
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Ritz values (ascending) and M-orthonormal Ritz vectors of ``(K, M)`` in the span of ``basis``."""
    kr = basis.T @ (K @ basis)
    mr = basis.T @ (M @ basis)
    vals, y = sla.eigh(0.5 * (kr + kr.T), 0.5 * (mr + mr.T))
    return vals, basis @ y
