"""The on-disk contract of rollout stores (DESIGN §5): keys, schema version, commit point, configuration.

The writer (`worldmodel.data.writer`), the recording wrapper (`worldmodel.data.recorder`) and
the reader (`worldmodel.data.rollouts`) all take the schema from this module; it needs only
zarr and numpy.

Stores are zarr groups in the diffusion-policy layout, written as zarr format 2 with a Blosc
compressor (``ZARR_FORMAT``, `compressor`), so zarr-python 2.x (Diffusion Policy's ``ReplayBuffer``:
``zarr.open(path, 'r')['data']['action']``) and 3.x both read them; stores of schema 3 and older
are zarr format 3 and are still read (zarr-python 3 opens both formats).

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

Schema versions (`worldmodel.data.rollouts` reads 1 to ``SCHEMA_VERSION``; 1 to 3 are zarr format 3):

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
4. The keys and attributes of version 3, stored as zarr format 2 (``.zgroup``/``.zarray``/``.zattrs``
   metadata, Blosc-zstd chunks) so that zarr-python 2.x reads them too. Resuming a version-3 store
   is refused (its schema differs); record into a new path.

The object's pose is recorded under its task's own keys, one pair per store (``POSE_KEYS``,
``POSE7_KEYS``): PushT4D-v0's ``block_pose`` (step) and ``block_pose7`` (info), Push4D-v0's
``object_pose`` and ``object_pose7`` (the pose of the object's own frame, not of its centre of mass).
Everything that reads a pose (the recorder's ``scene_obj_coords``, the datasets' rigid targets) takes
whichever the store holds (`pose7_key`); an env that reports both records only the first. This added
no schema version: PushT4D stores are unchanged, and a reader that knows only ``block_pose7`` refuses a
Push4D store as lacking it rather than misreading it.

Per-episode facts (``EPISODE_INFO_KEYS`` of the reset's ``info``: Push4D-v0's ``object_name`` and the factor
values ``randomization`` drawn for the episode) are one JSON object per episode, UTF-8 bytes concatenated in
``meta/episode_info`` with the exclusive end of each episode's bytes in ``meta/episode_info_ends``; both are
written before the episode's ``episode_ends`` entry (the commit point), and readers look only at the committed
episodes' entries (``{}`` for a store without them). This too added no schema version: older readers ignore
the two arrays.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np
import zarr

SCHEMA_VERSION = 4  # see the module docstring
MIN_SCHEMA_VERSION = 1  # oldest version still read (version 1 = version 2 without tracks)
REQUIRED_PARTS = ("data", "meta/episode_ends", "meta/episode_seeds")
POSE_KEYS = ("block_pose", "object_pose")  # the object's planar pose (step key): PushT4D's, Push4D's; one per store
POSE7_KEYS = ("block_pose7", "object_pose7")  # its full pose (info key), likewise
STEP_KEYS = ("agent_pos", *POSE_KEYS, "qpos", "scene_points", "scene_colors", "scene_normals", "scene_labels",
             "gripper_points")
IMAGE_KEYS = ("rgb", "depth", "segmentation")
INFO_KEYS = (*POSE7_KEYS, "object_points", "object_points_visible", "coverage")
TRACK_KEYS = ("scene_track_ids", "tracks", "track_visible")  # schema 2, from envs whose objects deform
EXTRA_INFO_KEYS = ("collider_poses",)  # recorded when an env reports them (deformable tasks' MPM colliders)
EPISODE_INFO_KEYS = ("object_name", "randomization")  # per-episode facts of the reset's info, kept as JSON
EPISODE_INFO_PARTS = ("meta/episode_info", "meta/episode_info_ends")  # their bytes and each episode's end
# Root attributes that make up a store's configuration: a resumed run must match every one of them.
IDENTITY_KEYS = ("schema_version", "env_id", "env_kwargs", "policy", "seed", "max_steps", "fps", "record_images")
ROWS_PER_CHUNK_BYTES = 4 << 20
ZARR_FORMAT = 2  # written by schema 4 (readable by zarr-python 2.x and 3.x); schemas 1 to 3 wrote format 3
METADATA_FILES = ("zarr.json", ".zgroup")  # a group's metadata file in zarr format 3 / 2


def pose7_key(keys: Any) -> str | None:
    """The key of the object's full pose among ``keys`` (a store's keys, an info or a row): ``block_pose7`` or
    ``object_pose7``, whichever is there first (`POSE7_KEYS`); None when neither is."""
    return next((k for k in POSE7_KEYS if k in keys), None)


def compressor() -> Any:
    """The chunk compressor of format-2 stores: Blosc with zstd and byte shuffle, which every numcodecs
    release that zarr-python 2.x uses decodes (Diffusion Policy's stores use Blosc too)."""
    from numcodecs import Blosc  # installed with zarr

    return Blosc(cname="zstd", clevel=3, shuffle=Blosc.SHUFFLE)


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
    """Whether ``path`` holds a zarr group of format 2 or 3 (a rollout store or any other)."""
    return any(os.path.exists(os.path.join(str(path), name)) for name in METADATA_FILES)


def committed_episode_ends(ends: np.ndarray) -> np.ndarray:
    """The committed prefix of an ``episode_ends`` array: up to the first entry that does not exceed
    its predecessor (an entry grown but never written by a crash between the two writes)."""
    ends = np.asarray(ends, dtype=np.int64)
    bad = np.flatnonzero(np.diff(ends, prepend=0) <= 0)
    return ends[: bad[0]] if len(bad) else ends


def check_store(root: zarr.Group, path: str) -> None:
    """Raise ``ValueError`` naming what is wrong when ``root`` is not a readable rollout store."""
    version = root.attrs.get("schema_version")
    if not isinstance(version, int) or isinstance(version, bool):
        raise ValueError(f"{path}: no integer schema_version attribute (got {version!r}); not a rollout store")
    if version > SCHEMA_VERSION:
        raise ValueError(f"{path}: schema version {version} is newer than this reader supports "
                         f"({MIN_SCHEMA_VERSION}..{SCHEMA_VERSION}); upgrade worldmodel4d")
    if version < MIN_SCHEMA_VERSION:
        raise ValueError(f"{path}: schema version {version} is not supported ({MIN_SCHEMA_VERSION}..{SCHEMA_VERSION})")
    missing = [k for k in REQUIRED_PARTS if k not in root]
    if missing:
        raise ValueError(f"{path}: store lacks required keys {missing} (a rollout store has {list(REQUIRED_PARTS)})")
    present = [k for k in TRACK_KEYS if k in root["data"]]
    if present and len(present) != len(TRACK_KEYS):
        raise ValueError(f"{path}: store has {present} but lacks {sorted(set(TRACK_KEYS) - set(present))}; "
                         f"per-point tracks need all of {list(TRACK_KEYS)}")
