"""``wm4d view data=PATH.zarr episode=K out=FILE.rrd``: one recorded episode as a rerun recording (DESIGN §14).

Writes ``FILE.rrd`` (open it with ``rerun FILE.rrd``; ``spawn=true`` also opens the viewer where a
display exists) with, on the ``step`` timeline (and ``time`` in seconds):

- ``world/scene``: the fused scene point cloud in its colours; ``world/gripper``: the URDF gripper points;
- ``world/object/points`` and ``world/object/tracks``: the exact tracks of the object's points (info
  ``object_points`` or per-point ``tracks``) and the path of some of them so far;
- ``world/flow/ground_truth``: arrows from each moving scene point to where it is ``flow_horizon`` steps
  later (the exact targets of `worldmodel.data.PointFlowDataset`);
- ``world/flow/predicted`` with ``checkpoint=``: the model's predicted displacement at its own horizon, from
  the same samples ``wm4d eval-model`` scores (the ground-truth arrows then use that horizon too);
- ``world/cameras/<name>``: each camera's frustum (``Pinhole`` + ``Transform3D``) with its recorded RGB,
  depth and segmentation images, when the store holds images (poses from the store's ``intrinsics``/
  ``cam2world`` when recorded, else the recording env's cameras);
- ``world/goal``: the goal outline (PushT4D-v0); ``metrics/coverage``, ``metrics/reward``: time series.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
from omegaconf import DictConfig

TRAIL_TRACKS = 48  # object tracks drawn as paths (evenly spread over the object's points)
MOVING = 1e-4  # m: scene points displaced less than this get no flow arrow


def ground_truth_flow(ep: dict[str, np.ndarray], t: int, horizon: int) -> np.ndarray | None:
    """Exact displacement (Ns, 3) of the scene points of row ``t`` to row ``t + horizon`` (clamped to the
    episode's last row); None when the store holds neither rigid targets nor per-point tracks."""
    from worldmodel.data.dataset import exact_displacements, track_displacements
    from worldmodel.data.schema import pose7_key

    end = min(t + horizon, len(ep["scene_points"]) - 1)
    if end <= t:
        return np.zeros_like(ep["scene_points"][t])
    if "tracks" in ep and "scene_track_ids" in ep:
        return track_displacements(ep["tracks"], ep["scene_track_ids"][t], t, end - t)[0][-1]
    pose7 = pose7_key(ep)  # PushT4D's block_pose7 or Push4D's object_pose7
    if "scene_obj_coords" in ep and pose7 is not None:
        return exact_displacements(ep["scene_obj_coords"][t], ep["scene_points"][t].astype(np.float64),
                                   ep[pose7][end][None])[0]
    return None


def predicted_flow(checkpoint: str, path: str, episode: int, lengths: list[int]) -> tuple[int, dict[int, np.ndarray]]:
    """The model's horizon and its predicted displacement at that horizon (Ns, 3) for every row t of ``episode``
    that has one (rows with ``horizon`` steps after them), from `worldmodel.data.PointFlowDataset` samples."""
    import torch

    from worldmodel.data import PointFlowDataset
    from worldmodel.pretrained import load_model

    model, config = load_model(checkpoint)
    horizon = int(config["horizon"])
    if lengths[episode] <= horizon:
        return horizon, {}
    dataset = PointFlowDataset([path], horizon=horizon, split="all")
    k = sum(1 for n in lengths[:episode] if n > horizon)  # the dataset keeps episodes longer than the horizon
    rows = np.flatnonzero(dataset.index[:, 0] == k)
    out: dict[int, np.ndarray] = {}
    with torch.no_grad():
        for chunk in np.array_split(rows, max(1, int(np.ceil(len(rows) / 16)))):
            samples = [dataset[int(i)] for i in chunk]
            batch = {key: torch.stack([s[key] for s in samples]) for key in samples[0]}
            pred = model(batch)[0][:, -1].numpy()
            for i, p in zip(chunk, pred, strict=True):
                out[int(dataset.index[i, 1])] = p
    return horizon, out


def episode_cameras(store: Any, ep: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray] | None:
    """The cameras' intrinsics and cam2world: per row (T, V, 3, 3) and (T, V, 4, 4) when the store records them,
    else those of the env the store was recorded with (fixed cameras: (V, 3, 3), (V, 4, 4)); None when that env
    cannot be rebuilt."""
    if "intrinsics" in ep and "cam2world" in ep:
        return ep["intrinsics"], ep["cam2world"]
    import gymnasium as gym

    import envs  # noqa: F401

    attrs = store.attrs
    kwargs = {k: v for k, v in dict(attrs.get("env_kwargs") or {}).items() if k not in ("render_mode", "obs_mode")}
    try:
        env = gym.make(str(attrs.get("env_id")), obs_mode="state", **kwargs)
    except Exception as err:  # noqa: BLE001 - frusta are optional; say why they are missing
        print(f"wm4d view: no camera frusta ({type(err).__name__}: {err})", file=sys.stderr)
        return None
    try:
        cams = env.unwrapped.cameras
        K = np.stack([c.intrinsics for c in cams])
        T = np.stack([c.cam2world for c in cams])
    finally:
        env.close()
    return K, T


def _log_frusta(log: Any, K: np.ndarray, cam2world: np.ndarray, size: tuple[int, int], static: bool = False) -> None:
    """Each camera's pose (``world/cameras/cam<v>``) and pinhole (``.../image``) of images of ``size`` (H, W)."""
    import rerun as rr

    h, w = (int(x) for x in size)
    for v in range(len(K)):
        cam = f"world/cameras/cam{v}"
        log(cam, rr.Transform3D(translation=cam2world[v][:3, 3], mat3x3=cam2world[v][:3, :3]), static=static)
        log(f"{cam}/image", rr.Pinhole(image_from_camera=K[v], resolution=[w, h], camera_xyz=rr.ViewCoordinates.RDF,
                                       image_plane_distance=0.1), static=static)


def _goal_outline(attrs: dict) -> np.ndarray | None:
    """The goal footprint's outline (N, 3) just above the table for PushT4D-v0 stores, else None."""
    if attrs.get("env_id") != "PushT4D-v0":
        return None
    from envs.pusht import geometry as geo

    xy = np.asarray(geo.footprint_at(np.asarray(geo.GOAL_POSE)).exterior.coords)
    return np.column_stack([xy, np.full(len(xy), 0.001)])


def write_recording(cfg: DictConfig, out: Path) -> dict[str, Any]:
    """Log the episode into ``out`` (.rrd); returns what was logged (entity paths, steps)."""
    import rerun as rr

    from worldmodel.data import RolloutStore

    path, episode = str(cfg.data), int(cfg.episode)
    store = RolloutStore(path)
    if not -store.num_episodes <= episode < store.num_episodes:
        raise ValueError(f"episode={episode} is out of range: {path} has {store.num_episodes} episodes")
    episode %= store.num_episodes
    lengths = [b - a for a, b in (store.episode_bounds(i) for i in range(store.num_episodes))]
    ep = store.episode(episode)
    T = lengths[episode]
    horizon = int(cfg.flow_horizon)
    predicted: dict[int, np.ndarray] = {}
    if cfg.checkpoint is not None:
        horizon, predicted = predicted_flow(str(cfg.checkpoint), path, episode, lengths)
    cameras = episode_cameras(store, ep) if bool(cfg.images) and "rgb" in ep else None
    fps = float(store.attrs.get("fps") or 10.0)
    stride = int(cfg.stride)
    if stride <= 0:
        raise ValueError(f"stride must be a positive integer, got {stride}")

    rec = rr.RecordingStream("worldmodel4d_view", recording_id=f"{Path(path).name}/episode_{episode}")
    rec.save(str(out))
    logged: set[str] = set()

    def log(entity: str, data: Any, static: bool = False) -> None:
        rec.log(entity, data, static=static)
        logged.add(entity)

    log("world", rr.ViewCoordinates.RIGHT_HAND_Z_UP, static=True)
    goal = _goal_outline(store.attrs)
    if goal is not None:
        log("world/goal", rr.LineStrips3D([goal], colors=[40, 200, 40], radii=0.002), static=True)
    if cameras is not None and cameras[0].ndim == 3:  # fixed cameras: their frusta once, for every step
        _log_frusta(log, cameras[0], cameras[1], ep["rgb"].shape[2:4], static=True)
    objects = ep.get("tracks", ep.get("object_points"))
    trail = None if objects is None else np.unique(np.linspace(0, objects.shape[1] - 1, TRAIL_TRACKS).astype(int))
    for t in range(0, T, stride):
        rec.set_time("step", sequence=t)
        rec.set_time("time", duration=t / fps)
        if "scene_points" in ep:
            p = ep["scene_points"][t]
            log("world/scene", rr.Points3D(p, colors=np.clip(ep["scene_colors"][t], 0, 1), radii=0.003))
            gt = ground_truth_flow(ep, t, horizon)
            if gt is not None:
                m = np.linalg.norm(gt, axis=1) > MOVING
                log("world/flow/ground_truth", rr.Arrows3D(origins=p[m], vectors=gt[m], colors=[40, 200, 40],
                                                           radii=0.0012))
            if t in predicted:
                q = predicted[t]
                m = np.linalg.norm(q, axis=1) > MOVING
                log("world/flow/predicted", rr.Arrows3D(origins=p[m], vectors=q[m], colors=[230, 40, 40],
                                                        radii=0.0012))
        if "gripper_points" in ep and ep["gripper_points"].shape[1]:
            log("world/gripper", rr.Points3D(ep["gripper_points"][t], colors=[255, 140, 0], radii=0.003))
        if objects is not None:
            log("world/object/points", rr.Points3D(objects[t], colors=[90, 110, 200], radii=0.002))
            paths = np.transpose(objects[: t + 1, trail], (1, 0, 2))
            log("world/object/tracks", rr.LineStrips3D(paths, colors=[120, 60, 200], radii=0.001))
        for key in ("coverage", "reward"):
            if key in ep:
                log(f"metrics/{key}", rr.Scalars(float(ep[key][t])))
        if cameras is not None:
            if cameras[0].ndim == 4:
                _log_frusta(log, cameras[0][t], cameras[1][t], ep["rgb"].shape[2:4])
            for v in range(ep["rgb"].shape[1]):
                cam = f"world/cameras/cam{v}"
                log(f"{cam}/image/rgb", rr.Image(ep["rgb"][t, v]))
                if "depth" in ep:
                    log(f"{cam}/image/depth", rr.DepthImage(ep["depth"][t, v], meter=1.0))
                if "segmentation" in ep:
                    log(f"{cam}/image/segmentation", rr.SegmentationImage(ep["segmentation"][t, v]))
    rec.flush()
    return {"entities": sorted(logged), "steps": T, "horizon": horizon, "predicted_steps": len(predicted)}


def run(cfg: DictConfig) -> None:
    """Write ``cfg.out`` (.rrd) for episode ``cfg.episode`` of ``cfg.data``; ``cfg.spawn`` opens it in a viewer."""
    try:
        import rerun  # noqa: F401
    except ImportError:
        raise ValueError("wm4d view writes rerun recordings: pip install 'worldmodel4d[viewer]' (rerun-sdk)") from None
    out = Path(str(cfg.out))
    if out.suffix != ".rrd":
        raise ValueError(f"out must be a .rrd file, got {str(cfg.out)!r}")
    if bool(cfg.spawn):
        from envs.human import has_display

        if not has_display():
            raise ValueError("spawn=true opens a viewer window, but this process has no display ($DISPLAY and "
                             f"$WAYLAND_DISPLAY are unset); leave spawn=false and open the file where one exists: "
                             f"rerun {out}")
    out.parent.mkdir(parents=True, exist_ok=True)
    summary = write_recording(cfg, out)
    print(f"wrote {out} ({out.stat().st_size / 1e6:.1f} MB): episode {int(cfg.episode)} of {cfg.data}, "
          f"{summary['steps']} steps, flow to t+{summary['horizon']}"
          + (f", predicted flow at {summary['predicted_steps']} steps" if cfg.checkpoint is not None else ""))
    print("entities: " + ", ".join(summary["entities"]))
    if bool(cfg.spawn):
        viewer = shutil.which("rerun")
        command = [viewer, str(out)] if viewer else [sys.executable, "-m", "rerun", str(out)]
        subprocess.Popen(command, start_new_session=True, env=os.environ.copy())
