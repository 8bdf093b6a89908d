"""Constitutive models as Warp functions: return mapping then Kirchhoff stress.

Every model maps the trial elastic deformation gradient F (after the G2P update
F <- (I + dt grad v) F) and the particle's scalar plastic state to the projected elastic
F, the new plastic state and the Kirchhoff stress tau = J sigma used by P2G. The plastic
state is: accumulated equivalent plastic strain (von Mises, Drucker-Prager,
Herschel-Bulkley), log J_p (snow) or the damage d (fracture); 0 at rest.
"""

from __future__ import annotations

import warp as wp

from .materials import (
    DRUCKER_PRAGER,
    FIXED_COROTATED,
    FLUID,
    FRACTURE,
    HERSCHEL_BULKLEY,
    NEO_HOOKEAN,
    SNOW,
    VON_MISES,
    MaterialModel,
)

SQRT_2_3 = wp.constant(0.816496580927726)  # sqrt(2/3)
MIN_STRETCH = wp.constant(1.0e-6)
POLAR_STEPS = 8  # Newton steps of the polar decomposition at most (unrolled)
POLAR_TOLERANCE = wp.constant(3.0e-4)  # a step changing R less than this leaves R float-exact (error ~ change^2 / 2)


@wp.func
def polar_rotation(F: wp.mat33):
    """Rotation R of the polar decomposition F = R S.

    Newton's iteration R <- (R + R^-T) / 2 has a well-defined derivative at F = I, unlike
    the SVD route whose singular vectors are undetermined there. It converges
    quadratically, so once a step changes R by less than ``POLAR_TOLERANCE`` (Frobenius)
    the new R is exact to float precision and the remaining steps are skipped: 2 steps
    for strains of 1%, at most ``POLAR_STEPS`` (stretches in about [0.05, 20]). Inverted
    F (det <= 0) falls back to the SVD.
    """
    if wp.determinant(F) <= 1.0e-6:
        U, sigma, V = wp.svd3(F)
        return U * wp.transpose(V)
    R = F
    change_sq = float(1.0)
    for _it in range(POLAR_STEPS):
        if change_sq > POLAR_TOLERANCE * POLAR_TOLERANCE:
            R_next = 0.5 * (R + wp.transpose(wp.inverse(R)))
            change_sq = wp.ddot(R_next - R, R_next - R)
            R = R_next
    return R


@wp.func
def fixed_corotated_stress(F: wp.mat33, mu: float, lam: float):
    """tau = 2 mu (F - R) F^T + lam (J - 1) J I with R = polar(F)."""
    R = polar_rotation(F)
    J = wp.determinant(F)
    return 2.0 * mu * (F - R) * wp.transpose(F) + wp.diag(wp.vec3(lam * (J - 1.0) * J))


@wp.func
def neo_hookean_stress(F: wp.mat33, mu: float, lam: float):
    """tau = mu (F F^T - I) + lam log(J) I."""
    J = wp.determinant(F)
    return mu * (F * wp.transpose(F) - wp.identity(n=3, dtype=float)) + wp.diag(wp.vec3(lam * wp.log(J)))


@wp.func
def log_strain(sigma: wp.vec3):
    """Principal Hencky strains log(sigma), singular values bounded away from zero."""
    return wp.vec3(
        wp.log(wp.max(sigma[0], MIN_STRETCH)),
        wp.log(wp.max(sigma[1], MIN_STRETCH)),
        wp.log(wp.max(sigma[2], MIN_STRETCH)),
    )


@wp.func
def hencky_stress(U: wp.mat33, eps: wp.vec3, mu: float, lam: float):
    """StVK-Hencky Kirchhoff stress tau = U (2 mu eps + lam tr(eps) I) U^T."""
    tr = eps[0] + eps[1] + eps[2]
    return U * wp.diag(2.0 * mu * eps + wp.vec3(lam * tr)) * wp.transpose(U)


@wp.func
def von_mises_return(eps: wp.vec3, alpha: float, mu: float, m: MaterialModel):
    """Radial return of the deviatoric log strain onto the hardened von Mises surface.

    Yield when sqrt(3/2) |dev tau| > yield_stress + hardening * alpha.
    Returns the projected log strain and the new equivalent plastic strain alpha.
    """
    tr = eps[0] + eps[1] + eps[2]
    dev = eps - wp.vec3(tr / 3.0)
    a = wp.length(dev)
    limit = (m.yield_stress + m.hardening * alpha) * SQRT_2_3 / (2.0 * mu)
    if a <= limit:
        return eps, alpha
    b = (
        (m.yield_stress + m.hardening * alpha + m.hardening * SQRT_2_3 * a) * SQRT_2_3
        / (2.0 * mu + m.hardening * SQRT_2_3 * SQRT_2_3)
    )
    return wp.vec3(tr / 3.0) + dev * (b / a), alpha + SQRT_2_3 * (a - b)


