"""Particle samplers: jittered grids filling boxes, spheres and closed triangle meshes.

Every sampler returns ``(positions, volumes)``: (N, 3) points on a grid of the given
spacing (each moved by a uniform jitter of up to ``jitter * spacing / 2`` per axis,
drawn from the caller's ``numpy.random.Generator``) and the (N,) volume each particle
represents, spacing^3. Same generator state in, same particles out.
"""

from __future__ import annotations

import numpy as np
import warp as wp


def _check(spacing: float, jitter: float, rng: np.random.Generator) -> None:
    if not (np.isfinite(spacing) and spacing > 0.0):
        raise ValueError(f"spacing must be a finite positive length, got {spacing}")
    if not (0.0 <= jitter <= 1.0):
        raise ValueError(f"jitter must lie in [0, 1] (fraction of the spacing), got {jitter}")
    if not isinstance(rng, np.random.Generator):
        raise ValueError(f"rng must be a numpy.random.Generator, got {type(rng).__name__}")


def _lattice(lower: np.ndarray, upper: np.ndarray, spacing: float, jitter: float,
             rng: np.random.Generator) -> np.ndarray:
    """Cell-centred lattice points filling [lower, upper], jittered inside their cells."""
    counts = np.maximum(np.floor((upper - lower) / spacing + 1e-9).astype(int), 1)
    margin = (upper - lower - counts * spacing) / 2.0
    axes = [lower[d] + margin[d] + spacing * (np.arange(counts[d]) + 0.5) for d in range(3)]
    pts = np.stack(np.meshgrid(*axes, indexing="ij"), axis=-1).reshape(-1, 3)
    if jitter > 0.0:
        pts = pts + rng.uniform(-0.5, 0.5, size=pts.shape) * jitter * spacing
    return pts


def sample_box(lower: object, upper: object, spacing: float, rng: np.random.Generator,
               jitter: float = 0.5) -> tuple[np.ndarray, np.ndarray]:
    """Fill the axis-aligned box [lower, upper] with particles ``spacing`` apart."""
    _check(spacing, jitter, rng)
    lo = np.asarray(lower, dtype=np.float64)
    hi = np.asarray(upper, dtype=np.float64)
    if lo.shape != (3,) or hi.shape != (3,) or np.any(hi <= lo):
        raise ValueError(f"need lower < upper, both 3-vectors; got {lower!r}, {upper!r}")
    pts = _lattice(lo, hi, spacing, jitter, rng)
    return pts, np.full(len(pts), spacing**3)


def sample_sphere(center: object, radius: float, spacing: float, rng: np.random.Generator,
                  jitter: float = 0.5) -> tuple[np.ndarray, np.ndarray]:
    """Fill the ball of ``radius`` around ``center`` with particles ``spacing`` apart (lattice
    cells whose centre lies in the ball; jitter may move a particle up to spacing * sqrt(3) / 2 out)."""
    _check(spacing, jitter, rng)
    c = np.asarray(center, dtype=np.float64)
    if c.shape != (3,) or not (np.isfinite(radius) and radius > 0.0):
        raise ValueError(f"need a 3-vector center and radius > 0; got {center!r}, {radius}")
    pts = _lattice(c - radius, c + radius, spacing, 0.0, rng)
    pts = pts[np.linalg.norm(pts - c, axis=1) <= radius]  # cells whose centre is inside: unbiased volume
    if jitter > 0.0:
        pts = pts + rng.uniform(-0.5, 0.5, size=pts.shape) * jitter * spacing
    return pts, np.full(len(pts), spacing**3)


@wp.kernel
def _inside_mesh(mesh: wp.uint64, points: wp.array(dtype=wp.vec3), max_dist: float, inside: wp.array(dtype=wp.int32)):
    """1 where the generalised winding number says the point is inside the mesh."""
    i = wp.tid()
    q = wp.mesh_query_point_sign_winding_number(mesh, points[i], max_dist)
    if q.result and q.sign < 0.0:
        inside[i] = 1


def sample_mesh(vertices: np.ndarray, faces: np.ndarray, spacing: float, rng: np.random.Generator,
                jitter: float = 0.5, device: str = "cpu") -> tuple[np.ndarray, np.ndarray]:
    """Fill a closed triangle mesh (vertices (V, 3), faces (F, 3)) with particles."""
    _check(spacing, jitter, rng)
    v = np.asarray(vertices, dtype=np.float64)
    f = np.asarray(faces, dtype=np.int32)
    if v.ndim != 2 or v.shape[1] != 3 or f.ndim != 2 or f.shape[1] != 3 or len(f) == 0:
        raise ValueError(f"need vertices (V, 3) and faces (F, 3); got {v.shape}, {f.shape}")
    pts = _lattice(v.min(0), v.max(0), spacing, jitter, rng)
    mesh = wp.Mesh(points=wp.array(v, dtype=wp.vec3, device=device),
                   indices=wp.array(f.ravel(), dtype=wp.int32, device=device))
    inside = wp.zeros(len(pts), dtype=wp.int32, device=device)
    extent = float(np.linalg.norm(v.max(0) - v.min(0)))
    wp.launch(_inside_mesh, dim=len(pts), inputs=[mesh.id, wp.array(pts, dtype=wp.vec3, device=device), extent],
              outputs=[inside], device=device)
    pts = pts[inside.numpy().astype(bool)]
    return pts, np.full(len(pts), spacing**3)
