"""Gradients through MPM rollouts with ``wp.Tape`` and recompute checkpointing.

A rollout is a sequence of frames of ``substeps`` fixed substeps each. Before every frame
an optional ``drive(frame)`` callback poses the solver's colliders and sets their
velocities (``Collider.set_pose`` / ``set_velocity``, as a robot gripper drives them);
during the frame they move with that velocity, after it they advance as in
``MPMSolver.step``. The loss is a sum of terms on the particle positions at frame
boundaries (:class:`TrackObservations`: tracks of a subset of particles with missing
entries, or :func:`squared_distance_loss` on the final positions).

The rollout is cut into windows of ``window`` substeps. The forward pass runs without a
tape and keeps only each window's start state (the checkpoints). The backward pass goes
through the windows in reverse: it replays one window from its checkpoint under a tape,
adds the loss terms of the frames ending inside it, seeds the window's end state with
the adjoint handed back by the later window, and propagates to the window's start.
Memory therefore grows with ``window`` (one state and one grid per substep of a window),
not with the rollout length (PhysDreamer's scheme). Gradients are returned for the
per-particle Young's modulus (bulk modulus for fluids) and for the particle velocities
at the start of the rollout. ``warmup_frames`` leading frames are simulated forward
only (no gradient flows through them), e.g. a block settling at rest before a poke.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np
import warp as wp

from . import kernels as K
from .colliders import collider_array
from .materials import check_positive_moduli
from .solver import MPMSolver, launch_substep
from .state import STATE_FIELDS

WARMUP_PROBE = 0.01  # log-E step of the forward difference through the warm-up
FrameLoss = Callable[[int, wp.array], "wp.array | None"]
GridHook = Callable[[int, wp.array, float, float], None]
Substeps = int | Sequence[int] | None


class CourantError(ValueError):
    """A fixed substep count that violates the CFL bound for the E (and speeds) of a rollout."""


@dataclass
class _State:
    """Time-evolving particle arrays of one substep (F is the trial F)."""

    x: wp.array
    v: wp.array
    C: wp.array
    F: wp.array
    plastic: wp.array

    @classmethod
    def like(cls, other: "_State", requires_grad: bool) -> "_State":
        return cls(**{f: wp.zeros_like(getattr(other, f), requires_grad=requires_grad) for f in STATE_FIELDS})

    def clone(self, requires_grad: bool) -> "_State":
        return _State(**{f: wp.clone(getattr(self, f), requires_grad=requires_grad) for f in STATE_FIELDS})


@dataclass(frozen=True)
class RolloutGradients:
    """Loss value and its gradients from :func:`rollout_gradients` / :func:`trajectory_gradients`."""

    loss: float
    youngs_modulus: np.ndarray  # (N,) dL/dE per particle
    initial_velocity: np.ndarray  # (N, 3) dL/dv at the start of the differentiated part
    final_positions: np.ndarray  # (N, 3)
    frame_positions: np.ndarray | None = None  # (T, N, 3) positions after each differentiated frame
    substeps: tuple[int, ...] = ()  # substeps taken in each frame, warm-up included
    directional: np.ndarray | None = None  # (D,) dL/d eps along E exp(eps d_i), warm-up included


@dataclass(frozen=True)
class TrackObservations:
    """Observed positions of ``particles`` after each of T consecutive frames.

    Args:
        particles: (M,) indices of the observed particles.
        positions: (T, M, 3) metres; row k is observed after frame k + 1 of the rollout
            (after the warm-up frames, if any). NaN marks a missing observation.
    """

    particles: np.ndarray
    positions: np.ndarray

    def __post_init__(self) -> None:
        idx = np.asarray(self.particles)
        pos = np.asarray(self.positions, dtype=np.float64)
        if idx.ndim != 1 or len(idx) == 0 or not np.issubdtype(idx.dtype, np.integer):
            raise ValueError("particles must be a non-empty 1-D integer index array, "
                             f"got shape {idx.shape} dtype {idx.dtype}")
        if pos.ndim != 3 or pos.shape[0] == 0 or pos.shape[1:] != (len(idx), 3):
            raise ValueError(f"positions must have shape (T >= 1, {len(idx)}, 3) to match particles, got {pos.shape}")
        if np.any(np.isinf(pos)):
            raise ValueError("positions must be finite or NaN (missing), not inf")
        if not np.any(self.mask):
            raise ValueError("positions hold no observation: every entry is NaN")
        object.__setattr__(self, "particles", idx.astype(np.int64))
        object.__setattr__(self, "positions", pos)

    @property
    def mask(self) -> np.ndarray:
        """(T, M) True where a particle's position is observed."""
        return np.all(np.isfinite(np.asarray(self.positions, dtype=np.float64)), axis=-1)

    @property
    def num_frames(self) -> int:
        """Number of observed frames T."""
        return int(self.positions.shape[0])

    def residuals(self, frame_positions: np.ndarray) -> np.ndarray:
        """(T, M, 3) predicted minus observed positions, 0 where missing."""
        r = frame_positions[:, self.particles] - self.positions
        return np.where(self.mask[..., None], r, 0.0)


