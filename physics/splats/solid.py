"""The solid a Gaussian splat encloses, by voxel morphology (robust interior fill for real captures).

The opacity ray marching of :mod:`physics.splats.fill` finds nothing inside an object whose
opacity field stays above its threshold right through the body (thick, fully opaque
shells, volumetric Gaussians). This module estimates the solid without relying on one
threshold:

1. **Covered voxels.** Grid nodes (voxel centres) where the opacity field (see
   :func:`~physics.splats.fill.opacity_field`) exceeds ``min(opacity_threshold, median
   opacity / 2)``, plus every node holding a Gaussian centre.
2. **Closing and flood fill.** The covered set is dilated (``close`` iterations of the
   6-neighbour cross), everything not reachable from the grid's border is filled, and the
   result is eroded back by as much (a closing with the flood fill in between, so holes in
   thin sheets up to about ``2 close`` nodes wide are sealed, which a plain closing does
   not do): thin shells, thick shells and fully opaque bodies alike become solid. An internal cavity sealed
   inside a closed capture counts as solid, as PhysGaussian fills it: a camera never saw it.
3. **Where the surface is.** The covered band reaches past the outermost Gaussian centres
   by the Gaussians' (and the grid's) blur, whatever the threshold. With ``D`` the
   Euclidean distance of a node from the outside, the surface is put at the depth ``delta``
   of the outermost Gaussian centres: for every node its nearest outside node, for that
   node its nearest Gaussian centre, whose ``D`` (trilinear) is ``delta``. A node counts
   ``clip(D - delta + 1/2, 0, 1)`` of a voxel; the solid volume is the sum times h^3.
   Thicker or thinner bands (other thresholds) move the outside, not the surface.

Nodes counting at least half a voxel are the fill particles (never written back).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage
from scipy.spatial import cKDTree

from .fill import opacity_field
from .gaussians import GaussianSplats

__all__ = ["SolidFill", "solid_fill", "solid_components"]

CROSS = ndimage.generate_binary_structure(3, 1)


@dataclass
class SolidFill:
    """Result of :func:`solid_fill`.

    Attributes:
        positions: (M, 3) fill particles: nodes counting at least half a voxel (optionally jittered).
        spacing: grid spacing h (each particle stands for about h^3).
        origin: position of grid node (0, 0, 0).
        fraction: (nx, ny, nz) share of each node's voxel inside the solid, in [0, 1].
        field: (nx, ny, nz) opacity field.
        threshold: opacity-field level used for the covered voxels.
    """

    positions: np.ndarray
    spacing: float
    origin: np.ndarray
    fraction: np.ndarray
    field: np.ndarray
    threshold: float

    @property
    def inside(self) -> np.ndarray:
        """(nx, ny, nz) boolean grid of the nodes counting at least half a voxel (the fill particles)."""
        return self.fraction >= 0.5

    @property
    def volume(self) -> float:
        """Solid volume: the nodes' fractions summed, times h^3."""
        return float(self.fraction.sum()) * self.spacing**3

    @property
    def num_particles(self) -> int:
        """Number of fill particles."""
        return len(self.positions)


def solid_fill(
    splats: GaussianSplats,
    spacing: float,
    opacity_threshold: float = 0.35,
    close: int = 3,
    rng: np.random.Generator | None = None,
    jitter: float = 0.0,
    max_reach: int = 8,
    device: str = "cpu",
) -> SolidFill:
    """The solid enclosed by (or made of) the Gaussians, on a grid of ``spacing`` (see the module docstring).

    Args:
        splats: the Gaussians of one object (remove strays and background first).
        spacing: grid spacing h (the MPM particle spacing, e.g. dx / 2).
        opacity_threshold: opacity-field level counted as covered, in (0, 1); lowered to half the
            median Gaussian opacity for faint splats. The volume hardly depends on it.
        close: closing iterations (seals surface holes up to about ``2 close`` nodes wide), >= 0.
        rng: generator for the jitter (required when ``jitter > 0``).
        jitter: fraction of ``spacing`` by which fill particles move randomly off the nodes, in [0, 1].
        max_reach: cap, in nodes, on how far one Gaussian adds to the opacity field.
        device: Warp device for the opacity field.
    """
    if not (0.0 < opacity_threshold < 1.0):
        raise ValueError(f"opacity_threshold must lie in (0, 1), got {opacity_threshold}")
    if not (isinstance(close, (int, np.integer)) and close >= 0):
        raise ValueError(f"close must be a non-negative number of closing iterations, got {close!r}")
    if not (0.0 <= jitter <= 1.0):
        raise ValueError(f"jitter must lie in [0, 1] (fraction of the spacing), got {jitter}")
    if jitter > 0.0 and not isinstance(rng, np.random.Generator):
        raise ValueError("jitter > 0 needs rng, a numpy.random.Generator")
    field, origin = opacity_field(splats, spacing, max_reach, device)
    pad = int(close) + 2  # room for the closing's dilation and an outside all around
    field = np.pad(field, pad)
    origin = origin - pad * spacing
    threshold = min(opacity_threshold, 0.5 * float(np.median(splats.opacities)))
    covered = field > threshold
    centres = (splats.positions - origin) / spacing
    nodes = np.clip(np.rint(centres).astype(np.int64), 0, np.array(field.shape) - 1)
    covered[tuple(nodes.T)] = True
    if close:  # dilate, fill, erode back: a closing that also seals holes in thin sheets
        sealed = ndimage.binary_fill_holes(ndimage.binary_dilation(covered, structure=CROSS, iterations=int(close)))
        solid = ndimage.binary_fill_holes(ndimage.binary_erosion(sealed, structure=CROSS, iterations=int(close))
                                          | covered)
    else:
        solid = ndimage.binary_fill_holes(covered)
    fraction = np.zeros(field.shape)
    if solid.any():
        depth, nearest = ndimage.distance_transform_edt(solid, return_indices=True)
        outside = nearest[:, solid]  # (3, S): each solid node's nearest outside node
        rim, which = np.unique(np.ravel_multi_index(outside, field.shape), return_inverse=True)
        rim_nodes = np.stack(np.unravel_index(rim, field.shape), axis=1)
        _, closest = cKDTree(centres).query(rim_nodes)  # the outermost Gaussian under each rim node
        delta = ndimage.map_coordinates(depth, centres[closest].T, order=1, mode="nearest")
        fraction[solid] = np.clip(depth[solid] - delta[which.ravel()] + 0.5, 0.0, 1.0)
    positions = origin + np.argwhere(fraction >= 0.5) * spacing
    if jitter > 0.0:
        positions = positions + rng.uniform(-0.5, 0.5, positions.shape) * jitter * spacing
    return SolidFill(positions, float(spacing), origin, fraction, field, threshold)


def solid_components(inside: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Face-connected pieces of a boolean grid: labels (0 outside, 1.. by decreasing size) and their node counts.

    Pieces touching only along an edge or at a corner are separate: a tetrahedral mesh joined there
    would hinge (near-zero-frequency modes).
    """
    grid = np.asarray(inside, dtype=bool)
    if grid.ndim != 3:
        raise ValueError(f"inside must be a 3D boolean grid, got shape {grid.shape}")
    labels, count = ndimage.label(grid, structure=CROSS)
    sizes = np.bincount(labels.ravel(), minlength=count + 1)[1:]
    order = np.argsort(-sizes, kind="stable")
    relabel = np.zeros(count + 1, dtype=np.int64)
    relabel[order + 1] = np.arange(1, count + 1)
    return relabel[labels], sizes[order]
