"""Material estimation from point tracks through the MPM (PhysDreamer-style system identification).

Given observed tracks of particles after each frame and the colliders' motion (a
``drive(frame)`` callback), :func:`estimate_material` recovers Young's modulus and the
particles' velocity at the start of the fitted window by minimising the mean squared
track distance

    L(theta) = (1 / W) sum_k sum_m mask_km |x_m(t_k; theta) - y_km|^2     (W = observed points)

over theta = (log E coefficients, v0). log E is either one global value or a smooth
per-particle field, log E_p = a + b . (x_p - c) / l (``field="linear"``, c the centroid and
l the half extent of the particles); v0 is one velocity (3,) added to every particle.

Admissible set: E lies in ``bounds`` (Pa) for every particle. The parameters are log E, so
E stays positive whatever the step; steps are capped at a factor 2 in E, scaled back onto
the bounds, and a rollout that diverges (non-finite velocities) counts as an infinite
loss, i.e. a rejected step, never a crash.

A forward-only walk first brackets log E by factors of 2 (a start 16x off costs a few
rollouts, not a dozen iterations in the flat far field of the loss). Then the optimiser is
Levenberg-Marquardt (Gauss-Newton with damping) on the residual vector r(theta). With one
parameter (a global E) the walk's best point and its two neighbours give a quadratic
model r(log E): the first step goes to the minimum of |r|^2 on it, and its slope there is
the first Jacobian (no probe). Otherwise J comes from one forward-difference rollout per
parameter. Broyden's rank-one secant update keeps J current from every trial step (for
one parameter: the secant), refreshed by finite differences after a rejected step. An
iteration therefore costs one forward rollout, the trial step, and in log E a
Gauss-Newton step is nearly exact, so a handful of iterations converge. (With so few
parameters forward rollouts are cheaper than the tape of
:func:`~physics.mpm.differentiable.trajectory_gradients`, which costs several forward
rollouts and gives J^T r, not J; the tape is the tool for many parameters.)

Substeps: the solver's CFL rule plans them per frame from E, and a different count moves
the tracks a little (at the default PushT4D particle spacing by a few hundredths of a
millimetre, about what a 1-2% change of E does), so the loss is rough at that scale while
it is smooth in E for a fixed schedule. Hence the probes and short steps (log E within
``REPLAN`` of where the iterate's schedule was planned) replay the iterate's schedule,
long steps plan their own: the estimate is the minimum for a schedule planned within
``REPLAN`` of it, as exact as that roughness allows (the tracks are reproduced exactly
only with the recording's own substeps, i.e. at its E).

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

from .differentiable import CourantError, GridHook, Substeps, TrackObservations, simulate_with_substeps
from .solver import MPMSolver

FIELDS = ("global", "linear")
MAX_LOG_STEP = math.log(2.0)  # largest change of log E per iteration
VELOCITY_SCALE = 0.1  # m/s: one unit of the optimiser's velocity coordinates
MAX_VELOCITY_STEP = 2.0  # in VELOCITY_SCALE units per iteration
Z95 = 1.959963984540054
SCAN_STEP = math.log(2.0)  # log-E step of the forward-only bracketing walk
REPLAN = 0.05  # a step landing this far (in log E) from where the substeps were planned plans its own
MAX_DAMPING = 1.0e8  # give up (no step lowers the loss) beyond this Levenberg-Marquardt damping
DEFAULT_BOUNDS = (1.0, 1.0e10)  # Pa


@dataclass(frozen=True)
class EstimationReport:
    """Result of :func:`estimate_material`.

    ``youngs_modulus`` is the global E (Pa; for a linear field its value at the particles'
    centroid, i.e. the geometric mean), ``interval95`` its formal 95% interval and
    ``log_std`` the standard error of log E. ``loss_history`` holds the loss (m^2, mean
    squared track distance) of the iterate after each iteration, starting with the initial
    guess (and the best point of the bracketing walk), ``modulus_history`` their E;
    ``evaluations`` the (E, loss) of every rollout but the finite-difference probes
    (``inf`` for a rollout that diverged). ``at_bound``: the estimate sits on a bound of the
    admissible E.
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
    iterations: int  # Levenberg-Marquardt iterations, one trial rollout each
    forward_rollouts: int  # all rollouts: the bracketing walk, probes and trial steps
    seconds: float
    num_particles: int
    num_observations: int
    frame_positions: np.ndarray = field(repr=False)  # (T, N, 3) predicted at the estimate
    substeps: tuple[int, ...] = ()  # substeps of each frame (warm-up included) at the estimate
    at_bound: bool = False
    rejected_rollouts: int = 0  # rollouts that diverged (or broke the CFL bound): treated as infinite loss

    def as_dict(self) -> dict:
        """JSON-ready summary (no per-particle arrays but the field's range)."""
        out = {
            "youngs_modulus": self.youngs_modulus,
            "youngs_modulus_ci95": list(self.interval95),
            "log_youngs_modulus_std": self.log_std,
            "initial_velocity": self.initial_velocity.tolist(),
            "initial_velocity_std": self.initial_velocity_std.tolist(),
            "loss_history": [_finite_or_none(x) for x in self.loss_history],
            "youngs_modulus_history": self.modulus_history,
            "evaluations": [[e, _finite_or_none(loss)] for e, loss in self.evaluations],
            "curvature_log_e": self.curvature,
            "rmse_m": self.rmse,
            "converged": self.converged,
            "at_bound": self.at_bound,
            "iterations": self.iterations,
            "forward_rollouts": self.forward_rollouts,
            "diverged_rollouts": self.rejected_rollouts,
            "seconds": self.seconds,
            "seconds_per_rollout": self.seconds / max(self.forward_rollouts, 1),
            "particles": self.num_particles,
            "observations": self.num_observations,
            "substeps_per_frame": list(self.substeps),
        }
        if self.youngs_modulus_field is not None:
            E = self.youngs_modulus_field
            out["youngs_modulus_field_range"] = [float(E.min()), float(E.max())]
        return out


