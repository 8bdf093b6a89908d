"""Gaussian splats driven by physics: MPM particles (PhysGaussian) or modes (PhysDreamer).

Kinematics of a deformed Gaussian with local deformation gradient F (its rest state is
the loaded scene): centre ``x``, covariance ``F Sigma F^T``, rotation ``R = polar(F)``
(F = R S, S symmetric positive definite) applied to its view-dependent colour (SH
coefficients rotated by R, so the colour seen from ``R d`` is the rest colour seen from
``d``) and to its normal. The deformed covariance is written back as scales + rotation
(exact eigen-decomposition); opacity and every other property stay as loaded.

Drivers:

- :class:`MPMSplatDriver`: every Gaussian is an MPM particle; interior fill particles
  (see :mod:`physics.splats.fill`) give the object its volume and are never written back.
  For elastic materials the particle's F is the whole deformation, and the covariance is
  F Sigma F^T in float64 (flat Gaussians, 1e-3 thin, stay exact); for plastic ones the
  solver tracks ``Sigma <- (I + dt C) Sigma (I + dt C)^T`` every substep (total
  deformation, plastic flow included; float32, so eigenvalues are floored at
  (1e-3 x the smallest rest scale)^2). R = polar(F) of the particle's elastic F, as in
  PhysGaussian.
- :class:`ModalSplatDriver`: modes of a tetrahedral FE model at the Gaussians' centres
  (barycentric interpolation inside the mesh, k = 8 nearest vertices outside, as
  PhysDreamer), giving u and F = I + grad u per Gaussian for modal coordinates q.
- :class:`KNearestDeformation`: any displacement field known at particles (e.g. tracked
  points or a coarse simulation) carried to the Gaussians by their k = 8 nearest
  particles: an inverse-distance weighted least-squares affine fit gives u and F.
"""

from __future__ import annotations

import numpy as np
from scipy.spatial import cKDTree

from .gaussians import GaussianSplats
from .sh import rotate_sh


def is_elastic(material: object) -> bool:
    """Whether a particle's F is its whole deformation gradient (no plastic return mapping), so a Gaussian's
    covariance is F Sigma F^T and the solver need not track covariances."""
    from physics.mpm.materials import FixedCorotated, Fracture, NeoHookean

    return isinstance(material, (FixedCorotated, NeoHookean, Fracture))

__all__ = ["polar_rotations", "is_elastic", "deform_splats", "MPMSplatDriver", "ModalSplatDriver",
           "KNearestDeformation"]


def polar_rotations(F: np.ndarray) -> np.ndarray:
    """Rotation factors R (N, 3, 3) of the polar decompositions F = R S of ``F`` (N, 3, 3), via SVD
    (R = U V^T, det +1)."""
    A = np.asarray(F, dtype=np.float64)
    if A.ndim != 3 or A.shape[1:] != (3, 3) or not np.all(np.isfinite(A)):
        raise ValueError(f"deformation gradients must be finite with shape (N, 3, 3), got {A.shape}")
    U, _, Vt = np.linalg.svd(A)
    flip = np.linalg.det(U @ Vt) < 0.0  # inverted elements: nearest proper rotation
    U[flip, :, 2] *= -1.0
    return U @ Vt


def deform_splats(
    rest: GaussianSplats,
    positions: np.ndarray,
    deformation: np.ndarray | None = None,
    covariances: np.ndarray | None = None,
    rotations: np.ndarray | None = None,
    min_variance: float = 0.0,
) -> GaussianSplats:
    """The Gaussians of ``rest`` moved to ``positions`` (N, 3) and deformed.

    Args:
        rest: the Gaussians in their rest state.
        positions: deformed centres.
        deformation: deformation gradients F (N, 3, 3) from the rest state; gives the
            covariances F Sigma F^T and rotations polar(F) unless those are given.
        covariances: deformed covariances (N, 3, 3), e.g. tracked by an MPM solver.
        rotations: rotations (N, 3, 3) applied to the SH colour and the normals.
        min_variance: floor on the deformed covariances' eigenvalues (0: they must be positive definite).
    With neither ``deformation`` nor the other two, only the centres move.
    """
    n = len(rest)
    if deformation is not None:
        F = np.asarray(deformation, dtype=np.float64)
        if F.shape != (n, 3, 3):
            raise ValueError(f"deformation must have shape ({n}, 3, 3), got {F.shape}")
        if covariances is None:
            covariances = F @ rest.covariances @ F.transpose(0, 2, 1)
        if rotations is None:
            rotations = polar_rotations(F)
    sh = normals = None
    if rotations is not None:
        R = np.asarray(rotations, dtype=np.float64)
        if R.shape != (n, 3, 3):
            raise ValueError(f"rotations must have shape ({n}, 3, 3), got {R.shape}")
        sh = rotate_sh(rest.sh, R) if rest.degree > 0 else None
        normals = np.einsum("nij,nj->ni", R, rest.normals) if rest.has_normals else None
    return rest.updated(positions=positions, covariances=covariances, sh=sh, normals=normals, min_variance=min_variance)


