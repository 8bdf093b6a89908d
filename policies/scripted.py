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
RADIUS_OF_GYRATION = 0.065


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
        self._queue.extend(_segment(pre, end, self.step))

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


class HeuristicPushPolicy(PushPolicy):
    """Goal-directed pushes chosen by a quasi-static model of their effect on the block pose."""

    def __init__(self, rng: np.random.Generator, goal=geo.GOAL_POSE, max_length: float = 0.06, **kw):
        super().__init__(rng, **kw)
        self.goal = np.asarray(goal, dtype=float)
        self.goal_com = geo.com_pose(self.goal)
        self.max_length = max_length

    def choose_push(self, pose, ee):
        """The push that minimises the predicted pose error (with a small random tie-break)."""
        com = geo.com_pose(pose)
        pts, n = _to_world(pose, self.outline, self.normals)
        u = -n
        r = pts - com[:2]
        turn = (r[:, 0] * u[:, 1] - r[:, 1] * u[:, 0]) / RADIUS_OF_GYRATION**2  # rad per metre pushed
        err_p = self.goal_com[:2] - com[:2]
        err_a = geo.wrap_angle(self.goal[2] - pose[2])
        lengths = np.geomspace(0.003, self.max_length, 8)
        # the block moves by the push's component through the centre of mass
        along = np.sum(u * (-r / np.linalg.norm(r, axis=1, keepdims=True)), axis=1).clip(0.2, 1.0)
        best, choice = np.inf, (0, u[0], lengths[0])
        for L in lengths:
            dp = u * (L * along)[:, None]
            cost = np.sum((err_p - dp) ** 2, axis=1) + (RADIUS_OF_GYRATION * (err_a - turn * L * along)) ** 2
            cost += 1e-4 * np.linalg.norm(pts - u * self.standoff - ee, axis=1)  # prefer nearby contacts
            cost += 1e-6 * self.rng.random(len(cost))
            i = int(np.argmin(cost))
            if cost[i] < best:
                best, choice = cost[i], (i, u[i], float(L))
        return choice
