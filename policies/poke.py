"""Scripted pokers for Poke4D-v0: random exploratory pokes, and a damping touch that calms a ringing object.

Both emit absolute fingertip xyz targets one per control step, spaced at most ``step``
metres apart (converted to steps for ``action_mode="delta"``). They read the object's extent
from ``info["object_points"]`` (its tracked surface points) and the hand's extent from
``obs["gripper_points"]`` relative to ``obs["agent_pos"]`` (a box around the Franka hand when
the observation has no gripper points), and move over the object, never through it: up to
``clearance`` above its top, across, then down beside it.

- `RandomPokePolicy`: pokes from a uniform horizontal direction at a height U(0.4, 1.0) of
  the object's top, pushing U(0.01, 0.05) m past its surface, holding 0-4 steps, then pulling
  back (``retreat`` m further than where the poke started, resting ``rest_range`` steps there)
  so the object rings: the data point-flow models of vibrating objects learn from.
- `DampingPokePolicy`: watches which way the tip swings first, then rests the fingers against
  the object's face just below its tip on that side (the x or y face the swing points to),
  where every swing strikes them (Poke4D's ``settle`` task).
"""

from __future__ import annotations

from collections import deque

import numpy as np

from envs.base import MAX_DELTA

FINGER_BOX = np.array([[-0.011, -0.026, 0.0], [0.011, 0.026, 0.045]])  # the closed fingers (m, from the fingertips)
PALM_BOX = np.array([[-0.032, -0.104, 0.045], [0.032, 0.104, 0.14]])  # the Franka hand above them
FINGER_LENGTH = 0.045  # m: the fingers' length, from the fingertips to the palm
Z_MIN = 0.01  # m: the lowest fingertip target
SWING_THRESHOLD = 1e-3  # m: a tip displacement at least this long is a swing to damp
PALM_MARGIN = 1e-3  # m: the fingers are the hand points at least this far below the palm (at FINGER_LENGTH)
HOLD_STEPS = 1000  # control steps the damping finger stays against the object (longer than an episode)


def _extent(offsets: np.ndarray, direction: np.ndarray) -> float:
    """How far points (N, 3) reach along the horizontal unit ``direction``."""
    return float(np.max(offsets[:, :2] @ direction[:2]))


class _ScriptedPoker:
    """Base: a queue of fingertip targets, filled by `plan` when empty."""

    REQUIRED_KEYS = {"obs": ("agent_pos",), "info": ("object_points",)}  # what ``act`` reads: the env must give it

    def __init__(self, rng: np.random.Generator, step: float = 0.04, clearance: float = 0.03,
                 action_mode: str = "absolute"):
        if action_mode not in ("absolute", "delta"):
            raise ValueError(f"action_mode must be 'absolute' or 'delta', got {action_mode!r}")
        if not (step > 0 and clearance > 0):
            raise ValueError(f"step and clearance must be positive, got {step}, {clearance}")
        self.rng, self.step, self.clearance, self.action_mode = rng, step, clearance, action_mode
        self._queue: deque[np.ndarray] = deque()

    def reset(self, rng: np.random.Generator | None = None) -> None:
        """Forget the current plan (and optionally reseed)."""
        self._queue.clear()
        if rng is not None:
            self.rng = rng

    def line(self, start: np.ndarray, end: np.ndarray) -> list[np.ndarray]:
        """Targets from ``start`` (excluded) to ``end`` at most ``step`` apart."""
        n = max(1, int(np.ceil(np.linalg.norm(end - start) / self.step)))
        return [start + (end - start) * (i + 1) / n for i in range(n)]

    def travel(self, start: np.ndarray, end: np.ndarray, top: float) -> list[np.ndarray]:
        """Over the object: up to ``top + clearance`` (if lower), across, down to ``end``."""
        z = max(top + self.clearance, start[2], end[2])
        up, over = np.array([*start[:2], z]), np.array([*end[:2], z])
        return self.line(start, up) + self.line(up, over) + self.line(over, end)

    @staticmethod
    def hand_offsets(obs: dict, below: float = np.inf) -> np.ndarray:
        """Gripper points relative to the fingertips (N, 3) up to height ``below`` above them (the part that
        can meet the object), or the corners of boxes around the fingers and the palm."""
        if "gripper_points" in obs:
            rel = np.asarray(obs["gripper_points"], float) - np.asarray(obs["agent_pos"], float)
        else:
            rel = np.array([[x, y, z] for lo, hi in (FINGER_BOX, PALM_BOX)
                            for x in (lo[0], hi[0]) for y in (lo[1], hi[1]) for z in (lo[2], hi[2])])
        return rel[rel[:, 2] <= max(below, 0.0)]

    def plan(self, obs: dict, info: dict) -> None:
        """Queue targets."""
        raise NotImplementedError

    def act(self, obs: dict, info: dict | None = None) -> np.ndarray:
        """The next action for ``obs`` and ``info`` (needs ``info["object_points"]``)."""
        if info is None or "object_points" not in info:
            raise ValueError("the poke policies need info['object_points'] (the object's tracked surface points)")
        ee = np.asarray(obs["agent_pos"], dtype=float)
        if not self._queue:
            self.plan(obs, info)
        target = self._queue.popleft()
        if self.action_mode == "delta":
            return np.clip(target - ee, -MAX_DELTA, MAX_DELTA).astype(np.float32)
        return target.astype(np.float32)


