"""Point-flow training samples from recorded rollouts: (scene at t, gripper points t..t+H) -> displacements.

A sample at row t of an episode holds the scene cloud at t (points, colours, normals,
labels), the gripper points of rows t..t+H with their velocity and acceleration, and the
exact target displacements (H, Ns, 3) of every scene point for t+1..t+H relative to t.
Two sources of targets, chosen per store:
- rigid (simulator stores): object points move with the recorded object poses (``block_pose7`` of
  PushT4D stores, ``object_pose7`` of Push4D stores; ``scene_obj_coords`` are their body-frame
  coordinates), static points do not move;
- tracks (schema 2, e.g. bring-your-own data): when a store has ``scene_track_ids`` and
  ``tracks``, ``target[h, i] = tracks[t+h+1, id_i] - tracks[t, id_i]`` for ``id_i >= 0`` and 0
  for static points (``id_i = -1``); ``scene_obj_coords``/``block_pose7`` are then not needed,
  and a store without ``gripper_points`` gives empty (H + 1, 0, 3) gripper arrays.
``previous_displacement`` (Ns, 3) is each point's motion from t-1 to t (zero at t = 0), which
the constant-velocity baseline extrapolates, and ``earlier_displacement`` (Ns, 3) its motion
from t-2 to t-1 (zero before t = 2): together they give the phase of a vibration. Further back,
``displacement_lag3`` .. ``displacement_lag{MAX_HISTORY}`` (`worldmodel.formulation.past_key`) are
its motions from t-k to t-k+1 (zero before row 0), and ``start_displacement`` (Ns, 3) is x_t - x_0,
its displacement since the episode's first row (the deflection of an object anchored in place
that starts at rest). Episodes are split into train/val as a whole.
Augmentation rotates the whole sample about the vertical axis through the origin and
shifts it horizontally; positions, directions and displacements transform consistently.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from typing import Sequence

import numpy as np
import torch
from torch.utils.data import Dataset

from robots.control import CONTROL_DT
from robots.gripper_points import finite_difference_motion
from robots.transforms import quat_to_mat

from ..formulation import MAX_HISTORY, past_key
from .rollouts import RolloutStore
from .schema import POSE7_KEYS, pose7_key

SCENE_KEYS = ("scene_points", "scene_colors", "scene_normals", "scene_labels")
# rigid targets: these and the object's full pose (PushT4D's ``block_pose7`` or Push4D's ``object_pose7``)
REQUIRED_KEYS = SCENE_KEYS + ("scene_obj_coords", "gripper_points")
TRACK_REQUIRED_KEYS = SCENE_KEYS + ("scene_track_ids", "tracks")  # track targets; gripper_points optional


def exact_displacements(obj_coords: np.ndarray, points: np.ndarray, future_pose7: np.ndarray) -> np.ndarray:
    """Displacements (H, N, 3) of scene points (N, 3) whose body-frame coordinates are ``obj_coords``
    (NaN for static points) when the body takes the poses ``future_pose7`` (H, 7); 0 for static points."""
    R = quat_to_mat(future_pose7[:, 3:])
    moving = ~np.isnan(obj_coords[:, 0])
    c = np.where(moving[:, None], obj_coords, 0.0)
    future = np.einsum("hij,nj->hni", R, c) + future_pose7[:, None, :3]
    return np.where(moving[None, :, None], future - points[None], 0.0).astype(np.float32)


def track_displacements(tracks: np.ndarray, track_ids: np.ndarray, t: int, horizon: int
                        ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Targets (H, N, 3), previous and earlier displacements (N, 3) of scene points with track ids
    ``track_ids`` (N,) (-1 = static) at row ``t`` of ``tracks`` (T, K, 3): ``tracks[t+h+1, id] -
    tracks[t, id]``, ``tracks[t, id] - tracks[t-1, id]`` and ``tracks[t-1, id] - tracks[t-2, id]``
    (0 where a row before 0 would be needed); 0 for static points."""
    ids = np.asarray(track_ids)
    tracked = (ids >= 0)[:, None]
    rows = np.clip(np.arange(t - 2, t + horizon + 1), 0, None)
    window = tracks[rows][:, np.maximum(ids, 0)].astype(np.float64)  # rows t-2 .. t+H (clamped at 0)
    now = window[2]
    target = np.where(tracked[None], window[3:] - now, 0.0)
    prev = np.where(tracked, now - window[1], 0.0)
    earlier = np.where(tracked, window[1] - window[0], 0.0)
    return target, prev, earlier


