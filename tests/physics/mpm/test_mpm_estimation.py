"""Material estimation through the differentiable MPM: multi-frame gradients, jelly poke, thrown block."""

from __future__ import annotations

import numpy as np
import pytest

wp = pytest.importorskip("warp")

import physics.mpm.estimation as estimation  # noqa: E402
from physics.mpm import Box, FixedCorotated, MPMConfig, MPMSolver, Plane, Sphere, sample_box  # noqa: E402
from physics.mpm.differentiable import TrackObservations, simulate_frames, trajectory_gradients  # noqa: E402
from physics.mpm.estimation import estimate_material  # noqa: E402
from physics.mpm.materials import check_positive_moduli  # noqa: E402
from physics.mpm.synthetic import jelly_poke  # noqa: E402

wp.config.quiet = True
E_TRUE = 2.0e4
FRAME = 0.05


# ------------------------------------------------------------ multi-frame gradients
def small_solver(E: float = 2.0e3) -> tuple[MPMSolver, Sphere]:
    cfg = MPMConfig(grid_res=8, bounds=((0.0, 0.0, 0.0), (0.4, 0.4, 0.4)))
    solver = MPMSolver(cfg)
    x, vol = sample_box((0.15, 0.15, 0.12), (0.25, 0.25, 0.22), cfg.dx / 2, np.random.default_rng(0))
    solver.add_particles(x, vol, FixedCorotated(E, 0.3, 200.0))
    solver.add_collider(Plane((0.0, 0.0, 0.1), (0.0, 0.0, 1.0), contact="slip"))
    sphere = solver.add_collider(Sphere((0.2, 0.2, 0.33), 0.06, contact="slip"))
    return solver, sphere


def press(sphere: Sphere):
    """Per-frame schedule: the sphere comes down onto the block, pauses, then slides sideways."""
    def drive(frame: int) -> None:
        z = 0.33 - 0.04 * min(frame, 2)
        sphere.set_pose((0.2 + 0.02 * max(frame - 3, 0), 0.2, z))
        sphere.set_velocity((0.0, 0.0, -0.8) if frame < 2 else ((0.0, 0.0, 0.0) if frame < 3 else (0.4, 0.0, 0.0)))
    return drive


