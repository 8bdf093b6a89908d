"""Penalty contact between kinematic points (the gripper) and a vibrating modal object.

A point ``p`` of the gripper that lies inside the object's deformed surface by ``delta``
(measured in the rest frame, see :mod:`envs.poke_object`) pushes the surface along the
inward normal with ``F = k delta + c d(delta)/dt >= 0``, capped at ``max_force``. The force
acts at the point's rest position (the mode basis there from its pull-back) and enters the modes as
``f_modal = -sum_c F_c g_c`` with ``g_c = basis_c^T n_c``.

The force is held constant over a substep and the modes advance exactly under it
(:func:`physics.modal.dynamics.transition_coefficients`: ``q' = q_free + b1 f``,
``qdot' = qdot_free + b2 f``). The penalty is evaluated at the *end* of the substep
(backward Euler in the contact only), which makes it a small linear system in the contact
forces, ``(I + G diag(k b1 + c b2) G^T) F = k (delta_0 + G (q_free - q)) + c (G qdot_free - N v)``,
solved with an active set (no contact pulls), and scaled down where it would add more energy
to the modes than the hand's work and the penalty energy can supply (passivity: a point
attributed to the wrong face at an edge cannot pump energy in). So any stiffness is stable at any substep
and penetration is about ``force / (k * contacts)``, far below a millimetre for the default
stiffness unless a point hits the force cap.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.spatial import cKDTree

from physics.modal.dynamics import transition_coefficients

from .poke_object import ModalObject

PASSIVITY_SLACK = 0.02  # relative energy gain per substep tolerated before contact forces are scaled down
CONTACT_MARGIN = 0.002  # points this far outside the surface take part in the solve (they may be hit)


@dataclass(frozen=True)
class PenaltyContact:
    """Penalty law per gripper point: ``stiffness`` (N/m), ``damping`` (N s/m), ``max_force`` (N)."""

    stiffness: float = 1.0e4
    damping: float = 2.0
    max_force: float = 20.0

    def __post_init__(self) -> None:
        if not (self.stiffness > 0 and self.damping >= 0 and self.max_force > 0):
            raise ValueError(f"contact stiffness and max_force must be > 0 and damping >= 0, got {self}")


@dataclass
class ContactResult:
    """A substep's contact: modal force (k,), max penetration after the step (m), total force (N), contacts."""

    modal_force: np.ndarray
    max_penetration: float
    total_force: float
    num_contacts: int


class ModalContactSolver:
    """Contact forces of kinematic points on ``obj`` whose modes have angular frequencies ``omega`` and
    damping ratios ``xi`` (see the module docstring)."""

    def __init__(self, obj: ModalObject, omega: np.ndarray, xi: np.ndarray, law: PenaltyContact):
        self.obj, self.omega, self.xi, self.law = obj, omega, xi, law
        self.tree = cKDTree(obj.surface)
        self.stored_energy = 0.0  # penalty energy sum F^2 / 2k held by the last substep's contacts
        self._coef: tuple[float, tuple[np.ndarray, ...]] | None = None

    def coefficients(self, dt: float) -> tuple[np.ndarray, ...]:
        """The exact per-mode step coefficients for a substep ``dt`` (cached)."""
        if self._coef is None or self._coef[0] != dt:
            self._coef = (dt, transition_coefficients(self.omega, self.xi, dt))
        return self._coef[1]

    def _passive_scale(self, q, qdot, q_free, v_free, f, force, normal, velocity, dt) -> float:
        """The largest ``s`` in [0, 1] for which the modal force ``s f`` adds no more energy to the object than
        the hand's work on it plus the penalty energy (``sum F^2 / 2k``) its contacts release.

        A penalty with a misjudged normal (a point attributed to the wrong face at an edge) could
        otherwise pump energy into the modes; a correct contact never needs scaling.
        """
        a11, a12, a21, a22, b1, b2 = self.coefficients(dt)
        w2 = self.omega**2
        e_old = 0.5 * float(qdot @ qdot + w2 @ (q * q))
        work = float(np.maximum(force * -(normal @ velocity), 0.0).sum()) * dt
        stored = 0.5 * float(force @ force) / self.law.stiffness
        allowed = (1.0 + PASSIVITY_SLACK) * e_old + work + max(self.stored_energy - stored, 0.0) + 1e-6
        dq, dv = b1 * f, b2 * f
        # E(s) = e0 + s e1 + s^2 e2 with the state (q_free + s dq, v_free + s dv)
        e0 = 0.5 * float(v_free @ v_free + w2 @ (q_free * q_free))
        e1 = float(v_free @ dv + w2 @ (q_free * dq))
        e2 = 0.5 * float(dv @ dv + w2 @ (dq * dq))
        if e0 + e1 + e2 <= allowed or e2 <= 0:
            return 1.0
        disc = e1 * e1 - 4 * e2 * (e0 - allowed)
        if disc < 0:
            return 0.0
        return float(np.clip((-e1 + np.sqrt(disc)) / (2 * e2), 0.0, 1.0))

    def solve(self, q: np.ndarray, qdot: np.ndarray, points: np.ndarray, velocity: np.ndarray, dt: float
              ) -> ContactResult:
        """Contact over a substep ``dt`` from modal state (q, qdot) with the gripper ``points`` (P, 3) at their
        end-of-substep positions, moving with ``velocity`` (3,). Every point is tested: pass only those
        near the object (the env preselects them once per coarse substep)."""
        k = len(q)
        none = ContactResult(np.zeros(k), 0.0, 0.0, 0)
        self.stored_energy = 0.0  # set again below when there is contact
        if len(points) == 0:
            return none
        rest, idx, w = self.obj.pull_back(points, q, self.tree)
        dist, normal = self.obj.signed_distance(rest)
        cand = dist < CONTACT_MARGIN
        if not cand.any():
            return none
        dist, normal, idx, w = dist[cand], normal[cand], idx[cand], w[cand]
        G = np.einsum("cn,cndk,cd->ck", w, self.obj.basis[idx], normal)  # (C, k): normal displacement per mode
        a11, a12, a21, a22, b1, b2 = self.coefficients(dt)
        q_free, v_free = a11 * q + a12 * qdot, a21 * q + a22 * qdot
        kk, cc = self.law.stiffness, self.law.damping
        delta_free = -dist + G @ (q_free - q)  # penetration at the end of the substep without contact force
        rhs = kk * delta_free + cc * (G @ v_free - normal @ velocity)
        A = np.eye(len(G)) + (G * (kk * b1 + cc * b2)) @ G.T
        active = rhs > 0
        force = np.zeros(len(G))
        for _ in range(8):  # active set: contacts only push
            force[:] = 0.0
            if not active.any():
                break
            idx = np.flatnonzero(active)
            force[idx] = np.linalg.solve(A[np.ix_(idx, idx)], rhs[idx])
            if np.all(force[idx] >= 0):
                break
            active[idx[force[idx] < 0]] = False
        force = np.clip(force, 0.0, self.law.max_force)
        scale = self._passive_scale(q, qdot, q_free, v_free, -G.T @ force, force, normal, velocity, dt)
        force = force * scale
        f_modal = -G.T @ force
        self.stored_energy = 0.5 * float(force @ force) / self.law.stiffness
        penetration = delta_free + G @ (b1 * f_modal)
        return ContactResult(f_modal, float(max(penetration.max(), 0.0)), float(force.sum()), int((force > 0).sum()))
