"""Scripted pushing policies for PushT4D: random exploratory pushes and a goal-directed heuristic.

Both work by *push primitives*: pick a contact point on the T's outline and a push
direction, travel to a point ``standoff`` behind the contact while going around the block
(never through it), then push through the contact for a given length. Targets are
emitted one per control step, spaced at most ``step`` metres apart, as absolute fingertip
xy actions (converted to steps for ``action_mode="delta"``).

- `RandomPushPolicy`: contact points uniform on the outline, directions within +-30 deg of
  the inward normal, lengths U(0.03, 0.12) m: the data Dream2Flow-style dynamics models
  learn from.
- `HeuristicPushPolicy`: scores every candidate push with a quasi-static model (the block
  translates along the push and turns by (r x u) / c^2, c the radius of gyration) and
  takes the one that most reduces a pose error to the goal.
"""

from __future__ import annotations

from collections import deque

import numpy as np
import shapely

from envs.base import MAX_DELTA
from envs.pusht import geometry as geo

OUTLINE_SPACING = 0.01  # m: spacing of the candidate contact points along the T's outline
BLOCK_CLEARANCE = 0.035  # m: the hand travels around the block along its outline offset by this much
STRAIGHT_MARGIN = 0.005  # m: a straight travel may pass this much closer to the T than BLOCK_CLEARANCE
NORMAL_PROBE = 1e-3  # m: how far off the outline a point is tested (inside the T?) to orient its normal
REACH = geo.WORKSPACE / 2 - 0.01  # targets stay 1 cm inside the workspace
STEP = 0.04  # default spacing of the pushers' targets (m per control step)
SHORT_PUSH_STEPS = 4  # control steps a push takes at least (short pushes go slowly) ...
MIN_PUSH_STEP = 0.004  # m per control step: ... but its targets are never closer than this
APPROACH_CLEARANCE = 0.005  # m: the approach to a contact keeps this far from the block ...
APPROACH_FINAL = 0.01  # m: ... until this far before the contact
FOOTPRINT_BOX = ((-0.1, 0.0), (0.1, 0.2))  # m: (low, high) block-frame xy box around the T, for sampling it
LIMIT_SURFACE_SAMPLES = 20000  # uniform draws in FOOTPRINT_BOX that average the limit surface's radius


def outline_candidates(spacing: float = OUTLINE_SPACING) -> tuple[np.ndarray, np.ndarray]:
    """Points on the T outline (block frame, (M, 2)) and their outward unit normals."""
    v = geo.footprint_vertices()
    pts, nrm = [], []
    for a, b in zip(v[:-1], v[1:], strict=True):
        edge = b - a
        length = np.linalg.norm(edge)
        n = max(1, int(length / spacing))
        t = (np.arange(n) + 0.5) / n
        pts.append(a + t[:, None] * edge)
        normal = np.array([edge[1], -edge[0]]) / length  # exterior is clockwise-right for normalized shapely rings
        nrm.append(np.repeat(normal[None], n, axis=0))
    pts, nrm = np.concatenate(pts), np.concatenate(nrm)
    probe = pts + NORMAL_PROBE * nrm
    inside = np.array([geo.footprint().contains(shapely.Point(*p)) for p in probe])
    nrm[inside] *= -1  # orient every normal outward whatever the ring orientation
    return pts, nrm


def _to_world(pose: np.ndarray, pts: np.ndarray, vecs: np.ndarray | None = None):
    R = geo.rot_z(pose[2])[:2, :2]
    w = pts @ R.T + pose[:2]
    return (w, vecs @ R.T) if vecs is not None else w


def around_block(start: np.ndarray, goal: np.ndarray, pose: np.ndarray, step: float) -> list[np.ndarray]:
    """Waypoints (at most ``step`` apart) from ``start`` to ``goal`` that never approach the block at ``pose``.

    The straight segment is taken when it keeps ``BLOCK_CLEARANCE - STRAIGHT_MARGIN`` from the T or comes no
    closer than its end points; otherwise the hand moves out to the T's outline offset by
    ``BLOCK_CLEARANCE``, along it the shorter way round, and in to ``goal``. The moves out and in
    follow the distance gradient (each end's nearest point on the offset outline), so they never
    cut across the T, not even from inside its concave corners.
    """
    block = geo.footprint_at(pose)
    line = shapely.LineString([start, goal])
    gap = min(BLOCK_CLEARANCE - STRAIGHT_MARGIN, block.distance(shapely.Point(*start)),
              block.distance(shapely.Point(*goal)))
    if line.distance(block) >= gap - 1e-9:
        return _segment(start, goal, step)
    ring = block.buffer(BLOCK_CLEARANCE).exterior
    a, b = ring.project(shapely.Point(*start)), ring.project(shapely.Point(*goal))
    forward = (b - a) % ring.length
    span = forward if forward <= ring.length / 2 else forward - ring.length  # signed, the shorter way
    n = max(1, int(np.ceil(abs(span) / step)))
    arc = [np.array(ring.interpolate((a + span * k / n) % ring.length).coords[0]) for k in range(n + 1)]
    return _segment(start, arc[0], step) + arc[1:] + _segment(arc[-1], goal, step)


