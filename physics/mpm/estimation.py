"""Material estimation from point tracks through the differentiable MPM (PhysDreamer-style).

Given observed tracks of particles after each frame and the colliders' motion (a
``drive(frame)`` callback), :func:`estimate_material` recovers Young's modulus and the
particles' velocity at the start of the fitted window by minimising the mean squared
track distance

    L(theta) = (1 / W) sum_k sum_m mask_km |x_m(t_k; theta) - y_km|^2     (W = observed points)

over theta = (log E coefficients, v0). log E is either one global value or a smooth
per-particle field, log E_p = a + b . (x_p - c) / l (``field="linear"``, c the centroid and
l the half extent of the particles); v0 is one velocity (3,) added to every particle.

A forward-only walk first brackets log E by factors of 2 (a start 16x off costs a few
cheap rollouts, not a dozen iterations in the flat far field of the loss). Then the
optimiser is Levenberg-Marquardt (Gauss-Newton with damping): the gradient g comes
from the tape through the checkpointed rollout
(:func:`physics.mpm.differentiable.trajectory_gradients`); the Gauss-Newton curvature
H = (2 / W) J^T J from one forward-only rollout per parameter (finite differences of the
residuals, no tape). In log E a Gauss-Newton step is nearly exact (deformation scales
like 1 / E), so a start 3x off converges in a handful of iterations; steps are limited to
a factor 2 in E per iteration, rejected (more damping) when the loss rises and doubled
while that lowers the loss further (forward-only evaluations, cheap next to the tape).

Confidence: with s^2 = sum r^2 / (n - m) the residual variance per coordinate, the formal
covariance of theta is s^2 (J^T J)^-1; the report gives the standard error of log E and
the 95% interval exp(log E +- 1.96 se). It assumes independent residuals; tracks of
neighbouring particles are correlated, so treat it as a lower bound on the uncertainty.
The estimator only ever uses the E it is given as a start (``youngs_modulus0``); it never
reads the E stored in the solver's particles.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Callable

import numpy as np
from tqdm import tqdm

from .differentiable import GridHook, TrackObservations, simulate_frames, trajectory_gradients
from .solver import MPMSolver

FIELDS = ("global", "linear")
MAX_LOG_STEP = math.log(2.0)  # largest change of log E per iteration
VELOCITY_SCALE = 0.1  # m/s: one unit of the optimiser's velocity coordinates
MAX_VELOCITY_STEP = 2.0  # in VELOCITY_SCALE units per iteration
Z95 = 1.959963984540054
MAX_EXPANSIONS = 2  # doublings of an accepted step tried (forward-only) per iteration
SCAN_STEP = math.log(2.0)  # log-E step of the forward-only bracketing walk before the first tape rollout


@dataclass(frozen=True)
class EstimationReport:
    """Result of :func:`estimate_material`.

    ``youngs_modulus`` is the global E (Pa; for a linear field its value at the particles'
    centroid, i.e. the geometric mean), ``interval95`` its formal 95% interval and
    ``log_std`` the standard error of log E. ``loss_history`` holds the loss (m^2, mean
    squared track distance) of the accepted iterates, starting with the initial guess, and
    ``modulus_history`` their E; ``evaluations`` the (E, loss) of the bracketing walk and of
    every tape rollout.
    """

    youngs_modulus: float
    interval95: tuple[float, float]
    log_std: float
    initial_velocity: np.ndarray  # (3,) m/s
    initial_velocity_std: np.ndarray  # (3,) m/s, formal standard errors (0 when not fitted)
    youngs_modulus_field: np.ndarray | None  # (N,) per-particle E for field="linear"
    loss_history: list[float]
    modulus_history: list[float]
    evaluations: list[tuple[float, float]]
    curvature: float  # Gauss-Newton d^2 L / d(log E)^2 at the estimate
    rmse: float  # m, root mean squared track distance at the estimate
    converged: bool
    iterations: int
    tape_rollouts: int
    forward_rollouts: int
    seconds: float
    num_particles: int
    num_observations: int
    frame_positions: np.ndarray = field(repr=False)  # (T, N, 3) predicted at the estimate
    substeps: tuple[int, ...] = ()  # substeps of each frame (warm-up included) at the estimate

    def as_dict(self) -> dict:
        """JSON-ready summary (no per-particle arrays but the field's range)."""
        out = {
            "youngs_modulus": self.youngs_modulus,
            "youngs_modulus_ci95": list(self.interval95),
            "log_youngs_modulus_std": self.log_std,
            "initial_velocity": self.initial_velocity.tolist(),
            "initial_velocity_std": self.initial_velocity_std.tolist(),
            "loss_history": self.loss_history,
            "youngs_modulus_history": self.modulus_history,
            "evaluations": [list(e) for e in self.evaluations],
            "curvature_log_e": self.curvature,
            "rmse_m": self.rmse,
            "converged": self.converged,
            "iterations": self.iterations,
            "tape_rollouts": self.tape_rollouts,
            "forward_rollouts": self.forward_rollouts,
            "seconds": self.seconds,
            "particles": self.num_particles,
            "observations": self.num_observations,
            "substeps_per_frame": list(self.substeps),
        }
        if self.youngs_modulus_field is not None:
            out["youngs_modulus_field_range"] = [float(self.youngs_modulus_field.min()), float(self.youngs_modulus_field.max())]
        return out


class _Problem:
    """Parameters theta <-> (per-particle E, velocity offset) and the rollouts that evaluate them."""

    def __init__(self, solver: MPMSolver, observations: TrackObservations, frame_dt: float, drive: Callable[[int], None] | None,
                 warmup_frames: int, field_kind: str, fit_velocity: bool, substeps: int | None, window: int, grid_hook: GridHook | None) -> None:
        self.solver, self.obs, self.frame_dt, self.drive = solver, observations, frame_dt, drive
        self.warmup, self.fit_velocity, self.substeps, self.window = warmup_frames, fit_velocity, substeps, window
        self.grid_hook = grid_hook
        x = solver.positions()
        if field_kind == "global":
            self.basis = np.ones((len(x), 1))
        else:
            centre = x.mean(0)
            half = np.maximum((x.max(0) - x.min(0)) / 2.0, 1e-9)
            self.basis = np.concatenate([np.ones((len(x), 1)), (x - centre) / half], axis=1)
        self.num_log_e = self.basis.shape[1]
        self.size = self.num_log_e + (3 if fit_velocity else 0)
        self.weight = float(observations.mask.sum())
        self.tape_rollouts = 0
        self.forward_rollouts = 0
        self.schedule: tuple[int, ...] | int | None = substeps

    def unpack(self, z: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        E = np.exp(self.basis @ z[: self.num_log_e])
        v = z[self.num_log_e :] * VELOCITY_SCALE if self.fit_velocity else None
        return E, v

    def residuals(self, frame_positions: np.ndarray) -> np.ndarray:
        return self.obs.residuals(frame_positions)[self.obs.mask].ravel()

    def loss_and_gradient(self, z: np.ndarray) -> tuple[float, np.ndarray, np.ndarray, np.ndarray]:
        """Loss, dL/dtheta (tape), residual vector and predicted frame positions at ``z``.

        The substeps are planned by the solver's CFL rule at ``z`` (or fixed by the caller)
        and kept in ``self.schedule`` for the probes and the trial step of this iteration, so
        that loss comparisons within an iteration see no jumps from changing substep counts.
        """
        E, v = self.unpack(z)
        g = trajectory_gradients(self.solver, self.obs, self.frame_dt, self.substeps, self.drive, E, v, self.warmup, self.window, 1.0 / self.weight, self.basis.T, self.grid_hook)
        self.schedule = g.substeps
        self.tape_rollouts += 1
        assert g.directional is not None
        parts = [g.directional]
        if self.fit_velocity:
            parts.append(g.initial_velocity.sum(0) * VELOCITY_SCALE)
        assert g.frame_positions is not None
        return g.loss, np.concatenate(parts), self.residuals(g.frame_positions), g.frame_positions

    def predict(self, z: np.ndarray) -> np.ndarray:
        """Residual vector at ``z`` with this iteration's substeps, forward only."""
        E, v = self.unpack(z)
        frames = simulate_frames(self.solver, self.obs.num_frames, self.frame_dt, self.schedule, self.drive, E, v, self.warmup, self.grid_hook)
        self.forward_rollouts += 1
        return self.residuals(frames)

    def first_frame_offset(self, z: np.ndarray) -> np.ndarray:
        """Mean predicted-minus-observed displacement (3,) of the observed particles after the first frame."""
        E, v = self.unpack(z)
        frames = simulate_frames(self.solver, 1, self.frame_dt, self.substeps, self.drive, E, v, self.warmup, self.grid_hook)
        self.forward_rollouts += 1
        mask = self.obs.mask[0]
        if not mask.any():
            return np.zeros(3)
        return (frames[0, self.obs.particles[mask]] - self.obs.positions[0, mask]).mean(0)

    def jacobian(self, z: np.ndarray, r: np.ndarray, step: float) -> np.ndarray:
        """Forward-difference Jacobian of the residuals, one forward-only rollout per parameter."""
        J = np.empty((len(r), self.size))
        for i in range(self.size):
            dz = np.zeros(self.size)
            dz[i] = step
            J[:, i] = (self.predict(z + dz) - r) / step
        return J


def _scan(problem: _Problem, z: np.ndarray, steps: int) -> list[tuple[float, float]]:
    """Forward-only bracket of the global log E: walk by factors of 2 from ``z`` downhill, at most ``steps`` steps.

    Sets ``z[0]`` (in place) to the best E found and returns the (E, loss) pairs seen.
    """
    problem.schedule = problem.substeps

    def loss_at(log_e: float) -> float:
        trial = z.copy()
        trial[0] = log_e
        r = problem.predict(trial)
        return float(r @ r) / problem.weight

    seen = {float(z[0]): loss_at(float(z[0]))}
    for direction in (1.0, -1.0):
        current = float(z[0])
        for _ in range(steps):
            nxt = current + direction * SCAN_STEP
            seen[nxt] = loss_at(nxt)
            if seen[nxt] >= seen[current]:
                break
            current = nxt
        if current != float(z[0]):
            break  # went downhill this way: the other way is uphill
    z[0] = min(seen, key=seen.__getitem__)
    return [(math.exp(k), v) for k, v in sorted(seen.items())]


def _limit(step: np.ndarray, num_log_e: int) -> np.ndarray:
    """Scale a step so log E changes by at most MAX_LOG_STEP and v by at most MAX_VELOCITY_STEP units."""
    scale = 1.0
    if num_log_e:
        scale = min(scale, MAX_LOG_STEP / max(abs(step[0]), 1e-300))
    if len(step) > num_log_e and num_log_e:
        scale = min(scale, MAX_VELOCITY_STEP / max(np.abs(step[num_log_e:]).max(), 1e-300))
    return step * min(scale, 1.0)


def estimate_material(
    solver: MPMSolver,
    observations: TrackObservations,
    frame_dt: float,
    youngs_modulus0: float,
    drive: Callable[[int], None] | None = None,
    warmup_frames: int = 0,
    initial_velocity0: np.ndarray | None = None,
    fit_velocity: bool = True,
    field: str = "global",
    substeps: int | None = None,
    max_iterations: int = 12,
    tolerance: float = 1e-3,
    probe_step: float = 0.05,
    window: int = 32,
    progress: bool = True,
    grid_hook: GridHook | None = None,
    scan_steps: int = 6,
) -> EstimationReport:
    """Fit Young's modulus (and the start velocity) of the solver's particles to ``observations``.

    Args:
        solver: particles, materials and colliders at the start of the rollout; its state is
            not changed and its particles' E is never read.
        observations: tracks after each frame following the warm-up (see
            :class:`~physics.mpm.differentiable.TrackObservations`).
        frame_dt: seconds per frame; ``drive(frame)`` poses the colliders before each frame
            (warm-up frames included, counted from 0).
        youngs_modulus0: starting E in Pa (> 0).
        warmup_frames: frames simulated forward only (with the current E) before the fit.
        initial_velocity0: starting velocity (3,) added to the particles' after the warm-up;
            None: zero, or when fitting it, the mean velocity the first observed frame shows.
        fit_velocity: fit that velocity too (else it stays at ``initial_velocity0``).
        field: ``"global"`` (one E) or ``"linear"`` (log E linear in the rest position).
        substeps: substeps per frame; None applies the solver's CFL rule per frame.
        max_iterations: Levenberg-Marquardt iterations (>= 1).
        tolerance: stop when an accepted step changes log E by less than this (and v0 by
            less than ``tolerance * 0.1`` m/s).
        probe_step: finite-difference step of the Gauss-Newton probes (log E units).
        window: substeps replayed under the tape at a time (memory ~ window).
        progress: show a progress bar.
        grid_hook: moves the solver's grid before each substep (see
            :func:`~physics.mpm.differentiable.trajectory_gradients`).
        scan_steps: before the first tape rollout, walk log E downhill from the start by
            factors of 2 (forward-only, at most this many steps; 0 = no walk).
    """
    if not isinstance(observations, TrackObservations):
        raise ValueError(f"observations must be a TrackObservations, got {type(observations).__name__}")
    if not (isinstance(youngs_modulus0, (int, float, np.floating)) and math.isfinite(youngs_modulus0) and youngs_modulus0 > 0.0):
        raise ValueError(f"youngs_modulus0 must be a finite positive number (Pa), got {youngs_modulus0!r}")
    if field not in FIELDS:
        raise ValueError(f"unknown field {field!r}; allowed: {', '.join(FIELDS)}")
    if int(max_iterations) < 1 or not (tolerance > 0.0) or not (0.0 < probe_step < 1.0):
        raise ValueError(f"need max_iterations >= 1, tolerance > 0 and probe_step in (0, 1), got {max_iterations}, {tolerance}, {probe_step}")
    if int(warmup_frames) < 0:
        raise ValueError(f"warmup_frames must be >= 0, got {warmup_frames}")
    if solver.num_particles == 0:
        raise ValueError("the solver has no particles")
    if observations.particles.max() >= solver.num_particles:
        raise ValueError(f"observed particle indices must lie in [0, {solver.num_particles}), got max {observations.particles.max()}")
    v0 = np.zeros(3) if initial_velocity0 is None else np.asarray(initial_velocity0, dtype=np.float64)
    if v0.shape != (3,) or not np.all(np.isfinite(v0)):
        raise ValueError(f"initial_velocity0 must be 3 finite numbers (m/s), got {initial_velocity0!r}")

    start_time = time.perf_counter()
    problem = _Problem(solver, observations, float(frame_dt), drive, int(warmup_frames), field, fit_velocity, substeps, int(window), grid_hook)
    z = np.zeros(problem.size)
    z[0] = math.log(youngs_modulus0)
    if fit_velocity:
        z[problem.num_log_e :] = v0 / VELOCITY_SCALE
        if initial_velocity0 is None:  # start from the mean velocity the first observed frame shows
            z[problem.num_log_e :] -= problem.first_frame_offset(z) / (float(frame_dt) * VELOCITY_SCALE)
    scanned = _scan(problem, z, int(scan_steps)) if scan_steps else []
    loss, grad, r, frames = problem.loss_and_gradient(z)
    losses, moduli, evaluations = [loss], [math.exp(z[0])], [(math.exp(z[0]), loss)]
    if scanned and not math.isclose(moduli[0], youngs_modulus0, rel_tol=1e-9):  # the histories start at the initial guess
        start_loss = next(v for e, v in scanned if math.isclose(e, youngs_modulus0, rel_tol=1e-9))
        losses, moduli = [start_loss, *losses], [float(youngs_modulus0), *moduli]
    damping, converged, J = 1e-3, False, None
    bar = tqdm(total=int(max_iterations), desc="estimate E", unit="it", disable=not progress)
    iterations = 0
    for iterations in range(1, int(max_iterations) + 1):
        J = problem.jacobian(z, r, probe_step)
        H = 2.0 / problem.weight * (J.T @ J)
        while True:
            step = _limit(-np.linalg.solve(H + damping * np.diag(np.diag(H) + 1e-12), grad), problem.num_log_e)
            trial = z + step
            trial_r = problem.predict(trial)
            trial_loss = float(trial_r @ trial_r) / problem.weight
            if trial_loss <= loss or damping > 1e6:
                break
            damping *= 4.0
        accepted = trial_loss <= loss
        if accepted:
            for _ in range(MAX_EXPANSIONS):  # far from the minimum Gauss-Newton steps fall short: try longer ones
                longer = z + _limit(2.0 * (trial - z), problem.num_log_e)
                if np.allclose(longer, trial):
                    break  # already at the step cap
                longer_r = problem.predict(longer)
                longer_loss = float(longer_r @ longer_r) / problem.weight
                if longer_loss >= trial_loss:
                    break
                trial, trial_loss = longer, longer_loss
            step = trial - z
            z = trial
            damping = max(damping / 3.0, 1e-6)
            loss, grad, r, frames = problem.loss_and_gradient(z)
            evaluations.append((math.exp(z[0]), loss))
        losses.append(loss)
        moduli.append(math.exp(z[0]))
        bar.update(1)
        bar.set_postfix(E=f"{math.exp(z[0]):.4g}", rmse_mm=f"{1e3 * math.sqrt(loss):.3g}")
        small = abs(step[0]) < tolerance and (not fit_velocity or np.abs(step[problem.num_log_e :]).max() < tolerance)
        if small or not accepted:
            converged = bool(small)
            break
    bar.close()

    assert J is not None
    dof = max(len(r) - problem.size, 1)
    sigma2 = float(r @ r) / dof
    cov = sigma2 * np.linalg.pinv(J.T @ J)
    E_field, v = problem.unpack(z)
    log_std = float(math.sqrt(max(cov[0, 0], 0.0)))
    v_std = np.sqrt(np.clip(np.diag(cov)[problem.num_log_e :], 0.0, None)) * VELOCITY_SCALE if fit_velocity else np.zeros(3)
    return EstimationReport(
        youngs_modulus=math.exp(z[0]),
        interval95=(math.exp(z[0] - Z95 * log_std), math.exp(z[0] + Z95 * log_std)),
        log_std=log_std,
        initial_velocity=v if v is not None else v0,
        initial_velocity_std=v_std,
        youngs_modulus_field=E_field if field == "linear" else None,
        loss_history=[float(x) for x in losses],
        modulus_history=[float(x) for x in moduli],
        evaluations=[(float(a), float(b)) for a, b in scanned + evaluations],
        curvature=float(2.0 / problem.weight * (J[:, 0] @ J[:, 0])),
        rmse=math.sqrt(loss),
        converged=converged,
        iterations=iterations,
        tape_rollouts=problem.tape_rollouts,
        forward_rollouts=problem.forward_rollouts,
        seconds=time.perf_counter() - start_time,
        num_particles=solver.num_particles,
        num_observations=int(problem.weight),
        frame_positions=frames,
        substeps=tuple(int(n) for n in problem.schedule) if isinstance(problem.schedule, tuple) else (),
    )
