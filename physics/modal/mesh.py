"""Tetrahedral meshes for the modal solver: boxes, occupancy grids, point sets, closed surfaces.

Every mesh is a pair ``(vertices (V, 3) float64, tets (T, 4) int64)`` with positively
oriented tetrahedra (``det[x1-x0, x2-x0, x3-x0] > 0``). Grid cells are split into six
tetrahedra around their main diagonal (the Kuhn / Freudenthal split): the same split in
every cell makes neighbouring cells share conforming triangular faces.
"""

from __future__ import annotations

from itertools import permutations
from typing import Sequence

import numpy as np
from numpy.typing import ArrayLike, NDArray

__all__ = [
    "box_tet_mesh",
    "voxel_tet_mesh",
    "points_tet_mesh",
    "surface_tet_mesh",
    "tet_volumes",
    "check_tets",
]


def _kuhn_offsets() -> NDArray[np.int64]:
    """(6, 4, 3) corner offsets of the six positively oriented Kuhn tetrahedra of a unit cell."""
    eye = np.eye(3, dtype=np.int64)
    tets = []
    for perm in permutations(range(3)):
        corners = [np.zeros(3, dtype=np.int64)]
        for axis in perm:
            corners.append(corners[-1] + eye[axis])
        corners = np.array(corners)
        if np.linalg.det((corners[1:] - corners[0]).astype(float)) < 0:
            corners[[1, 2]] = corners[[2, 1]]
        tets.append(corners)
    return np.array(tets)


_KUHN = _kuhn_offsets()


def _as_cells(resolution: int | Sequence[int]) -> tuple[int, int, int]:
    cells = np.broadcast_to(np.asarray(resolution), (3,))
    if cells.dtype.kind not in "iu" or np.any(cells < 1):
        raise ValueError(
            f"resolution must be a positive integer or three positive integers (cells per axis), got {resolution!r}"
        )
    return int(cells[0]), int(cells[1]), int(cells[2])


def voxel_tet_mesh(
    occupancy: ArrayLike, voxel_size: float | Sequence[float] = 1.0, origin: ArrayLike = (0.0, 0.0, 0.0)
) -> tuple[NDArray[np.float64], NDArray[np.int64]]:
    """Tetrahedralise the occupied cells of a boolean grid ``occupancy[i, j, k]``.

    Cell ``(i, j, k)`` spans ``origin + [i, i+1] * voxel_size`` along x (likewise y, z).
    Only grid corners used by an occupied cell become vertices.
    """
    occ = np.asarray(occupancy, dtype=bool)
    if occ.ndim != 3:
        raise ValueError(f"occupancy must be a 3D boolean grid, got shape {occ.shape}")
    if not occ.any():
        raise ValueError("occupancy has no occupied cell; nothing to mesh")
    h = np.broadcast_to(np.asarray(voxel_size, dtype=np.float64), (3,))
    if not np.all(np.isfinite(h)) or np.any(h <= 0):
        raise ValueError(f"voxel_size must be positive and finite, got {voxel_size!r}")
    origin = np.asarray(origin, dtype=np.float64).reshape(3)
    cells = np.argwhere(occ)  # (C, 3)
    corners = cells[:, None, None, :] + _KUHN[None]  # (C, 6, 4, 3)
    corners = corners.reshape(-1, 4, 3)
    dims = np.array(occ.shape) + 1
    keys = np.ravel_multi_index(corners.reshape(-1, 3).T, dims)
    used, inverse = np.unique(keys, return_inverse=True)
    tets = inverse.reshape(-1, 4).astype(np.int64)
    grid = np.stack(np.unravel_index(used, dims), axis=1)
    vertices = origin + grid * h
    return vertices, tets


def box_tet_mesh(
    size: float | Sequence[float], resolution: int | Sequence[int]
) -> tuple[NDArray[np.float64], NDArray[np.int64]]:
    """Structured tetrahedral mesh of the box ``[0, sx] x [0, sy] x [0, sz]``.

    ``resolution`` is the number of cells along each axis: one integer for all three axes,
    or ``(nx, ny, nz)``; each cell is split into six tetrahedra. Vertices are ordered
    lexicographically by grid index ``(i, j, k)`` (z fastest).
    """
    extent = np.broadcast_to(np.asarray(size, dtype=np.float64), (3,))
    if not np.all(np.isfinite(extent)) or np.any(extent <= 0):
        raise ValueError(f"size must be one or three positive lengths, got {size!r}")
    cells = _as_cells(resolution)
    return voxel_tet_mesh(np.ones(cells, dtype=bool), extent / np.array(cells))


