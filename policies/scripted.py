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

from envs import pusht_geometry as geo

OUTLINE_SPACING = 0.01
BLOCK_CLEARANCE = 0.035


def outline_candidates(spacing: float = OUTLINE_SPACING) -> tuple[np.ndarray, np.ndarray]:
    """Points on the T outline (block frame, (M, 2)) and their outward unit normals."""
    v = geo.footprint_vertices()
    pts, nrm = [], []
    for a, b in zip(v[:-1], v[1:]):
        edge = b - a
        length = np.linalg.norm(edge)
        n = max(1, int(length / spacing))
        t = (np.arange(n) + 0.5) / n
        pts.append(a + t[:, None] * edge)
        normal = np.array([edge[1], -edge[0]]) / length  # exterior is clockwise-right for normalized shapely rings
        nrm.append(np.repeat(normal[None], n, axis=0))
    pts, nrm = np.concatenate(pts), np.concatenate(nrm)
    probe = pts + 1e-3 * nrm
    inside = np.array([geo.footprint().contains(shapely.Point(*p)) for p in probe])
    nrm[inside] *= -1  # orient every normal outward whatever the ring orientation
    return pts, nrm


def _to_world(pose: np.ndarray, pts: np.ndarray, vecs: np.ndarray | None = None):
    R = geo.rot_z(pose[2])[:2, :2]
    w = pts @ R.T + pose[:2]
    return (w, vecs @ R.T) if vecs is not None else w


def around_block(start: np.ndarray, goal: np.ndarray, pose: np.ndarray, step: float) -> list[np.ndarray]:
    """Waypoints from ``start`` to ``goal`` that keep ``BLOCK_CLEARANCE`` from the block at ``pose``."""
    poly = geo.footprint_at(pose).buffer(BLOCK_CLEARANCE - 0.005)
    line = shapely.LineString([start, goal])
    if not line.intersects(poly):
        return _segment(start, goal, step)
    centre = geo.com_pose(pose)[:2]
    radius = max(np.linalg.norm(v - centre) for v in geo.footprint_vertices() @ geo.rot_z(pose[2])[:2, :2].T + pose[:2])
    radius += BLOCK_CLEARANCE
    a0 = np.arctan2(*(start - centre)[::-1])
    a1 = np.arctan2(*(goal - centre)[::-1])
    da = geo.wrap_angle(a1 - a0)
    out_start = centre + radius * np.array([np.cos(a0), np.sin(a0)])
    n_arc = max(1, int(abs(da) * radius / step) + 1)
    arc = [centre + radius * np.array([np.cos(a0 + da * k / n_arc), np.sin(a0 + da * k / n_arc)]) for k in range(1, n_arc + 1)]
    path = _segment(start, out_start, step) if np.linalg.norm(start - centre) < radius else []
    return path + arc + _segment(arc[-1], goal, step)


def _segment(a: np.ndarray, b: np.ndarray, step: float) -> list[np.ndarray]:
    n = max(1, int(np.ceil(np.linalg.norm(b - a) / step)))
    return [a + (b - a) * k / n for k in range(1, n + 1)]


class PushPolicy:
    """Base of the scripted pushers: turns chosen pushes into per-step fingertip targets."""

    def __init__(self, rng: np.random.Generator, step: float = 0.04, standoff: float = 0.03, action_mode: str = "absolute"):
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

    def plan(self, pose: np.ndarray, ee: np.ndarray) -> None:
        """Queue the targets of one push primitive."""
        i, u, length = self.choose_push(pose, ee)
        contact, _ = _to_world(pose, self.outline[i : i + 1], self.normals[i : i + 1])
        contact = contact[0]
        pre = contact - u * self.standoff
        half = geo.WORKSPACE / 2 - 0.01
        end = np.clip(contact + u * length, -half, half)
        self._queue.extend(np.clip(p, -half, half) for p in around_block(ee, pre, pose, self.step))
        # short pushes go slowly: the block slides on after a fast pusher stops
        self._queue.extend(_segment(pre, end, float(np.clip(length / 4, 0.004, self.step))))

    def act(self, obs: dict, info: dict | None = None) -> np.ndarray:
        """The next action for observation ``obs`` (uses ``agent_pos`` and ``block_pose``)."""
        ee = np.asarray(obs["agent_pos"], dtype=float)
        if not self._queue:
            self.plan(np.asarray(obs["block_pose"], dtype=float), ee)
        target = self._queue.popleft()
        if self.action_mode == "delta":
            return np.clip(target - ee, -0.03, 0.03).astype(np.float32)
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
        _, n = _to_world(pose, self.outline[i : i + 1], self.normals[i : i + 1])
        a = self.rng.uniform(-self.max_angle, self.max_angle)
        c, s = np.cos(a), np.sin(a)
        u = -np.array([c * n[0, 0] - s * n[0, 1], s * n[0, 0] + c * n[0, 1]])
        return i, u, float(self.rng.uniform(*self.length_range))