class RandomPokePolicy(_ScriptedPoker):
    """Random pokes into the object from any horizontal direction (see the module docstring)."""

    def __init__(self, rng: np.random.Generator, height_range: tuple[float, float] = (0.4, 1.0),
                 depth_range: tuple[float, float] = (0.01, 0.05), hold_range: tuple[int, int] = (0, 4),
                 standoff: float = 0.03, retreat: float = 0.0, rest_range: tuple[int, int] = (0, 0), **kw):
        super().__init__(rng, **kw)
        if not (0 < height_range[0] <= height_range[1] and 0 <= depth_range[0] <= depth_range[1]
                and 0 <= hold_range[0] <= hold_range[1] and standoff > 0 and retreat >= 0
                and 0 <= rest_range[0] <= rest_range[1]):
            raise ValueError("height_range, depth_range, hold_range and rest_range must be ordered non-negative "
                             "ranges, standoff positive and retreat non-negative, got "
                             f"{height_range}, {depth_range}, {hold_range}, {rest_range}, {standoff}, {retreat}")
        self.height_range, self.depth_range, self.hold_range = height_range, depth_range, hold_range
        self.standoff, self.retreat, self.rest_range = standoff, retreat, rest_range

    def plan(self, obs: dict, info: dict) -> None:
        """Queue one poke: travel to a pre-poke point, push through the surface, hold, pull back."""
        pts = np.asarray(info["object_points"], dtype=float)
        ee = np.asarray(obs["agent_pos"], dtype=float)
        centre, top = pts[:, :2].mean(0), float(pts[:, 2].max())
        a = self.rng.uniform(-np.pi, np.pi)
        u = np.array([np.cos(a), np.sin(a), 0.0])  # push direction (toward the object)
        z = max(Z_MIN, self.rng.uniform(*self.height_range) * top)
        hand = self.hand_offsets(obs, below=top - z)  # the part of the hand at the object's height
        surface = _extent(pts - np.array([*centre, 0.0]), -u)  # the object's face the hand meets
        gap = surface + _extent(hand, u)
        start = np.array([*(centre - u[:2] * (gap + self.standoff)), z])
        end = start + u * (self.standoff + self.rng.uniform(*self.depth_range))
        push = self.line(start, end)
        hold = [end] * int(self.rng.integers(self.hold_range[0], self.hold_range[1] + 1))
        away = start - u * self.retreat  # after the poke: back off and let the object ring
        rest = [away] * int(self.rng.integers(self.rest_range[0], self.rest_range[1] + 1))
        self._queue.extend(self.travel(ee, start, top) + push + hold + self.line(end, away) + rest)


class DampingPokePolicy(_ScriptedPoker):
    """A finger rested against the ringing object below its tip, on the side it first swings to."""

    REQUIRED_KEYS = {"obs": ("agent_pos",), "info": ("object_points", "tip_displacement")}

    def __init__(self, rng: np.random.Generator, below_tip: float = 0.035, gap: float = 0.001,
                 approach: float = 0.08, **kw):
        super().__init__(rng, **kw)
        self.below_tip, self.gap, self.approach = below_tip, gap, approach
        self._rest: np.ndarray | None = None

    def reset(self, rng: np.random.Generator | None = None) -> None:
        """Forget the plan and the object's rest shape."""
        super().reset(rng)
        self._rest = None

    def plan(self, obs: dict, info: dict) -> None:
        """Hold still until the tip has moved, then go and rest a finger against it."""
        pts = np.asarray(info["object_points"], dtype=float)
        ee = np.asarray(obs["agent_pos"], dtype=float)
        swing = np.asarray(info["tip_displacement"], dtype=float)[:2]
        if self._rest is None:
            self._rest = pts  # the first look: the object at rest (or as near to it as it gets)
        if np.linalg.norm(swing) < SWING_THRESHOLD:
            self._queue.append(ee)
            return
        rest = self._rest
        axis = int(np.argmax(np.abs(swing)))  # the faces of the boxy objects and fingers are axis-aligned
        u = np.zeros(3)
        u[axis] = np.sign(swing[axis])
        centre, top = rest[:, :2].mean(0), float(rest[:, 2].max())
        fingers = self.hand_offsets(obs, below=FINGER_LENGTH - PALM_MARGIN)
        offset = _extent(rest - np.array([*centre, 0.0]), u) + _extent(fingers, -u) + self.gap
        touch = np.array([*(centre + u[:2] * offset), max(Z_MIN, top - self.below_tip)])
        approach = touch + u * self.approach  # come down clear of the swing, then move in
        self._queue.extend(self.travel(ee, approach, top) + self.line(approach, touch))
        self._queue.extend([touch] * HOLD_STEPS)
