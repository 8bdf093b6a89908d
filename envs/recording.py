"""Recording rollouts into a zarr store (zarr-python 3, format 3; diffusion-policy layout).

Layout: ``data/<key>`` arrays concatenated over time (row t = the observation at step t,
the action taken from it and what that action earned: ``reward``, ``terminated`` and
``is_success`` after it); ``meta/episode_seeds`` and ``meta/episode_ends`` (exclusive end row
of each episode). An episode's data is written first and its ``episode_ends`` entry last:
that entry is the commit point. zarr writes each chunk and metadata file atomically, so after
a crash (even ``kill -9``) every committed episode is intact; rows past the last committed end
are ignored by readers and trimmed when recording resumes. Growing ``episode_ends`` and writing
its new entry are two writes: an entry that does not exceed its predecessor (the fill value 0
left by a crash between them) is not committed, nor is anything after it.

Root attributes: ``schema_version``, ``package_version`` and the recording's configuration:
``env_id``, ``env_kwargs`` (the env's full resolved keyword arguments, defaults included),
``policy``, ``seed``, ``fps``, ... A store holds one configuration: resuming compares every
configuration attribute of the new run with the store's (``IDENTITY_KEYS``) and refuses, naming
each differing key with both values, before anything is written. A store is created only when
its first episode is committed, so a run that fails before that leaves nothing behind.

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
3. Adds per-step ``terminated`` (bool, the step taken from the row ended the episode by the
   task's own rule) and ``is_success`` (bool, the task's success after that step), and the
   ``fps`` attribute. A version-2 store is a valid version-3 store without them.
"""

from __future__ import annotations

import inspect
import os
from typing import Any

import gymnasium as gym
import numpy as np
import zarr

from . import pusht_geometry as geo

SCHEMA_VERSION = 3  # see the module docstring; worldmodel.data.rollouts reads versions 1..3
STEP_KEYS = ("agent_pos", "block_pose", "qpos", "scene_points", "scene_colors", "scene_normals", "scene_labels",
             "gripper_points")
IMAGE_KEYS = ("rgb", "depth", "segmentation")
INFO_KEYS = ("block_pose7", "object_points", "object_points_visible", "coverage")
TRACK_KEYS = ("scene_track_ids", "tracks", "track_visible")  # schema 2, from envs whose objects deform
EXTRA_INFO_KEYS = ("collider_poses",)  # recorded when an env reports them (deformable tasks' MPM colliders)
OUTCOME_KEYS = ("action", "reward", "terminated", "is_success")  # what the row's action did (schema 3)
# Root attributes that make up a store's configuration: a resumed run must match every one of them.
IDENTITY_KEYS = ("schema_version", "env_id", "env_kwargs", "policy", "seed", "max_steps", "fps", "record_images")
ROWS_PER_CHUNK_BYTES = 4 << 20


def package_version() -> str:
    """The installed worldmodel4d version (or 'unknown')."""
    try:
        from importlib.metadata import version

        return version("worldmodel4d")
    except Exception:  # pragma: no cover - not installed as a distribution
        return "unknown"


def jsonable(value: Any) -> Any:
    """``value`` as plain JSON types (tuples and arrays become lists, numpy scalars Python numbers), as stored."""
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if isinstance(value, np.ndarray):
        return jsonable(value.tolist())
    if isinstance(value, np.generic):
        return value.item()
    return value


def resolved_env_kwargs(env: gym.Env) -> dict[str, Any]:
    """Every keyword argument the env was built with, defaults included (JSON types).

    The defaults come from the ``__init__`` signatures along the unwrapped env's class
    hierarchy (a subclass's default wins); the values given to ``gym.make`` override them.
    """
    given = dict(env.spec.kwargs) if env.spec is not None else {}
    resolved: dict[str, Any] = {}
    for cls in reversed(type(env.unwrapped).__mro__):
        init = cls.__dict__.get("__init__")
        if init is None:
            continue
        for name, p in inspect.signature(init).parameters.items():
            if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY) and p.default is not p.empty and name != "self":
                resolved[name] = p.default
    resolved.update(given)
    return jsonable(resolved)


def _differences(prefix: str, a: Any, b: Any) -> list[str]:
    """Dotted differences of two JSON values; dicts of the same ``_target_`` class are compared key by key."""
    missing = "<absent>"
    if isinstance(a, dict) and isinstance(b, dict) and a.get("_target_") == b.get("_target_"):
        out: list[str] = []
        for k in sorted(set(a) | set(b)):
            out += _differences(f"{prefix}.{k}" if prefix else str(k), a.get(k, missing), b.get(k, missing))
        return out
    return [] if a == b else [f"{prefix}: store {a!r}, this run {b!r}"]


def configuration_differences(stored: dict[str, Any], wanted: dict[str, Any],
                              keys: tuple[str, ...] = IDENTITY_KEYS) -> list[str]:
    """``"key: store X, this run Y"`` for every configuration key (nested keys dotted) on which two runs differ.

    Only ``keys`` are compared; a key absent on one side is reported as ``<absent>``.
    """
    return _differences("", {k: jsonable(stored[k]) for k in keys if k in stored},
                        {k: jsonable(wanted[k]) for k in keys if k in wanted})


