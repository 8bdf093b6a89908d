"""Real spherical harmonics of 3DGS (degree <= 3): evaluation and exact rotation.

Conventions are those of the 3DGS reference renderer (``sh_utils.eval_sh``): the basis
functions below, with their constants and signs, in the order of the ``f_dc`` / ``f_rest``
coefficients; colour seen along unit direction ``d`` (from the camera to the Gaussian)
is ``0.5 + sum_k sh[k] Y_k(d)`` per channel, ``sh`` shaped (K, 3) with K = (degree+1)^2.

Rotation: the band-l harmonics span a space that rotations map into itself, so for a
rotation R the coefficients of the rotated function g(d) = f(R^T d) are
``c'_l = D_l(R) c_l`` with ``D_l(R) = pinv(Y_l(S)) Y_l(R^T S)`` for any set S of sample
directions on which the band's 2l+1 functions are linearly independent. This least-squares
fit is exact (to rounding), because g is band-limited. A Gaussian rotated by R then looks
from direction ``R d`` exactly as it looked from ``d`` before.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

__all__ = ["C0", "MAX_DEGREE", "sh_basis", "eval_sh", "sh_degree", "rotate_sh", "band_rotation_matrices",
           "rgb_to_sh_dc", "sh_dc_to_rgb"]

C0 = 0.28209479177387814
C1 = 0.4886025119029199
C2 = (1.0925484305920792, -1.0925484305920792, 0.31539156525252005, -1.0925484305920792, 0.5462742152960396)
C3 = (-0.5900435899266435, 2.890611442640554, -0.4570457994644658, 0.3731763325901154, -0.4570457994644658,
      1.445305721320277, -0.5900435899266435)
MAX_DEGREE = 3
CHUNK = 32768  # Gaussians per batch when rotating (bounds temporary memory)


def sh_degree(num_coefficients: int) -> int:
    """SH degree of ``num_coefficients`` = (degree + 1)^2 per channel (1, 4, 9 or 16)."""
    for deg in range(MAX_DEGREE + 1):
        if (deg + 1) ** 2 == num_coefficients:
            return deg
    raise ValueError(f"{num_coefficients} SH coefficients per channel is not (degree+1)^2 for a degree "
                     f"0..{MAX_DEGREE}; allowed: 1, 4, 9, 16")


def sh_basis(dirs: np.ndarray, degree: int) -> np.ndarray:
    """Basis values (..., (degree+1)^2) of the 3DGS real SH at unit directions ``dirs`` (..., 3)."""
    if not 0 <= degree <= MAX_DEGREE:
        raise ValueError(f"SH degree must be in 0..{MAX_DEGREE}, got {degree}")
    d = np.asarray(dirs, dtype=np.float64)
    if d.shape[-1:] != (3,):
        raise ValueError(f"dirs must end with a 3-vector axis, got shape {d.shape}")
    x, y, z = d[..., 0], d[..., 1], d[..., 2]
    out = np.empty(((degree + 1) ** 2, *x.shape))  # one contiguous plane per basis function
    out[0] = C0
    if degree > 0:
        out[1], out[2], out[3] = -C1 * y, C1 * z, -C1 * x
    if degree > 1:
        xx, yy, zz = x * x, y * y, z * z
        out[4], out[5], out[6] = C2[0] * x * y, C2[1] * y * z, C2[2] * (2.0 * zz - xx - yy)
        out[7], out[8] = C2[3] * x * z, C2[4] * (xx - yy)
    if degree > 2:
        out[9] = C3[0] * y * (3.0 * xx - yy)
        out[10] = C3[1] * x * y * z
        out[11] = C3[2] * y * (4.0 * zz - xx - yy)
        out[12] = C3[3] * z * (2.0 * zz - 3.0 * xx - 3.0 * yy)
        out[13] = C3[4] * x * (4.0 * zz - xx - yy)
        out[14] = C3[5] * z * (xx - yy)
        out[15] = C3[6] * x * (xx - 3.0 * yy)
    return np.moveaxis(out, 0, -1)


def _check_sh(sh: np.ndarray) -> np.ndarray:
    c = np.asarray(sh, dtype=np.float64)
    if c.ndim != 3 or c.shape[2] != 3:
        raise ValueError(f"sh must have shape (N, K, 3) (coefficient-major, RGB last), got {c.shape}")
    sh_degree(c.shape[1])
    return c


def eval_sh(sh: np.ndarray, dirs: np.ndarray) -> np.ndarray:
    """Colour (N, ..., 3) of Gaussians with coefficients ``sh`` (N, K, 3) seen along unit ``dirs`` (N, ..., 3).

    This is ``0.5 + sum_k sh[k] Y_k(d)``, before the renderer's clamp at 0.
    """
    c = _check_sh(sh)
    d = np.asarray(dirs, dtype=np.float64)
    if d.shape[0] != c.shape[0] or d.shape[-1] != 3:
        raise ValueError(f"dirs must have shape (N, ..., 3) with N = {c.shape[0]}, got {d.shape}")
    basis = sh_basis(d, sh_degree(c.shape[1]))  # (N, ..., K)
    flat = basis.reshape(len(c), -1, basis.shape[-1])
    return (np.einsum("nmk,nkc->nmc", flat, c) + 0.5).reshape(*d.shape[:-1], 3)


def sh_dc_to_rgb(f_dc: np.ndarray) -> np.ndarray:
    """View-independent colour 0.5 + C0 f_dc of DC coefficients (..., 3)."""
    return 0.5 + C0 * np.asarray(f_dc, dtype=np.float64)


def rgb_to_sh_dc(rgb: np.ndarray) -> np.ndarray:
    """DC coefficients (..., 3) giving colour ``rgb`` (..., 3): (rgb - 0.5) / C0."""
    return (np.asarray(rgb, dtype=np.float64) - 0.5) / C0


def _fibonacci_sphere(count: int) -> np.ndarray:
    i = np.arange(count) + 0.5
    z = 1.0 - 2.0 * i / count
    phi = np.pi * (1.0 + 5.0**0.5) * i
    r = np.sqrt(1.0 - z * z)
    return np.stack([r * np.cos(phi), r * np.sin(phi), z], axis=1)


@lru_cache(maxsize=1)
def _band_fits() -> tuple[np.ndarray, list[tuple[slice, np.ndarray]]]:
    """Sample directions S (M, 3) and, per band l >= 1, its coefficient slice and pinv(Y_l(S))."""
    samples = _fibonacci_sphere(20)  # condition numbers of the bands <= 1.4
    basis = sh_basis(samples, MAX_DEGREE)
    fits = []
    for band in range(1, MAX_DEGREE + 1):
        cols = slice(band * band, (band + 1) ** 2)
        fits.append((cols, np.linalg.pinv(basis[:, cols])))
    return samples, fits


def band_rotation_matrices(rotations: np.ndarray, degree: int) -> list[np.ndarray]:
    """Per band l = 1..degree, the (N, 2l+1, 2l+1) matrices rotating band-l coefficients by ``rotations`` (N, 3, 3)."""
    R = np.asarray(rotations, dtype=np.float64)
    if R.ndim != 3 or R.shape[1:] != (3, 3):
        raise ValueError(f"rotations must have shape (N, 3, 3), got {R.shape}")
    samples, fits = _band_fits()
    rotated = np.matmul(samples, R)  # (N, M, 3): row m is (R^T s_m)^T
    basis = sh_basis(rotated, degree)
    return [np.matmul(pinv, basis[..., cols]) for cols, pinv in fits[:degree]]


def rotate_sh(sh: np.ndarray, rotations: np.ndarray) -> np.ndarray:
    """Coefficients (N, K, 3) of the SH colour functions ``sh`` (N, K, 3) rotated by ``rotations`` (N, 3, 3).

    The result seen from direction ``R d`` equals the input seen from ``d``. The DC term
    (band 0) is unchanged. ``rotations`` must be proper rotations (orthonormal, det +1).
    """
    c = _check_sh(sh)
    R = np.asarray(rotations, dtype=np.float64)
    if R.shape != (len(c), 3, 3):
        raise ValueError(f"rotations must have shape ({len(c)}, 3, 3), got {R.shape}")
    degree = sh_degree(c.shape[1])
    out = c.copy()
    if degree == 0:
        return out
    _, fits = _band_fits()
    for start in range(0, len(c), CHUNK):
        rows = slice(start, start + CHUNK)
        # fits covers every band up to MAX_DEGREE, the rotations only the bands up to ``degree``
        for (cols, _), D in zip(fits, band_rotation_matrices(R[rows], degree), strict=False):
            out[rows, cols] = np.matmul(D, c[rows, cols])
    return out