def _finite_or_none(x: float) -> float | None:
    """``x``, or None (JSON null) for the infinite loss of a diverged rollout."""
    return x if math.isfinite(x) else None


@dataclass(frozen=True)
class _Evaluation:
    """One forward rollout at ``z``: residual vector, loss, predicted frames and the substeps it took."""

    z: np.ndarray
    residuals: np.ndarray
    loss: float
    frames: np.ndarray
    schedule: tuple[int, ...]


class _Problem:
    """Parameters theta <-> (per-particle E, velocity offset), the admissible set and the rollouts."""

    def __init__(self, solver: MPMSolver, observations: TrackObservations, frame_dt: float,
                 drive: Callable[[int], None] | None, warmup_frames: int, field_kind: str, fit_velocity: bool,
                 substeps: int | None, grid_hook: GridHook | None, bounds: tuple[float, float]) -> None:
        self.solver, self.obs, self.frame_dt, self.drive = solver, observations, frame_dt, drive
        self.warmup, self.fit_velocity, self.substeps, self.grid_hook = warmup_frames, fit_velocity, substeps, grid_hook
        self.log_bounds = (math.log(bounds[0]), math.log(bounds[1]))
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
        self.forward_rollouts = 0
        self.rejected_rollouts = 0
        self.evaluations: list[tuple[float, float]] = []
        self.failure: Exception | None = None  # why the last failed rollout failed

    def unpack(self, z: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        """Per-particle E (N,) and the velocity offset (3,) (None when not fitted) of ``z``."""
        E = np.exp(self.basis @ z[: self.num_log_e])
        v = z[self.num_log_e :] * VELOCITY_SCALE if self.fit_velocity else None
        return E, v

    def admissible_fraction(self, z: np.ndarray, step: np.ndarray) -> float:
        """Largest t in [0, 1] keeping every particle's log E of ``z + t step`` within the bounds."""
        lo, hi = self.log_bounds
        a, d = self.basis @ z[: self.num_log_e], self.basis @ step[: self.num_log_e]
        with np.errstate(divide="ignore", invalid="ignore"):
            limits = np.where(d > 0.0, (hi - a) / d, np.where(d < 0.0, (lo - a) / d, np.inf))
        return float(np.clip(limits.min(), 0.0, 1.0))

    def evaluate(self, z: np.ndarray, schedule: Substeps, record: bool = True) -> _Evaluation | None:
        """Forward rollout at ``z`` with ``schedule`` (None: the CFL rule); None where it diverged.

        A schedule planned at another E that breaks the CFL bound at this one is re-planned by the
        CFL rule; substeps fixed by the caller that break it make the rollout fail like a divergence.
        """
        E, v = self.unpack(z)
        self.forward_rollouts += 1

        def rollout(plan: Substeps) -> tuple[np.ndarray, tuple[int, ...]]:
            return simulate_with_substeps(self.solver, self.obs.num_frames, self.frame_dt, plan, self.drive, E, v,
                                          self.warmup, self.grid_hook)

        frames: np.ndarray | None = None
        try:
            try:
                frames, taken = rollout(self.substeps if self.substeps is not None else schedule)
            except CourantError:
                if self.substeps is not None:
                    raise
                frames, taken = rollout(None)
        except (FloatingPointError, CourantError) as error:
            self.failure = error
        r = None if frames is None else self.obs.residuals(frames)[self.obs.mask].ravel()
        if frames is None or r is None or not np.all(np.isfinite(r)):
            if frames is not None:
                self.failure = FloatingPointError("the rollout gave non-finite positions")
            self.rejected_rollouts += 1
            if record:
                self.evaluations.append((math.exp(z[0]), math.inf))
            return None
        loss = float(r @ r) / self.weight
        if record:
            self.evaluations.append((math.exp(z[0]), loss))
        return _Evaluation(z.copy(), r, loss, frames, taken)

    def jacobian(self, at: _Evaluation, step: float) -> np.ndarray:
        """Forward-difference Jacobian of the residuals at ``at`` (its substeps), one rollout per parameter.

        A probe that leaves the admissible set or diverges is taken backwards instead.
        """
        J = np.zeros((len(at.residuals), self.size))
        for i in range(self.size):
            for h in (step, -step):
                dz = np.zeros(self.size)
                dz[i] = h
                if self.admissible_fraction(at.z, dz) < 1.0:
                    continue
                probe = self.evaluate(at.z + dz, at.schedule, record=False)
                if probe is not None:
                    J[:, i] = (probe.residuals - at.residuals) / h
                    break
        return J

    def first_frame_offset(self, z: np.ndarray) -> np.ndarray:
        """Mean predicted-minus-observed displacement (3,) of the observed particles after the first frame."""
        E, v = self.unpack(z)
        self.forward_rollouts += 1
        mask = self.obs.mask[0]
        try:
            frames, _ = simulate_with_substeps(self.solver, 1, self.frame_dt, self.substeps, self.drive, E, v,
                                               self.warmup, self.grid_hook)
        except FloatingPointError:
            return np.zeros(3)
        if not mask.any():
            return np.zeros(3)
        return (frames[0, self.obs.particles[mask]] - self.obs.positions[0, mask]).mean(0)


@dataclass(frozen=True)
class _Bracket:
    """The bracketing walk: its best rollout, the start's, and the best one's neighbours below and above in log E."""

    best: _Evaluation | None
    start: _Evaluation | None
    below: _Evaluation | None
    above: _Evaluation | None


def _scan(problem: _Problem, z: np.ndarray, steps: int) -> _Bracket:
    """Forward-only bracket of the global log E: walk by factors of 2 from ``z`` downhill, at most ``steps`` steps
    and within the bounds (each rollout with its own substeps)."""
    lo, hi = problem.log_bounds
    seen: dict[float, _Evaluation | None] = {}

    def loss(log_e: float) -> float:
        if log_e not in seen:
            trial = z.copy()
            trial[0] = log_e
            seen[log_e] = problem.evaluate(trial, None)
        ev = seen[log_e]
        return math.inf if ev is None else ev.loss

    start = float(z[0])
    loss(start)
    for direction in (1.0, -1.0):
        current = start
        for _ in range(steps):
            nxt = min(max(current + direction * SCAN_STEP, lo), hi)
            if nxt == current or loss(nxt) >= loss(current):
                break
            current = nxt
        if current != start:
            break  # went downhill this way: the other way is uphill
    keys = sorted(seen)
    best = min(keys, key=loss)
    i = keys.index(best)
    below = seen[keys[i - 1]] if i > 0 else None
    above = seen[keys[i + 1]] if i + 1 < len(keys) else None
    return _Bracket(seen[best], seen[start], below, above)


def _bracket_minimum(bracket: _Bracket) -> tuple[float, np.ndarray]:
    """Minimiser t of |r(t)|^2 over the bracket, r(t) = r0 + a t + b t^2 the quadratic in t = log E - log E_best
    through the residuals of the best point and its two neighbours; returns t and the slope dr/dt there."""
    assert bracket.best is not None and bracket.below is not None and bracket.above is not None
    r0 = bracket.best.residuals
    t_lo = float(bracket.below.z[0] - bracket.best.z[0])
    t_hi = float(bracket.above.z[0] - bracket.best.z[0])
    d_lo, d_hi = bracket.below.residuals - r0, bracket.above.residuals - r0
    det = t_lo * t_hi * (t_hi - t_lo)
    a = (d_lo * t_hi**2 - d_hi * t_lo**2) / det
    b = (d_hi * t_lo - d_lo * t_hi) / det
    quartic = np.array([b @ b, 2.0 * (a @ b), a @ a + 2.0 * (r0 @ b), 2.0 * (r0 @ a), r0 @ r0])  # |r(t)|^2
    roots = np.roots(np.polyder(quartic))
    candidates = [t_lo, 0.0, t_hi] + [float(t.real) for t in roots if abs(t.imag) < 1e-12 and t_lo < t.real < t_hi]
    t = min(candidates, key=lambda c: float(np.polyval(quartic, c)))
    return t, a + 2.0 * b * t


def _limit(step: np.ndarray, num_log_e: int) -> np.ndarray:
    """Scale a step so log E changes by at most MAX_LOG_STEP and v by at most MAX_VELOCITY_STEP units."""
    scale = MAX_LOG_STEP / max(float(np.abs(step[:num_log_e]).max()), 1e-300)
    if len(step) > num_log_e:
        scale = min(scale, MAX_VELOCITY_STEP / max(float(np.abs(step[num_log_e:]).max()), 1e-300))
    return step * min(scale, 1.0)


def _check_inputs(solver: MPMSolver, observations: TrackObservations, youngs_modulus0: float, field: str,
                  max_iterations: int, tolerance: float, probe_step: float, warmup_frames: int,
                  bounds: tuple[float, float]) -> None:
    if not isinstance(observations, TrackObservations):
        raise ValueError(f"observations must be a TrackObservations, got {type(observations).__name__}")
    number = isinstance(youngs_modulus0, (int, float, np.floating))
    if not (number and math.isfinite(youngs_modulus0) and youngs_modulus0 > 0.0):
        raise ValueError(f"youngs_modulus0 must be a finite positive number (Pa), got {youngs_modulus0!r}")
    lo, hi = (float(b) for b in bounds)
    if not (math.isfinite(hi) and 0.0 < lo < hi):
        raise ValueError(f"bounds must be two finite numbers 0 < low < high (Pa), got {bounds!r}")
    if not lo <= youngs_modulus0 <= hi:
        raise ValueError(f"youngs_modulus0 must lie within the bounds [{lo:g}, {hi:g}] Pa, got {youngs_modulus0:g}")
    if field not in FIELDS:
        raise ValueError(f"unknown field {field!r}; allowed: {', '.join(FIELDS)}")
    if int(max_iterations) < 1 or not (tolerance > 0.0) or not (0.0 < probe_step < 1.0):
        raise ValueError("need max_iterations >= 1, tolerance > 0 and probe_step in (0, 1), "
                         f"got {max_iterations}, {tolerance}, {probe_step}")
    if int(warmup_frames) < 0:
        raise ValueError(f"warmup_frames must be >= 0, got {warmup_frames}")
    if solver.num_particles == 0:
        raise ValueError("the solver has no particles")
    if observations.particles.max() >= solver.num_particles:
        raise ValueError(f"observed particle indices must lie in [0, {solver.num_particles}), "
                         f"got max {observations.particles.max()}")


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
    max_iterations: int = 20,
    tolerance: float = 1e-3,
    probe_step: float = 0.05,
    progress: bool = True,
    grid_hook: GridHook | None = None,
    scan_steps: int = 6,
    bounds: tuple[float, float] = DEFAULT_BOUNDS,
) -> EstimationReport:
    """Fit Young's modulus (and the start velocity) of the solver's particles to ``observations``.

    Args:
        solver: particles, materials and colliders at the start of the rollout; its state is
            not changed and its particles' E is never read.
        observations: tracks after each frame following the warm-up (see
            :class:`~physics.mpm.differentiable.TrackObservations`).
        frame_dt: seconds per frame; ``drive(frame)`` poses the colliders before each frame
            (warm-up frames included, counted from 0).
        youngs_modulus0: starting E in Pa (> 0, within ``bounds``).
        warmup_frames: frames simulated forward (with the current E) before the observed ones.
        initial_velocity0: starting velocity (3,) added to the particles' after the warm-up;
            None: zero, or when fitting it, the mean velocity the first observed frame shows.
        fit_velocity: fit that velocity too (else it stays at ``initial_velocity0``).
        field: ``"global"`` (one E) or ``"linear"`` (log E linear in the rest position).
        substeps: substeps per frame; None applies the solver's CFL rule (see the module docstring).
        max_iterations: Levenberg-Marquardt iterations (>= 1), one trial rollout each.
        tolerance: stop when an accepted step changes log E by less than this (and v0 by
            less than ``tolerance * 0.1`` m/s).
        probe_step: finite-difference step of the Jacobian probes (log E units).
        progress: show a progress bar.
        grid_hook: moves the solver's grid before each substep (see
            :func:`~physics.mpm.differentiable.trajectory_gradients`).
        scan_steps: before the first iteration, walk log E downhill from the start by
            factors of 2 (forward-only, at most this many steps; 0 = no walk).
        bounds: (low, high) admissible E in Pa for every particle.
    """
    _check_inputs(solver, observations, youngs_modulus0, field, max_iterations, tolerance, probe_step, warmup_frames,
                  bounds)
    v0 = np.zeros(3) if initial_velocity0 is None else np.asarray(initial_velocity0, dtype=np.float64)
    if v0.shape != (3,) or not np.all(np.isfinite(v0)):
        raise ValueError(f"initial_velocity0 must be 3 finite numbers (m/s), got {initial_velocity0!r}")

    start_time = time.perf_counter()
    problem = _Problem(solver, observations, float(frame_dt), drive, int(warmup_frames), field, fit_velocity, substeps,
                       grid_hook, (float(bounds[0]), float(bounds[1])))
    z = np.zeros(problem.size)
    z[0] = math.log(youngs_modulus0)
    if fit_velocity:
        z[problem.num_log_e :] = v0 / VELOCITY_SCALE
        if initial_velocity0 is None:  # start from the mean velocity the first observed frame shows
            z[problem.num_log_e :] -= problem.first_frame_offset(z) / (float(frame_dt) * VELOCITY_SCALE)
    if scan_steps:
        bracket = _scan(problem, z, int(scan_steps))
    else:
        start = problem.evaluate(z, None)
        bracket = _Bracket(start, start, None, None)
    current, initial = bracket.best, bracket.start
    if current is None:
        tried = ", ".join(f"{e:.4g}" for e in sorted({e for e, _ in problem.evaluations}))
        kind = ValueError if isinstance(problem.failure, CourantError) else FloatingPointError
        raise kind(f"no rollout of the fit could be evaluated (E tried: {tried} Pa; the last one: {problem.failure}); "
                   "check the observations, the solver and the substeps")
    losses = [math.inf if initial is None else initial.loss]
    moduli = [float(youngs_modulus0)]
    if initial is not current:
        losses.append(current.loss)
        moduli.append(math.exp(current.z[0]))
    planned_at = current.z.copy()  # where the substeps of current.schedule were planned by the CFL rule
    modelled = problem.size == 1 and bracket.below is not None and bracket.above is not None
    if modelled:  # one parameter, bracketed: step to the minimum of the quadratic model, its slope as Jacobian
        t, slope = _bracket_minimum(bracket)
        J, fresh, model_step = slope[:, None], False, np.array([t])
    else:
        J, fresh, model_step = problem.jacobian(current, probe_step), True, None
    damping, converged, iterations = 1e-3, False, 0
    bar = tqdm(total=int(max_iterations), desc="estimate E", unit="it", disable=not progress)
    for iterations in range(1, int(max_iterations) + 1):
        if model_step is not None:
            step, model_step = model_step, None
        else:
            H = 2.0 / problem.weight * (J.T @ J)
            g = 2.0 / problem.weight * (J.T @ current.residuals)
            step = np.linalg.solve(H + damping * np.diag(np.diag(H) + 1e-12), -g)
        step = _limit(np.nan_to_num(step), problem.num_log_e)
        step *= problem.admissible_fraction(current.z, step)
        if not np.any(step):  # a stationary point, or pressed against a bound
            converged = True
            break
        # a long step is judged with its own substeps, a short one with the iterate's (no jumps from counts)
        own_plan = substeps is None and np.abs((current.z + step - planned_at)[: problem.num_log_e]).max() > REPLAN
        trial = problem.evaluate(current.z + step, None if own_plan else current.schedule)
        if trial is not None and not (modelled and iterations == 1):  # (the model's slope beats a chord)
            dr = trial.residuals - current.residuals
            J += np.outer(dr - J @ step, step) / float(step @ step)  # Broyden's secant update
            fresh = False
        accepted = trial is not None and trial.loss <= current.loss
        small = bool(np.abs(step[: problem.num_log_e]).max() < tolerance
                     and (not fit_velocity or np.abs(step[problem.num_log_e :]).max() < tolerance))
        if accepted:
            assert trial is not None
            current, damping = trial, max(damping / 3.0, 1e-6)
            if own_plan:
                planned_at = current.z.copy()
        elif not small:
            damping *= 4.0
            if not fresh:
                J, fresh = problem.jacobian(current, probe_step), True
        losses.append(current.loss)
        moduli.append(math.exp(current.z[0]))
        bar.update(1)
        bar.set_postfix(E=f"{moduli[-1]:.4g}", rmse_mm=f"{1e3 * math.sqrt(current.loss):.3g}")
        if small or damping > MAX_DAMPING:
            converged = small
            break
    bar.close()
    return _report(problem, current, J, losses, moduli, converged, iterations, field, v0, start_time)


