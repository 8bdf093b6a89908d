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
from dataclasses import dataclass
from typing import Callable

import numpy as np
from tqdm import tqdm

from .differentiable import CourantError, GridHook, Substeps, TrackObservations, simulate_with_substeps
from .estimation_report import EstimationReport
from .solver import MPMSolver

FIELDS = ("global", "linear")
MAX_LOG_STEP = math.log(2.0)  # largest change of log E per iteration (a factor 2 in E)
VELOCITY_SCALE = 0.1  # m/s: one unit of the optimiser's velocity coordinates
MAX_VELOCITY_STEP = 2.0  # in VELOCITY_SCALE units per iteration
Z95 = 1.959963984540054  # standard normal quantile of a two-sided 95% interval (dimensionless)
SCAN_STEP = math.log(2.0)  # log-E step of the forward-only bracketing walk (a factor 2 in E)
REPLAN = 0.05  # a step landing this far (in log E) from where the substeps were planned plans its own
DEFAULT_BOUNDS = (1.0, 1.0e10)  # Pa: admissible E unless the caller gives its own
DEFAULT_MAX_ITERATIONS = 20  # Levenberg-Marquardt iterations (one trial rollout each) unless the caller gives a cap
DEFAULT_TOLERANCE = 1e-3  # log E: a step shorter than this ends the fit (v0: this many VELOCITY_SCALE units)
DEFAULT_PROBE_STEP = 0.05  # log E (and VELOCITY_SCALE units): finite-difference step of the Jacobian probes
DEFAULT_SCAN_STEPS = 6  # at most this many SCAN_STEPs of the bracketing walk (0: no walk)

# Levenberg-Marquardt damping mu of (H + mu (diag H + DAMPING_DIAGONAL_FLOOR)) step = -g (dimensionless)
INITIAL_DAMPING = 1.0e-3  # mu of the first Gauss-Newton step
DAMPING_DECREASE = 3.0  # an accepted step divides mu by this
MIN_DAMPING = 1.0e-6  # ... but mu never drops below this
DAMPING_INCREASE = 4.0  # a rejected (not yet small) step multiplies mu by this
MAX_DAMPING = 1.0e8  # give up (no step lowers the loss) beyond this damping
DAMPING_DIAGONAL_FLOOR = 1e-12  # m^2 per parameter unit^2 (as diag H): keeps the damping positive where diag H is 0

MIN_HALF_EXTENT = 1e-9  # m: floor of the particles' half extent that normalises the linear field's coordinates
REAL_ROOT_TOLERANCE = 1e-12  # largest |imaginary part| of a root of the bracket model's derivative taken as real
STEP_NORM_FLOOR = 1e-300  # floor of the step's largest component when scaling it to the caps (avoids 0 / 0)
AT_BOUND_TOLERANCE = 1e-9  # log E: a particle this close to a bound sits on it


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
            half = np.maximum((x.max(0) - x.min(0)) / 2.0, MIN_HALF_EXTENT)
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
    real_roots = [float(t.real) for t in roots if abs(t.imag) < REAL_ROOT_TOLERANCE and t_lo < t.real < t_hi]
    candidates = [t_lo, 0.0, t_hi] + real_roots
    t = min(candidates, key=lambda c: float(np.polyval(quartic, c)))
    return t, a + 2.0 * b * t


def _limit(step: np.ndarray, num_log_e: int) -> np.ndarray:
    """Scale a step so log E changes by at most MAX_LOG_STEP and v by at most MAX_VELOCITY_STEP units."""
    scale = MAX_LOG_STEP / max(float(np.abs(step[:num_log_e]).max()), STEP_NORM_FLOOR)
    if len(step) > num_log_e:
        scale = min(scale, MAX_VELOCITY_STEP / max(float(np.abs(step[num_log_e:]).max()), STEP_NORM_FLOOR))
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
    max_iterations: int = DEFAULT_MAX_ITERATIONS,
    tolerance: float = DEFAULT_TOLERANCE,
    probe_step: float = DEFAULT_PROBE_STEP,
    progress: bool = True,
    grid_hook: GridHook | None = None,
    scan_steps: int = DEFAULT_SCAN_STEPS,
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
            less than ``tolerance * VELOCITY_SCALE`` m/s).
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
    v0 = _checked_velocity(initial_velocity0)
    start_time = time.perf_counter()
    problem = _Problem(solver, observations, float(frame_dt), drive, int(warmup_frames), field, fit_velocity, substeps,
                       grid_hook, (float(bounds[0]), float(bounds[1])))
    z = _start_point(problem, youngs_modulus0, v0, from_first_frame=initial_velocity0 is None)
    bracket = _bracket_start(problem, z, scan_steps)
    fit = _start_fit(problem, bracket, youngs_modulus0, probe_step)
    replan = substeps is None  # the CFL rule plans the substeps: long steps plan their own
    converged, iterations = _refine(problem, fit, int(max_iterations), tolerance, probe_step, replan, progress)
    return _report(problem, fit.current, fit.J, fit.losses, fit.moduli, converged, iterations, field, v0, start_time)


