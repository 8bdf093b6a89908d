"""``wm4d export format=lerobot data=PATH.zarr out=DIR``: a rollout store as a LeRobotDataset v3.0 directory.

``DIR`` gets ``meta/info.json`` (``codebase_version`` "v3.0", ``fps``, the features), the episode
and task tables, ``data/chunk-000/file-000.parquet`` (one row per step: ``action``,
``observation.state``, point clouds as array features, ``next.reward``/``next.done``, LeRobot's
indices and timestamps) and one mp4 per camera under ``videos/`` when the store has images
(`worldmodel.data.lerobot`). ``LeRobotDataset("any/name", root=DIR)`` loads it; LeRobot itself is
not needed to write it. Rerunning the same command does nothing; another export into the same
directory is refused.
"""

from __future__ import annotations

from pathlib import Path

from omegaconf import DictConfig

FORMATS = ("lerobot",)


def run(cfg: DictConfig) -> None:
    """Export ``cfg.data`` to ``cfg.out`` in ``cfg.format``."""
    if str(cfg.format) not in FORMATS:
        raise ValueError(f"format={cfg.format} is not supported; choose one of: {', '.join(FORMATS)}")
    from worldmodel.data.lerobot import VideoOptions, export_lerobot
    from worldmodel.data.schema import is_store

    if not is_store(cfg.data):
        raise FileNotFoundError(f"no rollout store at data={cfg.data}")
    video = VideoOptions(codec=str(cfg.video_codec), crf=int(cfg.video_crf), gop=int(cfg.video_gop),
                         file_size_mb=int(cfg.video_file_size_mb))
    info, wrote = export_lerobot(str(cfg.data), Path(str(cfg.out)), task=cfg.task, fps=cfg.fps, video=video,
                                 data_file_size_mb=int(cfg.data_file_size_mb), progress=bool(cfg.progress))
    videos = [k for k, f in info["features"].items() if f["dtype"] == "video"]
    state = "wrote" if wrote else "already holds (nothing to do)"
    print(f"{cfg.out} {state} a LeRobotDataset v3.0: {info['total_episodes']} episodes, {info['total_frames']} frames "
          f"at {info['fps']} fps, {len(info['features']) - len(videos)} features, {len(videos)} videos")
