"""Rewards from point flow as gymnasium wrappers, usable with any RL library (DESIGN §7).

Both wrappers compare the block's K true tracked points ``info["object_points"]`` (exact
tracks, the same surface points every step) with a **target flow**: by default the points
at the env's goal pose (``info["goal_object_points"]``); with ``target_pose=(x, y, yaw)``
the same points at that pose; with ``target_flow`` (T, K, 3) a time-aligned sequence of
target positions, where the state reached after t steps (t = 0 at reset) is compared with
row ``min(t, T - 1)`` (row 0 is the start state's target, as in a Dream2Flow flow that
starts at the first frame). The flow distance is d = mean_k ||p_k - target_k|| in metres.

- `FlowReward` (Dream2Flow-style flow tracking): r_flow = exp(-d / scale), in (0, 1], 1 on
  the target. ``mode="replace"`` returns r_flow, ``mode="add"`` the env's reward + r_flow.
- `ModelReward`: a learned predictor scores the agent's action as potential-based shaping.
  Phi_t(s) = -d(s, t) on the true tracked points. Before the action is executed the model
  predicts the block after it, and F = gamma * Phi_{t+1}(s_pred) - Phi_t(s_t); the reward is
  the env's reward + weight * F. With a perfect model F is exactly potential-based shaping
  (Ng et al., 1999: the optimal policy is unchanged and the terms telescope); model error adds
  gamma * (Phi(s_pred) - Phi(s_{t+1})). A point-flow model predicts the block's *scene* points
  (a camera-visible subset), so their predicted motion is reduced to the planar rigid motion
  that fits it best (least squares) and applied to the true tracked points: both potentials are
  then on the same points, with no bias from the two point sets. A dynamics object with a
  ``rollout`` method (e.g. `policies.dynamics.OracleDynamics`) must instead predict the
  positions of ``info["object_points"]`` themselves. Its optional ``reset()`` is called at
  each episode start and ``observe(obs, info)`` after every reset and step (models that use
  the points' previous displacement need this). Wrapped around push actions
  (`policies.push_actions.PushPrimitiveActions`), the model predicts the whole push from its
  pre-push point (the travel there through free space moves nothing) and t counts env steps.

Every step's ``info`` gains ``task_reward`` (the env's own reward) and ``flow_distance`` (d);
FlowReward adds ``flow_reward``, ModelReward ``model_shaping`` (F) and ``potential`` (Phi of
the reached state; also set at reset).
"""

from __future__ import annotations

import os
from typing import Any, SupportsFloat

import gymnasium as gym
import numpy as np
import torch

from envs.pusht import geometry as geo
from worldmodel.dynamics import LearnedDynamics

from .dynamics import goal_positions

REWARD_MODES = ("replace", "add")
DEFAULT_MAX_SPEED = 0.5  # m/s: fingertip speed for a learned model when the env's robot model does not say


def mean_distance(points: np.ndarray, target: np.ndarray) -> float:
    """Mean Euclidean distance between corresponding points (N, 3) and (N, 3)."""
    return float(np.linalg.norm(np.asarray(points, np.float64) - np.asarray(target, np.float64), axis=-1).mean())


def transfer_rigid_motion(source: np.ndarray, moved: np.ndarray, points: np.ndarray) -> np.ndarray:
    """Apply to ``points`` (K, 3) the planar rigid motion (yaw about +z, xy translation) that best maps
    ``source`` (N, 3) onto ``moved`` (N, 3) in the least-squares sense (2D Kabsch); z is kept."""
    src, dst = np.asarray(source, np.float64)[:, :2], np.asarray(moved, np.float64)[:, :2]
    cs, cd = src.mean(0), dst.mean(0)
    a, b = src - cs, dst - cd
    yaw = np.arctan2(np.sum(a[:, 0] * b[:, 1] - a[:, 1] * b[:, 0]), np.sum(a * b))
    out = np.array(points, np.float64)
    out[:, :2] = (out[:, :2] - cs) @ geo.rot_z(yaw)[:2, :2].T + cd
    return out