def _checked_velocity(initial_velocity0: np.ndarray | None) -> np.ndarray:
    """The starting velocity offset (3,) in m/s: ``initial_velocity0``, or zero for None; ValueError unless finite."""
    v0 = np.zeros(3) if initial_velocity0 is None else np.asarray(initial_velocity0, dtype=np.float64)
    if v0.shape != (3,) or not np.all(np.isfinite(v0)):
        raise ValueError(f"initial_velocity0 must be 3 finite numbers (m/s), got {initial_velocity0!r}")
    return v0


def _start_point(problem: _Problem, youngs_modulus0: float, v0: np.ndarray, from_first_frame: bool) -> np.ndarray:
    """The parameters theta of the start: log ``youngs_modulus0`` (a uniform field) and, when fitting the velocity,
    ``v0``, less the mean offset of the first observed frame when ``from_first_frame`` (costs one one-frame rollout)."""
    z = np.zeros(problem.size)
    z[0] = math.log(youngs_modulus0)
    if problem.fit_velocity:
        z[problem.num_log_e :] = v0 / VELOCITY_SCALE
        if from_first_frame:  # start from the mean velocity the first observed frame shows
            z[problem.num_log_e :] -= problem.first_frame_offset(z) / (problem.frame_dt * VELOCITY_SCALE)
    return z


def _bracket_start(problem: _Problem, z: np.ndarray, scan_steps: int) -> _Bracket:
    """The bracketing walk of :func:`_scan` from ``z`` (``scan_steps`` > 0), else the lone rollout at ``z``.

    Raises (see :func:`_no_rollout_error`) when not one of its rollouts could be evaluated, so ``best`` is set.
    """
    if scan_steps:
        bracket = _scan(problem, z, int(scan_steps))
    else:
        start = problem.evaluate(z, None)
        bracket = _Bracket(start, start, None, None)
    if bracket.best is None:
        raise _no_rollout_error(problem)
    return bracket


def _no_rollout_error(problem: _Problem) -> Exception:
    """The error for a fit none of whose rollouts could be evaluated: ValueError when the last failure broke the CFL
    bound (fixed substeps), else FloatingPointError; it lists the E tried."""
    tried = ", ".join(f"{e:.4g}" for e in sorted({e for e, _ in problem.evaluations}))
    kind = ValueError if isinstance(problem.failure, CourantError) else FloatingPointError
    return kind(f"no rollout of the fit could be evaluated (E tried: {tried} Pa; the last one: {problem.failure}); "
                "check the observations, the solver and the substeps")


@dataclass
class _Fit:
    """Levenberg-Marquardt state, updated in place by :func:`_refine`.

    ``current``: the iterate; ``J``: its residuals' Jacobian, ``fresh`` when it comes from finite differences at
    ``current`` and no secant update since; ``model_step``: the pending first step from the bracket's quadratic model
    (``modelled``: there was one); ``planned_at``: where the CFL rule planned ``current.schedule``; ``losses`` and
    ``moduli``: the history of the loss and E of the iterate; ``damping``: mu of the damped normal equations.
    """

    current: _Evaluation
    J: np.ndarray
    fresh: bool
    model_step: np.ndarray | None
    modelled: bool
    planned_at: np.ndarray
    losses: list[float]
    moduli: list[float]
    damping: float = INITIAL_DAMPING


def _start_fit(problem: _Problem, bracket: _Bracket, youngs_modulus0: float, probe_step: float) -> _Fit:
    """The fit at the bracket's best rollout, with the history (the start, then the best point where it differs).

    The first Jacobian: with one parameter bracketed on both sides, the slope of the quadratic model of
    :func:`_bracket_minimum`, which also gives the first step (no probe); otherwise finite differences with
    ``probe_step``.
    """
    current, initial = bracket.best, bracket.start
    assert current is not None  # _bracket_start raised otherwise
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
    return _Fit(current, J, fresh, model_step, modelled, planned_at, losses, moduli)


