"""Modal dynamics: exact damped per-mode update, loads, query-point fields, deformation gradients."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.linalg as sla
import torch

from physics.modal import ModalModel, Modes, box_tet_mesh
from physics.modal.dynamics import ModalDynamics, RayleighDamping, transition_coefficients
from physics.modal.embedding import PointEmbedding, PointModes

L, B, T = 0.8, 0.06, 0.03
E, NU, RHO = 70e9, 0.33, 2700.0


@pytest.fixture(scope="module")
def beam():
    vertices, tets = box_tet_mesh((L, B, T), (16, 2, 1))
    model = ModalModel(vertices, tets, E, NU, RHO, fixed=vertices[:, 0] < 1e-9)
    return model, model.solve(12)


def test_impulse_response_equals_closed_form(beam):
    model, modes = beam
    xi = np.linspace(0.01, 0.2, modes.num_modes)
    dyn = ModalDynamics(modes, damping=xi)
    tip = PointModes(modes, PointEmbedding(model, [[L, B / 2, T / 2]]), dtype=torch.float64)
    modal_p = tip.modal_load([[0.0, 0.0, 0.01]])  # 0.01 N s downward-z tap at the tip
    dyn.apply_impulse(modal_p)
    dt = 0.37 / modes.frequencies_hz[0]  # coarse on purpose: the update is exact for any dt
    q = dyn.rollout(dt, 20)
    t = dt * np.arange(1, 21)[:, None]
    w = modes.angular_frequencies
    wd = w * np.sqrt(1 - xi**2)
    expected = modal_p / wd * np.exp(-xi * w * t) * np.sin(wd * t)
    np.testing.assert_allclose(q, expected, rtol=1e-9, atol=1e-12 * np.abs(expected).max())


def test_energy_decays_at_the_rayleigh_rate(beam):
    _, modes = beam
    damping = RayleighDamping.from_ratios(modes.frequencies_hz[0], 0.02, modes.frequencies_hz[5], 0.05)
    xi = damping.ratios(modes.angular_frequencies)
    assert xi[0] == pytest.approx(0.02) and xi[5] == pytest.approx(0.05)
    for i in (0, 3):
        dyn = ModalDynamics(modes, damping)
        dyn.reset(q=np.eye(modes.num_modes)[i] * 1e-4)
        period = 2 * np.pi / (modes.angular_frequencies[i] * np.sqrt(1 - xi[i] ** 2))
        e0 = dyn.energy()
        dyn.rollout(period / 8, 8 * 5)  # five damped periods: the same phase as at t = 0
        rate = np.log(e0 / dyn.energy()) / (5 * period)
        assert rate == pytest.approx(2 * xi[i] * modes.angular_frequencies[i], rel=1e-9)


def test_step_matches_matrix_exponential_in_every_damping_regime():
    omega = np.array([3.0, 3.0, 3.0, 50.0])
    xi = np.array([0.1, 1.0, 2.5, 0.0])
    dt = 0.21
    coeffs = np.stack(transition_coefficients(omega, xi, dt), axis=1)
    for w, z, c in zip(omega, xi, coeffs, strict=True):
        A = np.array([[0.0, 1.0, 0.0], [-w * w, -2 * z * w, 1.0], [0.0, 0.0, 0.0]])  # state (q, v, f)
        P = sla.expm(A * dt)
        np.testing.assert_allclose(c, [P[0, 0], P[0, 1], P[1, 0], P[1, 1], P[0, 2], P[1, 2]], rtol=1e-10, atol=1e-12)


def test_constant_tip_load_settles_to_the_static_deflection(beam):
    model, modes = beam
    dyn = ModalDynamics(modes, damping=1.0)  # critically damped: settles fast
    tip_points = np.flatnonzero(np.isclose(model.vertices[:, 0], L))
    force = np.zeros((len(tip_points), 3))
    force[:, 2] = -10.0 / len(tip_points)  # 10 N down, spread over the tip face
    emb = PointModes(modes, PointEmbedding(model, model.vertices[tip_points]), dtype=torch.float64)
    f = emb.modal_load(force)
    dyn.rollout(0.01, 500, np.tile(f, (500, 1)))
    sag = emb.displacements(dyn.q).numpy()[:, 2].mean()
    inertia = B * T**3 / 12
    assert sag == pytest.approx(-10.0 * L**3 / (3 * E * inertia), rel=0.03)  # Euler-Bernoulli static tip deflection
    np.testing.assert_allclose(dyn.q, f / modes.angular_frequencies**2, rtol=1e-9)


def test_dynamics_rejects_bad_input(beam):
    _, modes = beam
    with pytest.raises(ValueError, match="alpha"):
        RayleighDamping(-1.0, 0.0)
    with pytest.raises(ValueError, match="damping ratios"):
        ModalDynamics(modes, damping=-0.1)
    dyn = ModalDynamics(modes)
    with pytest.raises(ValueError, match="dt"):
        dyn.step(0.0)
    with pytest.raises(ValueError, match="modal_force"):
        dyn.step(0.01, np.zeros(3))
    rigid = Modes(np.array([0.0, 1.0]), np.zeros((2, 4, 3)), 4)
    with pytest.raises(ValueError, match="elastic"):
        ModalDynamics(rigid)


@pytest.mark.parametrize("order", [1, 2])
def test_embedding_reproduces_polynomial_fields_and_their_gradients(order):
    vertices, tets = box_tet_mesh((0.4, 0.2, 0.1), (4, 2, 2))
    model = ModalModel(vertices, tets, E, NU, RHO, order=order)
    rng = np.random.default_rng(3)
    points = rng.uniform([0, 0, 0], [0.4, 0.2, 0.1], size=(500, 3))
    emb = PointEmbedding(model, points)
    assert emb.inside.all()
    A = rng.normal(size=(3, 3))
    field = model.nodes @ A.T + [1.0, 2.0, 3.0]  # linear: exact for both element orders
    np.testing.assert_allclose(emb.interpolate(field), points @ A.T + [1.0, 2.0, 3.0], atol=1e-12)
    np.testing.assert_allclose(emb.gradient(field), np.broadcast_to(A, (500, 3, 3)), atol=1e-10)
    if order == 2:
        quad = model.nodes[:, [0]] * model.nodes[:, [1]] * np.ones(3)  # u = x y: exact for quadratic tets
        np.testing.assert_allclose(emb.interpolate(quad)[:, 0], points[:, 0] * points[:, 1], atol=1e-12)
        np.testing.assert_allclose(emb.gradient(quad)[:, 0, :2], points[:, [1, 0]], atol=1e-10)


def test_points_outside_use_nearest_vertex_weights(beam):
    model, modes = beam
    outside = np.array([[L + 0.01, B / 2, T / 2], [0.3, -0.005, 0.01]])
    emb = PointEmbedding(model, np.concatenate([outside, model.vertices[:3]]))
    np.testing.assert_array_equal(emb.inside, [False, False, True, True, True])
    np.testing.assert_allclose(emb.weights.sum(axis=1), 1.0)
    assert np.all(emb.node_ids[:2][emb.weights[:2] > 0] < len(model.vertices))
    pm = PointModes(modes, emb, dtype=torch.float64)
    q = np.random.default_rng(0).normal(size=modes.num_modes)
    u = pm.displacements(q).numpy()
    np.testing.assert_allclose(u[2:], np.tensordot(q, modes.shapes[:, :3], axes=1), atol=1e-14)
    tip = np.tensordot(q, modes.shapes, axes=1)[np.isclose(model.vertices[:, 0], L)].mean(axis=0)
    assert np.linalg.norm(u[0] - tip) < 0.2 * np.linalg.norm(tip)  # close to the nearby tip motion


def test_point_modes_batched_fields_and_deformation_gradients(beam):
    model, modes = beam
    rng = np.random.default_rng(1)
    points = rng.uniform([0, 0, 0], [L, B, T], size=(300, 3))
    emb = PointEmbedding(model, points)
    pm = PointModes(modes, emb, dtype=torch.float64)
    q = rng.normal(size=(7, modes.num_modes)) * 1e-4
    u = pm.displacements(q)
    F = pm.deformation_gradients(q)
    assert u.shape == (7, 300, 3) and F.shape == (7, 300, 3, 3)
    node_u = np.einsum("tk,knd->tnd", q, modes.node_shapes)
    np.testing.assert_allclose(u.numpy(), emb.interpolate(node_u), atol=1e-15)
    np.testing.assert_allclose(F.numpy(), emb.gradient(node_u) + np.eye(3), atol=1e-12)
    # tip bending: the axial strain du_x/dx changes sign across the neutral plane
    bend = np.zeros(modes.num_modes)
    bend[0] = 1.0
    F0 = pm.deformation_gradients(bend).numpy()
    strain = F0[:, 0, 0] - 1
    near_root = points[:, 0] < 0.2
    top, bottom = near_root & (points[:, 2] > 0.75 * T), near_root & (points[:, 2] < 0.25 * T)
    assert np.sign(strain[top].mean()) == -np.sign(strain[bottom].mean())
    with pytest.raises(ValueError, match="modes"):
        pm.displacements(np.zeros(3))