@wp.func
def drucker_prager_return(eps: wp.vec3, alpha: float, mu: float, lam: float, m: MaterialModel):
    """Drucker-Prager projection of the log strain (Klar et al. 2016, sand).

    Expansion beyond the cone tip projects to the tip; otherwise the deviatoric strain
    is shortened by dgamma = |dev eps| + (3 lam + 2 mu) / (2 mu) tr(eps) alpha_friction.
    """
    tr = eps[0] + eps[1] + eps[2] - m.cohesion
    dev = eps - wp.vec3((eps[0] + eps[1] + eps[2]) / 3.0)
    a = wp.length(dev)
    if tr >= 0.0:
        return wp.vec3(m.cohesion / 3.0), alpha + wp.length(eps)
    dgamma = a + (3.0 * lam + 2.0 * mu) / (2.0 * mu) * tr * m.friction_alpha
    if dgamma <= 0.0:
        return eps, alpha
    return eps - dev * (dgamma / a), alpha + dgamma


@wp.func
def herschel_bulkley_return(eps: wp.vec3, alpha: float, mu: float, m: MaterialModel, dt: float):
    """Viscoplastic relaxation of the deviatoric log strain above the yield stress.

    With s = 2 mu |dev eps| and y = sqrt(2/3) yield_stress, the strain norm b solves
    b = a - dt ((2 mu b - y) / viscosity)^(1 / n) (Newton, exact for n = 1).
    """
    tr = eps[0] + eps[1] + eps[2]
    dev = eps - wp.vec3(tr / 3.0)
    a = wp.length(dev)
    y = SQRT_2_3 * m.yield_stress
    b_min = y / (2.0 * mu)
    if a <= b_min:
        return eps, alpha
    b = a
    for _it in range(6):
        over = wp.max((2.0 * mu * b - y) / m.viscosity, 1.0e-12)
        rate = wp.pow(over, 1.0 / m.flow_index)
        g = b - a + dt * rate
        dg = 1.0 + dt * rate / (m.flow_index * over) * (2.0 * mu / m.viscosity)
        b = wp.clamp(b - g / dg, b_min, a)
    return wp.vec3(tr / 3.0) + dev * (b / a), alpha + (a - b)


@wp.func
def cube_root(J: float):
    """J^(1/3): two Halley steps r <- r (r^3 + 2 J) / (2 r^3 + J) from the tangent at 1 for J in [0.5, 2]
    (within 2 ulp there, cheaper than libm's cbrt), ``wp.cbrt`` elsewhere."""
    if J < 0.5 or J > 2.0:
        return wp.cbrt(J)
    r = (J + 2.0) / 3.0
    for _it in range(2):
        r3 = r * r * r
        r = r * (r3 + 2.0 * J) / (2.0 * r3 + J)
    return r


@wp.func
def fluid_update(F: wp.mat33, C: wp.mat33, lam: float, m: MaterialModel):
    """Weakly compressible fluid: keep only J, tau = K (J - 1) I + eta J (C + C^T)."""
    J = wp.determinant(F)
    F_new = wp.diag(wp.vec3(cube_root(J)))
    tau = wp.diag(wp.vec3(lam * (J - 1.0)))
    if m.viscosity > 0.0:
        tau = tau + m.viscosity * J * (C + wp.transpose(C))
    return F_new, tau


@wp.func
def snow_update(U: wp.mat33, sigma: wp.vec3, V: wp.mat33, log_jp: float, mu: float, lam: float, m: MaterialModel):
    """Stomakhin snow: clamp the stretches, move the excess into J_p, harden mu and lam."""
    clamped = wp.vec3(
        wp.clamp(sigma[0], m.lower_stretch, m.upper_stretch),
        wp.clamp(sigma[1], m.lower_stretch, m.upper_stretch),
        wp.clamp(sigma[2], m.lower_stretch, m.upper_stretch),
    )
    log_jp_new = (
        log_jp + wp.log(wp.max(sigma[0] * sigma[1] * sigma[2], MIN_STRETCH))
        - wp.log(clamped[0] * clamped[1] * clamped[2])
    )
    h = wp.min(wp.exp(m.hardening * (1.0 - wp.exp(log_jp_new))), m.max_hardening)
    F_e = U * wp.diag(clamped) * wp.transpose(V)
    return F_e, log_jp_new, fixed_corotated_stress(F_e, mu * h, lam * h)


@wp.func
def fracture_update(F: wp.mat33, sigma: wp.vec3, damage: float, mu: float, lam: float, m: MaterialModel):
    """Damage grows with the largest stretch; softens all but compressive volumetric stress."""
    grow = (sigma[0] - m.critical_stretch) / (m.failure_stretch - m.critical_stretch)
    d = wp.max(damage, wp.clamp(grow, 0.0, 1.0))
    J = sigma[0] * sigma[1] * sigma[2]
    tau = (1.0 - d) * fixed_corotated_stress(F, mu, lam)
    tau = tau + wp.diag(wp.vec3(d * wp.min(lam * (J - 1.0) * J, 0.0)))
    F_e = F
    if d >= 1.0:
        F_e = wp.diag(wp.vec3(wp.cbrt(J)))
    return F_e, d, tau


