"""Penalty contact between kinematic points (the gripper) and a vibrating modal object.

A point ``p`` of the gripper that lies inside the object's deformed surface by ``delta``
(measured in the rest frame, see :mod:`physics.modal.contact_object`) pushes the surface along the
inward normal with ``F = k delta + c d(delta)/dt >= 0``, capped at ``max_force``. The force
acts at the point's rest position (the mode basis there from its pull-back) along the
deformed normal ``n_c = F^-T n`` (the gradient of ``delta`` with respect to the world point,
so the penalty is the gradient of ``k delta^2 / 2``: a rest-frame normal on a rotated face
would not be, and pumps energy into the modes) and enters the modes as
``f_modal = -sum_c F_c g_c`` with ``g_c = basis_c^T n_c``.

The force is held constant over a substep and the modes advance exactly under it
(:func:`physics.modal.dynamics.transition_coefficients`: ``q' = q_free + b1 f``,
``qdot' = qdot_free + b2 f``). The penalty is evaluated at the *end* of the substep
(backward Euler in the contact only), which makes it a small linear system in the contact
forces, ``(I + G diag(k b1 + c b2) G^T) F = k (delta_0 + G (q_free - q)) + c (G qdot_free - N v)``,
solved with an active set (`complementary_forces`: no contact pulls, none is left
penetrating without force). Where the step would leave more energy in the
modes than they had plus the hand's work and the penalty energy the contacts release, the
modal velocities after it are scaled down to that bound (passivity: a penalty whose
linearisation misjudges the surface, at an edge or under a pressing finger on a rotating
face, cannot pump energy in; the forces themselves are never reduced, so penetration does
not grow). So any stiffness is stable at any substep and penetration is about
``force / (k * contacts)``, far below a millimetre for the default stiffness unless a point
hits the force cap.

Most gripper points near the object are not touching it. `ContactTracker` keeps, per point,
the distance it was last measured at and bounds the relative motion of hand and surface
since (`MotionBound`), and only points that may have come within ``CONTACT_MARGIN`` are
solved for; the forces are the same as testing every point. `PullBackMemory` keeps each
point's last pull-back, which starts the next one (usually no sample lookup at all).
Pull-backs and their measurements run as one Warp kernel over the tested points
(`physics.modal.pullback`).

`ContactScheduler` runs a kinematic hand against the object over a period: it plans the
substeps (fine where hand and surface may meet), solves the due points' contacts, advances
the modes and stalls a hand that presses too hard.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
from scipy.spatial import cKDTree

from .contact_object import ModalObject
from .dynamics import ModalDynamics
from .pullback import PullBack

PASSIVITY_TOLERANCE = 1e-9  # J: energy gain per substep taken as rounding
CONTACT_MARGIN = 0.002  # points this far outside the surface take part in the solve (they may be hit)
EXPANSION_REACH = 0.0015  # a pull-back keeps its surface sample while within this distance of where it was found (m)
GATE_FACTOR = 0.8  # world motion that closes a rest-frame distance d is taken as >= GATE_FACTOR * d (strain, rotation)
GATE_SLACK = 2e-4  # and the pull-back's error as at most this (m): its first-order expansion errs by micrometres
MAX_TRAVEL = 0.002  # relative motion of hand and surface per substep near contact (m); < half the thinnest wall
MAX_SUBSTEPS = 20  # fine substeps per coarse substep
RESPLIT = 1.25  # a contact that speeds the surface up past this many MAX_TRAVEL per fine substep splits the rest finer
STALL_SUBSTEPS = 3  # the hand stalls after pressing harder than max_hand_force in this many substeps of a period
STALL_DEPTH = 0.001  # or at once where it would leave a point deeper than this (m): at the force cap, on a stiff face


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
    """A substep's contact: modal force (k,), max penetration (m; after the step, or as measured before it where
    that is less), total force (N), contacts,
    every tested point's rest-frame signed distance (P,) before the substep's motion of the object
    and its pull-back, and the factor on the modal velocities after the substep (passivity)."""

    modal_force: np.ndarray
    max_penetration: float
    total_force: float
    num_contacts: int
    distance: np.ndarray
    pull_back: PullBack
    velocity_factor: float


class MotionBound(NamedTuple):
    """How far hand and surface can move relative to each other in a time ``t`` while no contact force acts.

    A surface point moves by ``v t`` with its velocity now plus what each mode's velocity change
    adds: ``|q_k(t) - q_k(0) - qdot_k(0) t|`` is at most ``A_k omega_k t^2 / 2`` (the mode's
    acceleration never exceeds ``A_k omega_k``) and at most ``2 A_k / omega_k + |qdot_k| t`` (its
    coordinate stays within ``+-A_k / omega_k`` of its centre), with ``A_k = sqrt(qdot_k^2 +
    omega_k^2 q_k^2)``, which damping never grows. So the bound is ``(hand_speed + surface_speed)
    t + sum_k reach_k min(A_k omega_k t^2 / 2, 2 A_k / omega_k + |qdot_k| t)``, ``reach_k`` the
    largest displacement of a surface sample per unit mode, or, if smaller, ``hand_speed t +
    sum_k reach_k min(A_k t, 2 A_k / omega_k)`` (every mode at its largest speed, fast ones only
    by their small swing): tight over the short times between checks, where the sum of every
    mode's largest speed alone would be several times too large."""

    hand_speed: float
    surface_speed: float
    curve: np.ndarray  # reach_k A_k omega_k / 2
    swing: np.ndarray  # 2 reach_k A_k / omega_k
    drift: np.ndarray  # reach_k |qdot_k|
    speed: np.ndarray  # reach_k A_k

    def __call__(self, t: np.ndarray) -> np.ndarray:
        """The bound (m) for times ``t`` (P,) (s)."""
        t = np.asarray(t, dtype=float)
        change = np.minimum(np.multiply.outer(t * t, self.curve), self.swing + np.multiply.outer(t, self.drift))
        # each mode alone: |dq_k| <= min(A t, swing)
        per_mode = np.minimum(np.multiply.outer(t, self.speed), self.swing)
        return self.hand_speed * t + np.minimum(self.surface_speed * t + change.sum(-1), per_mode.sum(-1))