@wp.kernel
def _squared_distance(x: wp.array(dtype=wp.vec3), target: wp.array(dtype=wp.vec3), loss: wp.array(dtype=float)):
    p = wp.tid()
    d = x[p] - target[p]
    wp.atomic_add(loss, 0, wp.dot(d, d))


@wp.kernel
def _track_distance(
    x: wp.array(dtype=wp.vec3),
    particles: wp.array(dtype=wp.int32),
    target: wp.array(dtype=wp.vec3),
    weight: wp.array(dtype=float),
    loss: wp.array(dtype=float),
):
    """loss += weight_m |x[particles_m] - target_m|^2 (weight 0 for missing tracks)."""
    m = wp.tid()
    d = x[particles[m]] - target[m]
    wp.atomic_add(loss, 0, weight[m] * wp.dot(d, d))


def squared_distance_loss(target: np.ndarray) -> Callable[[wp.array], wp.array]:
    """Loss sum_p |x_p - target_p|^2 on final positions, as a Warp (tape-recordable) function."""
    tgt = np.asarray(target, dtype=np.float32)

    def loss(x: wp.array) -> wp.array:
        out = wp.zeros(1, dtype=float, device=x.device, requires_grad=True)
        target_x = wp.array(tgt, dtype=wp.vec3, device=x.device)
        wp.launch(_squared_distance, dim=x.shape[0], inputs=[x, target_x], outputs=[out], device=x.device)
        return out

    return loss


def track_loss(observations: TrackObservations, device: str, scale: float = 1.0) -> FrameLoss:
    """Frame loss ``scale * sum_m mask |x_m - y_m|^2`` of the observed frame (1-based), or None."""
    mask = observations.mask
    idx = wp.array(observations.particles.astype(np.int32), dtype=wp.int32, device=device)
    frames = range(observations.num_frames)
    targets = [wp.array(np.nan_to_num(observations.positions[k]).astype(np.float32), dtype=wp.vec3, device=device)
               for k in frames]
    weights = [wp.array(mask[k].astype(np.float32) * scale, dtype=float, device=device) for k in frames]

    def loss(frame: int, x: wp.array) -> wp.array | None:
        k = frame - 1
        if not (0 <= k < observations.num_frames) or not mask[k].any():
            return None
        out = wp.zeros(1, dtype=float, device=device, requires_grad=True)
        wp.launch(_track_distance, dim=len(idx), inputs=[x, idx, targets[k], weights[k]], outputs=[out], device=device)
        return out

    return loss


def wave_speed(solver: MPMSolver, youngs_modulus: np.ndarray | None = None) -> float:
    """Largest elastic wave speed (m/s) of the particles, with ``youngs_modulus`` (N,) in place of theirs."""
    p = solver.particles
    E = p.stiffness.numpy() if youngs_modulus is None else youngs_modulus
    E = np.asarray(E, dtype=np.float64)
    nu = p.poisson_ratio.numpy().astype(np.float64)
    rho = p.mass.numpy().astype(np.float64) / p.volume.numpy().astype(np.float64)
    stiffening = np.array([m.stiffening() for m in solver.materials])[p.material_id.numpy()]
    p_wave = E * (1.0 - nu) / np.maximum((1.0 + nu) * (1.0 - 2.0 * nu), 1e-12)
    modulus = np.where(nu == 0.0, E, p_wave)  # fluids: bulk modulus
    return float(np.sqrt(modulus / rho * stiffening).max())