def track_history(tracks: np.ndarray, track_ids: np.ndarray, t: int, lags: int = MAX_HISTORY
                  ) -> tuple[np.ndarray, np.ndarray]:
    """Past displacements (lags, N, 3), lag k = ``tracks[t-k+1, id] - tracks[t-k, id]`` (rows before 0: row 0),
    and the displacement since row 0 (N, 3), ``tracks[t, id] - tracks[0, id]``, of scene points with track ids
    ``track_ids`` (N,) (-1 = static: 0) at row ``t`` of ``tracks`` (T, K, 3)."""
    ids = np.asarray(track_ids)
    tracked = (ids >= 0)[:, None]
    rows = np.clip(np.arange(t - lags, t + 1), 0, None)
    window = tracks[rows][:, np.maximum(ids, 0)].astype(np.float64)  # rows t-lags .. t (clamped at 0)
    past = np.where(tracked[None], (window[1:] - window[:-1])[::-1], 0.0)
    start = np.where(tracked, window[-1] - tracks[0][np.maximum(ids, 0)], 0.0)
    return past, start


@dataclass
class FlowSample:
    """One sample as numpy arrays (see the module docstring); a batch stacks each field."""

    scene_points: np.ndarray  # (Ns, 3)
    scene_colors: np.ndarray  # (Ns, 3)
    scene_normals: np.ndarray  # (Ns, 3)
    scene_labels: np.ndarray  # (Ns,)
    gripper_points: np.ndarray  # (H + 1, Nr, 3)
    gripper_velocity: np.ndarray  # (H + 1, Nr, 3)
    gripper_acceleration: np.ndarray  # (H + 1, Nr, 3)
    target: np.ndarray  # (H, Ns, 3)
    previous_displacement: np.ndarray  # (Ns, 3)
    earlier_displacement: np.ndarray  # (Ns, 3)
    older_displacements: np.ndarray  # (MAX_HISTORY - 2, Ns, 3): lags 3 .. MAX_HISTORY
    start_displacement: np.ndarray  # (Ns, 3)

    def batch_items(self) -> dict[str, np.ndarray]:
        """The fields under their batch keys (the older displacements as ``displacement_lag3`` ..)."""
        out = {k: v for k, v in vars(self).items() if k != "older_displacements"}
        out.update({past_key(lag): d for lag, d in enumerate(self.older_displacements, start=3)})
        return out


SOURCE_KEYS = ("policy", "robot", "object", "factor")  # what `episode_source` tells of an episode


def _snake(name: str) -> str:
    """``RandomPushPolicy`` -> ``random_push``: a policy class's name as its config group's."""
    name = name.removesuffix("Policy")
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