def limit_surface_radius() -> float:
    """Mean distance of the T's support area from its centre of mass: the ellipsoidal limit
    surface's moment-to-force ratio for uniform pressure (m_max / f_max)."""
    rng = np.random.default_rng(0)
    pts = rng.uniform((-0.1, 0.0), (0.1, 0.2), size=(20000, 2))
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


class HeuristicPushPolicy(PushPolicy):
    """Goal-directed pushes chosen by a quasi-static model of their effect on the block pose.

    For every outline contact (pushing along the inward normal, and +-20 deg off it) and a
    range of push lengths, the block's motion is predicted from `pushed_twist`; pushes whose
    force would leave the friction cone are skipped. The push that minimises the mean squared
    distance of the T's footprint points to their goal positions is taken.
    """

    def __init__(self, rng: np.random.Generator, goal=geo.GOAL_POSE, max_length: float = 0.06,
                 friction: float = 0.5, **kw):
        super().__init__(rng, **kw)
        self.goal = np.asarray(goal, dtype=float)
        self.max_length = max_length
        self.friction = friction
        self.c = limit_surface_radius()
        probe = np.random.default_rng(1).uniform((-0.1, 0.0), (0.1, 0.2), size=(400, 2))
        self.probe = probe[shapely.contains_xy(geo.footprint(), probe[:, 0], probe[:, 1])][:60] - geo.COM_LOCAL[:2]
        self.goal_probe = self.probe @ geo.rot_z(self.goal[2])[:2, :2].T + geo.com_pose(self.goal)[:2]
        angles = np.radians([-20.0, 0.0, 20.0])
        self.dirs = np.stack([np.cos(angles), np.sin(angles)], 1)

    def choose_push(self, pose, ee):
        """The push that minimises the predicted footprint error (tiny random tie-break)."""
        com = geo.com_pose(pose)
        pts, n = _to_world(pose, self.outline, self.normals)
        idx, u = [], []
        for c, s in self.dirs:  # rotate the inward normal by each angle
            idx.append(np.arange(len(pts)))
            u.append(np.stack([-(c * n[:, 0] - s * n[:, 1]), -(s * n[:, 0] + c * n[:, 1])], 1))
        idx, u = np.concatenate(idx), np.concatenate(u)
        r = pts[idx] - com[:2]
        V = pushed_twist(r, u, self.c)
        # sticking needs the contact force inside the friction cone about the inward normal
        f = V[:, :2]
        fn = -np.sum(f * n[idx], axis=1)
        ft = np.abs(f[:, 0] * n[idx][:, 1] - f[:, 1] * n[idx][:, 0])
        ok = (fn > 0) & (ft <= self.friction * fn)
        # no push longer than twice the current rms point error: fine pushes near the goal
        cs0, sn0 = np.cos(pose[2]), np.sin(pose[2])
        now = self.probe @ np.array([[cs0, sn0], [-sn0, cs0]]) + com[:2]
        rms = float(np.sqrt(np.mean(np.sum((now - self.goal_probe) ** 2, axis=1))))
        lengths = np.geomspace(0.002, float(np.clip(2 * rms, 0.005, self.max_length)), 10)
        best, choice = np.inf, None
        for L in lengths:
            theta = pose[2] + L * V[:, 2]
            cs, sn = np.cos(theta), np.sin(theta)
            centre = com[:2] + L * V[:, :2]
            px = cs[:, None] * self.probe[:, 0] - sn[:, None] * self.probe[:, 1] + centre[:, 0:1]
            py = sn[:, None] * self.probe[:, 0] + cs[:, None] * self.probe[:, 1] + centre[:, 1:2]
            cost = np.mean((px - self.goal_probe[:, 0]) ** 2 + (py - self.goal_probe[:, 1]) ** 2, axis=1)
            cost += 1e-4 * np.linalg.norm(pts[idx] - u * self.standoff - ee, axis=1)  # prefer nearby contacts
            cost += 1e-9 * self.rng.random(len(cost))
            cost[~ok] = np.inf
            i = int(np.argmin(cost))
            if cost[i] < best:
                best, choice = cost[i], (int(idx[i]), u[i], float(L))
        if choice is None:  # no sticking push: push straight through the centre of mass
            i = int(np.argmin(np.linalg.norm(pts - ee, axis=1)))
            return i, -n[i], 0.02
        return choice