class _Rollout:
    """Substepping of a solver's particles along a per-frame schedule, never touching the solver's state.

    The colliders of every frame are snapshot up front (``drive`` is called once per
    frame, then they advance by ``frame_dt`` as in ``MPMSolver.step``) and restored after.
    ``substeps`` fixes the substeps per frame; ``None`` picks them per frame with the
    solver's CFL rule (``MPMSolver.substep_size``: wave speed of the E used, plus the
    largest particle speed of the previous frame, gravity and collider speeds), decided
    during the forward pass and replayed identically under the tape.
    """

    def __init__(self, solver: MPMSolver, num_frames: int, frame_dt: float, substeps: Substeps,
                 drive: Callable[[int], None] | None, youngs_modulus: np.ndarray | None,
                 grid_hook: GridHook | None = None) -> None:
        if not (math.isfinite(frame_dt) and frame_dt > 0.0):
            raise ValueError(f"frame_dt must be a finite positive number, got {frame_dt!r}")
        self.solver = solver
        self.frame_dt = float(frame_dt)
        if substeps is None or isinstance(substeps, (int, np.integer)):
            self.fixed_substeps = None if substeps is None else [int(substeps)] * num_frames
        else:
            self.fixed_substeps = [int(n) for n in substeps]
            if len(self.fixed_substeps) != num_frames or min(self.fixed_substeps) < 1:
                raise ValueError(f"substeps must be None, an int >= 1 or {num_frames} ints >= 1 (one per frame, "
                                 f"warm-up included), got {substeps!r}")
        p = solver.particles
        if youngs_modulus is None:
            self.stiffness = wp.clone(p.stiffness, requires_grad=True)
        else:
            E = check_positive_moduli("youngs_modulus", youngs_modulus, len(p))
            self.stiffness = wp.array(E.astype(np.float32), dtype=float, device=solver.device, requires_grad=True)
        self.wave_speed = wave_speed(solver, youngs_modulus)
        self.tables, self.collider_speeds = self._frame_tables(solver, num_frames, self.frame_dt, drive)
        self.schedule: list[tuple[int, float, float]] = []  # per substep: (frame, time in frame, dt)
        self.grid_hook = grid_hook
        self.grids: list[object] = []  # per substep: the solver's grid it ran on (a hook may move it)
        self.grid_size = solver.grid_mv.shape[0]
        self.no_covariance = wp.zeros(0, dtype=wp.mat33, device=solver.device)

    @staticmethod
    def _frame_tables(solver: MPMSolver, num_frames: int, frame_dt: float, drive: Callable[[int], None] | None
                      ) -> tuple[list[wp.array], list[float]]:
        saved = [(c.position.copy(), c.rotation.copy(), c.linear_velocity.copy(), c.angular_velocity.copy())
                 for c in solver.colliders]
        reach = solver.config.dx * solver.config.grid_res
        tables, speeds = [], []
        try:
            for frame in range(num_frames):
                if drive is not None:
                    drive(frame)
                tables.append(collider_array(solver.colliders, solver.device))
                speeds.append(max((float(np.linalg.norm(c.linear_velocity) + np.linalg.norm(c.angular_velocity) * reach)
                                   for c in solver.colliders), default=0.0))
                for c in solver.colliders:
                    c.advance(frame_dt)
        finally:
            for c, (pos, rot, lin, ang) in zip(solver.colliders, saved, strict=True):
                c.set_pose(pos, rot)
                c.set_velocity(lin, ang)
        return tables, speeds

    def plan_frame(self, frame: int, particle_speed: float) -> int:
        """Append the substeps of ``frame`` to the schedule; ``particle_speed`` bounds |v| at its start."""
        cfg = self.solver.config
        gravity_speed = float(np.linalg.norm(cfg.gravity)) * self.frame_dt
        speed = self.wave_speed + particle_speed + gravity_speed + self.collider_speeds[frame]
        if self.fixed_substeps is None:
            count = max(1, math.ceil(self.frame_dt * speed / (cfg.cfl * cfg.dx) - 1e-9))
        else:
            count = int(self.fixed_substeps[frame])
            courant = self.frame_dt / count * speed / cfg.dx
            if courant > 1.0:
                raise CourantError(f"dt={self.frame_dt / count:g} violates the CFL bound in frame {frame} (Courant "
                                   f"number {courant:.3g} > 1); use more than {math.ceil(count * courant)} substeps "
                                   "per frame")
        dt = self.frame_dt / count
        self.schedule.extend((frame, sub * dt, dt) for sub in range(count))
        return count

    def moduli(self, requires_grad: bool) -> tuple[wp.array, wp.array]:
        p = self.solver.particles
        mu = wp.zeros_like(p.mu, requires_grad=requires_grad)
        lam = wp.zeros_like(p.lam, requires_grad=requires_grad)
        inputs = [self.stiffness, p.poisson_ratio, p.material_id, self.solver._material_table]
        wp.launch(K.lame, dim=len(p), inputs=inputs, outputs=[mu, lam], device=self.solver.device)
        return mu, lam

    def is_frame_end(self, s: int) -> bool:
        """Whether substep ``s`` is the last one of its frame."""
        return s + 1 == len(self.schedule) or self.schedule[s + 1][0] != self.schedule[s][0]

    def forward(self, state: _State, frames: range, particle_speed: float,
                on_substep: Callable[[int, _State], None] | None = None,
                on_frame: Callable[[int, _State], None] | None = None) -> float:
        """Run ``frames`` in place on ``state`` (no tape), planning each frame; returns the last frame's max speed.

        Kernel launches are recorded once (``launch_substep(record=True)``) and replayed while
        the substep length, the colliders and the grid stay the same, as ``MPMSolver.substep`` does.

        ``on_substep(s, state)`` runs before global substep s, ``on_frame(frame, state)`` after each frame.
        """
        solver, dev = self.solver, self.solver.device
        mu, lam = self.moduli(requires_grad=False)
        tau = wp.zeros_like(state.F)
        grid_mv = wp.zeros(self.grid_size, dtype=wp.vec4, device=dev)
        grid_v = wp.zeros(self.grid_size, dtype=wp.vec3, device=dev)
        recorded: tuple[tuple, list] | None = None  # launches packed once, replayed while dt, colliders and grid hold
        for frame in frames:
            first = len(self.schedule)
            self.plan_frame(frame, particle_speed)
            solver._max_speed_sq.zero_()
            solver._counters.zero_()
            table = self.tables[frame]
            for s in range(first, len(self.schedule)):
                if on_substep is not None:
                    on_substep(s, state)
                _, t, dt = self.schedule[s]
                if self.grid_hook is not None:
                    self.grid_hook(s, state.x, t, dt)
                self.grids.append(solver.grid)
                key = (dt, table, solver.grid)
                if recorded is None or recorded[0][0] != dt or recorded[0][1] is not table \
                        or recorded[0][2] is not solver.grid:
                    launches = launch_substep(solver, state, state, mu, lam, state.F, tau, self.no_covariance, grid_mv,
                                              grid_v, dt, t, table, record=True)
                    recorded = (key, launches or [])
                for cmd in recorded[1][1:-1]:  # the grid launches: colliders move within the frame
                    cmd.set_param_by_name("frame_time", t)
                grid_mv.zero_()
                for cmd in recorded[1]:
                    cmd.launch()
            particle_speed = math.sqrt(float(solver._max_speed_sq.numpy()[0]))
            non_finite = int(solver._counters.numpy()[int(K.NON_FINITE)])
            if non_finite or not math.isfinite(particle_speed):
                raise FloatingPointError(f"the rollout diverged in frame {frame} ({non_finite} particles got a "
                                         "non-finite velocity); use more substeps or a softer material")
            if on_frame is not None:
                on_frame(frame, state)
        return particle_speed

    def replay(self, state: _State, first: int, count: int, mu: wp.array, lam: wp.array,
               on_frame: Callable[[int, _State], None]) -> _State:
        """Planned substeps ``first .. first + count - 1`` with one fresh state each (under a tape)."""
        dev = self.solver.device
        for s in range(first, first + count):
            frame, t, dt = self.schedule[s]
            self.solver.grid = self.grids[s]
            nxt = _State.like(state, True)
            F_elastic = wp.zeros_like(state.F, requires_grad=True)
            tau = wp.zeros_like(state.F, requires_grad=True)
            grid_mv = wp.zeros(self.grid_size, dtype=wp.vec4, device=dev, requires_grad=True)
            grid_v = wp.zeros(self.grid_size, dtype=wp.vec3, device=dev, requires_grad=True)
            launch_substep(self.solver, state, nxt, mu, lam, F_elastic, tau, self.no_covariance, grid_mv, grid_v, dt, t,
                           self.tables[frame])
            state = nxt
            if self.is_frame_end(s):
                on_frame(frame, state)
        return state


