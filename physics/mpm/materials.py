"""Typed MPM materials: elastic moduli per particle, plasticity parameters per material.

Every material is a frozen dataclass. Young's modulus, Poisson ratio and density may be
scalars or per-particle arrays (one value per particle of the ``add_particles`` call
they are used in); the remaining parameters (yield stress, friction angle, ...) belong
to the material instance. Each instance added to a solver becomes one entry of the
solver's material table, so any number of materials coexist in one simulation.

Stress models (Kirchhoff stress tau = J sigma, F the elastic deformation gradient):

- ``FixedCorotated``: tau = 2 mu (F - R) F^T + lam (J - 1) J I (Stomakhin et al. 2012).
- ``NeoHookean``: tau = mu (F F^T - I) + lam log(J) I.
- ``VonMises``: StVK-Hencky elasticity, von Mises return mapping in log-strain space,
  optional linear isotropic hardening (metal).
- ``DruckerPrager``: StVK-Hencky + Drucker-Prager return mapping (sand; Klar et al. 2016).
- ``HerschelBulkley``: StVK-Hencky with a rate-dependent von Mises yield (paste;
  Yue et al. 2015): above the yield stress the deviatoric stress relaxes with
  viscosity ``viscosity`` and flow index ``flow_index``.
- ``Fluid``: weakly compressible, tau = K (J - 1) I (+ optional Newtonian viscosity);
  the shear part of F is discarded every substep.
- ``Snow``: fixed-corotated elasticity with singular values clamped to
  [1 - theta_c, 1 + theta_s] and Stomakhin hardening mu, lam *= exp(xi (1 - J_p)).
- ``Fracture``: fixed-corotated elasticity softened by an irreversible damage d in
  [0, 1] driven by the largest principal stretch; compression is never softened.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import warp as wp

# Material kinds as seen by the kernels (see ``constitutive.py``).
FIXED_COROTATED = wp.constant(0)
NEO_HOOKEAN = wp.constant(1)
VON_MISES = wp.constant(2)
DRUCKER_PRAGER = wp.constant(3)
HERSCHEL_BULKLEY = wp.constant(4)
FLUID = wp.constant(5)
SNOW = wp.constant(6)
FRACTURE = wp.constant(7)


@wp.struct
class MaterialModel:
    """Per-material constants read by the stress kernel (one table entry per material)."""

    kind: int
    yield_stress: float  # von Mises / Herschel-Bulkley yield stress (Pa)
    hardening: float  # von Mises linear hardening modulus (Pa); snow hardening xi
    friction_alpha: float  # Drucker-Prager cone coefficient sqrt(2/3) 2 sin(phi) / (3 - sin(phi))
    cohesion: float  # Drucker-Prager cohesion as a log-strain shift of the cone tip
    viscosity: float  # Herschel-Bulkley / fluid viscosity (Pa s)
    flow_index: float  # Herschel-Bulkley exponent n
    lower_stretch: float  # snow: 1 - theta_c
    upper_stretch: float  # snow: 1 + theta_s
    max_hardening: float  # snow: upper bound of exp(xi (1 - J_p))
    critical_stretch: float  # fracture: principal stretch where damage starts
    failure_stretch: float  # fracture: principal stretch of full damage


def describe_bad_values(values: np.ndarray, bad: np.ndarray, shown: int = 5) -> str:
    """Which entries of ``values`` the mask ``bad`` rejects: their count, the first ``shown``
    as ``[index]=value``, and the range of all values (e.g. for a validation error)."""
    v = np.asarray(values, dtype=np.float64).ravel()
    idx = np.flatnonzero(np.asarray(bad).ravel())
    first = ", ".join(f"[{i}]={v[i]:.6g}" for i in idx[:shown]) + (", ..." if len(idx) > shown else "")
    finite = v[np.isfinite(v)]
    span = f"the finite ones span [{finite.min():.6g}, {finite.max():.6g}]" if len(finite) else "none is finite"
    return f"{len(idx)} of {len(v)} are not: {first} ({span}, {len(v) - len(finite)} non-finite)"


def check_positive_moduli(name: str, values: np.ndarray, n: int) -> np.ndarray:
    """``values`` as (n,) float64 if they are n finite positive numbers (one per particle), else a
    ValueError naming the offending entries."""
    E = np.asarray(values, dtype=np.float64)
    if E.shape != (n,):
        raise ValueError(f"{name} must hold {n} finite positive values (one per particle), got shape {E.shape}")
    bad = ~(np.isfinite(E) & (E > 0.0))
    if np.any(bad):
        raise ValueError(f"{name} must hold {n} finite positive values (one per particle); "
                         f"{describe_bad_values(E, bad)}")
    return E


def _per_particle(name: str, value: float | np.ndarray, n: int) -> np.ndarray:
    """Broadcast a scalar or per-particle parameter to ``(n,)`` float64, checking finiteness."""
    arr = np.asarray(value, dtype=np.float64)
    if arr.ndim == 0:
        arr = np.full(n, float(arr))
    elif arr.shape != (n,):
        raise ValueError(f"{name} must be a scalar or an array of shape ({n},) (one per particle), "
                         f"got shape {arr.shape}")
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} must be finite; {describe_bad_values(arr, ~np.isfinite(arr))}")
    return arr


def _require_positive(name: str, value: float) -> None:
    if not (math.isfinite(value) and value > 0.0):
        raise ValueError(f"{name} must be a finite positive number, got {value}")


def _require_non_negative(name: str, value: float) -> None:
    if not (math.isfinite(value) and value >= 0.0):
        raise ValueError(f"{name} must be finite and >= 0, got {value}")


@dataclass(frozen=True)
class ParticleModuli:
    """Per-particle parameters of one particle group, as stored by the solver.

    ``stiffness`` is Young's modulus for solids and the bulk modulus for fluids; the
    kernels turn (stiffness, poisson_ratio) into Lame parameters (``lame`` in kernels).
    """

    stiffness: np.ndarray
    poisson_ratio: np.ndarray
    density: np.ndarray
    wave_speed: np.ndarray


class Material:
    """Base class of all materials: per-particle moduli plus kernel-side constants."""

    kind: ClassVar[int] = -1

    def moduli(self, n: int) -> ParticleModuli:
        """Validate the elastic parameters for ``n`` particles; return per-particle moduli."""
        raise NotImplementedError

    def stiffening(self) -> float:
        """Largest factor by which the material can stiffen (used for the CFL bound)."""
        return 1.0

    def model(self) -> MaterialModel:
        """The kernel-side constants of this material (validated)."""
        m = MaterialModel()
        m.kind = self.kind
        m.flow_index = 1.0
        m.lower_stretch = 0.0
        m.upper_stretch = 1.0e30
        m.max_hardening = 1.0
        m.critical_stretch = 1.0e30
        m.failure_stretch = 1.0e30
        return m


@dataclass(frozen=True)
class ElasticMaterial(Material):
    """Base of solids with per-particle Young's modulus, Poisson ratio and density.

    Args:
        youngs_modulus: Young's modulus E in Pa (> 0), scalar or one per particle.
        poisson_ratio: Poisson ratio nu in (-1, 0.5), scalar or one per particle.
        density: density rho in kg/m^3 (> 0), scalar or one per particle.
    """

    youngs_modulus: float | np.ndarray
    poisson_ratio: float | np.ndarray
    density: float | np.ndarray

    def moduli(self, n: int) -> ParticleModuli:
        E = _per_particle("youngs_modulus", self.youngs_modulus, n)
        nu = _per_particle("poisson_ratio", self.poisson_ratio, n)
        rho = _per_particle("density", self.density, n)
        if np.any(E <= 0.0):
            raise ValueError(f"youngs_modulus must be > 0; {describe_bad_values(E, E <= 0.0)}")
        if np.any((nu <= -1.0) | (nu >= 0.5)):
            raise ValueError(f"poisson_ratio must lie in (-1, 0.5), got range [{nu.min()}, {nu.max()}]")
        if np.any(rho <= 0.0):
            raise ValueError(f"density must be > 0, got min {rho.min()}")
        mu, lam = lame_parameters(E, nu)
        speed = np.sqrt((lam + 2.0 * mu) / rho * self.stiffening())
        return ParticleModuli(stiffness=E, poisson_ratio=nu, density=rho, wave_speed=speed)


def lame_parameters(E: np.ndarray, nu: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Lame parameters (mu, lambda) from Young's modulus and Poisson ratio."""
    mu = E / (2.0 * (1.0 + nu))
    lam = E * nu / ((1.0 + nu) * (1.0 - 2.0 * nu))
    return mu, lam