class PullBackMemory:
    """Every gripper contact point's last pull-back, kept across coarse substeps: the surface sample it was
    expanded about (-1: none yet), where that sample was looked up, and the object's displacement
    there (``p - u`` starts the next pull-back; zero without one); `ModalObject.probe` keeps the
    sample while the point stays near it, so a point in contact needs no lookup from substep to
    substep."""

    def __init__(self, n: int):
        self.nearest, self.looked_up, self.displacement = np.full(n, -1), np.full((n, 3), np.inf), np.zeros((n, 3))

    def forget(self) -> None:
        """Drop every point's pull-back (a new episode or a restored state)."""
        self.nearest[:], self.looked_up[:], self.displacement[:] = -1, np.inf, 0.0

    def snapshot(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Copies of the arrays (for `restore`)."""
        return self.nearest.copy(), self.looked_up.copy(), self.displacement.copy()

    def restore(self, snapshot: tuple[np.ndarray, np.ndarray, np.ndarray]) -> None:
        """Set the arrays from a `snapshot`."""
        self.nearest[:], self.looked_up[:], self.displacement[:] = snapshot


class ContactTracker:
    """The gripper contact points ``near`` the object over a coarse substep of ``steps`` fine substeps of
    ``dt`` seconds: which may have come within ``CONTACT_MARGIN`` since their distance was last
    measured (see the module docstring); their pull-backs are kept in ``memory``.

    A point measured at distance ``d`` at substep ``i`` is not due while the `MotionBound` of
    the time since stays below ``GATE_FACTOR * (d - CONTACT_MARGIN) - slack`` (the bound is
    tabulated once per substep count); unmeasured points are due at once. A contact force
    changes the modes' amplitudes: `rebound` then spends what the old bound allowed so far and
    goes on with the new one.
    """

    def __init__(self, near: np.ndarray, memory: PullBackMemory, bound: MotionBound, dt: float, steps: int,
                 slack: float):
        n = len(near)
        self.near, self.memory = np.asarray(near), memory  # the gripper contact points tracked
        self.clear = np.full(n, -np.inf)
        self.since = np.zeros(n, dtype=np.int64)  # the substep each clearance was measured at
        self.dt, self.steps, self.step, self.slack = float(dt), int(steps), 0, float(slack)
        self._moved = self._table(bound)  # the bound after 0 .. steps substeps

    def advance(self) -> None:
        """Let a substep pass."""
        self.step += 1

    def due(self) -> np.ndarray:
        """Indices (into ``near``) of the points that may now be within the contact margin."""
        return np.flatnonzero(self._moved[self.step - self.since] >= self.clear)

    def may_touch(self) -> bool:
        """Whether any point may come within the contact margin before the coarse substep ends (as bounded now)."""
        return bool(np.any(self._moved[self.steps - self.since] >= self.clear))

    def rebound(self, bound: MotionBound) -> None:
        """Go on with ``bound`` from now (after a contact force), keeping what the old one left of each clearance."""
        self.clear = self.clear - self._moved[self.step - self.since]
        self.since[:] = self.step
        self._moved = self._table(bound)  # the bound after 0 .. steps substeps

    def _table(self, bound: MotionBound) -> np.ndarray:
        """The bound after 0 .. steps substeps."""
        return bound(np.arange(self.steps + 1) * self.dt)

    def start(self, idx: np.ndarray, points: np.ndarray) -> PullBack:
        """The start of the pull-back of points ``idx`` now at ``points`` (P, 3): rest guesses ``p - u``."""
        m, ids = self.memory, self.near[idx]
        return PullBack(points - m.displacement[ids], m.nearest[ids], m.looked_up[ids], np.empty((len(idx), 3, 3)))

    def measured(self, idx: np.ndarray, points: np.ndarray, distance: np.ndarray, back: PullBack, since: int) -> None:
        """Points ``idx`` at ``points`` measured at rest-frame ``distance`` through the pull-back ``back`` with the
        object as it was at substep ``since``."""
        self.clear[idx] = GATE_FACTOR * (distance - CONTACT_MARGIN) - self.slack
        self.since[idx] = since
        m, ids = self.memory, self.near[idx]
        m.displacement[ids], m.nearest[ids], m.looked_up[ids] = points - back.rest, back.nearest, back.looked_up


def complementary_forces(A: np.ndarray, rhs: np.ndarray, max_iterations: int = 20) -> np.ndarray:
    """Contact forces ``F >= 0`` with ``F_i = max(0, rhs_i - ((A - I) F)_i)`` (the penalty of every contact at
    the end of the substep; ``A = I + M`` with ``M`` positive semi-definite): an active set that
    drops pulling contacts and adds contacts left penetrating, until neither is left."""
    active = rhs > 0
    force = np.zeros(len(rhs))
    for _ in range(max_iterations):
        force[:] = 0.0
        idx = np.flatnonzero(active)
        if len(idx):
            force[idx] = np.linalg.solve(A[np.ix_(idx, idx)], rhs[idx])
        pulling = active & (force < 0)
        if pulling.any():
            active[pulling] = False
            continue
        left = ~active & (rhs - A @ force > 1e-12 * np.abs(rhs).max())  # (A F)_i = (M F)_i where F_i = 0
        if not left.any():
            break
        active[left] = True
    return np.maximum(force, 0.0)


class ModalContactSolver:
    """Contact forces of kinematic points on ``obj`` whose modes advance by ``dynamics`` (see the module
    docstring); ``max_points``: how many points it may test at once (its arrays grow past it)."""

    def __init__(self, obj: ModalObject, dynamics: ModalDynamics, law: PenaltyContact, max_points: int = 64):
        self.obj, self.law = obj, law
        obj.prober.reserve(max_points)  # the sample table is built now, not in the first step that touches
        self.omega = dynamics.omega
        self.coefficients = dynamics.coefficients  # the exact per-mode step coefficients of a substep dt
        self.stored_energy = 0.0  # penalty energy sum F^2 / 2k held by the last substep's contacts
        self._speed_basis = np.ascontiguousarray(obj.basis[::4].reshape(-1, len(self.omega)))  # every 4th sample's

    def _passive_damping(self, q, qdot, f, force, normal, velocity, dt) -> float:
        """The factor in [0, 1] on the modal velocities after a substep under the modal force ``f`` that keeps
        the object's energy within its old energy plus the hand's work on it plus the penalty
        energy (``sum F^2 / 2k``) its contacts release (1 when it already is).

        A correct contact never needs it (the implicit penalty dissipates); a penalty whose
        linearisation misjudges the surface (a point attributed to the wrong face at an edge, a
        rotating face under a pressing finger) could otherwise pump energy into the modes.
        """
        a11, a12, a21, a22, b1, b2 = self.coefficients(dt)
        w2 = self.omega**2
        e_old = 0.5 * float(qdot @ qdot + w2 @ (q * q))
        work = float(np.maximum(force * -(normal @ velocity), 0.0).sum()) * dt
        stored = 0.5 * float(force @ force) / self.law.stiffness
        allowed = e_old + work + max(self.stored_energy - stored, 0.0) + PASSIVITY_TOLERANCE
        q_new, v_new = a11 * q + a12 * qdot + b1 * f, a21 * q + a22 * qdot + b2 * f
        potential, kinetic = 0.5 * float(w2 @ (q_new * q_new)), 0.5 * float(v_new @ v_new)
        if potential + kinetic <= allowed or kinetic <= 0:
            return 1.0
        return float(np.sqrt(max(allowed - potential, 0.0) / kinetic))

    def solve(self, q: np.ndarray, qdot: np.ndarray, points: np.ndarray, velocity: np.ndarray, dt: float,
              start: PullBack | None = None) -> ContactResult:
        """Contact over a substep ``dt`` from modal state (q, qdot) with the gripper ``points`` (P, 3) at their
        end-of-substep positions, moving with ``velocity`` (3,); ``start``: where their pull-backs
        start (`ModalObject.probe`). Every point is tested: pass only those that may be near
        the object (`ContactTracker`)."""
        k = len(q)
        self.stored_energy = 0.0  # set again below when there is contact
        probe = self.obj.probe(points, q, start, EXPANSION_REACH, CONTACT_MARGIN)
        cand = probe.distance < CONTACT_MARGIN
        if not cand.any():
            return ContactResult(np.zeros(k), 0.0, 0.0, 0, probe.distance, probe.back, 1.0)
        dist, normal, G = probe.distance[cand], probe.normal[cand], probe.modal_normal[cand]
        a11, a12, a21, a22, b1, b2 = self.coefficients(dt)
        q_free, v_free = a11 * q + a12 * qdot, a21 * q + a22 * qdot
        kk, cc = self.law.stiffness, self.law.damping
        delta_free = -dist + G @ (q_free - q)  # penetration at the end of the substep without contact force
        rhs = kk * delta_free + cc * (G @ v_free - normal @ velocity)
        A = np.eye(len(G)) + (G * (kk * b1 + cc * b2)) @ G.T
        force = complementary_forces(A, rhs)
        force = np.clip(force, 0.0, self.law.max_force)
        f_modal = -G.T @ force
        damping = self._passive_damping(q, qdot, f_modal, force, normal, velocity, dt)
        self.stored_energy = 0.5 * float(force @ force) / self.law.stiffness
        # the depth after the substep by the linearised step, where it is below the depth measured now: at the force
        # cap (a hand pressing a stiff edge) the linearisation can predict centimetres the geometry rules out, and a
        # point that does go deeper is measured so at the next substep
        penetration = np.minimum(delta_free + G @ (b1 * f_modal), -dist)
        return ContactResult(f_modal, float(max(penetration.max(), 0.0)), float(force.sum()), int((force > 0).sum()),
                             probe.distance, probe.back, damping)

    def motion_bound(self, q: np.ndarray, qdot: np.ndarray, hand_speed: float) -> MotionBound:
        """The `MotionBound` of the modal state (q, qdot) and a hand moving at ``hand_speed`` (m/s); the
        surface speed now is the fastest of every 4th contact sample's (x 1.05 for the points
        between samples, which move nearly alike at their 1 mm spacing)."""
        amplitude = np.sqrt(qdot * qdot + self.omega**2 * q * q)
        reach = self.obj.mode_reach
        velocity = (self._speed_basis @ qdot).reshape(-1, 3)
        now = np.sqrt(np.einsum("si,si->s", velocity, velocity).max())
        return MotionBound(float(hand_speed), 1.05 * float(now), 0.5 * reach * amplitude * self.omega,
                           2.0 * reach * amplitude / self.omega, reach * np.abs(qdot), reach * amplitude)


class HandStep(NamedTuple):
    """A period of `ContactScheduler.advance`: where the hand ends (3,), the deepest penetration (m) over its
    substeps and the total contact force (N) of its last substep."""

    tcp: np.ndarray
    max_penetration: float
    force: float


@dataclass
class _Period:
    """A period so far: the hand's position and velocity (zero once it stalls), the substeps pressing harder
    than ``max_hand_force``, the deepest penetration (m) and the last substep's total force (N)."""

    tcp: np.ndarray
    velocity: np.ndarray
    pressing: int
    max_penetration: float = 0.0
    force: float = 0.0