def _start_state(rollout: _Rollout, warmup_frames: int, velocity_offset: np.ndarray | None) -> tuple[_State, float]:
    """The solver's state advanced through the warm-up frames (no tape), plus ``velocity_offset``; and its speed."""
    p = rollout.solver.particles
    state = _State(**{f: getattr(p, f) for f in STATE_FIELDS}).clone(requires_grad=False)
    speed = rollout.forward(state, range(warmup_frames), rollout.solver._host_max_speed)
    if velocity_offset is not None:
        v = state.v.numpy().astype(np.float64) + velocity_offset
        state.v = wp.array(v.astype(np.float32), dtype=wp.vec3, device=rollout.solver.device)
        speed = max(speed, float(np.sqrt((v * v).sum(1)).max()))
    return state, speed


def _gradients(rollout: _Rollout, start: _State, start_speed: float, frames: range, window: int, frame_loss: FrameLoss
               ) -> tuple[RolloutGradients, dict[str, wp.array] | None]:
    """Checkpointed forward pass, then windowed reverse replay (see the module docstring)."""
    solver = rollout.solver
    first_substep = len(rollout.schedule)
    positions: list[np.ndarray] = []
    checkpoints: dict[int, _State] = {}

    def checkpoint(s: int, state: _State) -> None:
        if (s - first_substep) % window == 0:
            checkpoints[s] = state.clone(requires_grad=False)

    state = start.clone(requires_grad=False)
    rollout.forward(state, frames, start_speed, on_substep=checkpoint,
                    on_frame=lambda k, st: positions.append(st.x.numpy().astype(np.float64)))
    end_substep = len(rollout.schedule)

    adjoint: dict[str, wp.array] | None = None
    loss_value = 0.0
    d_stiffness = np.zeros(solver.num_particles)
    grid_after = solver.grid
    for first in sorted(checkpoints, reverse=True):
        begin = checkpoints.pop(first).clone(requires_grad=True)
        terms: list[wp.array] = []

        def add_term(frame: int, s: _State, terms: list[wp.array] = terms) -> None:
            value = frame_loss(frame - frames.start + 1, s.x)
            if value is not None:
                terms.append(value)

        tape = wp.Tape()
        with tape:
            mu, lam = rollout.moduli(requires_grad=True)
            end = rollout.replay(begin, first, min(window, end_substep - first), mu, lam, add_term)
        seeds = {t: wp.ones(1, dtype=float, device=solver.device) for t in terms}
        if adjoint is not None:
            seeds.update({getattr(end, f): adjoint[f] for f in STATE_FIELDS})
        loss_value += sum(float(t.numpy()[0]) for t in terms)
        if seeds:
            tape.backward(grads=seeds)
            adjoint = {f: wp.clone(getattr(begin, f).grad) for f in STATE_FIELDS}
            d_stiffness += rollout.stiffness.grad.numpy()
        tape.reset()  # also zeroes rollout.stiffness.grad, accumulated above
    solver.grid = grid_after
    v_grad = adjoint["v"].numpy().astype(np.float64) if adjoint is not None else np.zeros((solver.num_particles, 3))
    _check_finite_gradients(d_stiffness, v_grad)
    counts = tuple(int(n) for n in np.bincount([f for f, _, _ in rollout.schedule]))
    grads = RolloutGradients(loss=loss_value, youngs_modulus=d_stiffness, initial_velocity=v_grad,
                             final_positions=state.x.numpy().astype(np.float64), frame_positions=np.stack(positions),
                             substeps=counts)
    return grads, adjoint