def _report(problem: _Problem, current: _Evaluation, J: np.ndarray, losses: list[float], moduli: list[float],
            converged: bool, iterations: int, field_kind: str, v0: np.ndarray, start_time: float) -> EstimationReport:
    """The report of the estimate ``current`` with its Jacobian ``J``."""
    r, z = current.residuals, current.z
    dof = max(len(r) - problem.size, 1)
    cov = float(r @ r) / dof * np.linalg.pinv(J.T @ J)
    E_field, v = problem.unpack(z)
    log_std = float(math.sqrt(max(cov[0, 0], 0.0)))
    v_std = np.zeros(3)
    if problem.fit_velocity:
        v_std = np.sqrt(np.clip(np.diag(cov)[problem.num_log_e :], 0.0, None)) * VELOCITY_SCALE
    log_e = problem.basis @ z[: problem.num_log_e]
    lo, hi = problem.log_bounds
    return EstimationReport(
        youngs_modulus=math.exp(z[0]),
        interval95=(math.exp(z[0] - Z95 * log_std), math.exp(z[0] + Z95 * log_std)),
        log_std=log_std,
        initial_velocity=v if v is not None else v0,
        initial_velocity_std=v_std,
        youngs_modulus_field=E_field if field_kind == "linear" else None,
        loss_history=[float(x) for x in losses],
        modulus_history=[float(x) for x in moduli],
        evaluations=[(float(a), float(b)) for a, b in problem.evaluations],
        curvature=float(2.0 / problem.weight * (J[:, 0] @ J[:, 0])),
        rmse=math.sqrt(current.loss),
        converged=converged,
        iterations=iterations,
        forward_rollouts=problem.forward_rollouts,
        seconds=time.perf_counter() - start_time,
        num_particles=problem.solver.num_particles,
        num_observations=int(problem.weight),
        frame_positions=current.frames,
        substeps=current.schedule,
        at_bound=bool(np.any(np.isclose(log_e, lo, rtol=0.0, atol=1e-9) | np.isclose(log_e, hi, rtol=0.0, atol=1e-9))),
        rejected_rollouts=problem.rejected_rollouts,
    )
