"""Modes at arbitrary query points (e.g. Gaussian centres): displacements, deformation gradients, loads.

A point inside the mesh takes the shape functions of its containing tetrahedron at its
barycentric coordinates (exact FE interpolation, also for quadratic elements). A point
outside takes inverse-square-distance weights of its ``k`` nearest mesh vertices (as
PhysDreamer does for Gaussians), and its gradient from the nearest tetrahedron at the
closest barycentric point. :class:`PointModes` stores the mode basis at the points as
torch tensors, so evaluation is one matrix product over all points and modes.
"""

from __future__ import annotations

import numpy as np
import torch
from numpy.typing import ArrayLike, NDArray
from scipy.spatial import cKDTree

from .fem import barycentric_gradients, shape_functions, shape_gradients
from .model import ModalModel, Modes

__all__ = ["PointEmbedding", "PointModes"]


class PointEmbedding:
    """Interpolation weights of query ``points`` (P, 3) in the FE mesh of ``model``.

    ``node_ids`` (P, n) and ``weights`` (P, n) give values, ``grad_weights`` (P, n, 3) give
    spatial gradients; ``inside`` (P,) tells which points lie in a tetrahedron (within
    ``tol`` in barycentric coordinates). ``candidates`` tetrahedra nearest by centroid
    are searched per point.
    """

    def __init__(
        self, model: ModalModel, points: ArrayLike, k_nearest: int = 8, candidates: int = 24, tol: float = 1e-9
    ) -> None:
        pts = np.asarray(points, dtype=np.float64)
        if pts.ndim != 2 or pts.shape[1] != 3 or not np.all(np.isfinite(pts)):
            raise ValueError(f"points must be a finite (P, 3) array, got shape {pts.shape}")
        if k_nearest < 1:
            raise ValueError(f"k_nearest must be >= 1, got {k_nearest}")
        self.points = pts
        vertices, tets, order = model.vertices, model.tets, model.order
        corners = vertices[tets]
        grad_bary, _ = barycentric_gradients(corners)
        centroids = cKDTree(corners.mean(axis=1))
        elem, b = self._locate(pts, corners, grad_bary, centroids, candidates)
        missed = np.flatnonzero(b.min(axis=1) < -tol)
        if len(missed) and candidates < len(tets):  # widen the search once for points near many tets
            elem2, b2 = self._locate(pts[missed], corners, grad_bary, centroids, 8 * candidates)
            better = b2.min(axis=1) > b[missed].min(axis=1)
            elem[missed[better]], b[missed[better]] = elem2[better], b2[better]
        self.inside = b.min(axis=1) >= -tol
        self.element = elem
        clamped = np.clip(b, 0.0, None)
        clamped /= clamped.sum(axis=1, keepdims=True)
        self.node_ids = model.elements[elem].copy()
        self.weights = shape_functions(np.where(self.inside[:, None], b, clamped), order)
        self.grad_weights = shape_gradients(clamped, grad_bary[elem], order)
        outside = np.flatnonzero(~self.inside)
        if len(outside):
            k = min(k_nearest, len(vertices), self.node_ids.shape[1])
            dist, near = cKDTree(vertices).query(pts[outside], k=k)
            dist, near = dist.reshape(len(outside), k), near.reshape(len(outside), k)
            w = 1.0 / np.maximum(dist, 1e-12) ** 2
            self.node_ids[outside] = 0
            self.weights[outside] = 0.0
            self.node_ids[outside, :k] = near
            self.weights[outside, :k] = w / w.sum(axis=1, keepdims=True)

    @staticmethod
    def _locate(
        pts: NDArray[np.float64], corners: NDArray[np.float64], grad_bary: NDArray[np.float64], centroids: cKDTree,
        count: int,
    ) -> tuple[NDArray[np.int64], NDArray[np.float64]]:
        """Best candidate tetrahedron (P,) and barycentric coordinates (P, 4) among the ``count`` nearest."""
        cand = centroids.query(pts, k=min(count, len(corners)))[1].reshape(len(pts), -1)
        # barycentric coordinates in each candidate: L_1..3 = grad L_1..3 . (x - x_0), L_0 = 1 - sum
        rel = pts[:, None, :] - corners[cand, 0]  # (P, C, 3)
        l123 = np.einsum("pcbk,pck->pcb", grad_bary[cand][:, :, 1:], rel)
        bary = np.concatenate([1.0 - l123.sum(axis=2, keepdims=True), l123], axis=2)
        best = np.argmax(bary.min(axis=2), axis=1)
        rows = np.arange(len(pts))
        return cand[rows, best], bary[rows, best]

    def interpolate(self, node_values: NDArray[np.float64]) -> NDArray[np.float64]:
        """Values at the points, (..., P, d), of ``node_values`` (..., N, d)."""
        return np.einsum("pn,...pnd->...pd", self.weights, node_values[..., self.node_ids, :])

    def gradient(self, node_values: NDArray[np.float64]) -> NDArray[np.float64]:
        """Spatial gradients ``d v_i / d x_j`` at the points, (..., P, d, 3), of ``node_values`` (..., N, d)."""
        return np.einsum("pnj,...pni->...pij", self.grad_weights, node_values[..., self.node_ids, :])


