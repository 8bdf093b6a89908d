"""Push primitives as an RL action space: one agent action = one whole push of the T.

Per-step fingertip actions make reinforcement learning on Push-T an exploration problem: a
Gaussian policy jitters in place, rarely reaches the block, and when it does its pushes move
the block away from the goal more often than toward it, so PPO learns to keep off the block.
`PushPrimitiveActions` gives the agent the action space the scripted pushers and
`PrimitiveMPC` use (`policies.scripted`): a contact on the T's outline, a direction within
``max_angle_deg`` of the inward normal there and a push length. Executing it steps the
wrapped env with absolute fingertip targets: around the block to a point ``standoff``
behind the contact, then through the contact for the push length.

Action ``a`` in [-1, 1]^3: ``a[0]`` the position along the outline (its M sample points in
order, -1 the first and 1 the last), ``a[1]`` the angle off the normal (+-``max_angle_deg``),
``a[2]`` the length, log-uniform between ``min_length`` and ``max_length``. The reward of a
push is the wrapped env's reward at its last inner step (that of the state the push reached),
so rewards of the wrapped env that depend on the state alone keep their meaning; ``info``
gains ``inner_steps`` and ``inner_rewards`` (every inner step's reward) and ``max_inner_info``
(the info of the step with the highest reward). The episode ends when the wrapped env's does.
"""

from __future__ import annotations

import math
from typing import Any, SupportsFloat

import gymnasium as gym
import numpy as np

from .scripted import STEP, PushPolicy, push_direction, travel


class PushPrimitiveActions(gym.Wrapper):
    """PushT4D with push-primitive actions (module docstring); the wrapped env takes absolute actions."""

    def __init__(self, env: gym.Env, max_angle_deg: float = 30.0, min_length: float = 0.01, max_length: float = 0.10,
                 standoff: float = 0.03, step: float = STEP):
        super().__init__(env)
        if getattr(env.unwrapped, "action_mode", None) != "absolute":
            raise ValueError("PushPrimitiveActions needs a PushT4D env with action_mode='absolute' (it sends "
                             f"fingertip targets), got action_mode={getattr(env.unwrapped, 'action_mode', None)!r}")
        if not 0 <= max_angle_deg < 90:
            raise ValueError(f"max_angle_deg must lie in [0, 90), got {max_angle_deg!r}")
        if not 0 < min_length <= max_length:
            raise ValueError(f"need 0 < min_length <= max_length, got {min_length!r}, {max_length!r}")
        self.max_angle, self.lengths = math.radians(max_angle_deg), (math.log(min_length), math.log(max_length))
        # the pushers' geometry; their random generator is never drawn from here
        self.pusher = PushPolicy(np.random.default_rng(0), step=step, standoff=standoff)
        self.action_space = gym.spaces.Box(-1.0, 1.0, (3,), np.float32)
        self._obs: Any = None

    def decode(self, action: Any) -> tuple[int, float, float]:
        """(outline index, angle off the inward normal in radians, length in m) of ``action``."""
        a = np.asarray(action, np.float64).reshape(-1)
        if a.shape != (3,) or not np.all(np.isfinite(a)):
            raise ValueError(f"a push action is 3 finite numbers in [-1, 1], got {action!r}")
        a = np.clip(a, -1.0, 1.0)
        M = len(self.pusher.outline)
        index = min(M - 1, int((a[0] + 1) / 2 * M))
        lo, hi = self.lengths
        return index, float(a[1] * self.max_angle), float(math.exp(lo + (a[2] + 1) / 2 * (hi - lo)))

    def targets(self, obs: dict, action: Any) -> list[np.ndarray]:
        """The absolute fingertip targets that execute ``action`` from observation ``obs``."""
        index, angle, length = self.decode(action)
        pose, ee = np.asarray(obs["block_pose"], np.float64), np.asarray(obs["agent_pos"], np.float64)
        u = push_direction(pose, self.pusher.normals[index : index + 1], np.array([angle]))[0]
        pre, push = self.pusher.push_path(pose, index, u, length)
        return travel(pose, ee, pre, self.pusher.step) + push

    def reset(self, *, seed: int | None = None, options: dict | None = None) -> tuple[Any, dict]:
        """Reset the wrapped env."""
        self._obs, info = self.env.reset(seed=seed, options=options)
        return self._obs, info

    def step(self, action: Any) -> tuple[Any, SupportsFloat, bool, bool, dict]:
        """Execute one push; the reward is the wrapped env's at the push's last inner step."""
        if self._obs is None:
            raise RuntimeError("call reset() before step()")
        rewards, best, terminated, truncated = [], None, False, False
        for target in self.targets(self._obs, action):
            self._obs, reward, terminated, truncated, info = self.env.step(target.astype(np.float32))
            rewards.append(float(reward))
            if best is None or rewards[-1] >= max(rewards[:-1], default=-math.inf):
                best = info
            if terminated or truncated:
                break
        info = dict(info, inner_steps=len(rewards), inner_rewards=rewards, max_inner_info=best)
        return self._obs, rewards[-1], terminated, truncated, info
