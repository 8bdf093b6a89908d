"""FE modes of a splat made of separate solid pieces: one clamped (or free) modal model per piece.

A voxel mesh of disconnected pieces, or of pieces touching only at an edge or a corner, has
near-zero-frequency modes (rigid motions of the pieces, hinges) and Gaussians outside the
mesh extrapolated from far vertices: linear modal dynamics then flings them away. Here:

- the solid (:func:`~physics.splats.solid.solid_fill`) is coarsened to the modal voxel (2 x 2 x 2
  fill nodes, occupied when at least half solid or holding a Gaussian centre, so every Gaussian
  is inside the mesh) and split into face-connected pieces
  (:func:`~physics.splats.solid.solid_components`);
- each Gaussian belongs to the piece of its voxel;
- each piece gets its own tetrahedral mesh and :class:`~physics.modal.ModalModel` (clamped at its
  own lowest vertex layer with ``fixed="bottom"``, exact rigid modes removed with ``"none"``), so no
  mode is a rigid motion of a piece; modes below ``frequency_floor`` x the piece's wave
  frequency ``sqrt(E / rho) / (2 pi L)`` are dropped all the same (counted in ``num_dropped``);
- pieces of fewer than ``min_voxels`` voxels (e.g. lone Gaussians) are not simulated (their
  Gaussians stay at rest).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from .drive import deform_splats
from .gaussians import GaussianSplats
from .solid import SolidFill, solid_components

__all__ = ["ModalPiece", "PieceModes", "modal_pieces", "coarse_solid"]


def coarse_solid(fill: SolidFill, factor: int = 2,
                 points: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray, float, np.ndarray]:
    """The solid on voxels of ``factor`` fill nodes a side: grid (occupied when at least half solid, or holding one
    of ``points``), cell origin (corner of cell 0), voxel size and each voxel's solid volume (the fill's, m^3)."""
    f = fill.fraction
    pad = [(0, (-s) % factor) for s in f.shape]
    f = np.pad(f, pad)
    blocks = f.reshape(f.shape[0] // factor, factor, f.shape[1] // factor, factor, f.shape[2] // factor, factor)
    occupied = blocks.mean(axis=(1, 3, 5)) >= 0.5
    solid = blocks.sum(axis=(1, 3, 5)) * fill.spacing**3
    corner, voxel = fill.origin - 0.5 * fill.spacing, factor * fill.spacing
    if points is not None and len(points):
        cell = np.clip(np.floor((points - corner) / voxel).astype(np.int64), 0, np.array(occupied.shape) - 1)
        occupied[tuple(cell.T)] = True
    return occupied, corner, voxel, solid


@dataclass
class ModalPiece:
    """One simulated piece: its Gaussians (``rows``), embedded modes and oscillators."""

    rows: np.ndarray
    point_modes: object  # physics.modal.embedding.PointModes
    dynamics: object  # physics.modal.ModalDynamics
    force: np.ndarray  # constant modal load (gravity)
    num_tets: int
    num_voxels: int
    frequencies_hz: np.ndarray
    num_dropped: int
    solid_volume: float  # m^3 of the solid in the piece's voxels (its mass / density)


class PieceModes:
    """All pieces of a splat moved by their modes; ``advance`` steps them, ``splats`` reads the Gaussians.

    ``held`` marks Gaussians of pieces too small to simulate, ``piece_sizes`` the voxel counts of all pieces,
    ``voxel`` the mesh's voxel size.
    """

    def __init__(self, rest: GaussianSplats, pieces: list[ModalPiece], held: np.ndarray, piece_sizes: list[int],
                 voxel: float) -> None:
        self.rest, self.pieces, self.held, self.piece_sizes, self.voxel = rest, pieces, held, piece_sizes, voxel

    def advance(self, dt: float) -> None:
        """Advance every piece's oscillators by ``dt`` (exact for the constant load)."""
        for p in self.pieces:
            p.dynamics.step(dt, p.force)

    def state(self) -> tuple[np.ndarray, np.ndarray]:
        """Displacements (N, 3) and deformation gradients (N, 3, 3) of all Gaussians now (held ones: 0 and I)."""
        n = len(self.rest)
        u = np.zeros((n, 3))
        F = np.broadcast_to(np.eye(3), (n, 3, 3)).copy()
        for p in self.pieces:
            u[p.rows] = p.point_modes.displacements(p.dynamics.q).cpu().numpy()
            F[p.rows] = p.point_modes.deformation_gradients(p.dynamics.q).cpu().numpy()
        return u, F

    def splats(self) -> GaussianSplats:
        """The Gaussians displaced and deformed by the pieces' modes."""
        u, F = self.state()
        return deform_splats(self.rest, self.rest.positions + u, F)

    @property
    def frequencies_hz(self) -> list[float]:
        """Kept frequencies of all pieces, ascending."""
        return sorted(float(f) for p in self.pieces for f in p.frequencies_hz)


