"""The MLS/APIC MPM substep as Warp kernels (quadratic B-splines, dense grid).

One substep of length dt is three kinds of launch:

1. ``stress_and_p2g`` (particles): project the trial elastic F onto the material's yield
   surface, compute the Kirchhoff stress tau, and scatter mass m_p w_ip and momentum
   w_ip (m_p v_p + (m_p C_p - dt V_p 4/dx^2 tau_p)(x_i - x_p)) to the 27 nodes i. One kernel
   per material kind when all particles share one (`stress_and_p2g_kernel`): only that
   material's code is compiled into it.
2. ``grid_update`` (nodes): v_i = momentum / mass + dt g, domain walls, then the contact
   of the colliders in order (sticky / slip / friction at nodes inside a collider, and
   against approach at nodes less than ``CONTACT_REACH`` cells outside it); it handles the
   first ``COLLIDERS_PER_LAUNCH`` colliders, ``grid_collide`` launches the rest.
3. ``g2p`` (particles): v_p = sum w_ip v_i, C_p = 4/dx^2 sum w_ip v_i (x_i - x_p)^T,
   F_p <- (I + dt C_p) F_p, x_p <- x_p + dt v_p (clamped to the bounds and counted).

Kernels read inputs and write outputs through separate arguments, so the forward solver
can pass the same arrays (in place) while the differentiable rollout passes a fresh
state per substep for ``wp.Tape``.
"""

from __future__ import annotations

from functools import cache

import warp as wp

from .colliders import ColliderData, collide
from .config import Grid
from .constitutive import material_model
from .materials import FLUID, MaterialModel

CONTACT_REACH = wp.constant(1.0)  # cells: nodes this close to a collider's surface resist approach
COLLIDERS_PER_LAUNCH = 4  # colliders one grid launch applies (an unrolled loop keeps it differentiable)
CLAMPED = wp.constant(0)  # stats counter slots
NON_FINITE = wp.constant(1)


@wp.func
def stencil(x: wp.vec3, grid: Grid):
    """Base node and fractional offset of a particle in grid units (x_i - x_p = (offset - fx) dx)."""
    xp = (x - grid.lower) * grid.inv_dx + wp.vec3(grid.pad)
    base = wp.vec3i(int(xp[0] - 0.5), int(xp[1] - 0.5), int(xp[2] - 0.5))
    return base, xp - wp.vec3(float(base[0]), float(base[1]), float(base[2]))


@wp.func
def bspline_weights(fx: wp.vec3):
    """Quadratic B-spline weights: row o holds the weights of node offset o along x, y, z."""
    w0 = 0.5 * wp.cw_mul(wp.vec3(1.5) - fx, wp.vec3(1.5) - fx)
    w1 = wp.vec3(0.75) - wp.cw_mul(fx - wp.vec3(1.0), fx - wp.vec3(1.0))
    w2 = 0.5 * wp.cw_mul(fx - wp.vec3(0.5), fx - wp.vec3(0.5))
    return wp.matrix_from_rows(w0, w1, w2)


@wp.kernel
def lame(
    stiffness: wp.array(dtype=float),
    poisson_ratio: wp.array(dtype=float),
    material_id: wp.array(dtype=wp.int32),
    materials: wp.array(dtype=MaterialModel),
    mu: wp.array(dtype=float),
    lam: wp.array(dtype=float),
):
    """Lame parameters from E and nu (fluids: mu = 0, lam = bulk modulus)."""
    p = wp.tid()
    E = stiffness[p]
    nu = poisson_ratio[p]
    if materials[material_id[p]].kind == FLUID:
        mu[p] = 0.0
        lam[p] = E
    else:
        mu[p] = E / (2.0 * (1.0 + nu))
        lam[p] = E * nu / ((1.0 + nu) * (1.0 - 2.0 * nu))


@wp.func
def scatter_to_grid(x: wp.vec3, v: wp.vec3, m: float, affine: wp.mat33, grid: Grid, grid_mv: wp.array(dtype=wp.vec4)):
    """Add w_o (m v + affine (x_o - x_p), m) to the 27 nodes o of the particle at x (P2G)."""
    base, fx = stencil(x, grid)
    w = bspline_weights(fx)
    # (m v + affine (x_o - x_p), m) with x_o - x_p = (o - fx) dx: a start value plus one step per axis of o
    q = m * v - affine * (fx * grid.dx)
    step_x = wp.vec4(affine[0, 0], affine[1, 0], affine[2, 0], 0.0) * grid.dx
    step_y = wp.vec4(affine[0, 1], affine[1, 1], affine[2, 1], 0.0) * grid.dx
    step_z = wp.vec4(affine[0, 2], affine[1, 2], affine[2, 2], 0.0) * grid.dx
    start_i = wp.vec4(q[0], q[1], q[2], m)
    for i in range(3):
        start_ij = start_i
        for j in range(3):
            w_ij = w[i, 0] * w[j, 1]
            row = ((base[0] + i) * grid.ny + base[1] + j) * grid.nz + base[2]
            node = w_ij * start_ij
            dz = w_ij * step_z
            wp.atomic_add(grid_mv, row, w[0, 2] * node)
            node = node + dz
            wp.atomic_add(grid_mv, row + 1, w[1, 2] * node)
            node = node + dz
            wp.atomic_add(grid_mv, row + 2, w[2, 2] * node)
            start_ij = start_ij + step_y
        start_i = start_i + step_x


