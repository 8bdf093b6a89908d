"""Recording rollouts into a zarr store (zarr-python 3, format 3; diffusion-policy layout).

Layout: ``data/<key>`` arrays concatenated over time (row t = the observation at step t,
the action taken from it and the reward that action earned); ``meta/episode_seeds`` and
``meta/episode_ends`` (exclusive end row of each episode). An episode's data is written
first and its ``episode_ends`` entry last: that entry is the commit point. zarr writes each
chunk and metadata file atomically, so after a crash (even ``kill -9``) every committed
episode is intact; rows past the last committed end are ignored by readers and trimmed
when recording resumes. Growing ``episode_ends`` and writing its new entry are two writes:
an entry that does not exceed its predecessor (the fill value 0 left by a crash between
them) is not committed, nor is anything after it. Root attributes: env id, env kwargs, seed, package and schema version.

Schema versions (the on-disk contract of DESIGN §5; readers: ``worldmodel.data.rollouts``):

1. Per-step keys as recorded from the env: ``action``, ``reward``, the observation's
   ``agent_pos``, ``block_pose``, ``qpos``, ``scene_points``/``scene_colors``/``scene_normals``/
   ``scene_labels`` (Ns per step), ``gripper_points`` (Nr, 3), optionally ``rgb``/``depth``/
   ``segmentation``; from ``info`` ``block_pose7``, ``object_points``, ``coverage``; and
   ``scene_obj_coords`` (Ns, 3: each scene point in its object's frame, NaN for static points).
2. Adds optional per-point tracks, for objects that are not one rigid body (deformables,
   bring-your-own data, see ``worldmodel.data.byo``): ``scene_track_ids`` (Ns,) int32, the
   track each scene point is (-1 = static/untracked), indexing ``tracks`` (K, 3) float32, the
   positions of the K tracked points at this step (NaN for a track never observed), and
   ``track_visible`` (K,) bool (observed at this step rather than filled in). The three come
   together; envs report them in ``info`` (then ``scene_obj_coords`` is not written). A store
   with tracks needs neither ``scene_obj_coords`` nor ``block_pose7``; a version-1 store
   is a valid version-2 store without tracks. Deformable tasks also record ``collider_poses``
   (C, 7: x, y, z, qw, qx, qy, qz of their MPM colliders), so an episode can be replayed.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import gymnasium as gym
import numpy as np
import zarr

from . import pusht_geometry as geo

SCHEMA_VERSION = 2  # see the module docstring; worldmodel.data.rollouts reads versions 1..2
STEP_KEYS = ("agent_pos", "block_pose", "qpos", "scene_points", "scene_colors", "scene_normals", "scene_labels",
             "gripper_points", "rgb", "depth", "segmentation")
INFO_KEYS = ("block_pose7", "object_points", "object_points_visible", "coverage")
TRACK_KEYS = ("scene_track_ids", "tracks", "track_visible")  # schema 2, from envs whose objects deform
EXTRA_INFO_KEYS = ("collider_poses",)  # recorded when an env reports them (deformable tasks' MPM colliders)
ROWS_PER_CHUNK_BYTES = 4 << 20


def package_version() -> str:
    """The installed worldmodel4d version (or 'unknown')."""
    try:
        from importlib.metadata import version

        return version("worldmodel4d")
    except Exception:  # pragma: no cover - not installed as a distribution
        return "unknown"


def scene_object_coords(points: np.ndarray, labels: np.ndarray, block_pose7: np.ndarray) -> np.ndarray:
    """Block-frame coordinates of block-labelled scene points (N, 3); NaN for static points."""
    T = geo.pose_matrix(block_pose7)
    local = (points - T[:3, 3]) @ T[:3, :3]
    return np.where((labels == 1)[:, None], local, np.nan).astype(np.float32)


def committed_episode_ends(ends: np.ndarray) -> np.ndarray:
    """The committed prefix of an ``episode_ends`` array: up to the first entry that does not exceed
    its predecessor (an entry grown but never written by a crash between the two writes)."""
    ends = np.asarray(ends, dtype=np.int64)
    bad = np.flatnonzero(np.diff(ends, prepend=0) <= 0)
    return ends[: bad[0]] if len(bad) else ends


class RolloutWriter:
    """Appends whole episodes to a zarr store; ``resume=True`` continues an existing store."""

    def __init__(self, path: str | os.PathLike, attrs: dict[str, Any] | None = None, resume: bool = False):
        self.path = str(path)
        exists = os.path.exists(os.path.join(self.path, "zarr.json"))
        if exists and not resume:
            raise FileExistsError(f"{self.path} already exists; pass resume=true to append or choose another path")
        if exists:
            self.root = zarr.open_group(self.path, mode="a")
            self._trim_uncommitted()
        else:
            self.root = zarr.open_group(self.path, mode="w", zarr_format=3)
            self.root.attrs.update({"schema_version": SCHEMA_VERSION, "package_version": package_version(), **(attrs or {})})
            self.root.create_group("data")
            meta = self.root.create_group("meta")
            for name in ("episode_ends", "episode_seeds"):
                meta.create_array(name, shape=(0,), chunks=(4096,), dtype=np.int64)

    def _committed_ends(self) -> np.ndarray:
        return committed_episode_ends(self.root["meta/episode_ends"][:])

    @property
    def num_episodes(self) -> int:
        """Number of committed episodes."""
        return len(self._committed_ends())

    @property
    def num_rows(self) -> int:
        """Number of committed time steps."""
        ends = self._committed_ends()
        return int(ends[-1]) if len(ends) else 0

    def _trim_uncommitted(self) -> None:
        n = self.num_rows
        ends = self.root["meta/episode_ends"]
        if ends.shape[0] > self.num_episodes:
            ends.resize((self.num_episodes,))
        seeds = self.root["meta/episode_seeds"]
        if seeds.shape[0] > self.num_episodes:
            seeds.resize((self.num_episodes,))
        for arr in self.root["data"].array_values():
            if arr.shape[0] != n:
                arr.resize((n,) + arr.shape[1:])

    def add_episode(self, steps: dict[str, np.ndarray], seed: int) -> None:
        """Append one episode (every array has the same leading length T) and commit it."""
        lengths = {k: len(v) for k, v in steps.items()}
        T = next(iter(lengths.values()))
        if T == 0 or any(n != T for n in lengths.values()):
            raise ValueError(f"episode arrays must share a non-zero length, got {lengths}")
        start = self.num_rows
        data = self.root["data"]
        for key, value in steps.items():
            value = np.asarray(value)
            if key not in data:
                row_bytes = max(1, value[0].nbytes)
                chunk = max(1, min(1024, ROWS_PER_CHUNK_BYTES // row_bytes))
                data.create_array(key, shape=(0,) + value.shape[1:], chunks=(chunk,) + value.shape[1:], dtype=value.dtype)
            arr = data[key]
            if arr.shape[0] != start or arr.shape[1:] != value.shape[1:]:
                raise ValueError(f"key {key!r}: store has shape {arr.shape}, episode row shape {value.shape[1:]}")
            arr.resize((start + T,) + arr.shape[1:])
            arr[start:] = value
        missing = [k for k in data.array_keys() if k not in steps]
        if missing:
            raise ValueError(f"episode lacks keys {missing} that earlier episodes recorded")
        seeds = self.root["meta/episode_seeds"]
        seeds.resize((self.num_episodes + 1,))
        seeds[-1] = seed
        ends = self.root["meta/episode_ends"]
        ends.resize((self.num_episodes + 1,))
        ends[-1] = start + T  # commit point


@dataclass
class EpisodeBuffer:
    """Accumulates the rows of one episode."""

    rows: dict[str, list]

    @classmethod
    def empty(cls) -> "EpisodeBuffer":
        """A new empty buffer."""
        return cls({})

    def add(self, row: dict[str, np.ndarray]) -> None:
        """Append one row."""
        for k, v in row.items():
            self.rows.setdefault(k, []).append(np.asarray(v))

    def arrays(self) -> dict[str, np.ndarray]:
        """The episode as stacked arrays."""
        return {k: np.stack(v) for k, v in self.rows.items()}

    def __len__(self) -> int:
        return len(next(iter(self.rows.values()), []))


def step_row(obs: dict, info: dict, record_images: bool) -> dict[str, np.ndarray]:
    """The recorded row of an observation and its info (before the action is appended)."""
    # copies: an env may hand out views of buffers it updates in place on the next step
    row = {k: np.array(obs[k]) for k in STEP_KEYS if k in obs and (record_images or k not in ("rgb", "depth", "segmentation"))}
    row.update({k: np.array(info[k]) for k in INFO_KEYS + EXTRA_INFO_KEYS if k in info})
    if "scene_track_ids" in info:
        row.update({k: np.array(info[k]) for k in TRACK_KEYS})
    elif "scene_points" in obs and "block_pose7" in info:
        row["scene_obj_coords"] = scene_object_coords(obs["scene_points"], obs["scene_labels"], info["block_pose7"])
    return row


class RecordRollout(gym.Wrapper):
    """Records every finished episode of the wrapped env into a zarr store (see the module docstring).

    An episode is committed when it terminates or is truncated; an episode cut short by a
    new ``reset`` is discarded. ``record_images`` also stores rgb/depth/segmentation.
    """

    def __init__(self, env: gym.Env, path: str | os.PathLike, resume: bool = False, record_images: bool = False,
                 attrs: dict[str, Any] | None = None):
        super().__init__(env)
        spec = env.spec
        base_attrs = {
            "env_id": spec.id if spec else type(env.unwrapped).__name__,
            "env_kwargs": dict(spec.kwargs) if spec else {},
        }
        self.writer = RolloutWriter(path, {**base_attrs, **(attrs or {})}, resume=resume)
        self.record_images = record_images
        self._buffer = EpisodeBuffer.empty()
        self._pending: dict | None = None
        self._seed = -1

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        """Reset the env and start buffering a new episode."""
        obs, info = self.env.reset(seed=seed, options=options)
        self._buffer = EpisodeBuffer.empty()
        self._pending = step_row(obs, info, self.record_images)
        self._seed = -1 if seed is None else int(seed)
        return obs, info

    def step(self, action):
        """Step the env, buffer the row, and commit the episode when it ends."""
        obs, reward, terminated, truncated, info = self.env.step(action)
        row = self._pending
        row["action"] = np.asarray(action, dtype=np.float32)
        row["reward"] = np.float32(reward)
        self._buffer.add(row)
        self._pending = step_row(obs, info, self.record_images)
        if terminated or truncated:
            self.writer.add_episode(self._buffer.arrays(), self._seed)
            self._buffer = EpisodeBuffer.empty()
        return obs, reward, terminated, truncated, info
