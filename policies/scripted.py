"""Scripted pushing policies for PushT4D and Push4D: random exploratory pushes and a goal-directed heuristic.

Both work by *push primitives*: pick a contact point on the object's outline and a push
direction, travel to a point ``standoff`` behind the contact while going around the object
(never through it), then push through the contact for a given length. Targets are
emitted one per control step, spaced at most ``step`` metres apart, as absolute fingertip
xy actions (converted to steps for ``action_mode="delta"``).

The object is any footprint: its contact candidates, centre of mass, limit surface and the travel
around it come from `policies.footprint` (`object_geometry`: ``info["object_footprint"]`` and
``info["object_com"]`` of Push4D-v0, cached per footprint; PushT4D-v0's T when ``info`` has none),
its pose from ``obs["object_pose"]`` (Push4D) or ``obs["block_pose"]`` (PushT4D).

- `RandomPushPolicy`: contact points uniform on the outline (those the hand can reach), directions
  within +-30 deg of the inward normal, lengths U(0.03, 0.12) m: the data Dream2Flow-style dynamics
  models learn from.
- `HeuristicPushPolicy`: scores every candidate push with a quasi-static model (the object
  translates along the push and turns by (r x u) / c^2, c its limit surface's radius) and
  takes the one that most reduces a pose error to the goal (the env's ``info["goal_pose"]``).
"""

from __future__ import annotations

from collections import deque

import numpy as np

from envs.base import MAX_DELTA
from envs.pusht import geometry as geo

from .footprint import (  # noqa: F401 - the pushers' geometry constants, as this module has always offered them
    APPROACH_CLEARANCE,
    APPROACH_FINAL,
    BLOCK_CLEARANCE,
    OUTLINE_SPACING,
    REACH,
    STRAIGHT_MARGIN,
    PushGeometry,
    object_geometry,
    object_pose,
    pusht_geometry,
    segment,
    to_world,
)
from .hand import HandLayer, grow_by_hand, hand_layers, object_points_local

STEP = 0.04  # default spacing of the pushers' targets (m per control step)
SHORT_PUSH_STEPS = 4  # control steps a push takes at least (short pushes go slowly) ...
MIN_PUSH_STEP = 0.004  # m per control step: ... but its targets are never closer than this


def outline_candidates(spacing: float = OUTLINE_SPACING) -> tuple[np.ndarray, np.ndarray]:
    """Points on the T outline (block frame, (M, 2)) and their outward unit normals (`PushGeometry.outline`)."""
    g = pusht_geometry() if spacing == OUTLINE_SPACING else PushGeometry.build(geo.footprint(), geo.COM_LOCAL, spacing)
    return g.outline.copy(), g.normals.copy()


def limit_surface_radius() -> float:
    """The T's limit surface radius (`PushGeometry.radius`)."""
    return pusht_geometry().radius


def around_block(start: np.ndarray, goal: np.ndarray, pose: np.ndarray, step: float,
                 geometry: PushGeometry | None = None) -> list[np.ndarray]:
    """Waypoints from ``start`` to ``goal`` around the object (default: the T) at ``pose`` (`PushGeometry.around`)."""
    return (geometry or pusht_geometry()).around(start, goal, pose, step)


def travel(pose: np.ndarray, ee: np.ndarray, pre: np.ndarray, step: float,
           geometry: PushGeometry | None = None) -> list[np.ndarray]:
    """Targets (at most ``step`` apart) from ``ee`` to ``pre`` around the object (default: the T) at ``pose``,
    inside the workspace (`PushGeometry.travel`)."""
    return (geometry or pusht_geometry()).travel(pose, ee, pre, step)


def push_through(contact: np.ndarray, u: np.ndarray, length: float, standoff: float,
                 step: float) -> tuple[np.ndarray, list[np.ndarray]]:
    """The pre-push point ``standoff`` behind world point ``contact`` and the targets of a push along
    unit ``u`` for ``length`` metres past it (short pushes go slowly: the object slides on after a
    fast pusher stops)."""
    pre = contact - u * standoff
    end = np.clip(contact + u * length, -REACH, REACH)
    return pre, segment(pre, end, float(np.clip(length / SHORT_PUSH_STEPS, MIN_PUSH_STEP, step)))