class MPMSplatDriver:
    """Gaussians simulated as MPM particles of one material (PhysGaussian).

    Typical use::

        solver = MPMSolver(MPMConfig(grid_res=48, bounds=..., track_covariance=True))
        solver.add_collider(Plane(...))
        fill = fill_interior(splats, spacing=solver.config.dx / 2)
        driver = MPMSplatDriver(splats, solver, FixedCorotated(2e4, 0.3, 1000.0), fill.positions,
                                spacing=fill.spacing, origin=fill.origin)
        solver.step(1 / 30)
        frame = driver.splats()        # deformed GaussianSplats, fill particles left out

    Args:
        splats: the Gaussians (rest state); their centres must lie inside the solver's bounds.
        solver: an ``MPMSolver`` whose config has ``track_covariance=True``.
        material: the material of all particles.
        fill_positions: (M, 3) interior particles, or None.
        spacing, origin: the particle grid: each cell of side ``spacing`` centred on
            ``origin + i * spacing`` shares its volume among the particles in it; spacing
            defaults to dx / 2 and origin to the bounds' lower corner.
        velocities: initial velocities, (3,) for all or (N + M, 3) per particle (Gaussians first).
        total_volume: when given (e.g. ``InteriorFill.volume``), the particle volumes are
            scaled to add up to it: cells holding only surface Gaussians outside the
            enclosed volume would otherwise add mass.
    """

    def __init__(
        self,
        splats: GaussianSplats,
        solver: object,
        material: object,
        fill_positions: np.ndarray | None = None,
        spacing: float | None = None,
        origin: np.ndarray | None = None,
        velocities: np.ndarray | None = None,
        total_volume: float | None = None,
    ) -> None:
        from .fill import shared_cell_volumes

        self.elastic = is_elastic(material)
        tracked = getattr(getattr(solver, "config", None), "track_covariance", None)
        if tracked is None or (not tracked and not self.elastic):
            raise ValueError("solver must be an MPMSolver, with MPMConfig(track_covariance=True) for plastic materials")
        self.rest = splats
        self.solver = solver
        fill = np.zeros((0, 3)) if fill_positions is None else np.asarray(fill_positions, dtype=np.float64)
        if fill.ndim != 2 or fill.shape[1] != 3:
            raise ValueError(f"fill_positions must have shape (M, 3), got {fill.shape}")
        h = solver.config.dx / 2.0 if spacing is None else float(spacing)
        o = solver.config.lower if origin is None else np.asarray(origin, dtype=np.float64)
        x = np.concatenate([splats.positions, fill])
        volumes = shared_cell_volumes(x, h, o)
        if total_volume is not None:
            if not (np.isfinite(total_volume) and total_volume > 0.0):
                raise ValueError(f"total_volume must be a finite positive volume (m^3), got {total_volume}")
            volumes *= total_volume / volumes.sum()
        cov = np.concatenate([splats.covariances, np.broadcast_to((h / 2.0) ** 2 * np.eye(3), (len(fill), 3, 3))])
        v = None
        if velocities is not None:
            v = np.broadcast_to(np.asarray(velocities, dtype=np.float64), x.shape).copy()
        self.indices = solver.add_particles(x, volumes, material, velocities=v, covariances=cov if tracked else None)
        self.rest_covariances = splats.covariances
        self.min_variance = (1e-3 * float(splats.scales.min())) ** 2 if len(splats) else 0.0
        self.num_gaussians = len(splats)
        self.num_fill = len(fill)

    @property
    def gaussian_indices(self) -> np.ndarray:
        """Solver particle indices of the Gaussians (in the splats' order)."""
        return self.indices[: self.num_gaussians]

    def splats(self) -> GaussianSplats:
        """The Gaussians in the solver's current state (positions, tracked covariances, SH rotated by polar(F))."""
        from physics.mpm.gaussians import rotations

        idx = self.gaussian_indices
        particles = self.solver.particles
        positions = particles.x.numpy()[idx].astype(np.float64)
        R = rotations(particles.F)[idx]
        if self.elastic:  # F is the whole deformation: F Sigma F^T in float64 keeps flat Gaussians flat
            F = particles.F.numpy()[idx].astype(np.float64)
            covariances = F @ self.rest_covariances @ F.transpose(0, 2, 1)
        else:
            covariances = particles.covariance.numpy()[idx].astype(np.float64)
        return deform_splats(self.rest, positions, covariances=covariances, rotations=R, min_variance=self.min_variance)