def points_tet_mesh(
    points: ArrayLike, voxel_size: float, fill_holes: bool = True
) -> tuple[NDArray[np.float64], NDArray[np.int64]]:
    """Tetrahedral mesh of the voxels occupied by a point set (e.g. Gaussian centres).

    Each point marks its voxel; with ``fill_holes`` enclosed empty voxels are filled so a
    surface sampling gives a solid body.
    """
    from scipy import ndimage

    pts = np.asarray(points, dtype=np.float64)
    if pts.ndim != 2 or pts.shape[1] != 3 or len(pts) == 0 or not np.all(np.isfinite(pts)):
        raise ValueError(f"points must be a non-empty finite (N, 3) array, got shape {pts.shape}")
    if not np.isfinite(voxel_size) or voxel_size <= 0:
        raise ValueError(f"voxel_size must be positive, got {voxel_size!r}")
    origin = pts.min(axis=0) - 0.5 * voxel_size
    idx = np.floor((pts - origin) / voxel_size).astype(np.int64)
    occ = np.zeros(idx.max(axis=0) + 2, dtype=bool)
    occ[tuple(idx.T)] = True
    if fill_holes:
        occ = ndimage.binary_fill_holes(occ)
    return voxel_tet_mesh(occ, voxel_size, origin)


def surface_tet_mesh(
    surface: "object", resolution: int
) -> tuple[NDArray[np.float64], NDArray[np.int64]]:
    """Voxel-fill tetrahedral mesh of a closed triangle mesh.

    ``surface`` is a ``trimesh.Trimesh`` or a ``(vertices, faces)`` pair; ``resolution`` is
    the number of voxels along the longest side of its bounding box. A voxel is kept when
    its centre is inside the surface (so the result is a staircase approximation).
    """
    import trimesh

    mesh = surface if isinstance(surface, trimesh.Trimesh) else trimesh.Trimesh(*surface, process=True)
    if not mesh.is_watertight:
        raise ValueError("surface must be a closed (watertight) triangle mesh")
    if int(resolution) < 1:
        raise ValueError(f"resolution must be a positive integer, got {resolution!r}")
    lo, hi = mesh.bounds
    h = float(np.max(hi - lo)) / int(resolution)
    cells = np.maximum(np.ceil((hi - lo) / h).astype(np.int64), 1)
    origin = lo + 0.5 * ((hi - lo) - cells * h)
    centres = origin + (np.argwhere(np.ones(cells, dtype=bool)) + 0.5) * h
    occ = mesh.contains(centres).reshape(tuple(cells))
    if not occ.any():
        raise ValueError(f"no voxel centre lies inside the surface at resolution {resolution}; raise it")
    return voxel_tet_mesh(occ, h, origin)


def tet_volumes(vertices: NDArray[np.float64], tets: NDArray[np.int64]) -> NDArray[np.float64]:
    """Signed volumes (T,) of the tetrahedra; positive for the orientation used here."""
    x = vertices[tets]
    return np.linalg.det(x[:, 1:] - x[:, :1]) / 6.0


def check_tets(vertices: ArrayLike, tets: ArrayLike) -> tuple[NDArray[np.float64], NDArray[np.int64]]:
    """Validate a tetrahedral mesh and return it as ``(float64 (V, 3), int64 (T, 4))``.

    Raises ``ValueError`` for wrong shapes, non-finite coordinates, indices out of range,
    and degenerate or inverted tetrahedra (volume <= 1e-12 of the bounding-box cube).
    """
    v = np.asarray(vertices, dtype=np.float64)
    t = np.asarray(tets)
    if v.ndim != 2 or v.shape[1] != 3 or len(v) < 4:
        raise ValueError(f"vertices must be a (V, 3) array with V >= 4, got shape {v.shape}")
    if not np.all(np.isfinite(v)):
        raise ValueError("vertices contain NaN or inf")
    if t.ndim != 2 or t.shape[1] != 4 or len(t) == 0:
        raise ValueError(f"tets must be a non-empty (T, 4) integer array of vertex indices, got shape {t.shape}")
    if t.dtype.kind not in "iu":
        raise ValueError(f"tets must hold integer vertex indices, got dtype {t.dtype}")
    t = t.astype(np.int64)
    if t.min() < 0 or t.max() >= len(v):
        raise ValueError(f"tets index vertices outside [0, {len(v) - 1}]")
    vol = tet_volumes(v, t)
    scale = float(np.max(v.max(axis=0) - v.min(axis=0))) ** 3
    bad = np.flatnonzero(vol <= 1e-12 * scale)
    if len(bad):
        kind = "inverted" if np.any(vol[bad] < -1e-12 * scale) else "degenerate"
        raise ValueError(
            f"{len(bad)} {kind} tetrahedra (non-positive volume), first indices {bad[:5].tolist()}; "
            "tets must be non-degenerate with det[x1-x0, x2-x0, x3-x0] > 0"
        )
    return v, t