@dataclass(frozen=True)
class FixedCorotated(ElasticMaterial):
    """Fixed-corotated hyperelastic solid (jelly): tau = 2 mu (F - R) F^T + lam (J - 1) J I."""

    kind: ClassVar[int] = int(FIXED_COROTATED)


@dataclass(frozen=True)
class NeoHookean(ElasticMaterial):
    """Compressible neo-Hookean solid: tau = mu (F F^T - I) + lam log(J) I."""

    kind: ClassVar[int] = int(NEO_HOOKEAN)


@dataclass(frozen=True)
class VonMises(ElasticMaterial):
    """Metal: StVK-Hencky elasticity with von Mises plasticity and linear hardening.

    Args:
        yield_stress: initial yield stress (Pa, > 0) on the Kirchhoff deviatoric norm
            scaled as the uniaxial yield stress (sqrt(3/2) |dev tau|).
        hardening: linear isotropic hardening modulus (Pa, >= 0): the yield stress grows
            by ``hardening`` times the accumulated equivalent plastic strain.
    """

    yield_stress: float = 1.0e6
    hardening: float = 0.0
    kind: ClassVar[int] = int(VON_MISES)

    def model(self) -> MaterialModel:
        _require_positive("yield_stress", self.yield_stress)
        _require_non_negative("hardening", self.hardening)
        m = super().model()
        m.yield_stress = self.yield_stress
        m.hardening = self.hardening
        return m


