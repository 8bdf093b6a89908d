"""Implicit friction of a rigid body sliding in the plane on point supports, pushed at contact points.

The PyBullet backend computes the free body's friction with this model instead of Bullet's own
(see `pybullet_backend` for why). For one time step ``dt`` it finds the body's planar velocity
xi = (vx, vy, wz) at the end of the step as the minimiser of

    1/2 |xi - xi*|_M^2 + dt sum_i L_i sqrt(|u_i|^2 + eps^2) + dt sum_j P_j (sqrt(s_j^2 + v0^2) - v0)

where xi* is the velocity the step would end with without friction, M = diag(m, m, Izz),
u_i the slip velocity of support i (limit L_i = mu N_i) and s_j the slip of pusher contact j
along its horizontal tangent, relative to the pusher (limit P_j = mu f_j). Each support term is
Coulomb friction (the force opposes the slip, magnitude L_i, and a body whose supports can hold
it stays at rest: slip below ``eps``); each pusher term is Coulomb friction regularised over a
slip velocity ``v0`` (force P_j s_j / sqrt(s_j^2 + v0^2)). The problem is convex; it is solved
by Newton's method with a backtracking line search, in plain Python floats (a few microseconds
per iteration for the handful of contacts of a pushed block).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

Support = tuple[float, float, float]  # (rx, ry, limit): offset from the centre of mass (m), mu N (N)
Pusher = tuple[float, float, float, float, float, float]  # (tx, ty, rx, ry, pusher speed along t, mu f)


def _solve3(h: list[float], g: list[float]) -> list[float]:
    """Solve the symmetric 3x3 system H d = g (H = [h00, h01, h02, h11, h12, h22], positive definite)."""
    a, b, c, d, e, f = h
    c00, c01, c02 = d * f - e * e, c * e - b * f, b * e - c * d
    det = a * c00 + b * c01 + c * c02
    c11, c12, c22 = a * f - c * c, b * c - a * e, a * d - b * b
    return [(c00 * g[0] + c01 * g[1] + c02 * g[2]) / det,
            (c01 * g[0] + c11 * g[1] + c12 * g[2]) / det,
            (c02 * g[0] + c12 * g[1] + c22 * g[2]) / det]


def planar_friction(
    xi_star: Sequence[float], mass: float, inertia: float, supports: Sequence[Support],
    pushers: Sequence[Pusher], dt: float, eps: float = 1e-4, v0: float = 0.015, iterations: int = 40,
    guess: Sequence[float] | None = None,
) -> tuple[list[float], list[float]]:
    """The body's planar velocity after friction and the friction force along each pusher's tangent.

    ``xi_star``: (vx, vy, wz) without friction; ``supports``/``pushers``: see the module
    docstring (tangents are unit vectors, offsets are from the centre of mass, world frame).
    Newton starts from the best of ``xi_star``, rest and ``guess`` (e.g. the current velocity).
    Returns ((vx, vy, wz), [force on the body along pusher j's tangent]).
    """
    m = (mass, mass, inertia)
    xs = [float(v) for v in xi_star]
    gs = [(tx, ty, tx * -ry + ty * rx, vp, dt * lim) for tx, ty, rx, ry, vp, lim in pushers]
    ks = [(rx, ry, dt * lim) for rx, ry, lim in supports]
    e2, w2 = eps * eps, v0 * v0

    def objective(x: list[float]) -> float:
        val = 0.5 * sum(mi * (xi - si) ** 2 for mi, xi, si in zip(m, x, xs, strict=True))
        for rx, ry, k in ks:
            ux, uy = x[0] - x[2] * ry, x[1] + x[2] * rx
            val += k * math.sqrt(ux * ux + uy * uy + e2)
        for gx, gy, gw, vp, k in gs:
            s = gx * x[0] + gy * x[1] + gw * x[2] - vp
            val += k * (math.sqrt(s * s + w2) - v0)
        return val

    x = min([xs, [0.0, 0.0, 0.0]] + ([[float(v) for v in guess]] if guess is not None else []), key=objective)
    for _ in range(iterations):
        grad = [mi * (xi - si) for mi, xi, si in zip(m, x, xs, strict=True)]
        h = [m[0], 0.0, 0.0, m[1], 0.0, m[2]]
        for rx, ry, k in ks:
            ux, uy = x[0] - x[2] * ry, x[1] + x[2] * rx
            q2 = ux * ux + uy * uy + e2
            q = math.sqrt(q2)
            kq = k / q
            grad[0] += kq * ux
            grad[1] += kq * uy
            grad[2] += kq * (rx * uy - ry * ux)
            a, b, c = kq * (1.0 - ux * ux / q2), -kq * ux * uy / q2, kq * (1.0 - uy * uy / q2)
            h[0] += a
            h[1] += b
            h[2] += rx * b - ry * a
            h[3] += c
            h[4] += rx * c - ry * b
            h[5] += ry * ry * a - 2.0 * rx * ry * b + rx * rx * c
        for gx, gy, gw, vp, k in gs:
            s = gx * x[0] + gy * x[1] + gw * x[2] - vp
            q = math.sqrt(s * s + w2)
            coef, curv = k * s / q, k * w2 / (q * q * q)
            grad[0] += coef * gx
            grad[1] += coef * gy
            grad[2] += coef * gw
            h[0] += curv * gx * gx
            h[1] += curv * gx * gy
            h[2] += curv * gx * gw
            h[3] += curv * gy * gy
            h[4] += curv * gy * gw
            h[5] += curv * gw * gw
        step = _solve3(h, grad)
        slope = sum(gi * di for gi, di in zip(grad, step, strict=True))
        f0, t = objective(x), 1.0
        while t > 1e-6:
            trial = [xi - t * di for xi, di in zip(x, step, strict=True)]
            if objective(trial) <= f0 - 1e-4 * t * slope:
                break
            t *= 0.5
        x = [xi - t * di for xi, di in zip(x, step, strict=True)]
        if max(abs(di) for di in step) * t < 1e-9:
            break
    forces = []
    for gx, gy, gw, vp, k in gs:
        s = gx * x[0] + gy * x[1] + gw * x[2] - vp
        forces.append(-k / dt * s / math.sqrt(s * s + w2))
    return x, forces
