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
solved with an active set (no contact pulls). So any stiffness is stable at any substep
and penetration is about ``force / (k * contacts)``, far below a millimetre for the default
stiffness unless a point hits the force cap.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.spatial import cKDTree

from physics.modal.dynamics import transition_coefficients

from .poke_object import ModalObject

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
        self._coef: tuple[float, tuple[np.ndarray, ...]] | None = None

    def coefficients(self, dt: float) -> tuple[np.ndarray, ...]:
        """The exact per-mode step coefficients for a substep ``dt`` (cached)."""
        if self._coef is None or self._coef[0] != dt:
            self._coef = (dt, transition_coefficients(self.omega, self.xi, dt))
        return self._coef[1]

    def solve(self, q: np.ndarray, qdot: np.ndarray, points: np.ndarray, velocity: np.ndarray, dt: float) -> ContactResult:
        """Contact over a substep ``dt`` from modal state (q, qdot) with the gripper ``points`` (P, 3) at their
        end-of-substep positions, moving with ``velocity`` (3,). Every point is tested: pass only those
        near the object (the env preselects them once per coarse substep)."""
        k = len(q)
        none = ContactResult(np.zeros(k), 0.0, 0.0, 0)
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
        f_modal = -G.T @ force
        penetration = delta_free + G @ (b1 * f_modal)
        return ContactResult(f_modal, float(max(penetration.max(), 0.0)), float(force.sum()), int((force > 0).sum()))
