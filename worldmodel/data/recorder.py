"""Recording gymnasium envs into rollout stores: the rows of an episode and the ``RecordRollout`` wrapper.

Row t holds the observation at t (``STEP_KEYS`` and, unless left out, ``IMAGE_KEYS``), its
``info`` entries (``INFO_KEYS``, ``EXTRA_INFO_KEYS``, per-point ``TRACK_KEYS``, or each scene
point's object-frame coordinates ``scene_obj_coords`` from the object's full pose, ``block_pose7`` or
``object_pose7``), and what the action taken from it did (``action``, ``reward``, ``terminated``,
``is_success``); one key of each object-pose pair is recorded (``POSE_KEYS``, ``POSE7_KEYS``): see
`worldmodel.data.schema`.
"""

from __future__ import annotations

import inspect
import os
from typing import Any

import gymnasium as gym
import numpy as np

from robots.transforms import pose_matrix

from .schema import (
    EPISODE_INFO_KEYS,
    EXTRA_INFO_KEYS,
    IMAGE_KEYS,
    INFO_KEYS,
    POSE7_KEYS,
    POSE_KEYS,
    STEP_KEYS,
    TRACK_KEYS,
    jsonable,
    pose7_key,
)
from .writer import RolloutWriter


def resolved_env_kwargs(env: gym.Env) -> dict[str, Any]:
    """Every keyword argument the env was built with, defaults included (JSON types).

    The defaults come from the ``__init__`` signatures of the unwrapped env's class and, as far as each passes
    ``**kwargs`` on, of its bases (a subclass's default wins; a class that names all its arguments ends the walk:
    its bases' arguments are not the env's, e.g. PushT4D-v0 builds a Push4D env without taking its ``object``);
    the values given to ``gym.make`` override them.
    """
    given = dict(env.spec.kwargs) if env.spec is not None else {}
    resolved: dict[str, Any] = {}
    for cls in type(env.unwrapped).__mro__:
        init = cls.__dict__.get("__init__")
        if init is None:
            continue
        params = inspect.signature(init).parameters
        for name, p in params.items():
            if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY) and p.default is not p.empty and name != "self":
                resolved.setdefault(name, p.default)
        if not any(p.kind == p.VAR_KEYWORD for p in params.values()):
            break
    resolved.update(given)
    return jsonable(resolved)


def scene_object_coords(points: np.ndarray, labels: np.ndarray, block_pose7: np.ndarray) -> np.ndarray:
    """Object-frame coordinates of object-labelled scene points (N, 3) for the object's full pose ``block_pose7``
    (PushT4D's ``block_pose7`` or Push4D's ``object_pose7``); NaN for static points."""
    T = pose_matrix(block_pose7)
    local = (points - T[:3, 3]) @ T[:3, :3]
    return np.where((labels == 1)[:, None], local, np.nan).astype(np.float32)


def step_row(obs: dict, info: dict, record_images: bool | None = None) -> dict[str, np.ndarray]:
    """The recorded row of an observation and its info (before the action's outcome is added).

    Images (``rgb``, ``depth``, ``segmentation``) are recorded when the observation holds them,
    unless ``record_images`` is False.
    """
    # copies: an env may hand out views of buffers it updates in place on the next step
    keys = _one_pose(STEP_KEYS + (IMAGE_KEYS if record_images is not False else ()), obs, POSE_KEYS)
    row = {k: np.array(obs[k]) for k in keys if k in obs}
    row.update({k: np.array(info[k]) for k in _one_pose(INFO_KEYS + EXTRA_INFO_KEYS, info, POSE7_KEYS) if k in info})
    pose7 = pose7_key(info)
    if "scene_track_ids" in info:
        row.update({k: np.array(info[k]) for k in TRACK_KEYS})
    elif "scene_points" in obs and pose7 is not None:
        row["scene_obj_coords"] = scene_object_coords(obs["scene_points"], obs["scene_labels"], info[pose7])
    return row


def episode_info(info: dict) -> dict[str, Any]:
    """The per-episode facts of a reset's ``info`` that a store keeps (``EPISODE_INFO_KEYS``), as JSON types."""
    return jsonable({k: info[k] for k in EPISODE_INFO_KEYS if k in info})


