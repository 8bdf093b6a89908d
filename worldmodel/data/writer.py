"""Appending whole episodes to a rollout store, one configuration per store (schema: `worldmodel.data.schema`)."""

from __future__ import annotations

import json
import os
from typing import Any

import numpy as np
import zarr

from .schema import (
    EPISODE_INFO_PARTS,
    ROWS_PER_CHUNK_BYTES,
    SCHEMA_VERSION,
    ZARR_FORMAT,
    committed_episode_ends,
    compressor,
    configuration_differences,
    is_store,
    jsonable,
    package_version,
)


class RolloutWriter:
    """Appends whole episodes to a zarr store of one configuration (see the module docstring).

    ``attrs`` is the recording's configuration (``IDENTITY_KEYS`` are compared on resume) and any
    other metadata. A new store is created by the first ``add_episode``; ``resume=True`` continues
    an existing store only when its configuration equals ``attrs`` (``ValueError`` naming every
    difference otherwise, with the store untouched); without it an existing store is refused
    (``FileExistsError``), and so is a path that holds anything but a zarr store. New stores are zarr
    format 2 (``ZARR_FORMAT``: zarr-python 2.x and 3.x read them). Each episode may carry a JSON-able dict of
    per-episode facts (``info``: its object, its factor values), kept in ``meta/episode_info``.
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
            if any(p not in self.root for p in EPISODE_INFO_PARTS):
                self._create_info(self.root)
            self._trim_uncommitted()
        elif os.path.exists(self.path) and (not os.path.isdir(self.path) or os.listdir(self.path)):
            raise FileExistsError(f"{self.path} exists and is not a zarr store; choose another path")

    def _create(self) -> zarr.Group:
        root = zarr.open_group(self.path, mode="w", zarr_format=ZARR_FORMAT)
        root.attrs.update(self.attrs)
        root.create_group("data")
        meta = root.create_group("meta")
        for name in ("episode_ends", "episode_seeds"):
            self._create_array(meta, name, (4096,), np.dtype(np.int64))
        self._create_info(root)
        return root

    def _create_info(self, root: zarr.Group) -> None:
        """The per-episode info arrays, ``{}`` for each episode already committed (a store recorded before them)."""
        info, info_ends = (p.split("/")[1] for p in EPISODE_INFO_PARTS)
        meta = root["meta"]
        self._create_array(meta, info, (1 << 16,), np.dtype(np.uint8))
        self._create_array(meta, info_ends, (4096,), np.dtype(np.int64))
        n = len(committed_episode_ends(meta["episode_ends"][:]))
        if n:
            meta[info].resize((2 * n,))
            meta[info][:] = np.frombuffer(b"{}" * n, dtype=np.uint8)
            meta[info_ends].resize((n,))
            meta[info_ends][:] = 2 * np.arange(1, n + 1)

    def _create_array(self, group: zarr.Group, name: str, chunks: tuple[int, ...], dtype: np.dtype) -> None:
        """An empty array growing along axis 0, filled with zeros (format 2: the shared Blosc compressor)."""
        options = {"compressors": compressor()} if group.metadata.zarr_format == 2 else {}
        group.create_array(name, shape=(0,) + chunks[1:], chunks=chunks, dtype=dtype,
                           fill_value=np.zeros((), dtype).item(), **options)

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
        for name in ("meta/episode_seeds", EPISODE_INFO_PARTS[1]):
            if self.root[name].shape[0] > self.num_episodes:
                self.root[name].resize((self.num_episodes,))
        info, info_ends = (self.root[p] for p in EPISODE_INFO_PARTS)
        size = int(info_ends[self.num_episodes - 1]) if self.num_episodes else 0
        if info.shape[0] != size:
            info.resize((size,))
        for arr in self.root["data"].array_values():
            if arr.shape[0] != n:
                arr.resize((n,) + arr.shape[1:])

    def add_episode(self, steps: dict[str, np.ndarray], seed: int, info: dict[str, Any] | None = None) -> None:
        """Append one episode (every array has the same leading length T) with its per-episode ``info`` (a dict of
        JSON-able values, e.g. the env's ``object_name`` and ``randomization`` at reset) and commit it."""
        blob = json.dumps(jsonable(info or {}), sort_keys=True).encode()
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
                self._create_array(data, key, (chunk,) + value.shape[1:], value.dtype)
            arr = data[key]
            arr.resize((start + T,) + arr.shape[1:])
            arr[start:] = value
        info_bytes, info_ends = (self.root[p] for p in EPISODE_INFO_PARTS)
        info_start = int(info_ends[-1]) if info_ends.shape[0] else 0
        info_bytes.resize((info_start + len(blob),))
        if blob:
            info_bytes[info_start:] = np.frombuffer(blob, dtype=np.uint8)
        info_ends.resize((self.num_episodes + 1,))
        info_ends[-1] = info_start + len(blob)
        seeds = self.root["meta/episode_seeds"]
        seeds.resize((self.num_episodes + 1,))
        seeds[-1] = seed
        ends = self.root["meta/episode_ends"]
        ends.resize((self.num_episodes + 1,))
        ends[-1] = start + T  # commit point