class PushPolicy:
    """Base of the scripted pushers: turns chosen pushes into per-step fingertip targets.

    ``geometry`` (`policies.footprint.PushGeometry`) is the current object's, taken from the ``info`` that
    `act` receives (`observe`), and ``hand`` the layers of the gripper's part that can touch it (Push4D
    point-cloud observations: `policies.hand.hand_layers`; None, a point, otherwise or with ``use_hand=False``).
    A push is planned on `contact_geometry` (the geometry grown by the hand at the object's yaw); ``outline``
    and ``normals`` are its contact candidates (those of the last pose planned at).
    """

    # what ``act`` reads (the env must give it); a tuple inside names alternatives, one of which is enough
    REQUIRED_KEYS = {"obs": ("agent_pos", ("block_pose", "object_pose")), "info": ()}

    def __init__(self, rng: np.random.Generator, step: float = STEP, standoff: float = 0.03,
                 action_mode: str = "absolute", use_hand: bool = True):
        if action_mode not in ("absolute", "delta"):
            raise ValueError(f"action_mode must be 'absolute' or 'delta', got {action_mode!r}")
        self.rng = rng
        self.step = step
        self.standoff = standoff
        self.action_mode = action_mode
        self.use_hand = bool(use_hand)
        self.geometry: PushGeometry = pusht_geometry()
        self.hand: tuple[HandLayer, ...] | None = None
        self._points: np.ndarray | None = None  # the object's surface points (object frame)
        self._contact: tuple[tuple, PushGeometry] | None = None
        self._queue: deque[np.ndarray] = deque()

    @property
    def outline(self) -> np.ndarray:
        """Contact candidates (M, 2, object frame): the fingertip centre's position when the hand touches."""
        return self._last_contact().outline

    @property
    def normals(self) -> np.ndarray:
        """Their outward unit normals (M, 2): the contact normals."""
        return self._last_contact().normals

    def _last_contact(self) -> PushGeometry:
        return self._contact[1] if self.hand is not None and self._contact is not None else self.geometry

    def contact_geometry(self, pose: np.ndarray) -> PushGeometry:
        """The geometry pushes at ``pose`` are planned on: ``geometry`` grown by ``hand`` at the pose's yaw
        (`policies.hand.grow_by_hand`; the object's own for a point hand); the last one is kept."""
        if self.hand is None:
            return self.geometry
        key = (id(self.geometry), tuple((h.z_lo, h.z_hi, h.outline.tobytes()) for h in self.hand), float(pose[2]))
        if self._contact is None or self._contact[0] != key:
            self._contact = (key, grow_by_hand(self.geometry, self.hand, float(pose[2]), self._points))
        return self._contact[1]

    def reset(self, rng: np.random.Generator | None = None) -> None:
        """Forget the current push (and optionally reseed)."""
        self._queue.clear()
        if rng is not None:
            self.rng = rng

    def observe(self, info: dict | None, obs: dict | None = None) -> None:
        """Take the current object's geometry from the env's ``info`` (the T without ``object_footprint``) and,
        when planning, the hand's outline from ``obs``."""
        self.geometry = object_geometry(info)
        if obs is not None:
            self.hand = hand_layers(obs, info) if self.use_hand else None
            self._points = object_points_local(info) if self.hand is not None else None

    def choose_push(self, pose: np.ndarray, ee: np.ndarray) -> tuple[int, np.ndarray, float]:
        """(outline index, world push direction, push length) of the next push."""
        raise NotImplementedError

    def push_path(self, pose: np.ndarray, i: int, u: np.ndarray, length: float,
                  front: float = 0.0) -> tuple[np.ndarray, list[np.ndarray]]:
        """The pre-push point (``standoff`` behind outline contact ``i`` of the object at ``pose``) and the
        push's targets along world direction ``u`` for ``length`` metres past the contact; with ``front`` > 0
        (how far the hand reaches ahead of its fingertip centre along ``u``) the path is moved back by it,
        so that the hand's front rather than its centre goes ``length`` past the contact."""
        contact = to_world(pose, self.contact_geometry(pose).outline[i : i + 1])[0] - u * front
        return push_through(contact, u, length, self.standoff, self.step)

    def clear_approach(self, pose: np.ndarray, idx: np.ndarray, u: np.ndarray) -> np.ndarray:
        """Whether pushes at outline points ``idx`` along world directions ``u`` (K, 2) can be approached
        (`PushGeometry.clear_approach` with this policy's ``standoff``)."""
        return self.contact_geometry(pose).clear_approach(pose, idx, u, self.standoff)

    def plan(self, pose: np.ndarray, ee: np.ndarray) -> None:
        """Queue the targets of one push primitive."""
        i, u, length = self.choose_push(pose, ee)
        pre, push = self.push_path(pose, i, u, length)
        self._queue.extend(self.contact_geometry(pose).travel(pose, ee, pre, self.step))
        self._queue.extend(push)

    def act(self, obs: dict, info: dict | None = None) -> np.ndarray:
        """The next action for observation ``obs`` (``agent_pos`` and ``object_pose`` or ``block_pose``) and the
        env's ``info`` (the object's geometry; PushT4D's T without it)."""
        ee = np.asarray(obs["agent_pos"], dtype=float)
        self.observe(info, obs if not self._queue else None)
        if not self._queue:
            self.plan(object_pose(obs), ee)
        target = self._queue.popleft()
        if self.action_mode == "delta":
            return np.clip(target - ee, -MAX_DELTA, MAX_DELTA).astype(np.float32)
        return target.astype(np.float32)


