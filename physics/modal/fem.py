"""Linear-elastic finite elements on straight-sided 4-node and 10-node tetrahedra.

Shape functions are written in barycentric coordinates ``L0..L3``: the linear element
uses ``N_a = L_a``; the quadratic element has corner functions ``L_a (2 L_a - 1)`` and
edge functions ``4 L_i L_j`` on the edges ``EDGES``. Stiffness
``K_e = int B^T D B dV`` uses the 4-point rule (exact: the integrand is at most quadratic);
the consistent mass ``M_e = rho int N^T N dV`` is integrated exactly with
``int L^alpha dV = 6 V alpha! / (|alpha| + 3)!``. Assembly is vectorised over elements.
"""

from __future__ import annotations

from math import factorial

import numpy as np
import scipy.sparse as sp
from numpy.typing import NDArray

__all__ = [
    "EDGES",
    "quadratic_nodes",
    "shape_functions",
    "shape_gradients",
    "element_stiffness",
    "assemble",
    "reference_mass",
]

EDGES = np.array([(0, 1), (0, 2), (0, 3), (1, 2), (1, 3), (2, 3)], dtype=np.int64)

# 4-point degree-2 rule on the tetrahedron (barycentric points, weights summing to 1).
_QA, _QB = 0.5854101966249685, 0.1381966011250105
QUAD_POINTS = np.full((4, 4), _QB) + np.eye(4) * (_QA - _QB)
QUAD_WEIGHTS = np.full(4, 0.25)