def _check_finite_gradients(d_stiffness: np.ndarray, v_grad: np.ndarray) -> None:
    """Raise FloatingPointError naming the particles whose gradient is not finite (instead of returning NaN)."""
    bad = ~(np.isfinite(d_stiffness) & np.all(np.isfinite(v_grad), axis=-1))
    if np.any(bad):
        idx = np.flatnonzero(bad)
        raise FloatingPointError(f"the tape gave non-finite gradients for {len(idx)} of {len(bad)} particles (first: "
                                 f"{idx[:10].tolist()}): a NaN/inf in the backward pass, although the forward "
                                 "rollout was finite; forward differences of rollouts still work there")


def _check_arguments(solver: MPMSolver, num_frames: int, substeps: Substeps, window: int, warmup_frames: int) -> None:
    bad_substeps = isinstance(substeps, (int, np.integer)) and int(substeps) < 1
    if int(num_frames) < 1 or bad_substeps or int(window) < 1 or int(warmup_frames) < 0:
        raise ValueError("need num_frames >= 1, substeps None or >= 1, window >= 1 and warmup_frames >= 0, "
                         f"got {num_frames}, {substeps}, {window}, {warmup_frames}")
    if solver.num_particles == 0:
        raise ValueError("the solver has no particles")


def _velocity_offset(solver: MPMSolver, velocity_offset: np.ndarray | None) -> np.ndarray | None:
    if velocity_offset is None:
        return None
    shape = np.shape(velocity_offset)
    if shape not in ((3,), (solver.num_particles, 3)) or not np.all(np.isfinite(velocity_offset)):
        raise ValueError(f"velocity_offset must be finite with shape (3,) or ({solver.num_particles}, 3), got {shape}")
    return np.broadcast_to(np.asarray(velocity_offset, dtype=np.float64), (solver.num_particles, 3))