@dataclass(frozen=True)
class DruckerPrager(ElasticMaterial):
    """Sand: StVK-Hencky elasticity with Drucker-Prager plasticity (Klar et al. 2016).

    Yield when |dev tau| + alpha tr(tau) > 0 with Klar's alpha = sqrt(2/3) 2 sin(phi) /
    (3 - sin(phi)), the cone through Mohr-Coulomb's triaxial-compression meridian; it is
    stronger than Mohr-Coulomb in other stress states (in steady plane-strain flow it
    acts like Mohr-Coulomb with sin(phi') = 2 sqrt(3) sin(phi) / (3 - sin(phi)), 44 deg
    for phi = 30), so over-steep slopes can stand until disturbed. Measured (see
    ``tests/physics/mpm/test_mpm_validation.py``): a slowly released plane-strain pile 10 cells high
    stands near phi for phi = 20 / 30; a 3D heap left by a column (radius and height 5
    cells) whose tube is lifted at 0.02 m/s, on a sticky floor on a node plane / half a
    cell above one, stands at 25.0 / 27.2 deg for phi = 25, 31.4 / 28.4 for phi = 30,
    33.0 / 31.6 for phi = 35 (28.5 / 29.8 for phi = 30 at 0.25 / 0.75 cell). A column
    dropped at once runs out by inertia: a cylinder twice as tall as wide (10 cells
    across) spreads to flanks of 11 / 15 / 17 deg for phi = 25 / 30 / 35 (height 0.7-0.9 R,
    run-out 3.2-4.4 R), close to experiments where such deposits depend on the aspect
    ratio more than on the friction (Lube et al. 2004: 0.88 a^(1/6) R and
    (1 + 1.6 a^(1/2)) R for a = H / R = 4, about 15 deg). The floor must hold the base:
    on a slip floor a cohesionless pile spreads flat.

    Args:
        friction_angle_deg: internal friction angle phi in degrees, in (0, 90).
        cohesion: log-strain shift of the cone tip (>= 0); 0 is cohesionless sand.
    """

    friction_angle_deg: float = 30.0
    cohesion: float = 0.0
    kind: ClassVar[int] = int(DRUCKER_PRAGER)

    def model(self) -> MaterialModel:
        phi = self.friction_angle_deg
        if not (math.isfinite(phi) and 0.0 < phi < 90.0):
            raise ValueError(f"friction_angle_deg must lie in (0, 90) degrees, got {phi}")
        _require_non_negative("cohesion", self.cohesion)
        s = math.sin(math.radians(phi))
        m = super().model()
        m.friction_alpha = math.sqrt(2.0 / 3.0) * 2.0 * s / (3.0 - s)
        m.cohesion = self.cohesion
        return m


@dataclass(frozen=True)
class HerschelBulkley(ElasticMaterial):
    """Paste: StVK-Hencky elasticity with Herschel-Bulkley viscoplastic flow.

    Above ``yield_stress`` the plastic flow rate is ((s - yield_stress) / viscosity)^(1/n)
    with s the equivalent deviatoric stress and n = ``flow_index`` (1 is Bingham).
    """

    yield_stress: float = 100.0
    viscosity: float = 10.0
    flow_index: float = 1.0
    kind: ClassVar[int] = int(HERSCHEL_BULKLEY)

    def model(self) -> MaterialModel:
        _require_non_negative("yield_stress", self.yield_stress)
        _require_positive("viscosity", self.viscosity)
        _require_positive("flow_index", self.flow_index)
        m = super().model()
        m.yield_stress = self.yield_stress
        m.viscosity = self.viscosity
        m.flow_index = self.flow_index
        return m


