"""Closed-form references for validating the modal solver: beams of rectangular section
(clamped-free, free-free, clamped-clamped), axial and torsional bar modes, and the simply
supported Kirchhoff plate.

Bending references name ``width`` the direction of the bending displacement: a beam of width ``b``
(that direction) and thickness ``t`` has ``I = t b^3 / 12``, ``A = b t``.

- Euler-Bernoulli: ``f_n = (beta_n L)^2 / (2 pi L^2) sqrt(E I / (rho A))`` with
  ``beta_n L`` the roots of ``1 + cos x cosh x = 0`` (1.8751, 4.6941, 7.8548, ...).
- Timoshenko (shear deformation and rotary inertia, Cowper's shear coefficient
  ``kappa = 10 (1 + nu) / (12 + 11 nu)``): the roots in omega of the 4x4 determinant of
  the clamped-free boundary conditions applied to the exact solution of
  ``kappa G A (w'' - psi') + rho A omega^2 w = 0`` and
  ``E I psi'' + kappa G A (w' - psi) + rho I omega^2 psi = 0``.
"""

from __future__ import annotations

import numpy as np
from scipy.optimize import brentq

__all__ = [
    "cantilever_beta_l",
    "euler_bernoulli_cantilever_hz",
    "timoshenko_cantilever_hz",
    "beam_beta_l",
    "euler_bernoulli_beam_hz",
    "bar_axial_hz",
    "saint_venant_torsion_constant",
    "bar_torsion_hz",
    "simply_supported_plate_hz",
]


def cantilever_beta_l(mode: int) -> float:
    """n-th root (1-based) of ``1 + cos x cosh x = 0``."""
    if mode < 1:
        raise ValueError(f"mode must be >= 1, got {mode}")
    guess = (2 * mode - 1) * np.pi / 2
    return float(brentq(lambda x: np.cos(x) + 1.0 / np.cosh(x), guess - 1.0, guess + 1.0))


def euler_bernoulli_cantilever_hz(
    length: float, width: float, thickness: float, youngs_modulus: float, density: float, mode: int = 1
) -> float:
    """Euler-Bernoulli frequency (Hz) of bending mode ``mode`` with displacement along ``width``."""
    beta_l = cantilever_beta_l(mode)
    area, inertia = width * thickness, thickness * width**3 / 12.0
    return beta_l**2 / (2 * np.pi * length**2) * np.sqrt(youngs_modulus * inertia / (density * area))


def _timoshenko_det(
    omega: float, length: float, area: float, inertia: float, e: float, g_kappa: float, rho: float
) -> float:
    q = rho * area * omega**2 / (g_kappa * area)
    # lambda^2 roots of (kGA l^2 + rho A w^2)(EI l^2 - kGA + rho I w^2) + (kGA l)^2 = 0
    a2 = g_kappa * area * e * inertia
    a1 = (
        g_kappa * area * (rho * inertia * omega**2 - g_kappa * area)
        + rho * area * omega**2 * e * inertia
        + (g_kappa * area) ** 2
    )
    a0 = rho * area * omega**2 * (rho * inertia * omega**2 - g_kappa * area)
    disc = np.sqrt(a1 * a1 - 4 * a2 * a0)
    mu1, mu2 = (-a1 + disc) / (2 * a2), (-a1 - disc) / (2 * a2)
    if mu1 <= 0 or mu2 >= 0:
        raise ValueError("frequency above the Timoshenko cut-off; the beam is not slender enough for this mode")
    al, be = np.sqrt(mu1), np.sqrt(-mu2)
    ra, rb = (al**2 + q) / al, (q - be**2) / be
    ch, sh, c, s = np.cosh(al * length), np.sinh(al * length), np.cos(be * length), np.sin(be * length)
    mat = np.array(
        [
            [1.0, 0.0, 1.0, 0.0],
            [0.0, ra, 0.0, -rb],
            [ra * al * ch, ra * al * sh, rb * be * c, rb * be * s],
            [(al - ra) * sh, (al - ra) * ch, -(be + rb) * s, (be + rb) * c],
        ]
    )
    return float(np.linalg.det(mat) / ch)


def timoshenko_cantilever_hz(
    length: float,
    width: float,
    thickness: float,
    youngs_modulus: float,
    poisson_ratio: float,
    density: float,
    mode: int = 1,
) -> float:
    """Timoshenko frequency (Hz) of bending mode ``mode`` with displacement along ``width``."""
    area, inertia = width * thickness, thickness * width**3 / 12.0
    g_kappa = youngs_modulus / (2 * (1 + poisson_ratio)) * 10 * (1 + poisson_ratio) / (12 + 11 * poisson_ratio)
    args = (length, area, inertia, youngs_modulus, g_kappa, density)
    f_eb = [
        euler_bernoulli_cantilever_hz(length, width, thickness, youngs_modulus, density, m) for m in range(1, mode + 2)
    ]
    # Timoshenko roots lie below the Euler-Bernoulli ones; scan up to them for sign changes.
    grid = np.linspace(0.05 * f_eb[0], f_eb[mode - 1] * 1.0001, 4000) * 2 * np.pi
    values = np.array([_timoshenko_det(w, *args) for w in grid])
    roots = [
        brentq(_timoshenko_det, grid[i], grid[i + 1], args=args)
        for i in np.flatnonzero(np.sign(values[:-1]) != np.sign(values[1:]))
    ]
    if len(roots) < mode:
        raise ValueError(f"could not bracket Timoshenko mode {mode}")
    return roots[mode - 1] / (2 * np.pi)