@cache
def stress_and_p2g_kernel(kind: int | None) -> wp.Kernel:
    """The ``stress_and_p2g`` kernel for particles all of material ``kind`` (None: any mix of materials).

    Each kind gets its own module, compiled once on first use, holding only its material's
    return mapping (no per-particle switch over every model, no SVD where none is needed).
    """
    model = material_model(kind)

    @wp.kernel(module="unique")
    def stress_and_p2g(
        F_trial: wp.array(dtype=wp.mat33),
        plastic_in: wp.array(dtype=float),
        C: wp.array(dtype=wp.mat33),
        mu: wp.array(dtype=float),
        lam: wp.array(dtype=float),
        material_id: wp.array(dtype=wp.int32),
        materials: wp.array(dtype=MaterialModel),
        x: wp.array(dtype=wp.vec3),
        v: wp.array(dtype=wp.vec3),
        mass: wp.array(dtype=float),
        volume: wp.array(dtype=float),
        grid: Grid,
        dt: float,
        apic_blend: float,
        F_out: wp.array(dtype=wp.mat33),
        plastic_out: wp.array(dtype=float),
        tau: wp.array(dtype=wp.mat33),
        grid_mv: wp.array(dtype=wp.vec4),
    ):
        """Plastic projection of F and Kirchhoff stress, then the particle's momentum (APIC affine and stress
        terms) and mass scattered to the grid."""
        p = wp.tid()
        C_p = C[p]
        F_e, plastic, stress = wp.static(model)(
            materials[material_id[p]], F_trial[p], plastic_in[p], C_p, mu[p], lam[p], dt
        )
        F_out[p] = F_e
        plastic_out[p] = plastic
        tau[p] = stress
        m = mass[p]
        affine = (-dt * volume[p] * 4.0 * grid.inv_dx * grid.inv_dx) * stress + (m * apic_blend) * C_p
        scatter_to_grid(x[p], v[p], m, affine, grid, grid_mv)

    return stress_and_p2g


@wp.func
def node_position(n: int, grid: Grid):
    """World position of flat node index n."""
    i = n / (grid.ny * grid.nz)
    j = (n / grid.nz) % grid.ny
    k = n % grid.nz
    return grid.lower + (wp.vec3(float(i), float(j), float(k)) - wp.vec3(grid.pad)) * grid.dx


@wp.func
def wall_factor(node: float, v: float, lower: float, upper: float, dx: float):
    """0 where velocity component v points out of the domain within one cell of a wall, else 1."""
    if (node <= lower + dx and v < 0.0) or (node >= upper - dx and v > 0.0):
        return 0.0
    return 1.0


@wp.func
def collide_chunk(colliders: wp.array(dtype=ColliderData), first: int, x: wp.vec3, v: wp.vec3, t: float,
                  reach: float):
    """Velocity v at node position x after the contact of colliders first .. first + COLLIDERS_PER_LAUNCH - 1
    (those that exist), in order."""
    for c in range(wp.static(COLLIDERS_PER_LAUNCH)):
        if first + c < colliders.shape[0]:
            v = collide(colliders[first + c], x, v, t, reach)
    return v


@wp.kernel
def grid_update(
    grid_mv: wp.array(dtype=wp.vec4),
    grid: Grid,
    gravity: wp.vec3,
    dt: float,
    colliders: wp.array(dtype=ColliderData),
    frame_time: float,
    grid_v: wp.array(dtype=wp.vec3),
):
    """Grid velocities: momentum / mass plus gravity, the domain walls, then the first colliders' contact.

    Nodes inside a collider take its contact law; nodes less than ``CONTACT_REACH`` cells
    outside it take it only when moving towards the surface.
    """
    n = wp.tid()
    mv = grid_mv[n]
    if mv[3] <= 0.0:
        grid_v[n] = wp.vec3(0.0)
        return
    v = wp.vec3(mv[0], mv[1], mv[2]) / mv[3] + dt * gravity
    node = node_position(n, grid)
    if grid.boundary != 2:
        wall = wp.vec3(
            wall_factor(node[0], v[0], grid.lower[0], grid.upper[0], grid.dx),
            wall_factor(node[1], v[1], grid.lower[1], grid.upper[1], grid.dx),
            wall_factor(node[2], v[2], grid.lower[2], grid.upper[2], grid.dx),
        )
        if grid.boundary == 1 and wall[0] * wall[1] * wall[2] == 0.0:
            wall = wp.vec3(0.0)
        v = wp.cw_mul(v, wall)
    grid_v[n] = collide_chunk(colliders, 0, node, v, frame_time, CONTACT_REACH * grid.dx)