def episode_source(attrs: dict, info: dict | None = None) -> dict[str, str]:
    """Where an episode comes from, from its store's configuration attributes and its own recorded ``info``
    (`RolloutStore.episode_info`): ``policy`` (the push source, e.g. "random_push", "heuristic_push"; an exploring
    heuristic is "heuristic_push_top8"), ``robot`` (the gripper: the episode's drawn ``randomization.gripper``, else
    the env's), ``object`` (the episode's ``object_name``, else the env's) and ``factor`` (the factors the store's
    env randomises, e.g. "scale" or "light+scale"; "nominal" for none); keys neither records are left out."""
    out: dict[str, str] = {}
    info = info or {}
    policy = attrs.get("policy")
    if isinstance(policy, dict) and isinstance(policy.get("_target_"), str):
        label = _snake(policy["_target_"].rsplit(".", 1)[-1])
        top_k = policy.get("explore_top_k")
        out["policy"] = f"{label}_top{top_k}" if isinstance(top_k, int) and top_k > 1 else label
    kwargs = attrs.get("env_kwargs") if isinstance(attrs.get("env_kwargs"), dict) else {}
    for key, names in (("robot", ("robot", "gripper")), ("object", ("object", "shape", "block_material"))):
        value = next((kwargs[n] for n in names if isinstance(kwargs.get(n), str)), None)
        if value is not None:
            out[key] = value
    drawn = info.get("randomization") if isinstance(info.get("randomization"), dict) else {}
    if isinstance(drawn.get("gripper"), str):
        out["robot"] = drawn["gripper"]
    if isinstance(info.get("object_name"), str):
        out["object"] = info["object_name"]
    if "randomize" in kwargs:
        factors = kwargs["randomize"] if isinstance(kwargs["randomize"], dict) else {}
        varied = sorted(k for k, v in factors.items() if v not in (None, False))
        out["factor"] = "+".join(varied) or "nominal"
    return out