def travel(pose: np.ndarray, ee: np.ndarray, pre: np.ndarray, step: float) -> list[np.ndarray]:
    """Targets (at most ``step`` apart) from ``ee`` to ``pre`` around the block at ``pose``, inside the workspace."""
    return [np.clip(p, -REACH, REACH) for p in around_block(ee, pre, pose, step)]


def push_through(contact: np.ndarray, u: np.ndarray, length: float, standoff: float,
                 step: float) -> tuple[np.ndarray, list[np.ndarray]]:
    """The pre-push point ``standoff`` behind world point ``contact`` and the targets of a push along
    unit ``u`` for ``length`` metres past it (short pushes go slowly: the block slides on after a
    fast pusher stops)."""
    pre = contact - u * standoff
    end = np.clip(contact + u * length, -REACH, REACH)
    return pre, _segment(pre, end, float(np.clip(length / SHORT_PUSH_STEPS, MIN_PUSH_STEP, step)))


def _segment(a: np.ndarray, b: np.ndarray, step: float) -> list[np.ndarray]:
    n = max(1, int(np.ceil(np.linalg.norm(b - a) / step)))
    return [a + (b - a) * k / n for k in range(1, n + 1)]


class PushPolicy:
    """Base of the scripted pushers: turns chosen pushes into per-step fingertip targets."""

    REQUIRED_KEYS = {"obs": ("agent_pos", "block_pose"), "info": ()}  # what ``act`` reads: the env must give it

    def __init__(self, rng: np.random.Generator, step: float = STEP, standoff: float = 0.03,
                 action_mode: str = "absolute"):
        if action_mode not in ("absolute", "delta"):
            raise ValueError(f"action_mode must be 'absolute' or 'delta', got {action_mode!r}")
        self.rng = rng
        self.step = step
        self.standoff = standoff
        self.action_mode = action_mode
        self.outline, self.normals = outline_candidates()
        self._queue: deque[np.ndarray] = deque()

    def reset(self, rng: np.random.Generator | None = None) -> None:
        """Forget the current push (and optionally reseed)."""
        self._queue.clear()
        if rng is not None:
            self.rng = rng

    def choose_push(self, pose: np.ndarray, ee: np.ndarray) -> tuple[int, np.ndarray, float]:
        """(outline index, world push direction, push length) of the next push."""
        raise NotImplementedError

    def push_path(self, pose: np.ndarray, i: int, u: np.ndarray, length: float,
                  front: float = 0.0) -> tuple[np.ndarray, list[np.ndarray]]:
        """The pre-push point (``standoff`` behind outline contact ``i`` of the block at ``pose``) and the
        push's targets along world direction ``u`` for ``length`` metres past the contact; with ``front`` > 0
        (how far the hand reaches ahead of its fingertip centre along ``u``) the path is moved back by it,
        so that the hand's front rather than its centre goes ``length`` past the contact."""
        contact = _to_world(pose, self.outline[i : i + 1])[0] - u * front
        return push_through(contact, u, length, self.standoff, self.step)

    def clear_approach(self, pose: np.ndarray, idx: np.ndarray, u: np.ndarray) -> np.ndarray:
        """Whether pushes at outline points ``idx`` along world directions ``u`` (K, 2) can be approached:
        the pre-push point lies outside the block and the approach stays 5 mm from it until 1 cm before
        the contact (a push into a concave corner at an angle can put its pre-push point inside the
        other arm of the T, and the hand would sweep the block while getting there)."""
        contact = _to_world(pose, self.outline[idx])
        lines = shapely.linestrings(np.stack([contact - u * self.standoff, contact - u * APPROACH_FINAL], axis=1))
        return shapely.distance(geo.footprint_at(pose), lines) > APPROACH_CLEARANCE

    def plan(self, pose: np.ndarray, ee: np.ndarray) -> None:
        """Queue the targets of one push primitive."""
        i, u, length = self.choose_push(pose, ee)
        pre, push = self.push_path(pose, i, u, length)
        self._queue.extend(travel(pose, ee, pre, self.step))
        self._queue.extend(push)

    def act(self, obs: dict, info: dict | None = None) -> np.ndarray:
        """The next action for observation ``obs`` (uses ``agent_pos`` and ``block_pose``)."""
        ee = np.asarray(obs["agent_pos"], dtype=float)
        if not self._queue:
            self.plan(np.asarray(obs["block_pose"], dtype=float), ee)
        target = self._queue.popleft()
        if self.action_mode == "delta":
            return np.clip(target - ee, -MAX_DELTA, MAX_DELTA).astype(np.float32)
        return target.astype(np.float32)


