"""Coverage of a goal footprint by a deformed object's particles.

The particles' footprint is the union of discs of radius ``FOOTPRINT_RADIUS`` particle spacings around their xy
(the area each particle stands for, dilated so a lattice leaves no gaps); coverage = area(goal footprint
intersect particle footprint) / area(goal footprint), both rasterised at ``RASTER`` m in the goal's frame over the
goal footprint's bounding box. The pose of a deformed object is `robots.transforms.kabsch_transform` of its
rest-shape particles to their current positions (least squares, no scale).
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import shapely
from scipy import ndimage

RASTER = 0.0005  # m, cell of the coverage raster
FOOTPRINT_RADIUS = 0.6  # particle spacings: the undeformed particles cover the object's footprint (see tests)


@lru_cache(maxsize=16)
def _goal_raster(footprint_wkb: bytes) -> tuple[np.ndarray, np.ndarray, tuple[int, int]]:
    """Inside mask (nx * ny,) of the raster cells' centres over a footprint's bounding box (its own frame), the
    raster's origin and its shape."""
    footprint = shapely.from_wkb(footprint_wkb)
    x0, y0, x1, y1 = footprint.bounds
    shape = (max(1, int(round((x1 - x0) / RASTER))), max(1, int(round((y1 - y0) / RASTER))))
    gx, gy = np.meshgrid(x0 + RASTER * (np.arange(shape[0]) + 0.5), y0 + RASTER * (np.arange(shape[1]) + 0.5),
                         indexing="ij")
    inside = shapely.contains_xy(footprint, gx.ravel(), gy.ravel())
    return inside, np.array([x0, y0]), shape


def footprint_coverage(points: np.ndarray, spacing: float, footprint: shapely.Geometry,
                       goal: tuple[float, float, float] | np.ndarray) -> float:
    """Fraction of the goal's area covered by the footprint of particles ``points`` (P, 3) ``spacing`` apart.

    ``footprint`` is the object's footprint in its own frame and ``goal`` (x, y, yaw) the goal pose of that frame.
    """
    points = np.asarray(points, dtype=np.float64)
    if points.ndim != 2 or points.shape[1] < 2 or not np.all(np.isfinite(points)):
        raise ValueError(f"points must be finite with shape (P, 2 or 3), got {points.shape}")
    if not (np.isfinite(spacing) and spacing > 0):
        raise ValueError(f"spacing must be a finite positive length, got {spacing}")
    inside, lo, (nx, ny) = _goal_raster(shapely.to_wkb(footprint))
    gx, gy, gyaw = (float(g) for g in goal)
    c, s = np.cos(gyaw), np.sin(gyaw)
    rel = points[:, :2] - (gx, gy)
    local = np.stack([c * rel[:, 0] + s * rel[:, 1], -s * rel[:, 0] + c * rel[:, 1]], 1)  # goal frame
    r = FOOTPRINT_RADIUS * spacing / RASTER  # in raster cells
    pad = int(np.ceil(r))
    cell = np.floor((local - lo) / RASTER).astype(np.int64) + pad
    size = np.array([nx + 2 * pad, ny + 2 * pad])
    keep = np.all((cell >= 0) & (cell < size), axis=1)
    occupied = np.zeros(tuple(size), dtype=bool)
    occupied[cell[keep, 0], cell[keep, 1]] = True
    covered = (ndimage.distance_transform_edt(~occupied) <= r)[pad : pad + nx, pad : pad + ny].ravel()
    return float(np.count_nonzero(covered & inside) / np.count_nonzero(inside))