# ---------------------------------------------------------------- other supports, bars, torsion, plates

BOUNDARIES = ("clamped-free", "free-free", "clamped-clamped")


def beam_beta_l(mode: int, boundary: str = "clamped-free") -> float:
    """n-th elastic root ``beta_n L`` of a uniform Euler-Bernoulli beam with the given supports.

    ``"clamped-free"``: ``1 + cos x cosh x = 0`` (1.8751, 4.6941, ...); ``"free-free"`` and
    ``"clamped-clamped"`` share ``cos x cosh x = 1`` (4.7300, 7.8532, 10.9956, ...; the
    free-free rigid modes at x = 0 are not counted).
    """
    if boundary not in BOUNDARIES:
        raise ValueError(f"boundary must be one of {BOUNDARIES}, got {boundary!r}")
    if boundary == "clamped-free":
        return cantilever_beta_l(mode)
    if mode < 1:
        raise ValueError(f"mode must be >= 1, got {mode}")
    guess = (2 * mode + 1) * np.pi / 2
    return float(brentq(lambda x: np.cos(x) - 1.0 / np.cosh(x), guess - 1.0, guess + 1.0))


def euler_bernoulli_beam_hz(
    length: float,
    width: float,
    thickness: float,
    youngs_modulus: float,
    density: float,
    mode: int = 1,
    boundary: str = "clamped-free",
) -> float:
    """Euler-Bernoulli frequency (Hz) of bending mode ``mode``, displacement along ``width``."""
    beta_l = beam_beta_l(mode, boundary)
    return beta_l**2 / (2 * np.pi * length**2) * width * np.sqrt(youngs_modulus / (12.0 * density))


def bar_axial_hz(
    length: float,
    youngs_modulus: float,
    density: float,
    mode: int = 1,
    boundary: str = "free-free",
    poisson_ratio: float = 0.0,
    polar_gyration_sq: float = 0.0,
) -> float:
    """Longitudinal frequency (Hz) of a uniform bar: ``f_n = n c / (2 L)`` free-free or
    clamped-clamped, ``(2n - 1) c / (4 L)`` clamped-free, ``c = sqrt(E / rho)``.

    With ``poisson_ratio`` and the section's polar radius of gyration squared
    ``polar_gyration_sq = I_p / A``, Rayleigh's lateral-inertia correction
    ``f (1 - nu^2 k^2 r_p^2 / 4)`` (``k`` the axial wavenumber) is applied.
    """
    if boundary not in BOUNDARIES:
        raise ValueError(f"boundary must be one of {BOUNDARIES}, got {boundary!r}")
    half_waves = (mode - 0.5) if boundary == "clamped-free" else float(mode)
    k = half_waves * np.pi / length
    return (
        half_waves / (2 * length) * np.sqrt(youngs_modulus / density)
        * (1 - 0.25 * (poisson_ratio * k) ** 2 * polar_gyration_sq)
    )


def saint_venant_torsion_constant(width: float, thickness: float, terms: int = 50) -> float:
    """Saint-Venant torsion constant J (m^4) of a ``width x thickness`` rectangle (series solution).

    ``J = a b^3 [1/3 - 64 b / (pi^5 a) sum_{n odd} tanh(n pi a / (2 b)) / n^5]`` with
    ``a >= b``; a square gives ``0.1406 a^4``.
    """
    a, b = max(width, thickness), min(width, thickness)
    n = np.arange(1, 2 * terms, 2, dtype=np.float64)
    series = np.sum(np.tanh(n * np.pi * a / (2 * b)) / n**5)
    return float(a * b**3 * (1.0 / 3.0 - 64.0 * b / (np.pi**5 * a) * series))


def bar_torsion_hz(
    length: float,
    width: float,
    thickness: float,
    youngs_modulus: float,
    poisson_ratio: float,
    density: float,
    mode: int = 1,
    boundary: str = "free-free",
) -> float:
    """Torsional frequency (Hz) of a rectangular bar, Saint-Venant torsion (warping free):
    ``f_n = n / (2 L) sqrt(G J / (rho I_p))`` free-free (``(2n - 1) / (4 L)`` clamped-free)."""
    if boundary not in BOUNDARIES:
        raise ValueError(f"boundary must be one of {BOUNDARIES}, got {boundary!r}")
    half_waves = (mode - 0.5) if boundary == "clamped-free" else float(mode)
    shear = youngs_modulus / (2 * (1 + poisson_ratio))
    polar = width * thickness * (width**2 + thickness**2) / 12.0
    return half_waves / (2 * length) * np.sqrt(
        shear * saint_venant_torsion_constant(width, thickness) / (density * polar)
    )


def simply_supported_plate_hz(
    side_x: float,
    side_y: float,
    thickness: float,
    youngs_modulus: float,
    poisson_ratio: float,
    density: float,
    m: int = 1,
    n: int = 1,
) -> float:
    """Kirchhoff (Navier) frequency (Hz) of a simply supported rectangular plate:
    ``omega_mn = pi^2 ((m / a)^2 + (n / b)^2) sqrt(D / (rho h))``, ``D = E h^3 / (12 (1 - nu^2))``."""
    rigidity = youngs_modulus * thickness**3 / (12 * (1 - poisson_ratio**2))
    omega = np.pi**2 * ((m / side_x) ** 2 + (n / side_y) ** 2) * np.sqrt(rigidity / (density * thickness))
    return float(omega / (2 * np.pi))
