"""Synthetic 3DGS scenes for tests and demos: closed surfaces covered by flat Gaussian discs.

Real 3DGS reconstructions of solid objects consist of thin Gaussians lying on the
surface, so these generators place flat discs (tangential standard deviation
``~ 0.6 x spacing``, normal one a tenth of it) on a sphere or a box surface, spaced about
``spacing`` apart, with random in-plane orientation, colour and view-dependent SH terms
drawn from the caller's ``numpy.random.Generator``.
"""

from __future__ import annotations

import numpy as np
from scipy.spatial.transform import Rotation

from .gaussians import GaussianSplats
from .sh import rgb_to_sh_dc

__all__ = ["surface_splats", "sphere_splats", "box_splats", "torus_splats", "volume_splats"]


def _frames(normals: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Rotations (N, 3, 3) whose third column is the normal, turned randomly about it."""
    n = normals / np.linalg.norm(normals, axis=1, keepdims=True)
    helper = np.where(np.abs(n[:, :1]) < 0.9, [[1.0, 0.0, 0.0]], [[0.0, 1.0, 0.0]])
    t1 = np.cross(helper, n)
    t1 /= np.linalg.norm(t1, axis=1, keepdims=True)
    t2 = np.cross(n, t1)
    angle = rng.uniform(0.0, 2.0 * np.pi, len(n))[:, None]
    u = np.cos(angle) * t1 + np.sin(angle) * t2
    return np.stack([u, np.cross(n, u), n], axis=2)


def surface_splats(
    points: np.ndarray,
    normals: np.ndarray,
    spacing: float,
    rng: np.random.Generator,
    degree: int = 3,
    opacity: float = 0.9,
    rest_amplitude: float = 0.1,
) -> GaussianSplats:
    """Flat Gaussian discs at surface ``points`` (N, 3) facing ``normals`` (N, 3), ~``spacing`` apart.

    Colours vary smoothly with position plus noise; higher SH bands are random with
    coefficients of about ``rest_amplitude``. Normals are written to ``nx ny nz``.
    """
    x = np.asarray(points, dtype=np.float64)
    nrm = np.asarray(normals, dtype=np.float64)
    if x.ndim != 2 or x.shape[1] != 3 or nrm.shape != x.shape or len(x) == 0:
        raise ValueError(f"points and normals must both be (N, 3) with N >= 1, got {x.shape} and {nrm.shape}")
    if not (np.isfinite(spacing) and spacing > 0.0):
        raise ValueError(f"spacing must be a finite positive length, got {spacing}")
    if not 0 <= degree <= 3:
        raise ValueError(f"degree must be in 0..3, got {degree}")
    if not isinstance(rng, np.random.Generator):
        raise ValueError(f"rng must be a numpy.random.Generator, got {type(rng).__name__}")
    n = len(x)
    R = _frames(nrm, rng)
    tangential = 0.6 * spacing * rng.uniform(0.8, 1.2, (n, 2))
    scales = np.concatenate([tangential, np.full((n, 1), 0.06 * spacing)], axis=1)
    quats = Rotation.from_matrix(R).as_quat(scalar_first=True)
    span = np.ptp(x, axis=0) + 1e-12
    rgb = np.clip(0.15 + 0.7 * (x - x.min(0)) / span + rng.normal(0.0, 0.03, (n, 3)), 0.02, 0.98)
    sh = np.zeros((n, (degree + 1) ** 2, 3))
    sh[:, 0] = rgb_to_sh_dc(rgb)
    sh[:, 1:] = rng.normal(0.0, rest_amplitude, (n, (degree + 1) ** 2 - 1, 3))
    return GaussianSplats.from_arrays(x, scales, quats, np.full(n, opacity), sh, normals=R[:, :, 2])


def sphere_splats(
    center: object, radius: float, spacing: float, rng: np.random.Generator, degree: int = 3, opacity: float = 0.9
) -> GaussianSplats:
    """A closed sphere of splats: discs on a Fibonacci lattice ~``spacing`` apart (see :func:`surface_splats`)."""
    c = np.asarray(center, dtype=np.float64)
    if c.shape != (3,) or not (np.isfinite(radius) and radius > 0.0):
        raise ValueError(f"need a 3-vector center and radius > 0, got {center!r}, {radius}")
    if not (np.isfinite(spacing) and 0.0 < spacing < radius):
        raise ValueError(f"spacing must lie in (0, radius), got {spacing}")
    count = max(8, int(round(4.0 * np.pi * radius**2 / spacing**2)))
    i = np.arange(count) + 0.5
    z = 1.0 - 2.0 * i / count
    phi = np.pi * (1.0 + 5.0**0.5) * i
    r = np.sqrt(1.0 - z * z)
    dirs = np.stack([r * np.cos(phi), r * np.sin(phi), z], axis=1)
    return surface_splats(c + radius * dirs, dirs, spacing, rng, degree, opacity)


def box_splats(
    lower: object, upper: object, spacing: float, rng: np.random.Generator, degree: int = 3, opacity: float = 0.9
) -> GaussianSplats:
    """A closed box surface of splats: discs on a grid ~``spacing`` apart on each of the six faces."""
    lo = np.asarray(lower, dtype=np.float64)
    hi = np.asarray(upper, dtype=np.float64)
    if lo.shape != (3,) or hi.shape != (3,) or np.any(hi <= lo):
        raise ValueError(f"need 3-vectors lower < upper, got {lower!r}, {upper!r}")
    if not (np.isfinite(spacing) and 0.0 < spacing < np.min(hi - lo)):
        raise ValueError(f"spacing must lie in (0, shortest side), got {spacing}")
    points, normals = [], []
    for axis in range(3):
        u, v = [a for a in range(3) if a != axis]
        cu = max(1, int(round((hi[u] - lo[u]) / spacing)))
        cv = max(1, int(round((hi[v] - lo[v]) / spacing)))
        gu = lo[u] + (np.arange(cu) + 0.5) * (hi[u] - lo[u]) / cu
        gv = lo[v] + (np.arange(cv) + 0.5) * (hi[v] - lo[v]) / cv
        uu, vv = (a.ravel() for a in np.meshgrid(gu, gv, indexing="ij"))
        for side, value in ((-1.0, lo[axis]), (1.0, hi[axis])):
            p = np.empty((len(uu), 3))
            p[:, axis], p[:, u], p[:, v] = value, uu, vv
            nrm = np.zeros_like(p)
            nrm[:, axis] = side
            points.append(p)
            normals.append(nrm)
    return surface_splats(np.concatenate(points), np.concatenate(normals), spacing, rng, degree, opacity)


def torus_splats(
    center: object, major: float, minor: float, spacing: float, rng: np.random.Generator, degree: int = 3,
    opacity: float = 0.9,
) -> GaussianSplats:
    """A closed torus of splats about the z axis through ``center`` (radii ``major`` > ``minor``), ~``spacing`` apart.

    Volume 2 pi^2 major minor^2.
    """
    c = np.asarray(center, dtype=np.float64)
    if c.shape != (3,) or not (np.isfinite(major) and np.isfinite(minor) and 0.0 < minor < major):
        raise ValueError(f"need a 3-vector center and radii 0 < minor < major, got {center!r}, {major}, {minor}")
    if not (np.isfinite(spacing) and 0.0 < spacing < minor):
        raise ValueError(f"spacing must lie in (0, minor), got {spacing}")
    nu = max(8, int(round(2.0 * np.pi * major / spacing)))
    nv = max(8, int(round(2.0 * np.pi * minor / spacing)))
    u, v = (a.ravel() for a in np.meshgrid(np.linspace(0, 2 * np.pi, nu, endpoint=False),
                                           np.linspace(0, 2 * np.pi, nv, endpoint=False), indexing="ij"))
    normals = np.stack([np.cos(v) * np.cos(u), np.cos(v) * np.sin(u), np.sin(v)], axis=1)
    ring = major + minor * np.cos(v)
    points = c + np.stack([ring * np.cos(u), ring * np.sin(u), minor * np.sin(v)], axis=1)
    return surface_splats(points, normals, spacing, rng, degree, opacity)


def volume_splats(
    points: np.ndarray, sigma: float, rng: np.random.Generator, opacity: float = 0.99, degree: int = 0
) -> GaussianSplats:
    """Round Gaussians of standard deviation ``sigma`` at ``points`` (N, 3) filling a volume (an opaque body).

    Such a splat's opacity field stays high right through the body, as in real captures of solid objects.
    """
    x = np.asarray(points, dtype=np.float64)
    if x.ndim != 2 or x.shape[1] != 3 or len(x) == 0:
        raise ValueError(f"points must be (N, 3) with N >= 1, got {x.shape}")
    if not (np.isfinite(sigma) and sigma > 0.0):
        raise ValueError(f"sigma must be a finite positive length, got {sigma}")
    n = len(x)
    rgb = np.clip(0.5 + rng.normal(0.0, 0.1, (n, 3)), 0.02, 0.98)
    sh = np.zeros((n, (degree + 1) ** 2, 3))
    sh[:, 0] = rgb_to_sh_dc(rgb)
    quats = np.tile([1.0, 0.0, 0.0, 0.0], (n, 1))
    return GaussianSplats.from_arrays(x, np.full((n, 3), sigma), quats, np.full(n, opacity), sh)