class RandomPushPolicy(PushPolicy):
    """Random pushes starting at the object: exploration data for point-flow dynamics models."""

    def __init__(self, rng: np.random.Generator, max_angle_deg: float = 30.0, length_range=(0.03, 0.12), **kw):
        super().__init__(rng, **kw)
        self.max_angle = np.radians(max_angle_deg)
        self.length_range = length_range

    def choose_push(self, pose: np.ndarray, ee: np.ndarray) -> tuple[int, np.ndarray, float]:
        """A uniformly random contact (of those the hand can reach), direction and length."""
        g = self.contact_geometry(pose)
        ids = np.flatnonzero(g.reachable(pose, ee))
        i = int(ids[self.rng.integers(len(ids))])
        a = self.rng.uniform(-self.max_angle, self.max_angle)
        u = push_direction(pose, g.normals[i : i + 1], np.array([a]))[0]
        return i, u, float(self.rng.uniform(*self.length_range))


def push_direction(pose: np.ndarray, normals: np.ndarray, ang: np.ndarray) -> np.ndarray:
    """World push directions (K, 2): the inward normals (object frame, (K, 2)) turned by ``ang`` (K,)."""
    n = normals @ geo.rot_z(pose[2])[:2, :2].T
    c, s = np.cos(ang), np.sin(ang)
    return -np.stack([c * n[:, 0] - s * n[:, 1], s * n[:, 0] + c * n[:, 1]], 1)


def pushed_twist(r: np.ndarray, u: np.ndarray, c: float) -> np.ndarray:
    """Quasi-static body twists (M, 3) = (vx, vy, omega) per metre of pusher travel along ``u`` (M, 2)
    at contact offsets ``r`` (M, 2) from the centre of mass, for sticking contact and an
    ellipsoidal limit surface: V = A J^T (J A J^T)^-1 u with A = diag(1, 1, 1/c^2)."""
    M = len(r)
    J = np.zeros((M, 2, 3))
    J[:, 0, 0] = J[:, 1, 1] = 1.0
    J[:, 0, 2], J[:, 1, 2] = -r[:, 1], r[:, 0]
    A = np.diag([1.0, 1.0, 1.0 / c**2])
    JA = J @ A
    f = np.linalg.solve(JA @ np.transpose(J, (0, 2, 1)), u[:, :, None])
    return (np.transpose(JA, (0, 2, 1)) @ f)[:, :, 0]


HEURISTIC_ANGLES_DEG = (-20.0, 0.0, 20.0)  # deg: push directions tried off each contact's inward normal
FALLBACK_PUSH_LENGTH = 0.02  # m: the push straight through the centre of mass when no push sticks
SHORTEST_PUSH = 0.002  # m: the shortest push length tried
LONGEST_PUSH_PER_ERROR = 2  # pushes are at most this many times the current rms point error long ...
LONGEST_PUSH_FLOOR = 0.005  # m: ... but may always be this long
PUSH_LENGTHS = 10  # push lengths tried, geometrically spaced
TRAVEL_COST = 1e-4  # m^2 of predicted footprint error per m from the hand to the pre-push point
TIE_BREAK_NOISE = 1e-9  # m^2: scale of the uniform noise that breaks ties between equal costs
STUCK_FRACTION = 0.25  # a push that moved the object less than this fraction of the predicted motion was stuck ...
STUCK_MIN_MOTION = 0.003  # m: ... (of pushes predicted to move it at least this much)
TABU_RADIUS = 0.02  # m: contacts this close to a stuck push's (object frame) are avoided ...
TABU_PLANS = 4  # ... for this many plans
TIP_ABORT = np.radians(5.0)  # rad: a push that tilts the object this much beyond its resting tilt is abandoned