def quadratic_nodes(
    vertices: NDArray[np.float64], tets: NDArray[np.int64]
) -> tuple[NDArray[np.float64], NDArray[np.int64], NDArray[np.int64]]:
    """Add one node per unique edge.

    Returns ``(nodes (V + E_u, 3), elements (T, 10), edge_vertices (E_u, 2))``: the
    vertices come first, then edge midpoints; element columns 4..9 follow ``EDGES``.
    """
    nv = len(vertices)
    pairs = np.sort(tets[:, EDGES], axis=2).reshape(-1, 2)
    keys = pairs[:, 0] * nv + pairs[:, 1]
    unique, inverse = np.unique(keys, return_inverse=True)
    edge_vertices = np.stack([unique // nv, unique % nv], axis=1)
    mid = 0.5 * (vertices[edge_vertices[:, 0]] + vertices[edge_vertices[:, 1]])
    elements = np.concatenate([tets, nv + inverse.reshape(-1, 6)], axis=1)
    return np.concatenate([vertices, mid]), elements, edge_vertices


def shape_functions(bary: NDArray[np.float64], order: int) -> NDArray[np.float64]:
    """Shape function values ``(..., 4 or 10)`` at barycentric coordinates ``(..., 4)``."""
    if order == 1:
        return bary.copy()
    corner = bary * (2.0 * bary - 1.0)
    edge = 4.0 * bary[..., EDGES[:, 0]] * bary[..., EDGES[:, 1]]
    return np.concatenate([corner, edge], axis=-1)


def _dshape_dbary(bary: NDArray[np.float64], order: int) -> NDArray[np.float64]:
    """Derivatives ``dN_a / dL_b`` with shape ``(..., n, 4)``."""
    eye = np.eye(4)
    if order == 1:
        return np.broadcast_to(eye, bary.shape[:-1] + (4, 4)).copy()
    corner = eye * (4.0 * bary[..., None, :] - 1.0)  # (..., 4, 4): delta_ab (4 L_a - 1)
    i, j = EDGES[:, 0], EDGES[:, 1]
    edge = 4.0 * (eye[i] * bary[..., j, None] + eye[j] * bary[..., i, None])  # (..., 6, 4)
    return np.concatenate([corner, edge], axis=-2)


def barycentric_gradients(corners: NDArray[np.float64]) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Gradients ``grad L_b`` (T, 4, 3) and volumes (T,) of tetrahedra with corners (T, 4, 3)."""
    d = np.swapaxes(corners[:, 1:] - corners[:, :1], 1, 2)  # columns x1-x0, x2-x0, x3-x0
    inv = np.linalg.inv(d)  # rows are grad L1..L3
    grads = np.concatenate([-inv.sum(axis=1, keepdims=True), inv], axis=1)
    return grads, np.linalg.det(d) / 6.0


def shape_gradients(
    bary: NDArray[np.float64], grad_bary: NDArray[np.float64], order: int
) -> NDArray[np.float64]:
    """Spatial gradients ``grad N_a`` (T, n, 3) at barycentric points (T, 4) of elements with ``grad L`` (T, 4, 3)."""
    return np.einsum("tab,tbk->tak", _dshape_dbary(bary, order), grad_bary)


def element_stiffness(
    corners: NDArray[np.float64], lam: NDArray[np.float64], mu: NDArray[np.float64], order: int
) -> NDArray[np.float64]:
    """Element stiffness matrices (T, 3n, 3n) of isotropic tetrahedra, DOFs ordered (node, axis).

    ``K[a i, b j] = int lam dN_a/dx_i dN_b/dx_j + mu dN_a/dx_j dN_b/dx_i + mu delta_ij grad N_a . grad N_b``.
    """
    grads, vol = barycentric_gradients(corners)
    n = 4 if order == 1 else 10
    points, weights = (np.full((1, 4), 0.25), np.ones(1)) if order == 1 else (QUAD_POINTS, QUAD_WEIGHTS)
    ke = np.zeros((len(corners), n, 3, n, 3))
    diag = np.zeros((len(corners), n, n))
    for bary, w in zip(points, weights, strict=True):  # 1 or 4 quadrature points, vectorised over elements
        g = shape_gradients(np.broadcast_to(bary, (len(corners), 4)), grads, order)
        outer = np.einsum("tai,tbj->taibj", g, g)
        ke += (w * vol * lam)[:, None, None, None, None] * outer
        ke += (w * vol * mu)[:, None, None, None, None] * outer.transpose(0, 1, 4, 3, 2)
        diag += (w * vol * mu)[:, None, None] * np.einsum("tak,tbk->tab", g, g)
    for i in range(3):
        ke[:, :, i, :, i] += diag
    return ke.reshape(len(corners), 3 * n, 3 * n)


def _monomials(order: int) -> list[list[tuple[float, tuple[int, int, int, int]]]]:
    """Shape functions as sums of ``coef * L^alpha`` monomials."""
    unit = [tuple(int(k == a) for k in range(4)) for a in range(4)]
    if order == 1:
        return [[(1.0, unit[a])] for a in range(4)]
    corner = [[(2.0, tuple(2 * e for e in unit[a])), (-1.0, unit[a])] for a in range(4)]
    edge = [[(4.0, tuple(unit[i][k] + unit[j][k] for k in range(4)))] for i, j in EDGES]
    return corner + edge


def reference_mass(order: int) -> NDArray[np.float64]:
    """Exact ``int N_a N_b dV / V`` (n, n) on any straight-sided tetrahedron."""
    funcs = _monomials(order)
    n = len(funcs)
    out = np.zeros((n, n))
    for a in range(n):
        for b in range(n):
            for ca, ea in funcs[a]:
                for cb, eb in funcs[b]:
                    alpha = [x + y for x, y in zip(ea, eb, strict=True)]
                    num = 6.0 * np.prod([factorial(k) for k in alpha])
                    out[a, b] += ca * cb * num / factorial(sum(alpha) + 3)
    return out


def _dof_index(elements: NDArray[np.int64]) -> NDArray[np.int64]:
    """(T, 3n) global DOF numbers ``3 * node + axis`` of each element."""
    return (3 * elements[:, :, None] + np.arange(3)).reshape(len(elements), -1)


def assemble(
    nodes: NDArray[np.float64],
    elements: NDArray[np.int64],
    lam: NDArray[np.float64],
    mu: NDArray[np.float64],
    rho: NDArray[np.float64],
    lumped: bool = False,
) -> tuple[sp.csr_matrix, sp.csr_matrix]:
    """Global stiffness and mass matrices (3N, 3N) in CSR form.

    The lumped mass is the HRZ lumping of the consistent one (diagonal scaled to keep each
    element's mass), which stays positive for quadratic tetrahedra where row sums do not.
    """
    order = 1 if elements.shape[1] == 4 else 2
    ndof = 3 * len(nodes)
    corners = nodes[elements[:, :4]]
    ke = element_stiffness(corners, lam, mu, order)
    dofs = _dof_index(elements)
    rows = np.repeat(dofs, dofs.shape[1], axis=1).ravel()
    cols = np.tile(dofs, (1, dofs.shape[1])).ravel()
    K = sp.csr_matrix((ke.ravel(), (rows, cols)), shape=(ndof, ndof))
    K = (K + K.T) * 0.5  # exact symmetry despite round-off in the sums
    vol = np.abs(np.linalg.det(corners[:, 1:] - corners[:, :1])) / 6.0
    mref = reference_mass(order)
    node_mass = rho * vol
    if lumped:
        share = np.diag(mref) / np.trace(mref)
        diag = np.zeros(len(nodes))
        np.add.at(diag, elements, node_mass[:, None] * share)
        M = sp.diags(np.repeat(diag, 3)).tocsr()
    else:
        me = node_mass[:, None, None] * mref  # (T, n, n), then expand to (T, n, 3, n, 3)
        me3 = np.einsum("tab,ij->taibj", me, np.eye(3)).reshape(len(elements), dofs.shape[1], dofs.shape[1])
        keep = me3 != 0
        M = sp.csr_matrix(
            (me3[keep], (rows.reshape(me3.shape)[keep], cols.reshape(me3.shape)[keep])), shape=(ndof, ndof)
        )
    return K, M
