"""The implicit planar friction model the PyBullet backend uses for the free body."""

import math

import numpy as np

from physics.rigid.planar_friction import planar_friction

MASS, IZZ, DT, MU = 0.8, 0.0043, 0.005, 0.5
PADS = [(-0.085, -0.043), (0.085, -0.043), (0.0, 0.117)]  # the T's pads around its centre of mass


def _supports(loads=(2.87, 2.87, 2.11)):  # the weight, balanced about the centre of mass
    return [(x, y, MU * n) for (x, y), n in zip(PADS, loads, strict=True)]


def test_slow_body_sticks_fast_body_decelerates_at_mu_g():
    slow, _ = planar_friction((0.01, -0.005, 0.05), MASS, IZZ, _supports(), [], DT)
    assert max(abs(v) for v in slow[:2]) < 1e-4 and abs(slow[2]) < 1e-3
    fast, _ = planar_friction((0.3, 0.0, 0.0), MASS, IZZ, _supports(), [], DT)
    decel = (0.3 - fast[0]) / DT
    assert math.isclose(decel, MU * 7.85 / MASS, rel_tol=1e-3)
    assert abs(fast[1]) < 1e-6 and abs(fast[2]) < 1e-4


def test_support_friction_opposes_each_slip():
    """Coulomb at every support: the wrench it applies equals the sum of forces -mu N u/|u| at the new velocity."""
    xs = (0.12, -0.05, 1.5)
    xi, _ = planar_friction(xs, MASS, IZZ, _supports(), [], DT)
    force, torque = np.zeros(2), 0.0
    for x, y, lim in _supports():
        u = np.array([xi[0] - xi[2] * y, xi[1] + xi[2] * x])
        f = -lim * u / np.linalg.norm(u)
        force += f
        torque += x * f[1] - y * f[0]
    np.testing.assert_allclose(MASS * (np.array(xi[:2]) - xs[:2]) / DT, force, atol=1e-4)
    assert math.isclose(IZZ * (xi[2] - xs[2]) / DT, torque, abs_tol=1e-5)


def test_pusher_friction_is_regularised_coulomb():
    v0, lim = 0.015, MU * 4.0
    pusher = (0.0, 1.0, 0.05, 0.0, 0.0, lim)  # tangent +y at (0.05, 0) from the centre of mass, pusher at rest
    xi, (f,) = planar_friction((0.0, 0.02, 0.0), MASS, IZZ, [], [pusher], DT, v0=v0)
    s = xi[1] + xi[2] * 0.05
    assert math.isclose(f, -lim * s / math.sqrt(s * s + v0 * v0), rel_tol=1e-6)
    assert math.isclose(MASS * (xi[1] - 0.02) / DT, f, rel_tol=1e-6)
