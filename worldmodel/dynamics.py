"""A point-flow model as planning dynamics: where K candidate fingertip plans take the object's scene points.

The planners' question (`policies.dynamics.Dynamics`): for K candidate plans of T absolute
fingertip xy targets (one per control period), ``rollout(obs, info, targets (K, T, 2),
start_xy=None) -> Prediction`` with ``points`` (K, T, N, 3) at t+1..t+T and ``goal`` (N, 3), the
same points' positions when the object is at its goal (the rigid motion that carries
``info["object_points"]`` onto ``info["goal_object_points"]``).

`LearnedDynamics` is a point-flow model (S x A -> S) as a dynamics model for planning. The scene
is encoded once per replan and the K candidates are decoded together; the gripper points of a
candidate are the current ones carried along the fingertip path (the hand keeps its height and
orientation while pushing; targets are approached at most ``max_speed`` m/s). A travel to
``start_xy`` is taken to leave the block where it is, at rest. Plans longer than the model's
horizon are chained: the predicted scene of one chunk is the input of the next. The model sees
``num_points`` scene and ``num_gripper_points`` gripper points (an even subset of the Morton-
ordered cloud, the sizes it was trained with; None: all), and the points are those scene points
labelled block. Models that take each point's ``previous_displacement`` (and
``earlier_displacement``, and older motions up to ``displacement_lag{MAX_HISTORY}``) get them from the
block poses of the last two (three, ...) observed steps, and ``start_displacement`` from the first
observed pose of the episode (`observe` is called every control step; zero where the episode has no
such step yet, as in the data).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from robots.control import CONTROL_DT
from robots.gripper_points import finite_difference_motion
from robots.transforms import kabsch_transform, pose_matrix

from .data.schema import POSE7_KEYS, pose7_key
from .formulation import LOSS_SCALE, MAX_HISTORY, PAST_KEYS, START_KEY


@dataclass
class Prediction:
    """Predicted block points (K, T, N, 3) at t+1..t+T, their goal positions (N, 3) and, for adapters
    that predict a subset of the observed points, where those points are now (N, 3; None: they are
    ``info["object_points"]``); a learned model's ``spread`` is its own estimate of how wrong it is
    (`LearnedDynamics.rollout`)."""

    points: torch.Tensor
    goal: torch.Tensor
    current: torch.Tensor | None = None
    spread: torch.Tensor | None = None  # (K,) the model's expected error of the block points (m); None: exact


def fingertip_path(start_xy: torch.Tensor, targets: torch.Tensor, max_step: float) -> torch.Tensor:
    """Fingertip xy (K, T, 2) after each step when it moves toward ``targets`` (K, T, 2) from
    ``start_xy`` (2,) or (K, 2) by at most ``max_step`` metres per step."""
    pos, path = start_xy.expand(targets.shape[0], 2), []
    for t in range(targets.shape[1]):
        delta = targets[:, t] - pos
        norm = torch.linalg.vector_norm(delta, dim=-1, keepdim=True).clamp(min=1e-12)
        pos = pos + delta * torch.clamp(max_step / norm, max=1.0)
        path.append(pos)
    return torch.stack(path, dim=1)


def goal_transfer(points: np.ndarray, info: dict) -> np.ndarray:
    """Where world points (N, 3) rigidly attached to the object are when it is at its goal: the least-squares
    rigid motion (Kabsch) carrying ``info["object_points"]`` onto ``info["goal_object_points"]``, applied."""
    T = kabsch_transform(info["object_points"], info["goal_object_points"])
    return np.asarray(points, np.float64) @ T[:3, :3].T + T[:3, 3]


def even_subset(n: int, k: int | None) -> np.ndarray:
    """Indices of ``k`` evenly spaced items of ``n`` (all when ``k`` is None or >= n)."""
    if k is None or k >= n:
        return np.arange(n)
    if k <= 0:
        raise ValueError(f"point counts must be positive or None, got {k}")
    return np.round(np.linspace(0, n - 1, k)).astype(np.int64)


class LearnedDynamics:
    """A point-flow model as a dynamics model (see the module docstring)."""

    def __init__(self, model: torch.nn.Module, max_speed: float = 0.5, dt: float = CONTROL_DT,
                 num_points: int | None = 512, num_gripper_points: int | None = 64):
        for name in ("encode_scene", "encode_push", "decode", "horizon"):
            if not hasattr(model, name):
                raise ValueError(f"{type(model).__name__} lacks {name}: LearnedDynamics needs the S x A -> S "
                                 "interface (encode_scene, encode_push, decode, horizon)")
        self.model, self.max_step, self.dt = model.eval(), max_speed * dt, dt
        self.num_points, self.num_gripper_points = num_points, num_gripper_points
        self.horizon = int(model.horizon)
        self.past = [k for k in PAST_KEYS if k in getattr(model, "inputs", ())]  # past displacements it takes
        self.since_start = START_KEY in getattr(model, "inputs", ())
        self._poses: list[np.ndarray] = []
        self._first_pose: np.ndarray | None = None

    @classmethod
    def from_checkpoint(cls, checkpoint: str, env: Any = None, **kwargs: Any) -> LearnedDynamics:
        """The model of ``checkpoint`` (a shipped name, ``"pretrained"`` or a ``wm4d train`` directory, loaded
        by `worldmodel.pretrained.load_model`) as dynamics; with ``env`` its robot's speed limit is the
        default ``max_speed`` (the other ``kwargs`` go to the constructor). ``dynamics=learned`` of ``wm4d eval``."""
        from .pretrained import load_model

        if env is not None:
            kwargs.setdefault("max_speed", env.unwrapped.robot.model.max_speed)
        return cls(load_model(checkpoint)[0], **kwargs)

    def reset(self) -> None:
        """Forget the observed block poses (new episode)."""
        self._poses, self._first_pose = [], None

    def observe(self, obs: dict, info: dict) -> None:
        """Remember the object's pose of this control step (``info["object_pose7"]`` of Push4D, ``block_pose7`` of
        PushT4D; for the points' previous displacement)."""
        key = pose7_key(info)
        if key is None:
            raise ValueError(f"LearnedDynamics needs the object's pose in info ({' or '.join(POSE7_KEYS)}); "
                             f"info holds {sorted(info)}")
        pose = np.asarray(info[key], np.float64)
        if self._first_pose is None:
            self._first_pose = pose
        self._poses = (self._poses + [pose])[-(MAX_HISTORY + 1):]

    def previous_displacement(self, obs: dict, lag: int = 1) -> np.ndarray:
        """x_{t-lag+1} - x_{t-lag} of the scene points (Ns, 3) (lag 1: previous, 2: earlier displacement):
        block points moved rigidly by the observed block poses, static points 0 (0 everywhere
        before lag + 1 steps were observed)."""
        pts = np.asarray(obs["scene_points"], np.float64)
        out = np.zeros_like(pts)
        if len(self._poses) >= lag + 1:
            now = np.linalg.inv(pose_matrix(self._poses[-1]))
            a, b = (pose_matrix(self._poses[-1 - i]) @ now for i in (lag - 1, lag))  # world at t -> t-i
            block = np.asarray(obs["scene_labels"]) == 1
            out[block] = pts[block] @ (a[:3, :3] - b[:3, :3]).T + (a[:3, 3] - b[:3, 3])
        return out

    def start_displacement(self, obs: dict) -> np.ndarray:
        """x_t - x_0 of the scene points (Ns, 3) since the episode's first observed step: block points moved
        rigidly by the observed block poses, static points 0 (0 everywhere before a step was observed)."""
        pts = np.asarray(obs["scene_points"], np.float64)
        out = np.zeros_like(pts)
        if self._first_pose is not None and self._poses:
            back = pose_matrix(self._first_pose) @ np.linalg.inv(pose_matrix(self._poses[-1]))  # world at t -> 0
            block = np.asarray(obs["scene_labels"]) == 1
            out[block] = pts[block] - (pts[block] @ back[:3, :3].T + back[:3, 3])
        return out

    @torch.no_grad()
    def rollout(self, obs: dict, info: dict, targets: torch.Tensor, start_xy: torch.Tensor | None = None) -> Prediction:
        """Predict the block's scene points under every candidate, one encoded scene per chunk."""
        for key in ("scene_points", "scene_colors", "scene_normals", "scene_labels", "gripper_points"):
            if key not in obs:
                raise ValueError(f"LearnedDynamics needs obs_mode='pointcloud' observations; obs lacks {key!r}")
        keep = even_subset(len(obs["scene_points"]), self.num_points)
        grip_keep = even_subset(len(obs["gripper_points"]), self.num_gripper_points)
        f32 = lambda k: torch.as_tensor(obs[k][grip_keep if k == "gripper_points" else keep], dtype=torch.float32)  # noqa: E731
        block = np.asarray(obs["scene_labels"])[keep] == 1
        K, T, _ = targets.shape
        now = torch.as_tensor(obs["agent_pos"], dtype=torch.float32)
        start = now.expand(K, 2) if start_xy is None else torch.as_tensor(start_xy, dtype=torch.float32).expand(K, 2)
        path = torch.cat([start[:, None], fingertip_path(start, targets.float(), self.max_step)], dim=1)
        grip0 = f32("gripper_points")
        scene = {"scene_points": f32("scene_points")[None], "scene_colors": f32("scene_colors")[None],
                 "scene_normals": f32("scene_normals")[None]}
        for lag, key in enumerate(self.past, start=1):  # after a travel the block is at rest
            past = self.previous_displacement(obs, lag)[keep] if start_xy is None else np.zeros((len(keep), 3))
            scene[key] = torch.as_tensor(past, dtype=torch.float32)[None]
        if self.since_start:  # a travel to start_xy leaves the block where it is now
            scene[START_KEY] = torch.as_tensor(self.start_displacement(obs)[keep], dtype=torch.float32)[None]
        H, chunks, spreads, t0 = self.horizon, [], [], 0
        while t0 < T:
            steps = min(H, T - t0)
            seg = path[:, t0 : t0 + steps + 1]
            if steps < H:  # the hand rests after the plan's last target
                seg = torch.cat([seg, seg[:, -1:].expand(K, H - steps, 2)], dim=1)
            grip = grip0 + torch.nn.functional.pad(path[:, t0] - now, (0, 1))[:, None]  # (K, Nr, 3)
            push = self.model.encode_push(self._push_batch(grip, seg))
            code = self.model.encode_scene(scene)
            flow, log_var = self.model.decode(code, push)  # (K, H, Ns, 3), (K, H, Ns)
            pts = scene["scene_points"][:, None] + flow[:, :steps]  # (K, steps, Ns, 3)
            chunks.append(pts)
            spreads.append(log_var[:, :steps][..., torch.from_numpy(block)])
            scene = {k: v.expand(K, *v.shape[1:]) for k, v in scene.items()}
            history = torch.cat([scene["scene_points"][:, None], pts], dim=1)  # t0 .. t0 + steps
            # lags beyond a short chunk are the motions before it
            past = [history[:, -lag] - history[:, -lag - 1] if steps >= lag else scene[self.past[lag - steps - 1]]
                    for lag in range(1, len(self.past) + 1)]
            scene.update(zip(self.past, past, strict=True))
            if self.since_start:
                scene[START_KEY] = scene[START_KEY] + (pts[:, -1] - scene["scene_points"])
            scene["scene_points"] = pts[:, -1]
            t0 += steps
        points = torch.cat(chunks, dim=1)[:, :, torch.from_numpy(block)]
        current = np.asarray(obs["scene_points"])[keep][block]
        goal = goal_transfer(current, info)
        # the loss makes exp(log_var) the expected Huber error in units of the loss scale (worldmodel.formulation)
        spread = LOSS_SCALE * torch.exp(torch.cat(spreads, dim=1)).mean(dim=(1, 2))
        return Prediction(points, torch.as_tensor(goal, dtype=torch.float32), torch.as_tensor(current), spread)

    def _push_batch(self, grip: torch.Tensor, path: torch.Tensor) -> dict[str, torch.Tensor]:
        """Gripper points (K, H+1, Nr, 3) starting at ``grip`` (K, Nr, 3) and translated along fingertip
        paths (K, H+1, 2), with the dataset's velocity and acceleration (central differences)."""
        shift = torch.nn.functional.pad(path - path[:, :1], (0, 1))[:, :, None]  # (K, H+1, 1, 3)
        pts = grip[:, None] + shift
        vel, acc = finite_difference_motion(pts, self.dt, axis=1)  # the dataset's features, the same function
        return {"gripper_points": pts, "gripper_velocity": vel, "gripper_acceleration": acc}
