"""Push primitives as an RL action space: one agent action = one whole push of the object (PushT4D's T, or
Push4D's object of the episode, `policies.footprint`).

Per-step fingertip actions make reinforcement learning on Push-T an exploration problem: a
Gaussian policy jitters in place, rarely reaches the block, and when it does its pushes move
the block away from the goal more often than toward it, so PPO learns to keep off the block.
`PushPrimitiveActions` makes one action one push, parametrised so that the push's effect is a
smooth function of the action (a policy can then map "where the goal is, seen from the
block" to "how to push" almost linearly):

``a`` in [-1, 1]^4: ``(a[0], a[1])`` the push direction in the block's frame (normalised;
(1, 0) pushes along the bar toward +x, (0, 1) along the stem toward its tip); ``a[2]`` the
line of the push, offset sideways from the centre of mass (0 through it; -1 and 1 the
outermost lines that still hit the T, so the offset sets how much the push turns the block); ``a[3]`` the
length past the contact, log-uniform between ``min_length`` and ``max_length``. The contact
is where that line first enters the T. Executing the push steps the wrapped env with
absolute fingertip targets: around the block to a point ``standoff`` behind the contact
(`policies.scripted.travel`), then through it.

The reward of a push is the wrapped env's reward at its last inner step (that of the state
the push reached), so rewards that depend on the state alone keep their meaning; ``info``
gains ``inner_steps``, ``inner_rewards`` (every inner step's reward) and ``push``
(contact, direction, length in the world frame). The episode ends when the wrapped env's does.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, SupportsFloat

import gymnasium as gym
import numpy as np
import shapely
from shapely.geometry import Polygon

from envs.pusht import geometry as geo

from .footprint import PushGeometry, object_geometry, object_pose, pusht_geometry, ring_coordinates
from .scripted import STEP, push_through

EDGE_MARGIN = 0.005  # m: the outermost push lines pass this far inside the T's silhouette


@dataclass
class PushPlan:
    """One push in the world frame: ``travel`` targets around the block to ``pre`` (``standoff``
    behind ``contact``), then ``push`` targets along ``direction`` for ``length`` metres past it."""

    travel: list[np.ndarray]
    push: list[np.ndarray]
    pre: np.ndarray
    contact: np.ndarray
    direction: np.ndarray
    length: float


class PushPrimitiveActions(gym.Wrapper):
    """PushT4D (or Push4D) with push-primitive actions (module docstring); the wrapped env takes absolute actions."""

    def __init__(self, env: gym.Env, min_length: float = 0.01, max_length: float = 0.10, standoff: float = 0.03,
                 step: float = STEP):
        super().__init__(env)
        if getattr(env.unwrapped, "action_mode", None) != "absolute":
            raise ValueError("PushPrimitiveActions needs a PushT4D env with action_mode='absolute' (it sends "
                             f"fingertip targets), got action_mode={getattr(env.unwrapped, 'action_mode', None)!r}")
        if not 0 < min_length <= max_length:
            raise ValueError(f"need 0 < min_length <= max_length, got {min_length!r}, {max_length!r}")
        if not (standoff > 0 and step > 0):
            raise ValueError(f"standoff and step must be positive distances, got {standoff!r}, {step!r}")
        self.lengths = (math.log(min_length), math.log(max_length))
        self.standoff, self.step_length = float(standoff), float(step)
        self.action_space = gym.spaces.Box(-1.0, 1.0, (4,), np.float32)
        self._use(pusht_geometry())
        self._obs: Any = None

    def _use(self, geometry: PushGeometry) -> None:
        """Decode pushes on ``geometry``'s footprint (PushT4D's T; Push4D's object of the episode)."""
        self.geometry = geometry
        self._footprint = geometry.footprint
        rings = ring_coordinates(geometry.footprint)
        self._from_com = np.concatenate([r for r, where in rings if where < 0]) - geometry.com
        # where a push line enters: the T's outer ring as always; every ring of a footprint with holes or parts
        single = isinstance(geometry.footprint, Polygon) and not geometry.footprint.interiors
        self._entry = geometry.footprint.exterior if single else geometry.footprint.boundary

    def decode(self, action: Any) -> tuple[np.ndarray, np.ndarray, float]:
        """(contact point (2,), unit push direction (2,), both in the block frame, and length in m) of ``action``."""
        a = np.asarray(action, np.float64).reshape(-1)
        if a.shape != (4,) or not np.all(np.isfinite(a)):
            raise ValueError(f"a push action is 4 finite numbers in [-1, 1], got {action!r}")
        a = np.clip(a, -1.0, 1.0)
        norm = math.hypot(a[0], a[1])
        u = a[:2] / norm if norm > 1e-6 else np.array([1.0, 0.0])
        side = np.array([-u[1], u[0]])
        com = self.geometry.com
        across = self._from_com @ side  # the object's silhouette seen along u
        lo, hi = across.min() + EDGE_MARGIN, across.max() - EDGE_MARGIN
        offset = a[2] * (hi if a[2] > 0 else -lo)  # 0: through the centre of mass (inside the T)
        origin = com + offset * side
        line = shapely.LineString([origin - u, origin + u])  # 1 m each way: longer than the object
        hit = line.intersection(self._entry)
        pts = np.array([c for g in getattr(hit, "geoms", [hit]) for c in g.coords])
        contact = pts[np.argmin((pts - origin) @ u)]  # where the line first enters the T
        lo_len, hi_len = self.lengths
        return contact, u, float(math.exp(lo_len + (a[3] + 1) / 2 * (hi_len - lo_len)))

    def plan(self, obs: dict, action: Any) -> PushPlan:
        """The fingertip targets that execute ``action`` from observation ``obs``."""
        contact, u, length = self.decode(action)
        pose, ee = object_pose(obs), np.asarray(obs["agent_pos"], np.float64)
        R = geo.rot_z(pose[2])[:2, :2]
        contact, u = R @ contact + pose[:2], R @ u
        pre, push = push_through(contact, u, length, self.standoff, self.step_length)
        return PushPlan(self.geometry.travel(pose, ee, pre, self.step_length), push, pre, contact, u, length)

    def reset(self, *, seed: int | None = None, options: dict | None = None) -> tuple[Any, dict]:
        """Reset the wrapped env (and take the episode's object from its ``info``)."""
        self._obs, info = self.env.reset(seed=seed, options=options)
        self._use(object_geometry(info))
        return self._obs, info

    def step(self, action: Any) -> tuple[Any, SupportsFloat, bool, bool, dict]:
        """Execute one push; the reward is the wrapped env's at the push's last inner step."""
        if self._obs is None:
            raise RuntimeError("call reset() before step()")
        plan = self.plan(self._obs, action)
        rewards, terminated, truncated = [], False, False
        for target in plan.travel + plan.push:
            self._obs, reward, terminated, truncated, info = self.env.step(target.astype(np.float32))
            rewards.append(float(reward))
            if terminated or truncated:
                break
        info = dict(info, inner_steps=len(rewards), inner_rewards=rewards,
                    push=dict(contact=plan.contact, direction=plan.direction, length=plan.length))
        return self._obs, rewards[-1], terminated, truncated, info