def rollout_gradients(
    solver: MPMSolver,
    num_substeps: int,
    dt: float,
    loss: Callable[[wp.array], wp.array],
    window: int = 16,
) -> RolloutGradients:
    """Gradient of ``loss(final positions)`` w.r.t. per-particle E and initial velocity.

    Runs ``num_substeps`` substeps of ``dt`` from the solver's current state without
    changing it; colliders move with their current velocity. ``loss`` maps the final (N,)
    vec3 position array to a one-element float array with ``requires_grad=True`` using Warp
    kernels (see :func:`squared_distance_loss`). ``window`` substeps are replayed under the
    tape at a time.
    """
    _check_arguments(solver, 1, num_substeps, window, 0)
    rollout = _Rollout(solver, 1, int(num_substeps) * dt, int(num_substeps), None, None)
    start, speed = _start_state(rollout, 0, None)
    return _gradients(rollout, start, speed, range(1), int(window), lambda frame, x: loss(x))[0]


def trajectory_gradients(
    solver: MPMSolver,
    observations: TrackObservations,
    frame_dt: float,
    substeps: Substeps = None,
    drive: Callable[[int], None] | None = None,
    youngs_modulus: np.ndarray | None = None,
    velocity_offset: np.ndarray | None = None,
    warmup_frames: int = 0,
    window: int = 32,
    loss_scale: float = 1.0,
    log_directions: np.ndarray | None = None,
    grid_hook: GridHook | None = None,
) -> RolloutGradients:
    """Gradient of a track loss summed over frames w.r.t. per-particle E and start velocity.

    Simulates ``warmup_frames + observations.num_frames`` frames of ``frame_dt`` seconds
    from the solver's current state without changing it: ``substeps`` per frame (an int, or
    one int per frame with the warm-up), or per frame by the solver's CFL rule when None.
    ``drive(frame)`` (counted from 0, warm-up included) poses the colliders before each frame.
    The loss is
    ``loss_scale * sum_k sum_m mask |x_m(t_k) - y_km|^2`` over the frames after the warm-up;
    the warm-up runs forward only, so the gradients (and ``velocity_offset`` (N, 3) or (3,),
    added to the velocities) refer to the state after it. ``youngs_modulus`` (N,) replaces
    the particles' E (their stored E is then never read). For each row d of
    ``log_directions`` (D, N), ``directional`` holds the total derivative of the loss along
    E exp(eps d) at eps = 0: the window's share from the tape, the warm-up's share (the
    start state's dependence on E) from a forward difference of the warm-up contracted with
    the tape's adjoint of the start state. ``grid_hook(substep, x, time_in_frame, dt)`` runs
    before every forward substep (substep 0 starts each rollout) and may move the solver's
    grid, e.g. a local domain that follows the particles in whole cells; the replay under
    the tape reuses the grid each substep ran on.
    """
    _check_arguments(solver, observations.num_frames, substeps, window, warmup_frames)
    if observations.particles.max() >= solver.num_particles or observations.particles.min() < 0:
        raise ValueError(f"observed particle indices must lie in [0, {solver.num_particles}), "
                         f"got range [{observations.particles.min()}, {observations.particles.max()}]")
    offset = _velocity_offset(solver, velocity_offset)
    frames = range(int(warmup_frames), int(warmup_frames) + observations.num_frames)
    rollout = _Rollout(solver, frames.stop, frame_dt, substeps, drive, youngs_modulus, grid_hook)
    start, speed = _start_state(rollout, frames.start, offset)
    loss = track_loss(observations, solver.device, loss_scale)
    grads, adjoint = _gradients(rollout, start, speed, frames, int(window), loss)
    if log_directions is None:
        return grads
    D = np.atleast_2d(np.asarray(log_directions, dtype=np.float64))
    if D.shape[1] != solver.num_particles or not np.all(np.isfinite(D)):
        raise ValueError(f"log_directions must be finite with shape (D, {solver.num_particles}), got {D.shape}")
    E = rollout.stiffness.numpy().astype(np.float64)
    directional = D @ (grads.youngs_modulus * E)
    if frames.start and adjoint is not None:  # the warm-up's share, by a forward difference of the start state
        base = {f: getattr(start, f).numpy().astype(np.float64) for f in STATE_FIELDS}
        lam = {f: adjoint[f].numpy().astype(np.float64) for f in STATE_FIELDS}
        for i, d in enumerate(D):
            probe = _Rollout(solver, frames.start, frame_dt, grads.substeps[: frames.start], drive,
                             E * np.exp(WARMUP_PROBE * d), grid_hook)
            moved, _ = _start_state(probe, frames.start, offset)
            change = sum(float((lam[f] * (getattr(moved, f).numpy() - base[f])).sum()) for f in STATE_FIELDS)
            directional[i] += change / WARMUP_PROBE
    if not np.all(np.isfinite(directional)):
        raise FloatingPointError(f"the warm-up's share of the directional derivatives is not finite: {directional}")
    return RolloutGradients(**{**grads.__dict__, "directional": directional})