def test_multi_frame_gradient_with_moving_collider_matches_finite_differences() -> None:
    solver, sphere = small_solver()
    n, substeps, frames = solver.num_particles, 10, 5
    rng = np.random.default_rng(1)
    observed = np.sort(rng.choice(n, size=n // 2, replace=False))
    truth = simulate_frames(solver, frames, FRAME, substeps, press(sphere), np.full(n, 3.0e3))
    y = truth[:, observed] + rng.normal(0.0, 0.002, (frames, len(observed), 3))
    y[rng.random((frames, len(observed))) < 0.2] = np.nan  # missing observations
    obs = TrackObservations(observed, y)
    assert np.abs(truth[-1] - solver.positions()).max() > 0.01  # the sphere really deforms the block

    E = np.full(n, 2.0e3)

    def loss(E_: np.ndarray, dv: np.ndarray | None = None) -> float:
        pred = simulate_frames(solver, frames, FRAME, substeps, press(sphere), E_, dv)
        return float((obs.residuals(pred) ** 2).sum())

    grads = trajectory_gradients(solver, obs, FRAME, substeps, press(sphere), E, window=7)
    assert grads.loss == pytest.approx(loss(E), rel=1e-4)
    dE = E * rng.uniform(-0.5, 0.5, n)
    h = 0.05
    fd_E = (loss(E + h * dE) - loss(E - h * dE)) / (2 * h)
    assert grads.youngs_modulus @ dE == pytest.approx(fd_E, rel=0.03)
    dv = rng.normal(0.0, 0.05, (n, 3))
    fd_v = (loss(E, h * dv) - loss(E, -h * dv)) / (2 * h)
    assert (grads.initial_velocity * dv).sum() == pytest.approx(fd_v, rel=0.03)
    # the solver and its colliders are untouched by the rollouts
    assert np.allclose(sphere.position, (0.2, 0.2, 0.33)) and np.allclose(sphere.linear_velocity, 0.0)


def test_warmup_sensitivity_enters_the_directional_derivative() -> None:
    solver, sphere = small_solver()
    n, substeps = solver.num_particles, 10
    truth = simulate_frames(solver, 4, FRAME, substeps, press(sphere), np.full(n, 3.0e3))
    obs = TrackObservations(np.arange(n), truth[2:])
    E = np.full(n, 2.0e3)
    grads = trajectory_gradients(solver, obs, FRAME, substeps, press(sphere), E, warmup_frames=2,
                                 log_directions=np.ones((1, n)))

    def loss(scale: float) -> float:
        pred = simulate_frames(solver, 2, FRAME, substeps, press(sphere), E * scale, warmup_frames=2)
        return float((obs.residuals(pred) ** 2).sum())

    h = 0.02
    fd = (loss(np.exp(h)) - loss(np.exp(-h))) / (2 * h)
    assert grads.directional is not None
    assert grads.directional[0] == pytest.approx(fd, rel=0.05)
    window_only = float(grads.youngs_modulus @ E)
    assert abs(window_only - fd) > 0.05 * abs(fd)  # the warm-up's share is not negligible here


# ------------------------------------------------------------------- jelly poke
@pytest.fixture(scope="module")
def poke_tracks() -> TrackObservations:
    solver, drive = jelly_poke(E_TRUE, FRAME)
    frames = simulate_frames(solver, 10, FRAME, None, drive, warmup_frames=2)
    return TrackObservations(np.arange(solver.num_particles), frames)


@pytest.mark.parametrize("factor, stored_E", [(3.0, 3.0 * E_TRUE), (1.0 / 3.0, 1.0e6)])
def test_estimation_recovers_jelly_poke_modulus(poke_tracks: TrackObservations, factor: float, stored_E: float) -> None:
    # the solver's own E (stored_E, e.g. an absurd 1 MPa) is never read: only youngs_modulus0 is
    solver, drive = jelly_poke(stored_E, FRAME)
    report = estimate_material(solver, poke_tracks, FRAME, factor * E_TRUE, drive=drive, warmup_frames=2,
                               fit_velocity=False, tolerance=3e-3, progress=False)
    assert report.youngs_modulus == pytest.approx(E_TRUE, rel=0.03)
    assert report.converged and report.iterations <= 8 and not report.at_bound and report.rejected_rollouts == 0
    assert report.loss_history[-1] < 1e-3 * report.loss_history[0]
    assert np.all(np.diff(report.loss_history) <= 0.0)
    lo, hi = report.interval95
    assert lo < report.youngs_modulus < hi and report.curvature > 0.0
    assert report.as_dict()["youngs_modulus"] == report.youngs_modulus
    assert len(report.substeps) == 2 + poke_tracks.num_frames and min(report.substeps) > 1


def thrown(E: float, v: np.ndarray) -> MPMSolver:
    """A jelly block (144 particles) flying at velocity v into a slip wall, no floor."""
    cfg = MPMConfig(grid_res=16, bounds=((0.0, 0.0, 0.0), (0.4, 0.3, 0.2)))
    solver = MPMSolver(cfg)
    x, vol = sample_box((0.08, 0.11, 0.06), (0.16, 0.19, 0.12), cfg.dx / 2, np.random.default_rng(0))
    solver.add_particles(x, vol, FixedCorotated(E, 0.3, 1000.0), velocities=np.tile(v, (len(x), 1)))
    solver.add_collider(Box((0.27, 0.15, 0.1), (0.02, 0.1, 0.1), contact="slip"))
    return solver


def test_estimation_recovers_a_linear_modulus_field() -> None:
    v = np.array([0.8, 0.0, 0.3])
    solver = thrown(E_TRUE, v)
    x = solver.positions()
    centre, half = x.mean(0), (x.max(0) - x.min(0)) / 2
    truth = E_TRUE * np.exp(0.4 * (x[:, 0] - centre[0]) / half[0])  # 1.5x stiffer at the front than at the back
    obs = TrackObservations(np.arange(len(x)), simulate_frames(solver, 8, FRAME, None, None, truth))
    report = estimate_material(thrown(E_TRUE, v), obs, FRAME, 3.0 * E_TRUE, fit_velocity=False, field="linear",
                               tolerance=3e-3, progress=False)
    assert report.youngs_modulus_field is not None
    np.testing.assert_allclose(report.youngs_modulus_field, truth, rtol=0.02)


def test_estimation_recovers_modulus_and_velocity_of_a_thrown_block() -> None:
    v_true = np.array([0.8, 0.0, 0.3])
    frames = simulate_frames(thrown(E_TRUE, v_true), 8, FRAME)
    obs = TrackObservations(np.arange(frames.shape[1]), frames)
    report = estimate_material(thrown(E_TRUE, np.zeros(3)), obs, FRAME, 3.0 * E_TRUE, tolerance=3e-3, progress=False)
    assert report.youngs_modulus == pytest.approx(E_TRUE, rel=0.03)
    np.testing.assert_allclose(report.initial_velocity, v_true, atol=0.01)


# ------------------------------------------------------------ admissible set
def test_estimation_stays_within_the_bounds(poke_tracks: TrackObservations) -> None:
    # the truth (2e4) lies above the admissible set: every rollout stays inside and the estimate sits on the bound
    solver, drive = jelly_poke(E_TRUE, FRAME)
    report = estimate_material(solver, poke_tracks, FRAME, 5.0e3, drive=drive, warmup_frames=2, fit_velocity=False,
                               tolerance=3e-3, progress=False, bounds=(1.0e3, 1.2e4))
    assert report.youngs_modulus == pytest.approx(1.2e4, rel=1e-9) and report.at_bound
    assert max(e for e, _ in report.evaluations) <= 1.2e4 * (1 + 1e-9)
    with pytest.raises(ValueError, match="within the bounds"):
        estimate_material(solver, poke_tracks, FRAME, 5.0e4, drive=drive, progress=False, bounds=(1.0e3, 1.2e4))


def test_diverging_rollouts_are_rejected_steps_not_crashes(poke_tracks: TrackObservations,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    # a jelly too soft for its contact diverges (non-finite velocities): emulate it below 1.5e4 Pa, where the
    # bracketing walk from 6e4 (6e4 -> 3e4 -> 1.5e4) and the first steps from 3e4 want to go
    real = estimation.simulate_with_substeps
    tried: list[float] = []

    def fragile(solver, num_frames, frame_dt, substeps, drive, E, *args):  # type: ignore[no-untyped-def]
        tried.append(float(E.min()))
        if E.min() < 1.5e4:
            raise FloatingPointError("the rollout diverged in frame 3 (12 particles got a non-finite velocity)")
        return real(solver, num_frames, frame_dt, substeps, drive, E, *args)

    monkeypatch.setattr(estimation, "simulate_with_substeps", fragile)
    solver, drive = jelly_poke(E_TRUE, FRAME)
    report = estimate_material(solver, poke_tracks, FRAME, 6.0e4, drive=drive, warmup_frames=2, fit_velocity=False,
                               tolerance=3e-3, progress=False)
    assert min(tried) < 1.5e4 and report.rejected_rollouts >= 1  # a diverging rollout was met ...
    assert any(loss == float("inf") for _, loss in report.evaluations)
    assert report.as_dict()["evaluations"][0][1] is not None and None in [e[1] for e in report.as_dict()["evaluations"]]
    assert report.youngs_modulus == pytest.approx(E_TRUE, rel=0.03) and report.converged  # ... and stepped around


def test_a_rollout_with_non_finite_velocities_raises_instead_of_freezing() -> None:
    solver, sphere = small_solver()
    v = solver.velocities()
    v[5] = np.nan  # the kernels keep such a particle in place: the rollout must say so, not return frozen tracks
    solver.particles.v.assign(v.astype(np.float32))
    with pytest.raises(FloatingPointError, match="non-finite velocity"):
        simulate_frames(solver, 2, FRAME, 10, press(sphere))


def test_modulus_validation_names_the_bad_values() -> None:
    E = np.full(40, 2.0e4)
    E[[3, 17, 30]] = (np.nan, -5.0, 0.0)
    with pytest.raises(ValueError) as info:
        check_positive_moduli("youngs_modulus", E, 40)
    message = str(info.value)
    assert "must hold 40 finite positive values" in message and "3 of 40 are not" in message
    assert "[3]=nan, [17]=-5, [30]=0" in message and "span [-5, 20000]" in message and "1 non-finite" in message
    solver, sphere = small_solver()
    n = solver.num_particles
    bad = np.full(n, 2.0e3)
    bad[n - 1] = np.inf
    with pytest.raises(ValueError, match=rf"1 of {n} are not: \[{n - 1}\]=inf"):
        trajectory_gradients(solver, TrackObservations(np.arange(3), np.zeros((1, 3, 3))), FRAME, 10,
                             press(sphere), bad)
    with pytest.raises(ValueError, match=r"youngs_modulus must be > 0; 1 of 4 are not: \[2\]=-1"):
        FixedCorotated(np.array([1.0, 2.0, -1.0, 3.0]), 0.3, 1000.0).moduli(4)


# -------------------------------------------------------------------- bad input
def test_bad_input_raises_value_error() -> None:
    solver, sphere = small_solver()
    n = solver.num_particles
    good = TrackObservations(np.arange(3), np.zeros((2, 3, 3)))
    with pytest.raises(ValueError, match="shape"):
        TrackObservations(np.arange(3), np.zeros((2, 4, 3)))
    with pytest.raises(ValueError, match="T >= 1"):
        TrackObservations(np.arange(3), np.zeros((0, 3, 3)))  # empty window
    with pytest.raises(ValueError, match="no observation"):
        TrackObservations(np.arange(3), np.full((2, 3, 3), np.nan))
    for E0 in (0.0, -1.0e3, float("nan")):
        with pytest.raises(ValueError, match="youngs_modulus0"):
            estimate_material(solver, good, FRAME, E0, progress=False)
    with pytest.raises(ValueError, match="field"):
        estimate_material(solver, good, FRAME, 1.0e3, field="quadratic", progress=False)
    with pytest.raises(ValueError, match="particle indices"):
        estimate_material(solver, TrackObservations(np.array([n]), np.zeros((2, 1, 3))), FRAME, 1.0e3, progress=False)
    with pytest.raises(ValueError, match="youngs_modulus"):
        trajectory_gradients(solver, good, FRAME, 10, youngs_modulus=np.ones(n - 1))
    with pytest.raises(ValueError, match="CFL"):
        trajectory_gradients(solver, good, FRAME, 1, press(sphere))
