"""Shape measures of a deformable T from its particles: footprint coverage.

- the block pose of a deformed T is `robots.transforms.kabsch_transform` of its rest-shape
  particles (block frame) to their current positions (least squares, no scale).
- `footprint_coverage`: the particles' footprint is the union of discs of radius
  ``FOOTPRINT_RADIUS`` particle spacings around their xy (the area each particle stands
  for, dilated so a lattice leaves no gaps); coverage = area(goal T intersect footprint) /
  area(goal T), both rasterised at ``RASTER`` m in the goal's frame.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
from scipy import ndimage

from . import geometry as geo

RASTER = 0.0005  # m, cell of the coverage raster
FOOTPRINT_RADIUS = 0.6  # particle spacings: the undeformed particle T covers the T's area (see tests)


@lru_cache(maxsize=4)
def _goal_raster(goal: tuple[float, float, float]) -> tuple[np.ndarray, np.ndarray, int]:
    """Cell centres' inside-T mask of the raster over the T's bounding box (block frame), its origin and width."""
    lo = np.array([geo.BAR[0], geo.BAR[1]])
    n = int(round((geo.STEM[3] - geo.BAR[1]) / RASTER))
    c = lo[0] + RASTER * (np.arange(n) + 0.5)
    gx, gy = np.meshgrid(c, lo[1] + RASTER * (np.arange(n) + 0.5), indexing="ij")
    local = np.stack([gx.ravel(), gy.ravel(), np.full(gx.size, geo.HEIGHT / 2)], 1)
    inside = geo.inside_block(local, tol=0.0)
    return inside, lo, n


def footprint_coverage(points: np.ndarray, spacing: float, goal: tuple[float, float, float] = geo.GOAL_POSE) -> float:
    """Fraction of the goal T's area covered by the footprint of particles ``points`` (P, 3) ``spacing`` apart."""
    points = np.asarray(points, dtype=np.float64)
    if points.ndim != 2 or points.shape[1] < 2 or not np.all(np.isfinite(points)):
        raise ValueError(f"points must be finite with shape (P, 2 or 3), got {points.shape}")
    if not (np.isfinite(spacing) and spacing > 0):
        raise ValueError(f"spacing must be a finite positive length, got {spacing}")
    inside, lo, n = _goal_raster(tuple(float(g) for g in goal))
    gx, gy, gyaw = goal
    c, s = np.cos(gyaw), np.sin(gyaw)
    rel = points[:, :2] - (gx, gy)
    local = np.stack([c * rel[:, 0] + s * rel[:, 1], -s * rel[:, 0] + c * rel[:, 1]], 1)  # goal frame
    r = FOOTPRINT_RADIUS * spacing / RASTER  # in raster cells
    pad = int(np.ceil(r))
    cell = np.floor((local - lo) / RASTER).astype(np.int64) + pad
    m = n + 2 * pad
    keep = np.all((cell >= 0) & (cell < m), axis=1)
    occupied = np.zeros((m, m), dtype=bool)
    occupied[cell[keep, 0], cell[keep, 1]] = True
    covered = (ndimage.distance_transform_edt(~occupied) <= r)[pad : pad + n, pad : pad + n].ravel()
    return float(np.count_nonzero(covered & inside) / np.count_nonzero(inside))