def simulate_frames(
    solver: MPMSolver,
    num_frames: int,
    frame_dt: float,
    substeps: Substeps = None,
    drive: Callable[[int], None] | None = None,
    youngs_modulus: np.ndarray | None = None,
    velocity_offset: np.ndarray | None = None,
    warmup_frames: int = 0,
    grid_hook: GridHook | None = None,
) -> np.ndarray:
    """(num_frames, N, 3) positions after each frame following the warm-up, forward only.

    Same arguments and conventions as :func:`trajectory_gradients`, without a tape (the
    cheap evaluation a line search or a finite-difference probe needs).
    """
    return simulate_with_substeps(solver, num_frames, frame_dt, substeps, drive, youngs_modulus, velocity_offset,
                                  warmup_frames, grid_hook)[0]


def simulate_with_substeps(
    solver: MPMSolver,
    num_frames: int,
    frame_dt: float,
    substeps: Substeps = None,
    drive: Callable[[int], None] | None = None,
    youngs_modulus: np.ndarray | None = None,
    velocity_offset: np.ndarray | None = None,
    warmup_frames: int = 0,
    grid_hook: GridHook | None = None,
) -> tuple[np.ndarray, tuple[int, ...]]:
    """:func:`simulate_frames` plus the substeps each frame took (warm-up included).

    Passing those substeps back replays the same schedule at another E, so that rollouts
    compared with each other (a line search, finite differences) see no jumps from
    changing substep counts. Raises ``FloatingPointError`` when the rollout diverges.
    """
    _check_arguments(solver, num_frames, substeps, 1, warmup_frames)
    offset = _velocity_offset(solver, velocity_offset)
    frames = range(int(warmup_frames), int(warmup_frames) + int(num_frames))
    rollout = _Rollout(solver, frames.stop, frame_dt, substeps, drive, youngs_modulus, grid_hook)
    state, speed = _start_state(rollout, frames.start, offset)
    positions: list[np.ndarray] = []
    rollout.forward(state, frames, speed, on_frame=lambda k, st: positions.append(st.x.numpy().astype(np.float64)))
    return np.stack(positions), tuple(int(n) for n in np.bincount([f for f, _, _ in rollout.schedule]))