class _FlowTargetWrapper(gym.Wrapper):
    """Shared part of the flow rewards: the target flow, the step counter and the flow distance."""

    def __init__(self, env: gym.Env, target_pose: Any = None, target_flow: Any = None):
        super().__init__(env)
        if target_pose is not None and target_flow is not None:
            raise ValueError("give target_pose or target_flow, not both (neither: the env's goal pose)")
        self.target_pose = None if target_pose is None else self._finite(target_pose, "target_pose")
        if self.target_pose is not None and self.target_pose.shape != (3,):
            raise ValueError(f"target_pose must be (x, y, yaw), got shape {self.target_pose.shape}")
        self.target_flow = None if target_flow is None else self._finite(target_flow, "target_flow")
        if self.target_flow is not None and (self.target_flow.ndim != 3 or self.target_flow.shape[0] < 1
                                             or self.target_flow.shape[2] != 3):
            raise ValueError(f"target_flow must be (T, K, 3) target point positions with T >= 1, "
                             f"got shape {self.target_flow.shape}")
        self._t = 0

    @staticmethod
    def _finite(value: Any, name: str) -> np.ndarray:
        arr = np.asarray(value, dtype=np.float64)
        if not np.all(np.isfinite(arr)):
            raise ValueError(f"{name} must be finite numbers")
        return arr

    def target(self, info: dict, t: int) -> np.ndarray:
        """Target positions (K, 3) of the tracked points for the state reached after ``t`` steps."""
        if self.target_flow is not None:
            return self.target_flow[min(t, len(self.target_flow) - 1)]
        if self.target_pose is not None:
            goal = info.get("goal_pose", geo.GOAL_POSE)  # Push4D's goal; PushT4D's fixed one
            return goal_positions(np.asarray(info["goal_object_points"], np.float64), np.asarray(goal, np.float64),
                                  self.target_pose)
        return np.asarray(info["goal_object_points"], np.float64)

    def _check_info(self, info: dict) -> None:
        if "object_points" not in info or "goal_object_points" not in info:
            raise ValueError(f"{type(self).__name__} needs info['object_points'] and info['goal_object_points'] "
                             "(a PushT4D env)")
        if self.target_flow is not None and self.target_flow.shape[1] != len(info["object_points"]):
            raise ValueError(f"target_flow has {self.target_flow.shape[1]} points per row but the env tracks "
                             f"{len(info['object_points'])} object points")

    def flow_distance(self, info: dict, t: int | None = None) -> float:
        """Mean distance of the true tracked points in ``info`` to the target after ``t`` steps (default: now)."""
        return mean_distance(info["object_points"], self.target(info, self._t if t is None else t))

    def reset(self, *, seed: int | None = None, options: dict | None = None) -> tuple[Any, dict]:
        """Reset the env and the flow's clock; ``info["flow_distance"]`` is that of the start state."""
        obs, info = self.env.reset(seed=seed, options=options)
        self._check_info(info)
        self._t = 0
        info["flow_distance"] = self.flow_distance(info)
        return obs, info


class FlowReward(_FlowTargetWrapper):
    """Dense flow-tracking reward exp(-d / scale) of the true tracked points vs a target flow (module docstring).

    ``target_pose`` (x, y, yaw) or ``target_flow`` (T, K, 3) replace the env's goal pose as the
    target; ``scale`` (m, > 0) is the distance at which the reward is 1/e; ``mode`` is
    "replace" (the reward is r_flow) or "add" (the env's reward + r_flow).
    """

    def __init__(self, env: gym.Env, target_pose: Any = None, target_flow: Any = None, scale: float = 0.05,
                 mode: str = "replace"):
        super().__init__(env, target_pose, target_flow)
        if mode not in REWARD_MODES:
            raise ValueError(f"unknown mode {mode!r}; allowed: {REWARD_MODES}")
        if not (np.isfinite(scale) and scale > 0):
            raise ValueError(f"scale must be a positive distance in metres, got {scale!r}")
        self.scale, self.mode = float(scale), mode

    def step(self, action: Any) -> tuple[Any, SupportsFloat, bool, bool, dict]:
        """Step the env and reward how close the block's points are to the target flow."""
        obs, reward, terminated, truncated, info = self.env.step(action)
        self._t += 1
        d = self.flow_distance(info)
        flow_reward = float(np.exp(-d / self.scale))
        info.update(task_reward=float(reward), flow_distance=d, flow_reward=flow_reward)
        total = flow_reward if self.mode == "replace" else float(reward) + flow_reward
        return obs, total, terminated, truncated, info


