"""``wm4d estimate-material data=PATH.zarr episode=K out=DIR``: Young's modulus of a recorded deformable episode.

Reads a deformable PushT4D episode (``wm4d collect env.block_material=jelly ...``: per step
``tracks`` (P, 3) of every particle and ``collider_poses`` (C, 7) of the gripper colliders),
rebuilds its MPM solver with ``envs.pusht.mpm_block.replay_solver`` and fits E through MPM
rollouts (:func:`physics.mpm.estimation.estimate_material`) over a window around the first
contact: from ``frames_before_contact`` frames before the first frame in which a collider
comes within one grid cell of a particle, ``window`` seconds long (<= 2 s; an episode
without contact fits the block settling under gravity from row 0). Frames before the
window are simulated forward from the episode's first row with the current estimate. The
replay moves its local grid exactly as the env did (``LocalDomainSolver.rollout_hook``), so with the true E
it reproduces the recorded tracks. E stays within ``youngs_modulus_bounds``. The
recording's attributes hold the true E of synthetic data (``block_youngs_modulus``); it is
dropped from the kwargs before anything is built (``TRUTH_KEYS``), so the estimate never
depends on it.

Writes ``DIR/estimate.json`` (``youngs_modulus``, its 95% interval, the start velocity,
loss history, window, particles, seconds) and ``DIR/estimate.png`` (loss against log E
and predicted against observed track displacement).
"""

from __future__ import annotations

import json
import math
import time
from pathlib import Path
from typing import Any

import numpy as np
from omegaconf import DictConfig

TRUTH_KEYS = ("block_youngs_modulus",)  # recorded ground truth: never passed on, never read
MAX_WINDOW_S = 2.0


def replay_kwargs(env_kwargs: dict[str, Any]) -> dict[str, Any]:
    """The env kwargs without the recorded ground truth (``TRUTH_KEYS``)."""
    return {k: v for k, v in env_kwargs.items() if k not in TRUTH_KEYS}


def box_distances(points: np.ndarray, poses: np.ndarray, half_extents: np.ndarray) -> np.ndarray:
    """(C,) distance from the nearest of ``points`` (P, 3) to each box (pose (C, 7) x y z qw qx qy qz; 0 inside)."""
    from scipy.spatial.transform import Rotation

    R = Rotation.from_quat(np.concatenate([poses[:, 4:], poses[:, 3:4]], axis=1)).as_matrix()
    local = np.einsum("cji,cpj->cpi", R, points[None] - poses[:, None, :3])  # R^T (x - p)
    outside = np.maximum(np.abs(local) - half_extents[:, None], 0.0)
    return np.linalg.norm(outside, axis=-1).min(axis=1)


def contact_frame(tracks: np.ndarray, poses: np.ndarray, half_extents: np.ndarray, reach: float) -> int | None:
    """First row whose colliders come within ``reach`` of a particle (or whose particles moved > 1 mm since the
    previous row, the fallback for colliders that are not boxes); None when the episode has no contact."""
    for t in range(len(tracks)):
        near = len(half_extents) and box_distances(tracks[t], poses[t], half_extents).min() < reach
        moved = t > 0 and np.linalg.norm(tracks[t] - tracks[t - 1], axis=1).max() > 1e-3 and not len(half_extents)
        if near or moved:
            return t
    return None


def contact_window(tracks: np.ndarray, poses: np.ndarray, half_extents: np.ndarray, reach: float, before: int,
                   frames: int) -> tuple[int, int, int | None]:
    """(first row, last row, contact row): the fit observes rows first + 1 .. last.

    Without any contact the window starts at row 0: the block, built at rest with F = I,
    settles under gravity by an amount that depends on E, and that is what gets fitted; so it
    does when the contact comes in the episode's last row (no frame after it to fit).
    """
    if len(tracks) < 2:
        raise ValueError(f"the episode has {len(tracks)} row(s): at least 2 are needed (one frame to fit)")
    contact = contact_frame(tracks, poses, half_extents, reach)
    first = 0 if contact is None else max(0, contact - before)
    if first >= len(tracks) - 1:
        first = 0
    return first, min(len(tracks) - 1, first + frames), contact


def write_json(path: Path, data: dict) -> None:
    """Write ``data`` as JSON atomically (temporary file, then rename)."""
    from worldmodel.training.checkpoint import atomic_write

    atomic_write(path, lambda tmp: tmp.write_text(json.dumps(data, indent=2)))