@dataclass(frozen=True)
class Snow(ElasticMaterial):
    """Snow (Stomakhin et al. 2013): clamped fixed-corotated elasticity with hardening.

    Args:
        critical_compression: theta_c in (0, 1); singular values below 1 - theta_c flow.
        critical_stretch: theta_s > 0; singular values above 1 + theta_s flow.
        hardening: xi >= 0; mu and lambda scale with exp(xi (1 - J_p)).
        max_hardening: upper bound (>= 1) of that factor, which bounds the CFL time step.
    """

    youngs_modulus: float | np.ndarray = 1.4e5
    poisson_ratio: float | np.ndarray = 0.2
    density: float | np.ndarray = 400.0
    critical_compression: float = 2.5e-2
    critical_stretch: float = 7.5e-3
    hardening: float = 10.0
    max_hardening: float = 10.0
    kind: ClassVar[int] = int(SNOW)

    def stiffening(self) -> float:
        return float(self.max_hardening)

    def model(self) -> MaterialModel:
        if not (0.0 < self.critical_compression < 1.0):
            raise ValueError(f"critical_compression must lie in (0, 1), got {self.critical_compression}")
        _require_positive("critical_stretch", self.critical_stretch)
        _require_non_negative("hardening", self.hardening)
        if not (math.isfinite(self.max_hardening) and self.max_hardening >= 1.0):
            raise ValueError(f"max_hardening must be >= 1, got {self.max_hardening}")
        m = super().model()
        m.hardening = self.hardening
        m.lower_stretch = 1.0 - self.critical_compression
        m.upper_stretch = 1.0 + self.critical_stretch
        m.max_hardening = self.max_hardening
        return m


@dataclass(frozen=True)
class Fracture(ElasticMaterial):
    """Brittle solid: fixed-corotated elasticity with irreversible damage softening.

    Damage d grows linearly from 0 at principal stretch ``critical_stretch`` to 1 at
    ``critical_stretch * (1 + softening)``; the deviatoric and tensile stress scale with
    (1 - d), the compressive volumetric stress is kept so fragments do not interpenetrate.
    """

    critical_stretch: float = 1.05
    softening: float = 0.05
    kind: ClassVar[int] = int(FRACTURE)

    def model(self) -> MaterialModel:
        if not (math.isfinite(self.critical_stretch) and self.critical_stretch > 1.0):
            raise ValueError(f"critical_stretch must be a principal stretch > 1, got {self.critical_stretch}")
        _require_positive("softening", self.softening)
        m = super().model()
        m.critical_stretch = self.critical_stretch
        m.failure_stretch = self.critical_stretch * (1.0 + self.softening)
        return m


@dataclass(frozen=True)
class Fluid(Material):
    """Weakly compressible fluid: tau = K (J - 1) I + eta J (grad v + grad v^T).

    Args:
        bulk_modulus: K in Pa (> 0), scalar or one per particle; sound speed sqrt(K / rho).
        density: rest density in kg/m^3 (> 0), scalar or one per particle.
        viscosity: dynamic viscosity eta in Pa s (>= 0).
    """

    bulk_modulus: float | np.ndarray = 2.0e5
    density: float | np.ndarray = 1000.0
    viscosity: float = 0.0
    kind: ClassVar[int] = int(FLUID)

    def moduli(self, n: int) -> ParticleModuli:
        K = _per_particle("bulk_modulus", self.bulk_modulus, n)
        rho = _per_particle("density", self.density, n)
        if np.any(K <= 0.0):
            raise ValueError(f"bulk_modulus must be > 0; {describe_bad_values(K, K <= 0.0)}")
        if np.any(rho <= 0.0):
            raise ValueError(f"density must be > 0, got min {rho.min()}")
        return ParticleModuli(stiffness=K, poisson_ratio=np.zeros(n), density=rho, wave_speed=np.sqrt(K / rho))

    def model(self) -> MaterialModel:
        _require_non_negative("viscosity", self.viscosity)
        m = super().model()
        m.viscosity = self.viscosity
        return m


__all__ = [
    "Material",
    "ElasticMaterial",
    "MaterialModel",
    "ParticleModuli",
    "FixedCorotated",
    "NeoHookean",
    "VonMises",
    "DruckerPrager",
    "HerschelBulkley",
    "Fluid",
    "Snow",
    "Fracture",
    "lame_parameters",
]