# Every material model below has the signature (m, F, plastic, C, mu, lam, dt) -> (F_elastic, plastic, tau).


@wp.func
def fluid_model(m: MaterialModel, F: wp.mat33, plastic: float, C: wp.mat33, mu: float, lam: float, dt: float):
    """Weakly compressible fluid (`fluid_update`)."""
    F_f, tau_f = fluid_update(F, C, lam, m)
    return F_f, plastic, tau_f


@wp.func
def neo_hookean_model(m: MaterialModel, F: wp.mat33, plastic: float, C: wp.mat33, mu: float, lam: float, dt: float):
    """Neo-Hookean elasticity (no plasticity)."""
    return F, plastic, neo_hookean_stress(F, mu, lam)


@wp.func
def fixed_corotated_model(m: MaterialModel, F: wp.mat33, plastic: float, C: wp.mat33, mu: float, lam: float,
                          dt: float):
    """Fixed-corotated elasticity (no plasticity)."""
    return F, plastic, fixed_corotated_stress(F, mu, lam)


@wp.func
def snow_model(m: MaterialModel, F: wp.mat33, plastic: float, C: wp.mat33, mu: float, lam: float, dt: float):
    """Stomakhin snow (`snow_update`)."""
    U, sigma, V = wp.svd3(F)
    return snow_update(U, sigma, V, plastic, mu, lam, m)


@wp.func
def fracture_model(m: MaterialModel, F: wp.mat33, plastic: float, C: wp.mat33, mu: float, lam: float, dt: float):
    """Damage-softened fixed-corotated elasticity (`fracture_update`)."""
    U, sigma, V = wp.svd3(F)
    return fracture_update(F, sigma, plastic, mu, lam, m)


@wp.func
def hencky_plastic_model(m: MaterialModel, F: wp.mat33, plastic: float, C: wp.mat33, mu: float, lam: float,
                         dt: float):
    """Hencky-based plasticity (von Mises, Drucker-Prager, Herschel-Bulkley by ``m.kind``): project the
    principal log strains, rebuild F = U exp(eps) V^T."""
    U, sigma, V = wp.svd3(F)
    eps = log_strain(sigma)
    alpha = plastic
    if m.kind == VON_MISES:
        eps, alpha = von_mises_return(eps, plastic, mu, m)
    elif m.kind == DRUCKER_PRAGER:
        eps, alpha = drucker_prager_return(eps, plastic, mu, lam, m)
    elif m.kind == HERSCHEL_BULKLEY:
        eps, alpha = herschel_bulkley_return(eps, plastic, mu, m, dt)
    F_e = U * wp.diag(wp.vec3(wp.exp(eps[0]), wp.exp(eps[1]), wp.exp(eps[2]))) * wp.transpose(V)
    return F_e, alpha, hencky_stress(U, eps, mu, lam)


@wp.func
def constitutive_update(m: MaterialModel, F: wp.mat33, plastic: float, C: wp.mat33, mu: float, lam: float, dt: float):
    """Return mapping and Kirchhoff stress of any material: (F_elastic, plastic, tau)."""
    if m.kind == FLUID:
        return fluid_model(m, F, plastic, C, mu, lam, dt)
    if m.kind == NEO_HOOKEAN:
        return neo_hookean_model(m, F, plastic, C, mu, lam, dt)
    if m.kind == FIXED_COROTATED:
        return fixed_corotated_model(m, F, plastic, C, mu, lam, dt)
    if m.kind == SNOW:
        return snow_model(m, F, plastic, C, mu, lam, dt)
    if m.kind == FRACTURE:
        return fracture_model(m, F, plastic, C, mu, lam, dt)
    return hencky_plastic_model(m, F, plastic, C, mu, lam, dt)


MODEL_OF_KIND = {
    int(FLUID): fluid_model,
    int(NEO_HOOKEAN): neo_hookean_model,
    int(FIXED_COROTATED): fixed_corotated_model,
    int(SNOW): snow_model,
    int(FRACTURE): fracture_model,
    int(VON_MISES): hencky_plastic_model,
    int(DRUCKER_PRAGER): hencky_plastic_model,
    int(HERSCHEL_BULKLEY): hencky_plastic_model,
}


def material_model(kind: int | None) -> wp.Function:
    """The constitutive update of material ``kind`` (a ``materials`` kind constant); None: of any material
    (`constitutive_update`, dispatching on the particle's table entry)."""
    return constitutive_update if kind is None else MODEL_OF_KIND[int(kind)]