def tilt_of(pose7: np.ndarray) -> float:
    """The angle (rad) between an object's z axis and the world's up, from its pose (x, y, z, qw, qx, qy, qz)."""
    q = np.asarray(pose7, dtype=float)[3:]
    q = q / np.linalg.norm(q)
    return float(np.arccos(np.clip(1.0 - 2.0 * (q[1] ** 2 + q[2] ** 2), -1.0, 1.0)))


class HeuristicPushPolicy(PushPolicy):
    """Goal-directed pushes chosen by a quasi-static model of their effect on the object's pose.

    For every outline contact (pushing along the inward normal, and +-20 deg off it) and a
    range of push lengths, the object's motion is predicted from `pushed_twist` with its own centre of
    mass and limit surface; pushes whose force would leave the friction cone, whose approach would touch
    the object or whose contact the hand cannot reach are skipped, and so, with ``avoid_stuck`` (None: for
    Push4D observations, not for PushT4D's recorded behaviour), for a few plans are pushes near the contact of
    a push that moved the object far less than predicted (`_review`) or tipped it (`act`). The push that
    minimises the mean squared distance of the footprint's probe points to their goal positions is taken
    (``explore_top_k`` > 1: one of that many best, uniformly, for data that covers what a planner proposes).
    The goal is ``goal`` when given, else the env's ``info["goal_pose"]`` (PushT4D's goal without it); a
    footprint with rotational symmetry aims at whichever of the goal's symmetric twins is nearest, and one
    whose yaw hardly matters (a disk, a ring) only brings its centroid to the goal's.
    """

    def __init__(self, rng: np.random.Generator, goal=None, max_length: float = 0.06,
                 friction: float = 0.5, explore_top_k: int = 1, avoid_stuck: bool | None = None, **kw):
        super().__init__(rng, **kw)
        if explore_top_k < 1:
            raise ValueError(f"explore_top_k must be a positive integer, got {explore_top_k}")
        self.explore_top_k = int(explore_top_k)
        self.fixed_goal = goal is not None
        self.goal = np.asarray(geo.GOAL_POSE if goal is None else goal, dtype=float)
        self.max_length = max_length
        self.friction = friction
        self.angles = np.radians(HEURISTIC_ANGLES_DEG)
        self.avoid_stuck = avoid_stuck
        self._watch = bool(avoid_stuck)
        self._tabu: list[tuple[np.ndarray, int]] = []  # contacts (object frame) of stuck pushes, plans left
        self._last: tuple | None = None  # the last push: (pose, geometry, contact, predicted motion)
        self._rest_tilt: float | None = None  # rad: the least tilt of the object seen this episode

    def reset(self, rng: np.random.Generator | None = None) -> None:
        """Forget the current push and the stuck ones (and optionally reseed)."""
        super().reset(rng)
        self._tabu, self._last, self._rest_tilt = [], None, None

    def act(self, obs: dict, info: dict | None = None) -> np.ndarray:
        """The next action (`PushPolicy.act`); with ``avoid_stuck``, a push that tips the object more than
        ``TIP_ABORT`` beyond its resting tilt is abandoned (its contact avoided for a while) and a new one planned."""
        if self._watch and self._queue and info and info.get("object_pose7") is not None:
            tilt = tilt_of(info["object_pose7"])
            self._rest_tilt = tilt if self._rest_tilt is None else min(self._rest_tilt, tilt)
            if tilt > self._rest_tilt + TIP_ABORT:
                self._queue.clear()
                if self._last is not None:
                    self._tabu.append((self._last[2], TABU_PLANS))
                    self._last = None
        return super().act(obs, info)

    def observe(self, info: dict | None, obs: dict | None = None) -> None:
        """Take the object's geometry, the hand and (unless ``goal`` was given) the goal pose from the env."""
        super().observe(info, obs)
        if obs is not None and self.avoid_stuck is None:  # Push4D: on; PushT4D keeps its recorded behaviour
            self._watch = "object_pose" in obs
        if not self.fixed_goal and info and info.get("goal_pose") is not None:
            self.goal = np.asarray(info["goal_pose"], dtype=float)

    @property
    def c(self) -> float:
        """The current object's limit surface radius (m)."""
        return self.geometry.radius

    @property
    def probe(self) -> np.ndarray:
        """Points of the object's footprint (P, 2) relative to its centre of mass that measure the pose error."""
        return self.geometry.probe

    def goal_probes(self) -> np.ndarray:
        """Where the probe points are (S, P, 2) at the goal and at each of its symmetric twins."""
        g = self.geometry
        return np.stack([g.probe @ geo.rot_z(goal[2])[:2, :2].T + g.com_pose(goal)[:2]
                         for goal in g.symmetric_goals(self.goal)])

    @property
    def goal_probe(self) -> np.ndarray:
        """Where the probe points are (P, 2) at the goal."""
        return self.goal_probes()[0]

    def choose_push(self, pose: np.ndarray, ee: np.ndarray) -> tuple[int, np.ndarray, float]:
        """The push that minimises the predicted footprint error (tiny random tie-break), or with
        ``explore_top_k`` > 1 a uniform pick among that many best (exploration data)."""
        if self._watch:
            self._review(pose)
        idx, ang, length, cost = self.ranked_pushes(pose, ee, self.explore_top_k)
        n_ok = int(np.isfinite(cost).sum())
        if n_ok > 1:
            j = int(self.rng.integers(n_ok))
            idx, ang, length, cost = idx[j:], ang[j:], length[j:], cost[j:]
        g = self.contact_geometry(pose)
        if not np.isfinite(cost[0]):  # no sticking push: push straight through the nearest reachable contact
            pts, n = to_world(pose, g.outline, g.normals)
            d = np.linalg.norm(pts - ee, axis=1)
            d[~g.reachable(pose, ee)] = np.inf
            i, u, length = int(np.argmin(d)), -n[int(np.argmin(d))], FALLBACK_PUSH_LENGTH
        else:
            i, u, length = int(idx[0]), push_direction(pose, g.normals[idx[:1]], ang[:1])[0], float(length[0])
        if self._watch:
            V = pushed_twist(to_world(pose, g.contacts[i : i + 1]) - g.com_pose(pose)[:2], u[None], g.radius)[0]
            self._last = (pose.copy(), self.geometry, g.contacts[i].copy(),
                          length * (np.linalg.norm(V[:2]) + g.radius * abs(V[2])))
        return i, u, length

    def _review(self, pose: np.ndarray) -> None:
        """Age the stuck contacts, and add the last push's when it moved the object (its centre of mass, and its
        turn times the limit surface radius) less than ``STUCK_FRACTION`` of the predicted motion: a push the
        model gets wrong (a hand pressing down on the object's top, a jam) is not tried again at once."""
        self._tabu = [(c, n - 1) for c, n in self._tabu if n > 1]
        if self._last is None or self._last[1] is not self.geometry:
            return
        before, _, contact, predicted = self._last
        g = self.geometry
        moved = np.linalg.norm(g.com_pose(pose)[:2] - g.com_pose(before)[:2]) + \
            g.radius * abs(float(geo.wrap_angle(pose[2] - before[2])))
        if predicted >= STUCK_MIN_MOTION and moved < STUCK_FRACTION * predicted:
            self._tabu.append((contact, TABU_PLANS))

    def ranked_pushes(self, pose: np.ndarray, ee: np.ndarray, k: int) -> tuple[np.ndarray, ...]:
        """The ``k`` pushes of least predicted footprint error: outline indices, angles off the inward
        normal (rad), lengths (m) and the errors (inf where no push sticks)."""
        g = self.contact_geometry(pose)
        com = g.com_pose(pose)
        pts, n = to_world(pose, g.outline, g.normals)
        touch = pts if g.hand is None else to_world(pose, g.contacts)  # where the hand touches the object
        idx = np.tile(np.arange(len(pts)), len(self.angles))
        ang = np.repeat(self.angles, len(pts))
        u = push_direction(pose, g.normals[idx], ang)
        r = touch[idx] - com[:2]
        V = pushed_twist(r, u, g.radius)
        # sticking needs the contact force inside the friction cone about the inward normal
        f = V[:, :2]
        fn = -np.sum(f * n[idx], axis=1)
        ft = np.abs(f[:, 0] * n[idx][:, 1] - f[:, 1] * n[idx][:, 0])
        ok = (fn > 0) & (ft <= self.friction * fn) & self.clear_approach(pose, idx, u)
        ok &= g.reachable(pose, ee)[idx]
        if self._tabu:  # not where a push was just stuck, unless nothing else is left
            near = np.zeros(len(g.contacts), dtype=bool)
            for contact, _ in self._tabu:
                near |= np.linalg.norm(g.contacts - contact, axis=1) < TABU_RADIUS
            if (ok & ~near[idx]).any():
                ok &= ~near[idx]
        if g.yaw_free:  # only the centroid has to reach the goal's
            return self._ranked_by_centroid(pose, ee, k, idx, ang, V, ok, pts, u)
        # no push longer than twice the current rms point error: fine pushes near the goal
        cs0, sn0 = np.cos(pose[2]), np.sin(pose[2])
        now = g.probe @ np.array([[cs0, sn0], [-sn0, cs0]]) + com[:2]
        goals = self.goal_probes()
        errors = np.mean(np.sum((now - goals) ** 2, axis=-1), axis=-1)  # (S,) mean squared error to each twin
        goal_probe = goals[int(np.argmin(errors))]
        rms = float(np.sqrt(np.mean(np.sum((now - goal_probe) ** 2, axis=1))))
        longest = float(np.clip(LONGEST_PUSH_PER_ERROR * rms, LONGEST_PUSH_FLOOR, self.max_length))
        lengths = np.geomspace(SHORTEST_PUSH, longest, PUSH_LENGTHS)
        L = lengths[:, None]  # (PUSH_LENGTHS, 1) x candidates
        theta = pose[2] + L * V[:, 2]
        cs, sn = np.cos(theta)[..., None], np.sin(theta)[..., None]
        cx, cy = (com[0] + L * V[:, 0])[..., None], (com[1] + L * V[:, 1])[..., None]
        px = cs * g.probe[:, 0] - sn * g.probe[:, 1] + cx
        py = sn * g.probe[:, 0] + cs * g.probe[:, 1] + cy
        cost = np.mean((px - goal_probe[:, 0]) ** 2 + (py - goal_probe[:, 1]) ** 2, axis=-1)
        return self._best(cost, k, idx, ang, lengths, ok, pts, u, ee)

    def _best(self, cost: np.ndarray, k: int, idx: np.ndarray, ang: np.ndarray, lengths: np.ndarray, ok: np.ndarray,
              pts: np.ndarray, u: np.ndarray, ee: np.ndarray) -> tuple[np.ndarray, ...]:
        """The ``k`` best of predicted errors ``cost`` (lengths x candidates) after the travel cost and tie-break."""
        cost += TRAVEL_COST * np.linalg.norm(pts[idx] - u * self.standoff - ee, axis=1)  # prefer nearby contacts
        cost += TIE_BREAK_NOISE * self.rng.random(cost.shape)
        cost[:, ~ok] = np.inf
        best = np.argsort(cost, axis=None)[:k]
        li, ci = np.unravel_index(best, cost.shape)
        return idx[ci], ang[ci], lengths[li], cost[li, ci]

    def _ranked_by_centroid(self, pose: np.ndarray, ee: np.ndarray, k: int, idx: np.ndarray, ang: np.ndarray,
                            V: np.ndarray, ok: np.ndarray, pts: np.ndarray, u: np.ndarray) -> tuple[np.ndarray, ...]:
        """`ranked_pushes` for a footprint whose yaw does not matter: the error is the centroid's squared distance
        from its goal position."""
        g = self.geometry
        com = g.com_pose(pose)
        arm = g.centroid - g.com  # the centroid seen from the centre of mass (object frame)
        goal = geo.rot_z(self.goal[2])[:2, :2] @ g.centroid + self.goal[:2]
        now = geo.rot_z(pose[2])[:2, :2] @ arm + com[:2]
        longest = float(np.clip(LONGEST_PUSH_PER_ERROR * np.linalg.norm(now - goal), LONGEST_PUSH_FLOOR,
                                self.max_length))
        lengths = np.geomspace(SHORTEST_PUSH, longest, PUSH_LENGTHS)
        L = lengths[:, None]
        theta = pose[2] + L * V[:, 2]
        cs, sn = np.cos(theta), np.sin(theta)
        px = com[0] + L * V[:, 0] + cs * arm[0] - sn * arm[1]
        py = com[1] + L * V[:, 1] + sn * arm[0] + cs * arm[1]
        return self._best((px - goal[0]) ** 2 + (py - goal[1]) ** 2, k, idx, ang, lengths, ok, pts, u, ee)