class PointFlowDataset(Dataset):
    """Samples of the point-flow formulation over one or more rollout stores.

    ``split`` is "train", "val" or "all"; ``val_fraction`` of the episodes of every store
    (chosen by ``split_seed``) form the validation split. ``augment`` enables the random
    rotation about z (uniform angle) and horizontal shift (uniform in +-``max_shift`` m),
    drawn from a generator seeded by (``seed``, epoch, index): reproducible and different
    every epoch (`set_epoch`). ``num_points`` / ``num_gripper_points`` (None: all) draw a
    random subset of the scene / gripper points of each sample from the same generator,
    which makes training of per-point models proportionally cheaper.
    """

    def __init__(self, paths: str | os.PathLike | Sequence[str | os.PathLike], horizon: int = 10,
                 split: str = "train", val_fraction: float = 0.1, split_seed: int = 0, augment: bool = False,
                 max_shift: float = 0.05, seed: int = 0, dt: float = CONTROL_DT, num_points: int | None = None,
                 num_gripper_points: int | None = None):
        if horizon <= 0:
            raise ValueError(f"horizon must be a positive integer, got {horizon}")
        if split not in ("train", "val", "all"):
            raise ValueError(f"split must be 'train', 'val' or 'all', got {split!r}")
        if not max_shift >= 0.0:
            raise ValueError(f"max_shift must be >= 0 (metres), got {max_shift}")
        if not 0.0 <= val_fraction < 1.0:
            raise ValueError(f"val_fraction must lie in [0, 1), got {val_fraction}")
        paths = [paths] if isinstance(paths, (str, os.PathLike)) else list(paths)
        for name, n in (("num_points", num_points), ("num_gripper_points", num_gripper_points)):
            if n is not None and n <= 0:
                raise ValueError(f"{name} must be a positive integer or None (all points), got {n}")
        self.horizon, self.augment, self.max_shift, self.seed, self.dt = int(horizon), augment, max_shift, seed, dt
        self.num_points, self.num_gripper_points = num_points, num_gripper_points
        self.epoch = 0
        self._episodes: list[dict[str, np.ndarray]] = []
        self._pose_keys: list[str | None] = []  # per kept episode: its store's object-pose key (rigid targets)
        self.episode_sources: list[dict[str, str]] = []  # per kept episode: its store's push source, robot, object
        index = []
        for path in paths:
            store = RolloutStore(path)
            keys = self._keys_of(store, path)
            order = np.random.default_rng(split_seed).permutation(store.num_episodes)
            n_val = int(round(val_fraction * store.num_episodes))
            chosen = {"train": order[n_val:], "val": order[:n_val], "all": order}[split]
            for e in sorted(chosen):
                ep = store.episode(int(e), keys)
                if "tracks" in ep:
                    self._check_tracks(ep, path, int(e))
                T = len(ep["scene_points"])
                if T <= self.horizon:
                    continue
                k = len(self._episodes)
                self._episodes.append(ep)
                self._pose_keys.append(pose7_key(ep))
                self.episode_sources.append({**episode_source(store.attrs, store.episode_info(int(e))),
                                             "store": str(path)})
                index.append(np.stack([np.full(T - self.horizon, k), np.arange(T - self.horizon)], 1))
        if not index:
            raise ValueError(f"no episode in {paths} ({split} split) is longer than the horizon {self.horizon}")
        self.index = np.concatenate(index)

    @staticmethod
    def _keys_of(store: RolloutStore, path: str | os.PathLike) -> list[str]:
        """The keys samples of ``store`` are made of: track targets when it has tracks, else rigid ones."""
        if store.has_tracks:
            required, optional = TRACK_REQUIRED_KEYS, ("gripper_points",)
        else:
            required, optional = REQUIRED_KEYS + (pose7_key(store.keys) or " or ".join(POSE7_KEYS),), ()
        missing = [k for k in required if k not in store.keys]
        if missing:
            raise ValueError(f"{path} lacks keys {missing} needed for point-flow samples (record obs_mode "
                             f"pointcloud, or write per-point tracks {list(TRACK_REQUIRED_KEYS)})")
        return list(required) + [k for k in optional if k in store.keys]

    @staticmethod
    def _check_tracks(ep: dict[str, np.ndarray], path: str | os.PathLike, episode: int) -> None:
        """Refuse track ids out of range or referring to tracks with non-finite positions."""
        ids, K = ep["scene_track_ids"], ep["tracks"].shape[1]
        if ids.size and (ids.min() < -1 or ids.max() >= K):
            raise ValueError(f"{path} episode {episode}: scene_track_ids must lie in [-1, {K - 1}], "
                             f"got [{ids.min()}, {ids.max()}]")
        finite = np.all(np.isfinite(ep["tracks"]), axis=(0, 2))
        if not finite[ids[ids >= 0]].all():
            raise ValueError(f"{path} episode {episode}: a scene point refers to a track with NaN/inf positions; "
                             "fill occlusions (worldmodel.data.lifting.fill_track_gaps) before writing")

    def __len__(self) -> int:
        return len(self.index)

    def sample_labels(self, key: str) -> np.ndarray:
        """The ``key`` ("policy", "robot", "object", "factor" or "store": the path it was given) of every sample's
        episode (len(self),) as strings; "" where its store does not record it."""
        values = np.array([src.get(key, "") for src in self.episode_sources] + [""], dtype=object)
        return values[self.index[:, 0]]

    def set_epoch(self, epoch: int) -> None:
        """Select the augmentation draws of ``epoch``."""
        self.epoch = int(epoch)

    def sample(self, i: int) -> FlowSample:
        """Sample ``i`` as a `FlowSample` (numpy)."""
        e, t = self.index[i]
        ep, H = self._episodes[e], self.horizon
        pts = ep["scene_points"][t].astype(np.float64)
        if "tracks" in ep:
            target, prev, earlier = track_displacements(ep["tracks"], ep["scene_track_ids"][t], int(t), H)
            older, start = track_history(ep["tracks"], ep["scene_track_ids"][t], int(t))
            older = older[2:]
        else:
            coords, pose7 = ep["scene_obj_coords"][t], ep[self._pose_keys[e]]
            target = exact_displacements(coords, pts, pose7[t + 1 : t + H + 1])
            # where the object points were at t-K .. t, relative to t (rows before 0: where they were at 0)
            past = exact_displacements(coords, pts, pose7[np.clip(np.arange(t - MAX_HISTORY, t + 1), 0, None)])
            prev, earlier = past[-1] - past[-2], past[-2] - past[-3]
            older = (past[1:-2] - past[:-3])[::-1]  # lags 3 .. K
            start = past[-1] - past[0] if t <= MAX_HISTORY else \
                past[-1] - exact_displacements(coords, pts, pose7[:1])[0]
        if "gripper_points" in ep:
            grip = ep["gripper_points"][t : t + H + 1].astype(np.float64)
        else:
            grip = np.zeros((H + 1, 0, 3))
        vel, acc = finite_difference_motion(grip, self.dt)
        nrm = ep["scene_normals"][t].astype(np.float64)
        if self.augment:
            rng = np.random.default_rng([self.seed, self.epoch, int(i)])
            a = rng.uniform(-np.pi, np.pi)
            R = np.array([[np.cos(a), -np.sin(a), 0.0], [np.sin(a), np.cos(a), 0.0], [0.0, 0.0, 1.0]])
            shift = np.array([*rng.uniform(-self.max_shift, self.max_shift, 2), 0.0])
            pts, grip = pts @ R.T + shift, grip @ R.T + shift
            nrm, vel, acc, target, prev, earlier, older, start = (
                x @ R.T for x in (nrm, vel, acc, target, prev, earlier, older, start))
        f32 = np.float32
        sample = FlowSample(pts.astype(f32), ep["scene_colors"][t].astype(f32), nrm.astype(f32),
                            ep["scene_labels"][t].astype(np.int64), grip.astype(f32), vel.astype(f32),
                            acc.astype(f32), target.astype(f32), prev.astype(f32), earlier.astype(f32),
                            np.ascontiguousarray(older, dtype=f32), start.astype(f32))
        return self._subsample(sample, int(i))

    def _subsample(self, s: FlowSample, i: int) -> FlowSample:
        """``s`` restricted to random subsets of ``num_points`` scene and ``num_gripper_points`` gripper points."""
        n, g = self.num_points, self.num_gripper_points
        if (n is None or n >= len(s.scene_points)) and (g is None or g >= s.gripper_points.shape[1]):
            return s
        rng = np.random.default_rng([self.seed, self.epoch, i, 1])
        keep = np.sort(rng.permutation(len(s.scene_points))[:n]) if n is not None else slice(None)
        grip = np.sort(rng.permutation(s.gripper_points.shape[1])[:g]) if g is not None else slice(None)
        return FlowSample(s.scene_points[keep], s.scene_colors[keep], s.scene_normals[keep], s.scene_labels[keep],
                          s.gripper_points[:, grip], s.gripper_velocity[:, grip], s.gripper_acceleration[:, grip],
                          s.target[:, keep], s.previous_displacement[keep], s.earlier_displacement[keep],
                          s.older_displacements[:, keep], s.start_displacement[keep])

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        s = self.sample(i)
        return {k: torch.from_numpy(v) for k, v in s.batch_items().items()}

    def statistics(self, max_samples: int = 2000, seed: int = 0) -> dict[str, list[float]]:
        """Per-axis mean and std of scene positions, gripper positions, gripper velocities and target
        displacements (moved points only), from up to ``max_samples`` un-augmented samples."""
        idx = np.random.default_rng(seed).choice(len(self), size=min(max_samples, len(self)), replace=False)
        aug, self.augment = self.augment, False
        try:
            samples = [self.sample(int(i)) for i in idx]
        finally:
            self.augment = aug
        scene = np.concatenate([s.scene_points for s in samples])
        grip = np.concatenate([s.gripper_points.reshape(-1, 3) for s in samples])
        gvel = np.concatenate([s.gripper_velocity.reshape(-1, 3) for s in samples])
        disp = np.concatenate([s.target.reshape(-1, 3) for s in samples])
        disp = disp[np.linalg.norm(disp, axis=1) > 1e-6]
        if len(disp) == 0:
            disp = np.zeros((1, 3))
        out = {}
        for name, arr in (("scene", scene), ("gripper", grip), ("gripper_velocity", gvel), ("displacement", disp)):
            out[f"{name}_mean"] = arr.mean(0).tolist()
            out[f"{name}_std"] = np.maximum(arr.std(0), 1e-6).tolist()
        return out