class RandomPushPolicy(PushPolicy):
    """Random pushes starting at the block: exploration data for point-flow dynamics models."""

    def __init__(self, rng: np.random.Generator, max_angle_deg: float = 30.0, length_range=(0.03, 0.12), **kw):
        super().__init__(rng, **kw)
        self.max_angle = np.radians(max_angle_deg)
        self.length_range = length_range

    def choose_push(self, pose, ee):
        """A uniformly random contact, direction and length."""
        i = int(self.rng.integers(len(self.outline)))
        a = self.rng.uniform(-self.max_angle, self.max_angle)
        u = push_direction(pose, self.normals[i : i + 1], np.array([a]))[0]
        return i, u, float(self.rng.uniform(*self.length_range))


def push_direction(pose: np.ndarray, normals: np.ndarray, ang: np.ndarray) -> np.ndarray:
    """World push directions (K, 2): the inward normals (block frame, (K, 2)) turned by ``ang`` (K,)."""
    n = normals @ geo.rot_z(pose[2])[:2, :2].T
    c, s = np.cos(ang), np.sin(ang)
    return -np.stack([c * n[:, 0] - s * n[:, 1], s * n[:, 0] + c * n[:, 1]], 1)


def limit_surface_radius() -> float:
    """Mean distance of the T's support area from its centre of mass: the ellipsoidal limit
    surface's moment-to-force ratio for uniform pressure (m_max / f_max)."""
    rng = np.random.default_rng(0)
    pts = rng.uniform(*FOOTPRINT_BOX, size=(LIMIT_SURFACE_SAMPLES, 2))
    inside = shapely.contains_xy(geo.footprint(), pts[:, 0], pts[:, 1])
    return float(np.mean(np.linalg.norm(pts[inside] - geo.COM_LOCAL[:2], axis=1)))


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
PROBE_DRAWS = 400  # uniform draws in FOOTPRINT_BOX for the points that measure the pose error ...
PROBE_POINTS = 60  # ... of which the first this many inside the T are kept
FALLBACK_PUSH_LENGTH = 0.02  # m: the push straight through the centre of mass when no push sticks
SHORTEST_PUSH = 0.002  # m: the shortest push length tried
LONGEST_PUSH_PER_ERROR = 2  # pushes are at most this many times the current rms point error long ...
LONGEST_PUSH_FLOOR = 0.005  # m: ... but may always be this long
PUSH_LENGTHS = 10  # push lengths tried, geometrically spaced
TRAVEL_COST = 1e-4  # m^2 of predicted footprint error per m from the hand to the pre-push point
TIE_BREAK_NOISE = 1e-9  # m^2: scale of the uniform noise that breaks ties between equal costs