def is_store(path: str | os.PathLike) -> bool:
    """Whether ``path`` holds a zarr group (a rollout store or any other)."""
    return os.path.exists(os.path.join(str(path), "zarr.json"))


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
    """Appends whole episodes to a zarr store of one configuration (see the module docstring).

    ``attrs`` is the recording's configuration (``IDENTITY_KEYS`` are compared on resume) and any
    other metadata. A new store is created by the first ``add_episode``; ``resume=True`` continues
    an existing store only when its configuration equals ``attrs`` (``ValueError`` naming every
    difference otherwise, with the store untouched); without it an existing store is refused
    (``FileExistsError``), and so is a path that holds anything but a zarr store.
    """

    def __init__(self, path: str | os.PathLike, attrs: dict[str, Any] | None = None, resume: bool = False):
        self.path = str(path)
        self.attrs = jsonable({"schema_version": SCHEMA_VERSION, "package_version": package_version(),
                               **(attrs or {})})
        self.root: zarr.Group | None = None
        if is_store(self.path):
            if not resume:
                raise FileExistsError(f"{self.path} already exists; pass resume=true to append or choose another path")
            stored = dict(zarr.open_group(self.path, mode="r").attrs)
            diffs = configuration_differences(stored, self.attrs)
            if diffs:
                raise ValueError(f"refusing to append to {self.path}: it was recorded with another configuration "
                                 f"(a store holds one); differing keys: " + "; ".join(diffs)
                                 + ". Record into a new path, or rerun with the store's settings.")
            self.root = zarr.open_group(self.path, mode="a")
            self._trim_uncommitted()
        elif os.path.exists(self.path) and (not os.path.isdir(self.path) or os.listdir(self.path)):
            raise FileExistsError(f"{self.path} exists and is not a zarr store; choose another path")

    def _create(self) -> zarr.Group:
        root = zarr.open_group(self.path, mode="w", zarr_format=3)
        root.attrs.update(self.attrs)
        root.create_group("data")
        meta = root.create_group("meta")
        for name in ("episode_ends", "episode_seeds"):
            meta.create_array(name, shape=(0,), chunks=(4096,), dtype=np.int64)
        return root

    def _committed_ends(self) -> np.ndarray:
        if self.root is None:
            return np.zeros(0, np.int64)
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
        T = next(iter(lengths.values()), 0)
        if T == 0 or any(n != T for n in lengths.values()):
            raise ValueError(f"episode arrays must share a non-zero length, got {lengths}")
        if self.root is None:
            self.root = self._create()
        data = self.root["data"]
        start = self.num_rows
        missing = [k for k in data.array_keys() if k not in steps]
        new = [k for k in steps if k not in data] if start else []
        if missing or new:
            raise ValueError(f"episode keys differ from the store's: lacks {missing}, adds {new}")
        for key, value in steps.items():
            value = np.asarray(value)
            if key in data and data[key].shape[1:] != value.shape[1:]:
                raise ValueError(f"key {key!r}: store rows have shape {data[key].shape[1:]}, "
                                 f"this episode's {value.shape[1:]}")
        for key, value in steps.items():
            value = np.asarray(value)
            if key not in data:
                row_bytes = max(1, value[0].nbytes)
                chunk = max(1, min(1024, ROWS_PER_CHUNK_BYTES // row_bytes))
                data.create_array(key, shape=(0,) + value.shape[1:], chunks=(chunk,) + value.shape[1:],
                                  dtype=value.dtype)
            arr = data[key]
            arr.resize((start + T,) + arr.shape[1:])
            arr[start:] = value
        seeds = self.root["meta/episode_seeds"]
        seeds.resize((self.num_episodes + 1,))
        seeds[-1] = seed
        ends = self.root["meta/episode_ends"]
        ends.resize((self.num_episodes + 1,))
        ends[-1] = start + T  # commit point


def step_row(obs: dict, info: dict, record_images: bool | None = None) -> dict[str, np.ndarray]:
    """The recorded row of an observation and its info (before the action's outcome is added).

    Images (``rgb``, ``depth``, ``segmentation``) are recorded when the observation holds them,
    unless ``record_images`` is False.
    """
    # copies: an env may hand out views of buffers it updates in place on the next step
    keys = STEP_KEYS + (IMAGE_KEYS if record_images is not False else ())
    row = {k: np.array(obs[k]) for k in keys if k in obs}
    row.update({k: np.array(info[k]) for k in INFO_KEYS + EXTRA_INFO_KEYS if k in info})
    if "scene_track_ids" in info:
        row.update({k: np.array(info[k]) for k in TRACK_KEYS})
    elif "scene_points" in obs and "block_pose7" in info:
        row["scene_obj_coords"] = scene_object_coords(obs["scene_points"], obs["scene_labels"], info["block_pose7"])
    return row


def check_image_recording(observation_space: gym.spaces.Space, record_images: bool | None) -> None:
    """ValueError when ``record_images=True`` but the observations hold no images to record."""
    keys = getattr(observation_space, "spaces", {})
    if record_images and "rgb" not in keys:
        raise ValueError("record_images=True needs observations with images: make the env with obs_mode='rgbd' "
                         f"or 'all' (its observations hold {sorted(keys)})")


class EpisodeRecorder:
    """Builds one episode's rows from ``reset`` and ``step`` results (the row layout of the module docstring).

    ``start(obs, info)`` after a reset, ``step(action, obs, reward, terminated, info)`` after each
    step, ``arrays()`` for ``RolloutWriter.add_episode``.
    """

    def __init__(self, record_images: bool | None = None):
        self.record_images = record_images
        self.rows: dict[str, list] = {}
        self._pending: dict | None = None

    def start(self, obs: dict, info: dict) -> None:
        """Begin a new episode at its first observation."""
        self.rows = {}
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

    def __len__(self) -> int:
        return len(next(iter(self.rows.values()), []))


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
            self.writer.add_episode(self.recorder.arrays(), self._seed)
            self.recorder.start(obs, info)
        return obs, reward, terminated, truncated, info
