"""Gradients through MPM rollouts with ``wp.Tape`` and recompute checkpointing.

A rollout of ``num_substeps`` substeps is cut into windows of ``window`` substeps.
The forward pass runs without a tape and keeps only each window's start state (the
checkpoints). The backward pass goes through the windows in reverse: it replays one
window from its checkpoint under a tape, seeds the window's end state with the
adjoint handed back by the later window (or with the loss for the last one), and
propagates to the window's start. Memory therefore grows with ``window`` (one state
and one grid per substep of a window), not with the rollout length (PhysDreamer's
scheme). Gradients are returned for the per-particle Young's modulus (bulk modulus for
fluids) and for the initial particle velocities.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np
import warp as wp

from . import kernels as K
from .solver import MPMSolver, launch_substep

STATE_FIELDS = ("x", "v", "C", "F", "plastic")


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
    """Loss value and its gradients from :func:`rollout_gradients`."""

    loss: float
    youngs_modulus: np.ndarray  # (N,) dL/dE per particle
    initial_velocity: np.ndarray  # (N, 3) dL/dv0
    final_positions: np.ndarray  # (N, 3)


@wp.kernel
def _squared_distance(x: wp.array(dtype=wp.vec3), target: wp.array(dtype=wp.vec3), loss: wp.array(dtype=float)):
    p = wp.tid()
    d = x[p] - target[p]
    wp.atomic_add(loss, 0, wp.dot(d, d))


def squared_distance_loss(target: np.ndarray) -> Callable[[wp.array], wp.array]:
    """Loss sum_p |x_p - target_p|^2 on final positions, as a Warp (tape-recordable) function."""
    tgt = np.asarray(target, dtype=np.float32)

    def loss(x: wp.array) -> wp.array:
        out = wp.zeros(1, dtype=float, device=x.device, requires_grad=True)
        wp.launch(_squared_distance, dim=x.shape[0], inputs=[x, wp.array(tgt, dtype=wp.vec3, device=x.device)], outputs=[out], device=x.device)
        return out

    return loss


class _Rollout:
    """Fixed-dt substepping of a solver's particles with one fresh state per substep."""

    def __init__(self, solver: MPMSolver, dt: float) -> None:
        self.solver = solver
        self.dt = dt
        self.colliders = solver._sync_colliders()
        p = solver.particles
        self.stiffness = wp.clone(p.stiffness, requires_grad=True)
        self.grid_size = solver.grid_mv.shape[0]
        self.no_covariance = wp.zeros(0, dtype=wp.mat33, device=solver.device)

    def moduli(self, requires_grad: bool) -> tuple[wp.array, wp.array]:
        p = self.solver.particles
        mu = wp.zeros_like(p.mu, requires_grad=requires_grad)
        lam = wp.zeros_like(p.lam, requires_grad=requires_grad)
        wp.launch(K.lame, dim=len(p), inputs=[self.stiffness, p.poisson_ratio, p.material_id, self.solver._material_table], outputs=[mu, lam], device=self.solver.device)
        return mu, lam

    def advance(self, state: _State, first: int, count: int, mu: wp.array, lam: wp.array, requires_grad: bool) -> _State:
        dev = self.solver.device
        for s in range(first, first + count):
            nxt = _State.like(state, requires_grad)
            F_elastic = wp.zeros_like(state.F, requires_grad=requires_grad)
            tau = wp.zeros_like(state.F, requires_grad=requires_grad)
            grid_mv = wp.zeros(self.grid_size, dtype=wp.vec4, device=dev, requires_grad=requires_grad)
            grid_v = wp.zeros(self.grid_size, dtype=wp.vec3, device=dev, requires_grad=requires_grad)
            launch_substep(self.solver, state, nxt, mu, lam, F_elastic, tau, self.no_covariance, grid_mv, grid_v, self.dt, s * self.dt, self.colliders)
            state = nxt
        return state


def rollout_gradients(
    solver: MPMSolver,
    num_substeps: int,
    dt: float,
    loss: Callable[[wp.array], wp.array],
    window: int = 16,
) -> RolloutGradients:
    """Gradient of ``loss(final positions)`` w.r.t. per-particle E and initial velocity.

    Runs ``num_substeps`` substeps of ``dt`` from the solver's current state without
    changing it. ``loss`` maps the final (N,) vec3 position array to a one-element float
    array with ``requires_grad=True`` using Warp kernels (see :func:`squared_distance_loss`).
    ``window`` substeps are replayed under the tape at a time.
    """
    if int(num_substeps) < 1 or int(window) < 1:
        raise ValueError(f"num_substeps and window must be >= 1, got {num_substeps}, {window}")
    if solver.num_particles == 0:
        raise ValueError("the solver has no particles")
    _, bound = solver.substep_size(dt)
    if bound > 1:
        raise ValueError(f"dt={dt:g} violates the CFL bound of this solver; use dt <= {dt / bound:.3g}")
    rollout = _Rollout(solver, dt)
    p = solver.particles
    start = _State(**{f: getattr(p, f) for f in STATE_FIELDS})
    windows = [(w, min(window, num_substeps - w)) for w in range(0, num_substeps, window)]

    mu, lam = rollout.moduli(requires_grad=False)
    checkpoints = []
    state = start.clone(requires_grad=False)
    for first, count in windows:
        checkpoints.append(state)
        state = rollout.advance(state, first, count, mu, lam, requires_grad=False)

    adjoint: dict[str, wp.array] | None = None
    loss_value = 0.0
    d_stiffness = np.zeros(solver.num_particles)
    final_x = state.x.numpy().astype(np.float64)
    for (first, count), checkpoint in zip(reversed(windows), reversed(checkpoints)):
        begin = checkpoint.clone(requires_grad=True)
        tape = wp.Tape()
        with tape:
            mu, lam = rollout.moduli(requires_grad=True)
            end = rollout.advance(begin, first, count, mu, lam, requires_grad=True)
            value = loss(end.x) if adjoint is None else None
        if value is not None:
            loss_value = float(value.numpy()[0])
            tape.backward(loss=value)
        else:
            tape.backward(grads={getattr(end, f): adjoint[f] for f in STATE_FIELDS})
        adjoint = {f: wp.clone(getattr(begin, f).grad) for f in STATE_FIELDS}
        d_stiffness += rollout.stiffness.grad.numpy()
        tape.reset()  # also zeroes rollout.stiffness.grad, accumulated above
    assert adjoint is not None
    return RolloutGradients(
        loss=loss_value,
        youngs_modulus=d_stiffness,
        initial_velocity=adjoint["v"].numpy().astype(np.float64),
        final_positions=final_x,
    )