def _one_pose(keys: tuple[str, ...], given: dict, pair: tuple[str, ...]) -> tuple[str, ...]:
    """``keys`` without the keys of ``pair`` after the first one ``given`` holds (a store records one pose key)."""
    first = next((k for k in pair if k in given), None)
    return tuple(k for k in keys if k not in pair or k == first)


def check_image_recording(observation_space: gym.spaces.Space, record_images: bool | None) -> None:
    """ValueError when ``record_images=True`` but the observations hold no images to record."""
    keys = getattr(observation_space, "spaces", {})
    if record_images and "rgb" not in keys:
        raise ValueError("record_images=True needs observations with images: make the env with obs_mode='rgbd' "
                         f"or 'all' (its observations hold {sorted(keys)})")


class EpisodeRecorder:
    """Builds one episode's rows from ``reset`` and ``step`` results (the row layout of the module docstring).

    ``start(obs, info)`` after a reset, ``step(action, obs, reward, terminated, info)`` after each
    step, ``arrays()`` and ``episode_info`` (the reset info's ``EPISODE_INFO_KEYS``) for ``RolloutWriter.add_episode``.
    """

    def __init__(self, record_images: bool | None = None):
        self.record_images = record_images
        self.rows: dict[str, list] = {}
        self.episode_info: dict[str, Any] = {}
        self._pending: dict | None = None

    def start(self, obs: dict, info: dict) -> None:
        """Begin a new episode at its first observation."""
        self.rows = {}
        self.episode_info = episode_info(info)
        self._pending = step_row(obs, info, self.record_images)

    def step(self, action: Any, obs: dict, reward: float, terminated: bool, info: dict) -> None:
        """Complete the pending row with the action and its outcome, and hold the next observation."""
        if self._pending is None:
            raise RuntimeError("EpisodeRecorder.step before start: call start(obs, info) after each reset")
        row = self._pending
        row["action"] = np.asarray(action, dtype=np.float32)
        row["reward"] = np.float32(reward)
        row["terminated"] = np.bool_(terminated)
        if "is_success" in info:
            row["is_success"] = np.bool_(info["is_success"])
        for k, v in row.items():
            self.rows.setdefault(k, []).append(v)
        self._pending = step_row(obs, info, self.record_images)

    def arrays(self) -> dict[str, np.ndarray]:
        """The episode's completed rows as stacked arrays."""
        return {k: np.stack(v) for k, v in self.rows.items()}


class RecordRollout(gym.Wrapper):
    """Records every finished episode of the wrapped env into a zarr store (see the module docstring).

    An episode is committed when it terminates or is truncated; an episode cut short by a
    new ``reset`` is discarded. Images are recorded whenever the observations hold them;
    ``record_images=True`` insists on them (ValueError for an env without image observations),
    ``False`` leaves them out. The store's attributes hold the env id, its full resolved
    kwargs, ``fps`` and ``attrs``; resuming into a store of another configuration is refused.
    """

    def __init__(self, env: gym.Env, path: str | os.PathLike, resume: bool = False,
                 record_images: bool | None = None, attrs: dict[str, Any] | None = None):
        super().__init__(env)
        check_image_recording(env.observation_space, record_images)
        spec = env.spec
        base_attrs = {
            "env_id": spec.id if spec else type(env.unwrapped).__name__,
            "env_kwargs": resolved_env_kwargs(env),
            "fps": env.metadata.get("render_fps"),
            "record_images": record_images,
        }
        self.writer = RolloutWriter(path, {**base_attrs, **(attrs or {})}, resume=resume)
        self.recorder = EpisodeRecorder(record_images)
        self._seed = -1

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        """Reset the env and start buffering a new episode."""
        obs, info = self.env.reset(seed=seed, options=options)
        self.recorder.start(obs, info)
        self._seed = -1 if seed is None else int(seed)
        return obs, info

    def step(self, action):
        """Step the env, buffer the row, and commit the episode when it ends."""
        obs, reward, terminated, truncated, info = self.env.step(action)
        self.recorder.step(action, obs, reward, terminated, info)
        if terminated or truncated:
            self.writer.add_episode(self.recorder.arrays(), self._seed, self.recorder.episode_info)
            self.recorder.start(obs, info)
        return obs, reward, terminated, truncated, info