@wp.kernel
def grid_collide(
    grid_v: wp.array(dtype=wp.vec3),
    grid_mv: wp.array(dtype=wp.vec4),
    grid: Grid,
    colliders: wp.array(dtype=ColliderData),
    first: int,
    frame_time: float,
    grid_v_out: wp.array(dtype=wp.vec3),
):
    """Contact of colliders ``first`` .. ``first + COLLIDERS_PER_LAUNCH - 1`` with the grid velocities (the
    colliders past those `grid_update` applies)."""
    n = wp.tid()
    v = grid_v[n]
    if grid_mv[n][3] > 0.0:
        v = collide_chunk(colliders, first, node_position(n, grid), v, frame_time, CONTACT_REACH * grid.dx)
    grid_v_out[n] = v


@wp.kernel
def g2p(
    x: wp.array(dtype=wp.vec3),
    F: wp.array(dtype=wp.mat33),
    grid_v: wp.array(dtype=wp.vec3),
    grid: Grid,
    dt: float,
    x_out: wp.array(dtype=wp.vec3),
    v_out: wp.array(dtype=wp.vec3),
    C_out: wp.array(dtype=wp.mat33),
    F_out: wp.array(dtype=wp.mat33),
    covariance: wp.array(dtype=wp.mat33),
    counters: wp.array(dtype=wp.int32),
    max_speed_sq: wp.array(dtype=float),
):
    """Grid to particle: gather v and C, update F (and covariance), advect, clamp, check."""
    p = wp.tid()
    base, fx = stencil(x[p], grid)
    w = bspline_weights(fx)
    # sum_o w_o v_o (o - fx)^T dx = (moment - v_new (fx - 1)^T) dx, moment = sum_o w_o v_o (o - 1)^T taken per
    # axis of o (offsets -1, 0, 1 from the stencil's centre: differences of partial sums, no products)
    v_new = wp.vec3(0.0)
    moment_x = wp.vec3(0.0)
    moment_y = wp.vec3(0.0)
    moment_z = wp.vec3(0.0)
    for i in range(3):
        plane = wp.vec3(0.0)  # sums over the nodes of x-offset i
        plane_y = wp.vec3(0.0)
        plane_z = wp.vec3(0.0)
        for j in range(3):
            row = ((base[0] + i) * grid.ny + base[1] + j) * grid.nz + base[2]
            v0 = w[0, 2] * grid_v[row]
            v1 = w[1, 2] * grid_v[row + 1]
            v2 = w[2, 2] * grid_v[row + 2]
            column = w[j, 1] * (v0 + v1 + v2)
            plane += column
            if wp.static(j == 0):
                plane_y -= column
            if wp.static(j == 2):
                plane_y += column
            plane_z += w[j, 1] * (v2 - v0)
        weighted = w[i, 0] * plane
        v_new += weighted
        if wp.static(i == 0):
            moment_x -= weighted
        if wp.static(i == 2):
            moment_x += weighted
        moment_y += w[i, 0] * plane_y
        moment_z += w[i, 0] * plane_z
    scale = 4.0 * grid.inv_dx  # 4 / dx^2 times the dx of (o - fx) dx
    shift = fx - wp.vec3(1.0)
    C_new = scale * wp.matrix_from_cols(moment_x - shift[0] * v_new, moment_y - shift[1] * v_new,
                                        moment_z - shift[2] * v_new)
    step = wp.identity(n=3, dtype=float) + dt * C_new
    x_new = x[p] + dt * v_new
    if not wp.isfinite(v_new):
        wp.atomic_add(counters, NON_FINITE, 1)
        x_new = x[p]  # keep the stencil inside the grid; the solver raises after the frame
    x_clamped = wp.min(wp.max(x_new, grid.lower), grid.upper)
    if wp.length_sq(x_clamped - x_new) > 0.0:
        wp.atomic_add(counters, CLAMPED, 1)
        keep = wp.vec3(
            wp.where(x_clamped[0] == x_new[0], 1.0, 0.0),
            wp.where(x_clamped[1] == x_new[1], 1.0, 0.0),
            wp.where(x_clamped[2] == x_new[2], 1.0, 0.0),
        )
        v_new = wp.cw_mul(v_new, keep)  # no velocity into the wall it was clamped onto
        x_new = x_clamped
    x_out[p] = x_new
    v_out[p] = v_new
    C_out[p] = C_new
    F_out[p] = step * F[p]
    if covariance.shape[0] > 0:
        covariance[p] = step * covariance[p] * wp.transpose(step)
    wp.atomic_max(max_speed_sq, 0, wp.dot(v_new, v_new))