class ModalSplatDriver:
    """Gaussians deformed by the modes of a tetrahedral FE model (PhysDreamer).

    Each Gaussian centre is embedded in the mesh (shape functions of its tetrahedron, or
    its ``k_nearest`` = 8 nearest vertices when outside); ``splats(q)`` gives the
    Gaussians for modal coordinates ``q`` (k,), e.g. from ``ModalDynamics.q``.
    """

    def __init__(self, splats: GaussianSplats, model: object, modes: object, k_nearest: int = 8) -> None:
        import torch

        from physics.modal.embedding import PointEmbedding, PointModes

        self.rest = splats
        self.point_modes = PointModes(modes, PointEmbedding(model, splats.positions, k_nearest=k_nearest),
                                      dtype=torch.float64)

    def splats(self, q: np.ndarray) -> GaussianSplats:
        """The Gaussians displaced by modal coordinates ``q`` (k,)."""
        u = self.point_modes.displacements(q).cpu().numpy()
        F = self.point_modes.deformation_gradients(q).cpu().numpy()
        return deform_splats(self.rest, self.rest.positions + u, F)


class KNearestDeformation:
    """Displacements and deformation gradients at query points from a field known at particles.

    Each query point takes its ``k`` nearest particles (rest positions) with weights
    1 / distance^2 (normalised) and fits them an affine displacement field by weighted
    least squares: ``u(x) ~ u_bar + G (x - x_bar)`` (weighted means ``u_bar``, ``x_bar``).
    The point gets ``u(x_q)`` and F = I + G, so any affine field (rigid motions included)
    is reproduced exactly.
    """

    def __init__(self, particles: np.ndarray, points: np.ndarray, k: int = 8) -> None:
        src = np.asarray(particles, dtype=np.float64)
        dst = np.asarray(points, dtype=np.float64)
        if src.ndim != 2 or src.shape[1] != 3 or dst.ndim != 2 or dst.shape[1] != 3:
            raise ValueError(f"particles and points must be (P, 3) and (Q, 3), got {src.shape} and {dst.shape}")
        if not 4 <= k <= len(src):
            raise ValueError(f"k must lie in [4, number of particles = {len(src)}] (an affine fit needs 4 points), "
                             f"got {k}")
        dist, self.neighbours = cKDTree(src).query(dst, k=k)
        w = 1.0 / np.maximum(dist, 1e-12) ** 2
        self.weights = w / w.sum(axis=1, keepdims=True)
        rel = src[self.neighbours] - dst[:, None, :]  # (Q, k, 3)
        self._offset = np.einsum("qk,qkd->qd", self.weights, rel)  # x_bar - x_q
        centred = rel - self._offset[:, None, :]
        moment = np.einsum("qk,qki,qkj->qij", self.weights, centred, centred)
        self._fit = np.einsum("qij,qk,qkj->qki", np.linalg.pinv(moment), self.weights, centred)  # G = sum_k u_k fit_k^T

    def _mean_and_gradient(self, particle_displacements: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        u = np.asarray(particle_displacements, dtype=np.float64)
        if u.ndim != 2 or u.shape[1] != 3 or len(u) <= int(self.neighbours.max()):
            raise ValueError(f"particle_displacements must have shape (P, 3) for the particles given, got {u.shape}")
        u = u[self.neighbours]
        mean = np.einsum("qk,qkd->qd", self.weights, u)
        return mean, np.einsum("qkd,qkj->qdj", u - mean[:, None, :], self._fit)

    def displacements(self, particle_displacements: np.ndarray) -> np.ndarray:
        """Displacements (Q, 3) at the points of ``particle_displacements`` (P, 3)."""
        mean, G = self._mean_and_gradient(particle_displacements)
        return mean - np.einsum("qdj,qj->qd", G, self._offset)

    def deformation_gradients(self, particle_displacements: np.ndarray) -> np.ndarray:
        """Deformation gradients I + grad u (Q, 3, 3) at the points."""
        return np.eye(3) + self._mean_and_gradient(particle_displacements)[1]