class HeuristicPushPolicy(PushPolicy):
    """Goal-directed pushes chosen by a quasi-static model of their effect on the block pose.

    For every outline contact (pushing along the inward normal, and +-20 deg off it) and a
    range of push lengths, the block's motion is predicted from `pushed_twist`; pushes whose
    force would leave the friction cone, or whose approach would touch the block, are skipped.
    The push that minimises the mean squared
    distance of the T's footprint points to their goal positions is taken (``explore_top_k`` > 1:
    one of that many best, uniformly, for data that covers what a planner proposes).
    """

    def __init__(self, rng: np.random.Generator, goal=geo.GOAL_POSE, max_length: float = 0.06,
                 friction: float = 0.5, explore_top_k: int = 1, **kw):
        super().__init__(rng, **kw)
        if explore_top_k < 1:
            raise ValueError(f"explore_top_k must be a positive integer, got {explore_top_k}")
        self.explore_top_k = int(explore_top_k)
        self.goal = np.asarray(goal, dtype=float)
        self.max_length = max_length
        self.friction = friction
        self.c = limit_surface_radius()
        probe = np.random.default_rng(1).uniform(*FOOTPRINT_BOX, size=(PROBE_DRAWS, 2))
        inside = shapely.contains_xy(geo.footprint(), probe[:, 0], probe[:, 1])
        self.probe = probe[inside][:PROBE_POINTS] - geo.COM_LOCAL[:2]
        self.goal_probe = self.probe @ geo.rot_z(self.goal[2])[:2, :2].T + geo.com_pose(self.goal)[:2]
        self.angles = np.radians(HEURISTIC_ANGLES_DEG)

    def choose_push(self, pose, ee):
        """The push that minimises the predicted footprint error (tiny random tie-break), or with
        ``explore_top_k`` > 1 a uniform pick among that many best (exploration data)."""
        idx, ang, length, cost = self.ranked_pushes(pose, ee, self.explore_top_k)
        n_ok = int(np.isfinite(cost).sum())
        if n_ok > 1:
            j = int(self.rng.integers(n_ok))
            idx, ang, length, cost = idx[j:], ang[j:], length[j:], cost[j:]
        if not np.isfinite(cost[0]):  # no sticking push: push straight through the centre of mass
            pts, n = _to_world(pose, self.outline, self.normals)
            i = int(np.argmin(np.linalg.norm(pts - ee, axis=1)))
            return i, -n[i], FALLBACK_PUSH_LENGTH
        return int(idx[0]), push_direction(pose, self.normals[idx[:1]], ang[:1])[0], float(length[0])

    def ranked_pushes(self, pose: np.ndarray, ee: np.ndarray, k: int) -> tuple[np.ndarray, ...]:
        """The ``k`` pushes of least predicted footprint error: outline indices, angles off the inward
        normal (rad), lengths (m) and the errors (inf where no push sticks)."""
        com = geo.com_pose(pose)
        pts, n = _to_world(pose, self.outline, self.normals)
        idx = np.tile(np.arange(len(pts)), len(self.angles))
        ang = np.repeat(self.angles, len(pts))
        u = push_direction(pose, self.normals[idx], ang)
        r = pts[idx] - com[:2]
        V = pushed_twist(r, u, self.c)
        # sticking needs the contact force inside the friction cone about the inward normal
        f = V[:, :2]
        fn = -np.sum(f * n[idx], axis=1)
        ft = np.abs(f[:, 0] * n[idx][:, 1] - f[:, 1] * n[idx][:, 0])
        ok = (fn > 0) & (ft <= self.friction * fn) & self.clear_approach(pose, idx, u)
        # no push longer than twice the current rms point error: fine pushes near the goal
        cs0, sn0 = np.cos(pose[2]), np.sin(pose[2])
        now = self.probe @ np.array([[cs0, sn0], [-sn0, cs0]]) + com[:2]
        rms = float(np.sqrt(np.mean(np.sum((now - self.goal_probe) ** 2, axis=1))))
        longest = float(np.clip(LONGEST_PUSH_PER_ERROR * rms, LONGEST_PUSH_FLOOR, self.max_length))
        lengths = np.geomspace(SHORTEST_PUSH, longest, PUSH_LENGTHS)
        L = lengths[:, None]  # (PUSH_LENGTHS, 1) x candidates
        theta = pose[2] + L * V[:, 2]
        cs, sn = np.cos(theta)[..., None], np.sin(theta)[..., None]
        cx, cy = (com[0] + L * V[:, 0])[..., None], (com[1] + L * V[:, 1])[..., None]
        px = cs * self.probe[:, 0] - sn * self.probe[:, 1] + cx
        py = sn * self.probe[:, 0] + cs * self.probe[:, 1] + cy
        cost = np.mean((px - self.goal_probe[:, 0]) ** 2 + (py - self.goal_probe[:, 1]) ** 2, axis=-1)
        cost += TRAVEL_COST * np.linalg.norm(pts[idx] - u * self.standoff - ee, axis=1)  # prefer nearby contacts
        cost += TIE_BREAK_NOISE * self.rng.random(cost.shape)
        cost[:, ~ok] = np.inf
        best = np.argsort(cost, axis=None)[:k]
        li, ci = np.unravel_index(best, cost.shape)
        return idx[ci], ang[ci], lengths[li], cost[li, ci]