def modal_pieces(
    rest: GaussianSplats,
    fill: SolidFill,
    material: object,
    num_modes: int,
    gravity: np.ndarray,
    fixed: str = "bottom",
    order: int = 1,
    damping: float = 0.05,
    poke: tuple[np.ndarray, float, np.ndarray] | None = None,
    frequency_floor: float = 1e-2,
    min_voxels: int = 8,
    max_pieces: int | None = None,
) -> PieceModes:
    """Modal models of the solid's pieces with the Gaussians of ``rest`` embedded (see the module docstring).

    Args:
        rest: the Gaussians in simulation coordinates (metres, z up).
        fill: their solid (same coordinates).
        material: an elastic material with ``youngs_modulus``, ``poisson_ratio``, ``density``.
        num_modes: modes solved per piece (fewer if a piece has too few degrees of freedom).
        gravity: (3,) acceleration, m/s^2.
        fixed: ``"bottom"`` (each piece clamped at its lowest voxel layer) or ``"none"`` (free pieces).
        order: 1 linear or 2 quadratic tetrahedra.
        damping: damping ratio of every mode.
        poke: (centre, radius, velocity): nodes within ``radius`` of ``centre`` get ``velocity``, or None.
        frequency_floor: modes below this fraction of the piece's wave frequency are dropped.
        min_voxels: pieces with fewer voxels are not simulated.
        max_pieces: ValueError (naming the pieces' sizes) when more pieces than this have ``min_voxels``; None: any.
    """
    from physics import modal
    from physics.modal.embedding import PointEmbedding, PointModes
    from physics.modal.mesh import tet_volumes, voxel_tet_mesh
    from physics.modal.model import Modes

    if fixed not in ("bottom", "none"):
        raise ValueError(f"fixed must be 'bottom' or 'none', got {fixed!r}")
    occupied, corner, voxel, solid = coarse_solid(fill, points=rest.positions)
    if not occupied.any():
        raise ValueError("the solid has no voxel at least half full; nothing to mesh for engine=modal")
    labels, sizes = solid_components(occupied)
    big = sizes[sizes >= min_voxels]
    if max_pieces is not None and len(big) > max_pieces:
        raise ValueError(f"engine=modal: the solid falls into {len(big)} separate pieces of >= {min_voxels} voxels "
                         f"(voxels: {big[:12].tolist()}{' ...' if len(big) > 12 else ''}), more than "
                         f"modal_max_pieces={max_pieces}; select one with component= or crop=, or raise "
                         "modal_max_pieces")
    cell = np.clip(np.floor((rest.positions - corner) / voxel).astype(np.int64), 0, np.array(occupied.shape) - 1)
    gap, near = ndimage.distance_transform_edt(labels == 0, return_indices=True)
    owner = labels[tuple(near[(slice(None),) + tuple(cell.T)])]  # each Gaussian's piece (nearest occupied voxel)
    owner[gap[tuple(cell.T)] > 2.0] = 0  # Gaussians off every piece are not dragged along by a far one
    wave = float(np.sqrt(material.youngs_modulus / material.density))
    pieces, held = [], owner == 0
    for label, count in enumerate(sizes, start=1):
        rows = np.flatnonzero(owner == label)
        if count < min_voxels or len(rows) == 0:
            held[rows] = True
            continue
        vertices, tets = voxel_tet_mesh(labels == label, voxel, corner)
        solid_volume = float(solid[labels == label].sum())
        # the voxel mesh is coarser and fatter than the solid: its density keeps the piece's mass the solid's
        density = material.density * solid_volume / float(np.sum(tet_volumes(vertices, tets)))
        base = max(float(vertices[:, 2].min()), float(rest.positions[rows, 2].min()))  # under the lowest Gaussians
        clamp = vertices[:, 2] <= base + 1e-6 * voxel if fixed == "bottom" else None
        model = modal.ModalModel(vertices, tets, material.youngs_modulus, material.poisson_ratio, density,
                                 fixed=clamp, order=order)
        k = int(min(num_modes, model.num_dofs - model.num_rigid_modes))
        if k < 1:
            held[rows] = True
            continue
        modes = model.solve(k)
        floor_hz = frequency_floor * wave / (2.0 * np.pi * float(np.ptp(vertices, axis=0).max()))
        keep = modes.frequencies_hz >= floor_hz
        if not keep.any():
            held[rows] = True
            continue
        modes = Modes(modes.frequencies_hz[keep], modes.node_shapes[keep], modes.num_vertices,
                      modes.num_rigid_modes_removed)
        dynamics = modal.ModalDynamics(modes, damping=np.full(modes.num_modes, float(damping)))
        node_mass = solid_volume * material.density / len(vertices)
        ids = np.arange(len(vertices))
        force = modes.modal_load(ids, np.broadcast_to(node_mass * np.asarray(gravity, dtype=np.float64),
                                                      vertices.shape))
        if poke is not None:
            centre, radius, velocity = poke
            poked = np.flatnonzero(np.linalg.norm(vertices - centre, axis=1) <= radius)
            if len(poked):
                dynamics.apply_impulse(modes.modal_load(poked, np.broadcast_to(node_mass * velocity, (len(poked), 3))))
        import torch

        point_modes = PointModes(modes, PointEmbedding(model, rest.positions[rows]), dtype=torch.float64)
        pieces.append(ModalPiece(rows, point_modes, dynamics, force, len(tets), int(count), modes.frequencies_hz,
                                 int((~keep).sum()), solid_volume))
    return PieceModes(rest, pieces, held, sizes.tolist(), voxel)