def _refine(problem: _Problem, fit: _Fit, max_iterations: int, tolerance: float, probe_step: float, replan: bool,
            progress: bool) -> tuple[bool, int]:
    """Bounded Levenberg-Marquardt from ``fit`` (updated in place), one trial rollout per iteration.

    ``replan``: long steps plan their own substeps (the CFL rule; False for substeps fixed by the caller). Returns
    (converged, iterations); converged when a step vanishes (a stationary point or a bound) or is below ``tolerance``,
    not when the iterations run out or the damping passes MAX_DAMPING.
    """
    converged, iterations = False, 0
    bar = tqdm(total=max_iterations, desc="estimate E", unit="it", disable=not progress)
    for iterations in range(1, max_iterations + 1):
        step = _trial_step(problem, fit)
        if not np.any(step):  # a stationary point, or pressed against a bound
            converged = True
            break
        # a long step is judged with its own substeps, a short one with the iterate's (no jumps from counts)
        own_plan = replan and _far_from_plan(problem, fit, step)
        trial = problem.evaluate(fit.current.z + step, None if own_plan else fit.current.schedule)
        if trial is not None and not (fit.modelled and iterations == 1):  # (the model's slope beats a chord)
            _broyden_update(fit.J, step, trial.residuals - fit.current.residuals)
            fit.fresh = False
        small = _is_small(problem, step, tolerance)
        _accept_or_damp(problem, fit, trial, own_plan, small, probe_step)
        bar.update(1)
        bar.set_postfix(E=f"{fit.moduli[-1]:.4g}", rmse_mm=f"{1e3 * math.sqrt(fit.current.loss):.3g}")
        if small or fit.damping > MAX_DAMPING:
            converged = small
            break
    bar.close()
    return converged, iterations


def _trial_step(problem: _Problem, fit: _Fit) -> np.ndarray:
    """The next step from ``fit.current``: the pending model step (consumed), else the damped Gauss-Newton step;
    capped by :func:`_limit` and shortened to stay within the admissible set (all zero: no step possible)."""
    if fit.model_step is not None:
        step, fit.model_step = fit.model_step, None
    else:
        step = _damped_gauss_newton_step(fit.J, fit.current.residuals, problem.weight, fit.damping)
    step = _limit(np.nan_to_num(step), problem.num_log_e)
    step *= problem.admissible_fraction(fit.current.z, step)
    return step


def _damped_gauss_newton_step(J: np.ndarray, r: np.ndarray, weight: float, damping: float) -> np.ndarray:
    """The Levenberg-Marquardt step for the loss |r|^2 / ``weight``: solves (H + damping D) step = -g with
    H = 2 J^T J / weight, g = 2 J^T r / weight and D = diag(H) + DAMPING_DIAGONAL_FLOOR (Marquardt's scaling: the
    damping acts relative to each parameter's curvature)."""
    H = 2.0 / weight * (J.T @ J)
    g = 2.0 / weight * (J.T @ r)
    return np.linalg.solve(H + damping * np.diag(np.diag(H) + DAMPING_DIAGONAL_FLOOR), -g)


def _far_from_plan(problem: _Problem, fit: _Fit, step: np.ndarray) -> bool:
    """Whether ``fit.current.z + step`` lies more than REPLAN (log E) from where ``fit.current``'s substeps were
    planned, so the trial should plan its own."""
    return bool(np.abs((fit.current.z + step - fit.planned_at)[: problem.num_log_e]).max() > REPLAN)


def _broyden_update(J: np.ndarray, step: np.ndarray, dr: np.ndarray) -> None:
    """Broyden's rank-one secant update of ``J`` in place, so that J step = dr (the change of the residuals)."""
    J += np.outer(dr - J @ step, step) / float(step @ step)


def _is_small(problem: _Problem, step: np.ndarray, tolerance: float) -> bool:
    """Whether ``step`` changes log E by less than ``tolerance`` (and the fitted velocity by less than ``tolerance``
    VELOCITY_SCALE units): the convergence test."""
    n = problem.num_log_e
    return bool(np.abs(step[:n]).max() < tolerance and (not problem.fit_velocity or np.abs(step[n:]).max() < tolerance))


def _accept_or_damp(problem: _Problem, fit: _Fit, trial: _Evaluation | None, own_plan: bool, small: bool,
                    probe_step: float) -> None:
    """Judge ``trial`` and record the iterate in ``fit``'s history.

    A trial that does not raise the loss becomes the iterate and relaxes the damping (its substeps' plan moves with it
    when ``own_plan``); a worse or diverged one, unless the step was ``small``, raises the damping and replaces a
    secant-updated Jacobian with finite differences at the iterate.
    """
    if trial is not None and trial.loss <= fit.current.loss:
        fit.current, fit.damping = trial, max(fit.damping / DAMPING_DECREASE, MIN_DAMPING)
        if own_plan:
            fit.planned_at = fit.current.z.copy()
    elif not small:
        fit.damping *= DAMPING_INCREASE
        if not fit.fresh:
            fit.J, fit.fresh = problem.jacobian(fit.current, probe_step), True
    fit.losses.append(fit.current.loss)
    fit.moduli.append(math.exp(fit.current.z[0]))


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
        at_bound=bool(np.any(np.isclose(log_e, lo, rtol=0.0, atol=AT_BOUND_TOLERANCE)
                            | np.isclose(log_e, hi, rtol=0.0, atol=AT_BOUND_TOLERANCE))),
        rejected_rollouts=problem.rejected_rollouts,
    )
