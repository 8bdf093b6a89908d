"""Gradients of MPM rollouts (wp.Tape with checkpointing) against finite differences."""

from __future__ import annotations

import numpy as np
import pytest

wp = pytest.importorskip("warp")

from physics.mpm import FixedCorotated, MPMConfig, MPMSolver, Plane, sample_box  # noqa: E402
from physics.mpm.differentiable import rollout_gradients, squared_distance_loss  # noqa: E402

wp.config.quiet = True
DT, STEPS = 2.0e-3, 30


def make_solver(E: np.ndarray | float = 2.0e3, v0: np.ndarray | None = None) -> MPMSolver:
    cfg = MPMConfig(grid_res=8, bounds=((0.0, 0.0, 0.0), (0.4, 0.4, 0.4)))
    solver = MPMSolver(cfg)
    x, vol = sample_box((0.15, 0.15, 0.12), (0.25, 0.25, 0.22), cfg.dx / 2, np.random.default_rng(0))
    solver.add_particles(x, vol, FixedCorotated(E, 0.3, 200.0), velocities=v0)
    solver.add_collider(Plane((0.0, 0.0, 0.1), (0.0, 0.0, 1.0), contact="slip"))
    return solver


def final_loss(E: np.ndarray | float, v0: np.ndarray | None, target: np.ndarray) -> float:
    solver = make_solver(E, v0)
    for _ in range(STEPS):
        solver.substep(DT)
    return float(((solver.positions() - target) ** 2).sum())


@pytest.fixture(scope="module")
def problem() -> tuple[MPMSolver, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(3)
    solver = make_solver()
    n = solver.num_particles
    v0 = np.zeros((n, 3))
    v0[:, 2] = -1.0
    solver = make_solver(v0=v0)
    target = solver.positions() + rng.normal(0.0, 0.01, size=(n, 3))
    return solver, v0, target


def test_gradients_match_finite_differences(problem: tuple[MPMSolver, np.ndarray, np.ndarray]) -> None:
    solver, v0, target = problem
    grads = rollout_gradients(solver, STEPS, DT, squared_distance_loss(target), window=5)
    n = solver.num_particles
    rng = np.random.default_rng(5)
    # directional derivative along a random relative change of E
    dE = 2.0e3 * rng.uniform(-1.0, 1.0, n)
    h = 0.05
    fd_E = (final_loss(2.0e3 + h * dE, v0, target) - final_loss(2.0e3 - h * dE, v0, target)) / (2 * h)
    assert grads.youngs_modulus @ dE == pytest.approx(fd_E, rel=0.02)
    dv = rng.normal(0.0, 0.1, (n, 3))
    h = 0.05
    fd_v = (final_loss(2.0e3, v0 + h * dv, target) - final_loss(2.0e3, v0 - h * dv, target)) / (2 * h)
    assert (grads.initial_velocity * dv).sum() == pytest.approx(fd_v, rel=0.02)
    assert grads.loss == pytest.approx(final_loss(2.0e3, v0, target), rel=1e-4)


def test_checkpoint_window_does_not_change_gradients(problem: tuple[MPMSolver, np.ndarray, np.ndarray]) -> None:
    solver, _, target = problem
    x_before = solver.positions()
    a = rollout_gradients(solver, STEPS, DT, squared_distance_loss(target), window=STEPS)
    b = rollout_gradients(solver, STEPS, DT, squared_distance_loss(target), window=3)
    np.testing.assert_allclose(a.youngs_modulus, b.youngs_modulus, rtol=1e-4,
                               atol=1e-6 * np.abs(a.youngs_modulus).max())
    np.testing.assert_allclose(a.initial_velocity, b.initial_velocity, rtol=1e-4,
                               atol=1e-6 * np.abs(a.initial_velocity).max())
    np.testing.assert_array_equal(solver.positions(), x_before)  # the solver's state is untouched


def test_rollout_rejects_bad_arguments(problem: tuple[MPMSolver, np.ndarray, np.ndarray]) -> None:
    solver, _, target = problem
    with pytest.raises(ValueError, match="window"):
        rollout_gradients(solver, STEPS, DT, squared_distance_loss(target), window=0)
    with pytest.raises(ValueError, match="CFL"):
        rollout_gradients(solver, STEPS, 1.0, squared_distance_loss(target))