def plot(path: Path, report: Any, observed: np.ndarray, start: np.ndarray, frame_dt: float) -> None:
    """Loss against log E (evaluations and the Gauss-Newton parabola) and mean displacement, predicted vs observed."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax0, ax1) = plt.subplots(1, 2, figsize=(10, 4), dpi=90)
    E, L = np.array([e for e in report.evaluations if math.isfinite(e[1])]).T
    s, log_e = np.log(E), math.log(report.youngs_modulus)
    grid = np.linspace(min(s.min(), log_e - 0.3), max(s.max(), log_e + 0.3), 100)
    model = report.rmse**2 + 0.5 * report.curvature * (grid - log_e) ** 2
    ax0.semilogy(np.exp(grid), model, "-", color="0.6", label="Gauss-Newton model")
    ax0.semilogy(E, np.maximum(L, 1e-30), "o", label="rollouts (bracketing walk, trial steps)")
    ax0.axvspan(*report.interval95, color="C2", alpha=0.2, label="95% interval")
    ax0.set_xscale("log")
    ax0.set(xlabel="Young's modulus E (Pa)", ylabel="loss (m^2)", title=f"E = {report.youngs_modulus:.4g} Pa")
    ax0.legend(fontsize=8)
    t = frame_dt * np.arange(1, len(observed) + 1)
    obs_disp = np.nanmean(np.linalg.norm(observed - start, axis=-1), axis=1)
    pred_disp = np.linalg.norm(report.frame_positions - start, axis=-1).mean(axis=1)
    ax1.plot(t, 1e3 * obs_disp, "o", label="observed")
    ax1.plot(t, 1e3 * pred_disp, "-", label="predicted at the estimate")
    ax1.set(xlabel="time in window (s)", ylabel="mean particle displacement (mm)",
            title=f"track RMSE {1e3 * report.rmse:.3g} mm")
    ax1.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def run(cfg: DictConfig) -> None:
    """Estimate E of episode ``cfg.episode`` of ``cfg.data`` and write ``cfg.out/estimate.json``."""
    from envs.pusht.mpm_block import pose_colliders, replay_solver
    from physics.mpm.differentiable import TrackObservations
    from physics.mpm.estimation import estimate_material
    from robots.control import CONTROL_DT
    from worldmodel.data.rollouts import RolloutStore

    window_s, E0 = float(cfg.window), float(cfg.youngs_modulus0)
    bounds = tuple(float(b) for b in cfg.youngs_modulus_bounds)
    if not 0.0 < window_s <= MAX_WINDOW_S:
        raise ValueError(f"window must lie in (0, {MAX_WINDOW_S}] seconds, got {window_s}")
    if not (math.isfinite(E0) and E0 > 0.0):
        raise ValueError(f"youngs_modulus0 must be a finite positive number (Pa), got {E0}")
    if len(bounds) != 2 or not (math.isfinite(bounds[1]) and 0.0 < bounds[0] <= E0 <= bounds[1]):
        raise ValueError("youngs_modulus_bounds must be [low, high] Pa with 0 < low <= youngs_modulus0 "
                         f"({E0:g}) <= high, got {list(bounds)}")
    if int(cfg.frames_before_contact) < 0:
        raise ValueError(f"frames_before_contact must be >= 0, got {cfg.frames_before_contact}")
    started = time.perf_counter()
    store = RolloutStore(str(cfg.data))
    if not store.has_tracks or "collider_poses" not in store.keys:
        raise ValueError(f"{cfg.data} holds no per-particle tracks and collider poses: record it from a deformable env "
                         "(env.block_material=jelly)")
    kwargs = replay_kwargs(dict(store.attrs.get("env_kwargs", {})))
    ep = store.episode(int(cfg.episode), ["tracks", "track_visible", "collider_poses"])
    tracks = ep["tracks"].astype(np.float64)
    poses = ep["collider_poses"].astype(np.float64)

    solver, colliders = replay_solver(kwargs, tracks[0], E0, device=str(cfg.device))
    halves = np.array([c.half_extents for c in colliders])
    first, last, contact = contact_window(tracks, poses, halves, solver.config.dx, int(cfg.frames_before_contact),
                                          max(1, round(window_s / CONTROL_DT)))

    settling = contact is None or first != max(0, contact - int(cfg.frames_before_contact))  # contact too late to fit

    def drive(frame: int) -> None:
        pose_colliders(colliders, poses[frame], poses[frame + 1], CONTROL_DT)

    observed = tracks[first + 1 : last + 1].copy()
    if bool(cfg.visible_only):
        observed[~ep["track_visible"][first + 1 : last + 1].astype(bool)] = np.nan
    obs = TrackObservations(np.arange(len(tracks[0])), observed)
    report = estimate_material(solver, obs, CONTROL_DT, E0, drive=drive, warmup_frames=first,
                               fit_velocity=bool(cfg.fit_velocity), field=str(cfg.field),
                               max_iterations=int(cfg.max_iterations), tolerance=float(cfg.tolerance),
                               progress=bool(cfg.progress), grid_hook=solver.rollout_hook(), bounds=bounds)
    out = Path(str(cfg.out))
    out.mkdir(parents=True, exist_ok=True)
    result = {
        **report.as_dict(),
        "initial_velocity": {
            "fitted_offset": report.initial_velocity.tolist(),
            "fitted_offset_std": report.initial_velocity_std.tolist(),
            "mean_track_velocity_first_frame": ((tracks[first + 1] - tracks[first]).mean(0) / CONTROL_DT).tolist(),
        },
        "window": {"first_row": first, "last_row": last, "contact_row": contact, "seconds": (last - first) * CONTROL_DT,
                   "warmup_frames": first,
                   "fits": "settling under gravity (no contact)" if settling else "contact"},
        "youngs_modulus_bounds": list(bounds),
        "data": str(cfg.data),
        "episode": int(cfg.episode),
        "youngs_modulus0": E0,
        "seconds": time.perf_counter() - started,
    }
    write_json(out / "estimate.json", result)
    if bool(cfg.plot):
        plot(out / "estimate.png", report, observed, tracks[first], CONTROL_DT)
    lo, hi = report.interval95
    print(f"E = {report.youngs_modulus:.5g} Pa (95% interval {lo:.5g} .. {hi:.5g}), "
          f"track RMSE {1e3 * report.rmse:.3g} mm, {report.iterations} iterations, {result['seconds']:.1f} s "
          f"-> {out / 'estimate.json'}")
