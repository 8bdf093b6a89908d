"""Dynamics adapters for planning: what a candidate sequence of fingertip targets does to the object.

Both adapters answer one question for a batch of K candidate plans of T absolute fingertip
xy targets (one per 0.1 s control step): where do the block's points go?
``rollout(obs, info, targets (K, T, 2), start_xy=None) -> Prediction`` with ``points``
(K, T, N, 3) at t+1..t+T and ``goal`` (N, 3), the same points' positions at the goal pose.
With ``start_xy`` (K, 2) each plan starts from that fingertip position instead, the hand
having travelled there around the block (the scripted pushers' travel); step 1 is then the
first step after arriving.

- `OracleDynamics`: the simulator itself. A twin env in ``obs_mode="state"`` (same robot,
  backend and physics; PushT4D-v0 or Push4D-v0 with any object) is set to the planning env's
  snapshot and stepped for every candidate; the points are the env's exact object tracks, and
  a travel to ``start_xy`` goes around the env's current object (`policies.footprint`).
- `worldmodel.dynamics.LearnedDynamics`: a point-flow model (S x A -> S), next to the models.
"""

from __future__ import annotations

from typing import Protocol

import gymnasium as gym
import numpy as np
import torch

from envs.pusht import geometry as geo
from worldmodel.dynamics import Prediction  # what every adapter's rollout returns

from .footprint import object_geometry, object_pose
from .scripted import STEP


class Dynamics(Protocol):
    """What a planner needs from a dynamics model (adapters may also define ``observe(obs, info)``,
    called every control step, and ``reset()``, called at an episode's start)."""

    def rollout(self, obs: dict, info: dict, targets: torch.Tensor, start_xy: torch.Tensor | None = None) -> Prediction:
        """Block points under K candidate target sequences (K, T, 2) from the current state (or from
        fingertip positions ``start_xy`` (K, 2) reached around the block)."""
        ...


def goal_positions(points: np.ndarray, block_pose: np.ndarray,
                   goal_pose: np.ndarray | tuple[float, float, float] = geo.GOAL_POSE) -> np.ndarray:
    """Where world points (N, 3) rigidly attached to the object at ``block_pose`` (x, y, yaw) are with the object at
    ``goal_pose`` (default PushT4D's goal; Push4D's is ``info["goal_pose"]``)."""
    R, G = geo.rot_z(block_pose[2]), geo.rot_z(goal_pose[2])
    local = (points - np.array([block_pose[0], block_pose[1], 0.0])) @ R
    return local @ G.T + np.array([goal_pose[0], goal_pose[1], 0.0])


class OracleDynamics:
    """The simulator as a dynamics model (see the module docstring); ``env`` is the planning env."""

    def __init__(self, env: gym.Env):
        base = env.unwrapped
        # the twin is the planning env without cameras: its own kwargs (block material, friction, ...)
        # when it was made by gym.make, else the attributes that shape the dynamics
        spec = env.spec or base.spec
        kwargs = dict(spec.kwargs) if spec is not None else {
            "robot": base.robot_name, "backend": base.backend_name, "max_speed": base.robot.model.max_speed}
        kwargs.update(obs_mode="state", render_mode=None, num_object_points=len(base.object_local))
        self.twin = gym.make(spec.id if spec is not None else "PushT4D-v0", **kwargs).unwrapped
        self.twin.reset(seed=0)
        self.env = base

    def rollout(self, obs: dict, info: dict, targets: torch.Tensor, start_xy: torch.Tensor | None = None) -> Prediction:
        """Step the twin through every candidate from the planning env's current state (after the
        travel around the block to ``start_xy`` when given)."""
        snapshot = self.env.get_state()
        K, T, _ = targets.shape
        out = np.empty((K, T, len(self.env.object_local), 3), np.float32)
        plans = targets.detach().cpu().numpy().astype(np.float64)
        starts = None if start_xy is None else np.broadcast_to(np.asarray(start_xy, np.float64), (K, 2))
        pose, ee = object_pose(obs), np.asarray(obs["agent_pos"], np.float64)
        geometry = object_geometry(info)
        for k in range(K):
            self.twin.set_state(snapshot)
            if starts is not None:
                for target in geometry.travel(pose, ee, starts[k], STEP):
                    self.twin.step(target)
            for t in range(T):
                _, _, _, _, step_info = self.twin.step(plans[k, t])
                out[k, t] = step_info["object_points"]
        return Prediction(torch.from_numpy(out), torch.as_tensor(info["goal_object_points"], dtype=torch.float32))

    def close(self) -> None:
        """Release the twin env."""
        self.twin.close()


