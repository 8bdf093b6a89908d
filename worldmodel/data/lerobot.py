"""A rollout store as a LeRobotDataset v3.0 directory (DESIGN §14), written with pyarrow and imageio-ffmpeg.

LeRobot itself is not needed (it pins another torch); the layout is LeRobot's ``codebase_version``
"v3.0" one, so ``LeRobotDataset(repo_id, root=DIR)`` loads the export::

    meta/info.json                                  fps, features (dtype/shape/names), totals, path templates
    meta/stats.json                                 min/max/mean/std/count per feature (normalisation)
    meta/tasks.parquet                              task text (the index) -> task_index
    meta/episodes/chunk-000/file-000.parquet        per episode: length, row range, data and video file, times
    data/chunk-000/file-000.parquet                 one row per step, one row group per episode
    videos/observation.images.cam<i>/chunk-000/file-000.mp4   one frame per step, episodes back to back
    meta/wm4d_export.json                           the store and options of the export (written last)

Features: ``action``; ``observation.state`` (the store's ``agent_pos``, else ``qpos``); ``next.reward``,
``next.done`` and ``next.success`` (``reward``, ``terminated``, ``is_success``: what the row's action
earned); every other per-step key ``k`` as ``observation.k`` (point clouds as fixed-size list arrays,
e.g. ``observation.scene_points`` of shape (N, 3)); ``rgb`` as one video per camera; and LeRobot's
``timestamp`` (= frame_index / fps), ``frame_index``, ``episode_index``, ``index`` and ``task_index``.
Depth and segmentation images are not exported (lossy video suits neither). A data or video file is
closed once it passes its size limit and the next episodes go to the next file (1000 files a chunk).
``stats.json`` holds min/max/mean/std/count per feature over all frames: per element for vectors, per
coordinate for point clouds (shape (3,), over frames and points), per channel for cameras.
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .rollouts import RolloutStore

CODEBASE_VERSION = "v3.0"
CHUNKS_SIZE = 1000  # files per chunk directory, as LeRobot
CHUNK_FILE = "chunk-{chunk_index:03d}/file-{file_index:03d}"
DATA_PATH = "data/" + CHUNK_FILE + ".parquet"
VIDEO_PATH = "videos/{video_key}/" + CHUNK_FILE + ".mp4"
EPISODES_PATH = "meta/episodes/" + CHUNK_FILE + ".parquet"
TASKS_PATH = "meta/tasks.parquet"
INFO_PATH = "meta/info.json"
STATS_PATH = "meta/stats.json"
EXPORT_PATH = "meta/wm4d_export.json"  # the store and options of a finished export (written last)
CODEC_NAMES = {"libx264": "h264", "libx265": "hevc", "libsvtav1": "av1", "libaom-av1": "av1"}  # as LeRobot records
RENAMES = {"action": "action", "reward": "next.reward", "terminated": "next.done", "is_success": "next.success"}
STATE_KEYS = ("agent_pos", "qpos")  # the first one the store has becomes observation.state
VIDEO_KEY = "rgb"  # (T, cameras, H, W, 3) uint8 -> observation.images.cam<i>
NOT_EXPORTED = ("depth", "segmentation")
PIXEL_STRIDE = 4  # camera stats.json entries use every 4th pixel along each side
INDEX_FEATURES = {"timestamp": "float32", "frame_index": "int64", "episode_index": "int64", "index": "int64",
                  "task_index": "int64"}


@dataclass
class VideoOptions:
    """How camera images are encoded (ffmpeg through imageio-ffmpeg)."""

    codec: str = "libx264"  # ffmpeg encoder; LeRobot decodes h264, hevc and av1
    crf: int = 23  # constant rate factor: lower is better quality, larger files
    gop: int = 2  # frames between key frames: small keeps random access (training samples) fast
    file_size_mb: int = 200  # a video file is closed once it passes this size


@dataclass
class _Files:
    """Successive ``chunk-CCC/file-FFF`` paths: ``advance`` moves to the next file (a new chunk every CHUNKS_SIZE)."""

    chunk: int = 0
    file: int = 0

    def advance(self) -> None:
        self.file += 1
        if self.file == CHUNKS_SIZE:
            self.chunk, self.file = self.chunk + 1, 0

    def format(self, template: str, **extra: str) -> str:
        return template.format(chunk_index=self.chunk, file_index=self.file, **extra)


@dataclass
class _Stats:
    """Running min/max/mean/std over frames (axis 0) of one feature, NaN ignored (LeRobot's stats.json entry)."""

    count: int = 0
    sums: dict[str, Any] = field(default_factory=dict)

    def add(self, x: np.ndarray, frames: int | None = None) -> None:
        """Add samples ``x`` (axis 0), which are ``frames`` frames (default: one per sample)."""
        x = np.asarray(x, np.float64)
        valid = ~np.isnan(x)
        parts = {"n": valid.sum(0), "s": np.where(valid, x, 0).sum(0), "ss": np.where(valid, x * x, 0).sum(0),
                 "min": np.where(valid, x, np.inf).min(0), "max": np.where(valid, x, -np.inf).max(0)}
        if not self.sums:
            self.sums = parts
        else:
            for k in ("n", "s", "ss"):
                self.sums[k] = self.sums[k] + parts[k]
            self.sums["min"] = np.minimum(self.sums["min"], parts["min"])
            self.sums["max"] = np.maximum(self.sums["max"], parts["max"])
        self.count += len(x) if frames is None else frames

    def result(self, shape: tuple[int, ...]) -> dict[str, Any]:
        n = np.maximum(self.sums["n"], 1)
        mean = self.sums["s"] / n
        std = np.sqrt(np.maximum(self.sums["ss"] / n - mean**2, 0))
        none = self.sums["n"] == 0
        out = {"min": np.where(none, np.nan, self.sums["min"]), "max": np.where(none, np.nan, self.sums["max"]),
               "mean": np.where(none, np.nan, mean), "std": np.where(none, np.nan, std)}
        out = {k: np.reshape(v, shape).tolist() for k, v in out.items()}
        return {**out, "count": [self.count]}


def feature_plan(store: RolloutStore) -> dict[str, str]:
    """LeRobot feature name -> store key for every exported per-step array but the videos (module docstring)."""
    keys = store.keys
    if "action" not in keys:
        raise ValueError(f"the store has no 'action' key, which a LeRobot dataset needs (keys: {keys})")
    state = next((k for k in STATE_KEYS if k in keys), None)
    if state is None:
        raise ValueError(f"the store has none of {list(STATE_KEYS)} for observation.state (keys: {keys})")
    plan = {"action": "action", "observation.state": state}
    plan.update({RENAMES[k]: k for k in keys if k in RENAMES and k != "action"})
    skip = set(RENAMES) | {state, VIDEO_KEY, *NOT_EXPORTED}
    plan.update({f"observation.{k}": k for k in keys if k not in skip})
    return plan


def _names(name: str, shape: tuple[int, ...]) -> list[str] | None:
    """Axis or component names of a feature (LeRobot's ``names``)."""
    if shape == (1,):
        return None
    if len(shape) == 1:
        return [f"{name.rsplit('.', 1)[-1]}_{i}" for i in range(shape[0])]
    if len(shape) == 2 and shape[1] == 3:
        return ["point", "xyz"]
    return [f"axis_{i}" for i in range(len(shape))]


def _column(values: np.ndarray) -> Any:
    """A pyarrow column of per-row arrays: scalars for rows of one value, nested fixed-size lists otherwise."""
    import pyarrow as pa

    rows = len(values)
    shape = values.shape[1:]
    if int(np.prod(shape)) == 1:
        return pa.array(values.reshape(rows))
    column = pa.array(np.ascontiguousarray(values).reshape(-1))
    for size in reversed(shape):
        column = pa.FixedSizeListArray.from_arrays(column, size)
    return column


def _tasks_table(task: str) -> Any:
    """``meta/tasks.parquet`` as pandas writes it: column ``task_index``, index ``task`` (pandas metadata)."""
    import pyarrow as pa

    pandas_meta = {
        "index_columns": ["task"],
        "column_indexes": [{"name": None, "field_name": None, "pandas_type": "unicode", "numpy_type": "object",
                            "metadata": {"encoding": "UTF-8"}}],
        "columns": [{"name": "task_index", "field_name": "task_index", "pandas_type": "int64", "numpy_type": "int64",
                     "metadata": None},
                    {"name": "task", "field_name": "task", "pandas_type": "unicode", "numpy_type": "object",
                     "metadata": None}],
        "creator": {"library": "pyarrow", "version": pa.__version__},
        "pandas_version": "2.2.3",
    }
    table = pa.table({"task_index": pa.array([0], pa.int64()), "task": pa.array([task], pa.string())})
    return table.replace_schema_metadata({b"pandas": json.dumps(pandas_meta).encode()})


class _VideoFiles:
    """One camera's video: episodes appended back to back, a new file once the current one passes its size."""

    def __init__(self, root: Path, key: str, fps: int, options: VideoOptions, height: int, width: int):
        self.root, self.key, self.fps, self.options = root, key, fps, options
        # yuv420p halves the chroma resolution, which needs even sides
        self.pix_fmt = "yuv420p" if height % 2 == 0 and width % 2 == 0 else "yuv444p"
        self.files = _Files()
        self.writer = None
        self.frames = 0  # frames in the open file

    def path(self) -> Path:
        return self.root / self.files.format(VIDEO_PATH, video_key=self.key)

    def add(self, frames: np.ndarray) -> dict[str, Any]:
        """Append one episode's frames (T, H, W, 3) uint8; its ``videos/<key>/...`` episode columns."""
        import imageio.v2 as imageio

        if self.writer is None:
            self.path().parent.mkdir(parents=True, exist_ok=True)
            self.writer = imageio.get_writer(
                self.path(), format="FFMPEG", fps=self.fps, codec=self.options.codec, pixelformat=self.pix_fmt,
                macro_block_size=1, ffmpeg_log_level="error", quality=None,
                output_params=["-crf", str(self.options.crf), "-g", str(self.options.gop)])
            self.frames = 0
        row = {f"videos/{self.key}/chunk_index": self.files.chunk, f"videos/{self.key}/file_index": self.files.file,
               f"videos/{self.key}/from_timestamp": self.frames / self.fps}
        for frame in frames:
            self.writer.append_data(np.ascontiguousarray(frame, dtype=np.uint8))
        self.frames += len(frames)
        row[f"videos/{self.key}/to_timestamp"] = self.frames / self.fps
        written = self.path().stat().st_size if self.path().exists() else 0  # ffmpeg may not have written yet
        if written > self.options.file_size_mb * 2**20:
            self.close()
            self.files.advance()
        return row

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            self.writer = None


def _store_fps(store: RolloutStore, fps: float | None) -> int:
    value = fps if fps is not None else store.attrs.get("fps")
    if value is None:
        raise ValueError("the store has no fps attribute; pass fps=<frames per second>")
    if float(value) <= 0 or float(value) != int(value):
        raise ValueError(f"fps must be a positive whole number for LeRobot, got {value!r}")
    return int(value)


def export_lerobot(data: str | os.PathLike, out: str | os.PathLike, task: str | None = None,
                   fps: float | None = None, video: VideoOptions | None = None, data_file_size_mb: int = 100,
                   progress: bool = False) -> tuple[dict[str, Any], bool]:
    """Write the committed episodes of the rollout store ``data`` as a LeRobotDataset v3.0 directory ``out``.

    ``task`` is every episode's task text (default: the store's ``env_id``); ``fps`` overrides the store's.
    A directory holds one export: ``meta/wm4d_export.json`` (written last) records the store and the options.
    If ``out`` holds a finished export of the same store and options nothing is written; an export of
    another configuration is refused (``ValueError`` naming each difference), and so is any other non-empty
    directory (``FileExistsError``). A failed export removes what it wrote.
    Returns (the ``meta/info.json`` content, whether this call wrote it).
    """
    from .schema import IDENTITY_KEYS, configuration_differences, jsonable

    store = RolloutStore(data)
    if store.num_episodes == 0:
        raise ValueError(f"{data}: the store has no committed episode to export")
    video = video or VideoOptions()
    config = jsonable({"format": "lerobot", "data": str(Path(data).resolve()), "fps": _store_fps(store, fps),
                       "task": task or str(store.attrs.get("env_id") or "task"), "video": video.__dict__,
                       "data_file_size_mb": data_file_size_mb,
                       "store": {"num_episodes": store.num_episodes, "num_steps": store.num_steps,
                                 **{k: store.attrs[k] for k in IDENTITY_KEYS if k in store.attrs}}})
    out = Path(out)
    if (out / EXPORT_PATH).is_file():
        diffs = configuration_differences(json.loads((out / EXPORT_PATH).read_text()), config, tuple(config))
        if diffs:
            raise ValueError(f"refusing to export into {out}: it holds an export of another configuration (a "
                             f"directory holds one); differing keys: " + "; ".join(diffs)
                             + ". Export into a new directory.")
        return json.loads((out / INFO_PATH).read_text()), False
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise FileExistsError(f"{out} exists and is not a finished wm4d export (an interrupted export? delete it); "
                              f"export into a new directory")
    existed = out.exists()
    try:
        info = _write(store, out, config["task"], config["fps"], video, data_file_size_mb, progress)
        (out / EXPORT_PATH).write_text(json.dumps(config, indent=2))
    except BaseException:
        for child in out.iterdir() if existed else ():
            shutil.rmtree(child) if child.is_dir() else child.unlink()
        if not existed:
            shutil.rmtree(out, ignore_errors=True)
        raise
    return info, True


def _features(store: RolloutStore, plan: dict[str, str]) -> tuple[dict[str, dict[str, Any]], dict[str, tuple]]:
    """info.json's feature entries of the non-video features, and each one's per-row shape."""
    shapes = {name: tuple(store.root["data"][key].shape[1:]) for name, key in plan.items()}
    shapes = {name: (s if int(np.prod(s)) != 1 else (1,)) for name, s in shapes.items()}
    features = {name: {"dtype": str(store.root["data"][key].dtype), "shape": list(shapes[name]),
                       "names": _names(name, shapes[name])} for name, key in plan.items()}
    return features, shapes


def _write(store: RolloutStore, out: Path, task: str, fps: int, video: VideoOptions, data_file_size_mb: int,
           progress: bool) -> dict[str, Any]:
    """Write the export's files (module docstring) into the empty or absent ``out``; info.json's content."""
    import pyarrow as pa
    import pyarrow.parquet as pq
    from tqdm import tqdm

    plan = feature_plan(store)
    features, shapes = _features(store, plan)
    cameras: dict[str, _VideoFiles] = {}
    if VIDEO_KEY in store.keys:
        shape = store.root["data"][VIDEO_KEY].shape  # (T, cameras, H, W, 3), or (T, H, W, 3) for one camera
        n_cams, height, width, channels = shape[1:] if len(shape) == 5 else (1, *shape[1:])
        for i in range(n_cams):
            key = f"observation.images.cam{i}"
            cameras[key] = _VideoFiles(out, key, fps, video, height, width)
            features[key] = {"dtype": "video", "shape": [height, width, channels],
                             "names": ["height", "width", "channels"],
                             "info": {"video.height": height, "video.width": width,
                                      "video.codec": CODEC_NAMES.get(video.codec, video.codec),
                                      "video.pix_fmt": cameras[key].pix_fmt, "video.is_depth_map": False,
                                      "video.fps": fps, "video.channels": channels, "has_audio": False}}
    features.update({k: {"dtype": d, "shape": [1], "names": None} for k, d in INDEX_FEATURES.items()})

    stats = {name: _Stats() for name in list(plan) + list(cameras)}
    data_files, writer, episodes = _Files(), None, []
    keys = list(dict.fromkeys(plan.values())) + ([VIDEO_KEY] if cameras else [])
    try:
        for ep in tqdm(range(store.num_episodes), desc="export", unit="ep", disable=not progress):
            arrays = store.episode(ep, keys)
            start, end = store.episode_bounds(ep)
            length = end - start
            frame_index = np.arange(length, dtype=np.int64)
            columns = {name: _column(arrays[key]) for name, key in plan.items()}
            columns.update(timestamp=_column((frame_index / fps).astype(np.float32)), frame_index=_column(frame_index),
                           episode_index=_column(np.full(length, ep, np.int64)),
                           index=_column(np.arange(start, end, dtype=np.int64)),
                           task_index=_column(np.zeros(length, np.int64)))
            for name, key in plan.items():
                stats[name].add(arrays[key].reshape((-1,) + _stats_shape(shapes[name])), frames=length)
            table = pa.table(columns)
            path = out / data_files.format(DATA_PATH)
            if writer is None:
                path.parent.mkdir(parents=True, exist_ok=True)
                writer = pq.ParquetWriter(path, table.schema, compression="snappy")
            row = {"episode_index": ep, "tasks": [task], "length": length, "data/chunk_index": data_files.chunk,
                   "data/file_index": data_files.file, "dataset_from_index": start, "dataset_to_index": end}
            writer.write_table(table)  # one row group per episode
            if path.stat().st_size > data_file_size_mb * 2**20:
                writer.close()
                writer = None
                data_files.advance()
            for i, (key, cam) in enumerate(cameras.items()):
                frames = arrays[VIDEO_KEY][:, i] if arrays[VIDEO_KEY].ndim == 5 else arrays[VIDEO_KEY]
                row.update(cam.add(frames))
                stats[key].add(_pixels(frames[:, ::PIXEL_STRIDE, ::PIXEL_STRIDE]), frames=len(frames))
            episodes.append({**row, "meta/episodes/chunk_index": 0, "meta/episodes/file_index": 0})
    finally:
        if writer is not None:
            writer.close()
        for cam in cameras.values():
            cam.close()

    stats_json = {name: stats[name].result(_stats_shape(shapes[name])) for name in plan}
    stats_json.update({key: stats[key].result((features[key]["shape"][-1], 1, 1)) for key in cameras})
    (out / EPISODES_PATH.format(chunk_index=0, file_index=0)).parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.Table.from_pylist(episodes), out / EPISODES_PATH.format(chunk_index=0, file_index=0))
    pq.write_table(_tasks_table(task), out / TASKS_PATH)
    (out / STATS_PATH).write_text(json.dumps(stats_json, indent=2))
    info = {
        "codebase_version": CODEBASE_VERSION, "robot_type": (store.attrs.get("env_kwargs") or {}).get("robot"),
        "total_episodes": store.num_episodes, "total_frames": store.num_steps, "total_tasks": 1,
        "chunks_size": CHUNKS_SIZE, "data_files_size_in_mb": data_file_size_mb,
        "video_files_size_in_mb": video.file_size_mb, "fps": fps, "splits": {"train": f"0:{store.num_episodes}"},
        "data_path": DATA_PATH, "video_path": VIDEO_PATH if cameras else None, "features": features,
    }
    (out / INFO_PATH).write_text(json.dumps(info, indent=4))
    return info


def _stats_shape(shape: tuple[int, ...]) -> tuple[int, ...]:
    """The shape of a feature's stats: per element for vectors, per last-axis component for point clouds and
    other arrays (over frames and points: (3,) for (N, 3), which broadcasts against the feature)."""
    return shape if len(shape) == 1 else shape[-1:]


def _pixels(frames: np.ndarray) -> np.ndarray:
    """Pixel values in [0, 1] as (pixels, channels, 1, 1) samples: `_Stats` of a camera are per channel."""
    return (frames.reshape(-1, frames.shape[-1]) / 255.0).reshape(-1, frames.shape[-1], 1, 1)
