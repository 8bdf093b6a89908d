"""Read-only access to rollout stores (needs only zarr and numpy; schema: `worldmodel.data.schema`).

Only committed episodes are visible: rows past ``meta/episode_ends[-1]`` (left by an
interrupted recording) are ignored. Schema versions 1 to 4 are read (version 2 adds the
optional per-point tracks ``scene_track_ids``/``tracks``/``track_visible``, version 4 is zarr
format 2 where 1 to 3 are zarr format 3, see `worldmodel.data.schema`); a newer version, or a
store without the schema's required parts, is refused with a ``ValueError`` that names the reason.
"""

from __future__ import annotations

import json
import os
from typing import Any

import numpy as np
import zarr

from .schema import EPISODE_INFO_PARTS, TRACK_KEYS, check_store, committed_episode_ends, is_store


class RolloutStore:
    """A recorded dataset: ``episode(i)`` returns a dict of arrays, ``attrs`` the recording's metadata."""

    def __init__(self, path: str | os.PathLike):
        if not is_store(path):
            raise FileNotFoundError(f"no zarr store at {path}")
        self.root = zarr.open_group(str(path), mode="r")
        check_store(self.root, str(path))
        self.episode_ends = committed_episode_ends(self.root["meta/episode_ends"][:])
        self.episode_seeds = np.asarray(self.root["meta/episode_seeds"][: len(self.episode_ends)], dtype=np.int64)

    @property
    def attrs(self) -> dict:
        """Root attributes: env id and kwargs (or your own for BYO data), package and schema versions."""
        return dict(self.root.attrs)

    @property
    def keys(self) -> list[str]:
        """Recorded per-step keys."""
        return sorted(self.root["data"].array_keys())

    @property
    def has_tracks(self) -> bool:
        """Whether the store holds per-point tracks (schema 2: ``scene_track_ids``, ``tracks``, ``track_visible``)."""
        return TRACK_KEYS[0] in self.root["data"]

    @property
    def num_episodes(self) -> int:
        """Number of committed episodes."""
        return len(self.episode_ends)

    @property
    def num_steps(self) -> int:
        """Number of committed rows."""
        return int(self.episode_ends[-1]) if len(self.episode_ends) else 0

    def episode_bounds(self, i: int) -> tuple[int, int]:
        """Row range [start, end) of episode ``i``."""
        if not -self.num_episodes <= i < self.num_episodes:
            raise IndexError(f"episode {i} out of range: the store has {self.num_episodes} episodes")
        i %= self.num_episodes
        return (int(self.episode_ends[i - 1]) if i > 0 else 0), int(self.episode_ends[i])

    def episode_info(self, i: int) -> dict[str, Any]:
        """Episode ``i``'s per-episode facts as recorded (e.g. ``object_name``, ``randomization``); {} for a store
        that does not record them."""
        self.episode_bounds(i)  # checks i
        if any(p not in self.root for p in EPISODE_INFO_PARTS):
            return {}
        ends = self.root[EPISODE_INFO_PARTS[1]]
        i %= self.num_episodes
        lo, hi = (int(ends[i - 1]) if i > 0 else 0), int(ends[i])
        return json.loads(bytes(np.asarray(self.root[EPISODE_INFO_PARTS[0]][lo:hi])).decode())

    def episode(self, i: int, keys: list[str] | None = None) -> dict[str, np.ndarray]:
        """All (or the named) arrays of episode ``i``."""
        start, end = self.episode_bounds(i)
        return {k: np.asarray(self.root["data"][k][start:end]) for k in (keys or self.keys)}

    def array(self, key: str) -> np.ndarray:
        """A whole committed array (all episodes concatenated)."""
        return np.asarray(self.root["data"][key][: self.num_steps])