class PointModes:
    """Mode shapes and their gradients at query points, ready for batched evaluation in torch.

    ``basis`` is (P, 3, k) and ``grad_basis`` (P, 3, 3, k): ``u(x_p) = basis[p] @ q`` and
    ``F(x_p) = I + grad_basis[p] @ q``. ``device``/``dtype`` choose where it runs.
    """

    def __init__(
        self,
        modes: Modes,
        embedding: PointEmbedding,
        device: str | torch.device = "cpu",
        dtype: torch.dtype = torch.float32,
    ) -> None:
        basis = embedding.interpolate(modes.node_shapes)  # (k, P, 3)
        grad = embedding.gradient(modes.node_shapes)  # (k, P, 3, 3)
        self.num_modes = modes.num_modes
        self.num_points = len(embedding.points)
        self.basis = torch.as_tensor(np.moveaxis(basis, 0, -1).copy(), device=device, dtype=dtype)
        self.grad_basis = torch.as_tensor(np.moveaxis(grad, 0, -1).copy(), device=device, dtype=dtype)

    def _coords(self, q: ArrayLike | torch.Tensor) -> torch.Tensor:
        qt = torch.as_tensor(q, device=self.basis.device, dtype=self.basis.dtype)
        if qt.shape[-1] != self.num_modes:
            raise ValueError(f"modal coordinates must end with {self.num_modes} modes, got shape {tuple(qt.shape)}")
        return qt

    def displacements(self, q: ArrayLike | torch.Tensor) -> torch.Tensor:
        """Displacements (..., P, 3) for coordinates ``q`` (..., k)."""
        qt = self._coords(q)
        flat = self.basis.reshape(-1, self.num_modes)  # (P*3, k)
        return (qt.reshape(-1, self.num_modes) @ flat.T).reshape(*qt.shape[:-1], self.num_points, 3)

    def deformation_gradients(self, q: ArrayLike | torch.Tensor) -> torch.Tensor:
        """Deformation gradients ``I + grad u`` (..., P, 3, 3) for coordinates ``q`` (..., k)."""
        qt = self._coords(q)
        flat = self.grad_basis.reshape(-1, self.num_modes)
        grad = (qt.reshape(-1, self.num_modes) @ flat.T).reshape(*qt.shape[:-1], self.num_points, 3, 3)
        return grad + torch.eye(3, device=grad.device, dtype=grad.dtype)

    def modal_load(self, forces: ArrayLike | torch.Tensor, points: ArrayLike | None = None) -> NDArray[np.float64]:
        """Modal force ``phi^T f`` (k,) of point forces (P, 3) (or impulses), applied at the embedded points.

        ``points`` (P,) optionally selects which embedded points carry the forces.
        """
        basis = (self.basis if points is None
                 else self.basis[torch.as_tensor(np.asarray(points), device=self.basis.device)])
        f = torch.as_tensor(forces, device=basis.device, dtype=torch.float64).reshape(basis.shape[0], 3)
        return torch.einsum("pdk,pd->k", basis.to(torch.float64), f).cpu().numpy()