class ContactScheduler:
    """Moves a kinematic hand against a modal object over a period in contact substeps (the env supplies the
    hand's velocity; this class plans the substeps, solves the contacts and advances the modes).

    The hand is the points ``offsets`` (P, 3) about its reference point ``tcp``; it moves at a
    constant velocity and is never pushed back. A period is cut into coarse substeps; each is
    split where a point may reach the surface, so that hand and surface move at most
    ``MAX_TRAVEL`` relative to each other per fine substep (a point entering the object is caught
    within its first 2 mm, where its nearest face is the face it crossed), in at most
    ``MAX_SUBSTEPS``; a contact force that speeds the surface up past ``RESPLIT`` times that
    plans the rest of the coarse substep again, finer. Only the points a `ContactTracker` finds
    due are solved (``solver``); ``memory`` keeps their pull-backs across periods, and a point's
    first pull-back starts from the displacement of the nearest deformed sample of ``guide``
    (default ``solver.obj``: any sampling of the same modes), so that a strongly bent object's
    pull-back finds the preimage where the surface is.

    The hand stalls (stops for the rest of the period) where the object resists it with more than
    ``max_hand_force`` (N) in total in ``STALL_SUBSTEPS`` substeps of a period, or at once where it
    would leave a point more than ``STALL_DEPTH`` deep (the penalty at its force cap cannot hold
    it: a stiff face); it stays stalled into the next period while it still presses that hard.
    """

    def __init__(self, solver: ModalContactSolver, dynamics: ModalDynamics, offsets: np.ndarray,
                 max_hand_force: float, guide: ModalObject | None = None):
        self.solver, self.dynamics, self.offsets = solver, dynamics, offsets
        self.max_hand_force = float(max_hand_force)
        self.guide = solver.obj if guide is None else guide
        self.memory = PullBackMemory(len(offsets))

    def advance(self, tcp: np.ndarray, velocity: np.ndarray, duration: float, substeps: int,
                last_force: float = 0.0) -> HandStep:
        """Move the hand from ``tcp`` at ``velocity`` (3,) for ``duration`` seconds in ``substeps`` coarse
        substeps, advancing the modes of ``dynamics`` under its contact; ``last_force``: the total
        force (N) at the end of the previous period (a hand still pressing harder than
        ``max_hand_force`` stays stalled)."""
        coarse = duration / substeps
        period = _Period(tcp, velocity, STALL_SUBSTEPS - 1 if last_force > self.max_hand_force else 0)
        for _ in range(substeps):
            left = coarse
            while left > 0.0:
                left = self._advance(period, left, coarse / MAX_SUBSTEPS)
        return HandStep(period.tcp, period.max_penetration, period.force)

    def _advance(self, s: _Period, period: float, min_dt: float) -> float:
        """Advance hand, contact and modes by ``period`` seconds (or less) in fine substeps of at least ``min_dt``;
        returns the time left: a contact force that makes the surface move more than ``RESPLIT`` times
        ``MAX_TRAVEL`` per substep ends the plan early."""
        dyn, offsets = self.dynamics, self.offsets
        fine, gate = self._fine_substeps(s, period, min_dt)
        if gate is None:
            s.tcp = s.tcp + s.velocity * period
            dyn.step(period)
            s.force = 0.0
            return 0.0
        dt, left = period / fine, 0.0
        free = 0.0  # time the modes still have to advance without contact
        for i in range(fine):
            since = gate.step
            gate.advance()
            due = gate.due()
            move = s.velocity * dt
            if len(due) == 0:  # no point can be within the contact margin
                s.tcp, free, s.force = s.tcp + move, free + dt, 0.0
                continue
            if free:
                dyn.step(free)
                free = 0.0
            points = offsets[gate.near[due]] + s.tcp + move
            res = self.solver.solve(dyn.q, dyn.qdot, points, s.velocity, dt, gate.start(due, points))
            s.pressing += res.total_force > self.max_hand_force
            stall = s.pressing >= STALL_SUBSTEPS or res.max_penetration > STALL_DEPTH
            if stall and np.any(move != 0):  # the hand stalls for this period
                s.velocity, points, move = np.zeros(3), points - move, np.zeros(3)
                res = self.solver.solve(dyn.q, dyn.qdot, points, s.velocity, dt, gate.start(due, points))
            gate.measured(due, points, res.distance, res.pull_back, since)
            s.tcp = s.tcp + move
            dyn.step(dt, res.modal_force)
            if res.velocity_factor < 1.0:
                dyn.qdot = dyn.qdot * res.velocity_factor
            s.max_penetration, s.force = max(s.max_penetration, res.max_penetration), res.total_force
            if res.num_contacts:
                bound = self.solver.motion_bound(dyn.q, dyn.qdot, float(np.linalg.norm(s.velocity)))
                speed = bound.hand_speed + bound.surface_speed
                if i < fine - 1 and dt > min_dt and speed * dt > RESPLIT * MAX_TRAVEL:
                    left = (fine - 1 - i) * dt  # the force sped the surface up: plan the rest again, finer
                    break
                gate.rebound(bound)
        if free:
            dyn.step(free)
        return left

    def _fine_substeps(self, s: _Period, dt: float, min_dt: float) -> tuple[int, ContactTracker | None]:
        """How many substeps (of at least ``min_dt``) a period ``dt`` needs, and a `ContactTracker` of the hand's
        points that may touch the object in it, each measured now (None: none may)."""
        dyn, offsets = self.dynamics, self.offsets
        bound = self.solver.motion_bound(dyn.q, dyn.qdot, float(np.linalg.norm(s.velocity)))
        travel = (bound.hand_speed + bound.surface_speed) * dt
        # the deformed object lies within its rest bounds grown by the largest displacement; points further from
        # that box than the whole period's motion (and the margin, stretched) cannot come near it
        obj = self.solver.obj
        reach = obj.displacement_bound(dyn.q) + (float(bound(np.array([dt]))[0]) + CONTACT_MARGIN) / GATE_FACTOR
        points = offsets + s.tcp
        near = np.flatnonzero(np.all((points >= obj.bounds[0] - reach) & (points <= obj.bounds[1] + reach), axis=1))
        if len(near) == 0:
            return 1, None
        fresh = near[self.memory.nearest[near] < 0]
        if len(fresh):  # no pull-back yet: start from the displacement of the nearest deformed sample
            disp = self.guide.displacements(dyn.q)
            self.memory.displacement[fresh] = disp[cKDTree(self.guide.surface + disp).query(points[fresh])[1]]
        fine = int(min(max(1, np.ceil(travel / MAX_TRAVEL)), max(1, np.floor(dt / min_dt * (1 + 1e-9)))))
        gate = ContactTracker(near, self.memory, bound, dt / fine, fine, GATE_SLACK)
        every = np.arange(len(near))
        probe = obj.probe(points[near], dyn.q, gate.start(every, points[near]), EXPANSION_REACH, CONTACT_MARGIN)
        gate.measured(every, points[near], probe.distance, probe.back, 0)
        return (fine, gate) if gate.may_touch() else (1, None)