class ModelReward(_FlowTargetWrapper):
    """The env's reward plus ``weight`` times model-predicted potential-based shaping (module docstring).

    ``model``: a point-flow model (``torch.nn.Module`` with the S x A -> S interface), a checkpoint
    directory or shipped name for `worldmodel.pretrained.load_model` ("pretrained" is the default
    one), a `LearnedDynamics`, or any object whose ``rollout(obs, info, targets (1, 1, 2))`` returns
    a `Prediction` of the positions of ``info["object_points"]``. ``gamma`` should be the RL
    algorithm's discount. The env must observe point clouds (``obs_mode="pointcloud"`` or "all").
    """

    def __init__(self, env: gym.Env, model: torch.nn.Module | str | os.PathLike | Any, weight: float = 1.0,
                 gamma: float = 0.99, target_pose: Any = None, target_flow: Any = None):
        super().__init__(env, target_pose, target_flow)
        space = env.observation_space
        if not isinstance(space, gym.spaces.Dict) or "scene_points" not in space.spaces:
            raise ValueError("ModelReward needs point-cloud observations: make the env with "
                             "obs_mode='pointcloud' (or 'all')")
        if not (np.isfinite(weight) and 0.0 < gamma <= 1.0):
            raise ValueError(f"weight must be finite and gamma in (0, 1], got weight={weight!r}, gamma={gamma!r}")
        self.weight, self.gamma = float(weight), float(gamma)
        self.dynamics = self._make_dynamics(model)
        self._obs: Any = None
        self._info: dict = {}

    def _make_dynamics(self, model: Any) -> Any:
        if isinstance(model, (str, os.PathLike)):
            from worldmodel.pretrained import load_model

            model = load_model(model)[0]
        if isinstance(model, torch.nn.Module):
            robot = getattr(self.env.unwrapped, "robot", None)
            max_speed = getattr(getattr(robot, "model", None), "max_speed", DEFAULT_MAX_SPEED)
            return LearnedDynamics(model, max_speed=max_speed)
        if callable(getattr(model, "rollout", None)):
            return model
        raise ValueError(f"model must be a torch.nn.Module, a checkpoint name or directory, or an object with "
                         f"rollout(obs, info, targets); got {type(model).__name__}")

    def potential(self, info: dict, t: int | None = None) -> float:
        """Phi: minus the mean distance of the true tracked points to the target after ``t`` steps."""
        return -self.flow_distance(info, t)

    def fingertip_target(self, obs: dict, action: Any) -> np.ndarray:
        """The absolute fingertip xy target (2,) that ``action`` sets (delta actions added to obs["agent_pos"])."""
        space = self.env.action_space
        a = np.clip(np.asarray(action, np.float64).reshape(-1), space.low, space.high)
        if getattr(self.env.unwrapped, "action_mode", "absolute") == "delta":
            a = np.clip(np.asarray(obs["agent_pos"], np.float64) + a, -geo.WORKSPACE / 2, geo.WORKSPACE / 2)
        return a

    def predict_points(self, obs: dict, info: dict, action: Any) -> np.ndarray:
        """Model-predicted positions (K, 3) of ``info["object_points"]`` after ``action`` (a whole push when
        the wrapped env has push actions, `policies.push_actions.PushPrimitiveActions`)."""
        return self._predict(obs, info, action)[0]

    def _predict(self, obs: dict, info: dict, action: Any) -> tuple[np.ndarray, int]:
        """`predict_points` and the number of env steps ``action`` takes (a push: its travel and push)."""
        plan = getattr(self.env, "plan", None)
        if callable(plan):  # the hand travels to the pre-push point through free space, then pushes
            push = plan(obs, action)
            targets = torch.as_tensor(np.asarray(push.push), dtype=torch.float32)[None]
            start = torch.as_tensor(push.pre, dtype=torch.float32)[None]
            prediction = self.dynamics.rollout(obs, info, targets, start_xy=start)
            steps = len(push.travel) + len(push.push)
        else:
            targets = torch.as_tensor(self.fingertip_target(obs, action), dtype=torch.float32).view(1, 1, 2)
            prediction, steps = self.dynamics.rollout(obs, info, targets), 1
        pred = prediction.points[0, -1].detach().cpu().numpy()
        current = np.asarray(info["object_points"], np.float64)
        if prediction.current is None:
            if pred.shape != current.shape:
                raise ValueError(f"the dynamics predicted {pred.shape[0]} points but the env tracks "
                                 f"{len(current)} object points")
            return pred, steps
        if len(pred) < 2:  # the block is not seen: assume it stays
            return current, steps
        return transfer_rigid_motion(prediction.current.detach().cpu().numpy(), pred, current), steps

    def reset(self, *, seed: int | None = None, options: dict | None = None) -> tuple[Any, dict]:
        """Reset the env; ``info["potential"]`` is Phi of the start state."""
        obs, info = super().reset(seed=seed, options=options)
        info["potential"] = -info["flow_distance"]
        if callable(getattr(self.dynamics, "reset", None)):
            self.dynamics.reset()
        self._observe(obs, info)
        return obs, info

    def _observe(self, obs: Any, info: dict) -> None:
        """Keep the state the next action is scored from, and show it to the dynamics (``observe``)."""
        if callable(getattr(self.dynamics, "observe", None)):
            self.dynamics.observe(obs, info)
        self._obs, self._info = obs, info

    def step(self, action: Any) -> tuple[Any, SupportsFloat, bool, bool, dict]:
        """Score ``action`` with the model, then execute it; the reward is the env's + weight * shaping."""
        if self._obs is None:
            raise RuntimeError("call reset() before step()")
        predicted, ahead = self._predict(self._obs, self._info, action)
        phi = self.potential(self._info)
        phi_next = -mean_distance(predicted, self.target(self._info, self._t + ahead))
        shaping = self.gamma * phi_next - phi
        obs, reward, terminated, truncated, info = self.env.step(action)
        self._t += int(info.get("inner_steps", 1))
        d = self.flow_distance(info)
        info.update(task_reward=float(reward), flow_distance=d, potential=-d, model_shaping=shaping)
        self._observe(obs, info)
        return obs, float(reward) + self.weight * shaping, terminated, truncated, info
