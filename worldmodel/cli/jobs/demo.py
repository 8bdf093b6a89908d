"""``wm4d demo``: the main job.

1. Records heuristic pushing episodes of PushT4D-v0 and writes ``outputs/demo.zarr``,
   ``outputs/pusht4d_rgb.mp4`` (all cameras side by side) and ``outputs/pusht4d_pointflow.png``
   (fused scene points, URDF gripper points and the exact ground-truth flow of the block's
   points over ``flow_horizon`` steps).
2. Plans with the shipped point-flow model: ``wm4d eval`` with push-primitive MPC and learned dynamics on
   a handful of short-goal episodes (``plan`` in the config) into ``outputs/plan/``:
   ``summary.json``, ``episodes.jsonl``, ``coverage.png`` and videos with the predicted block
   points of every plan drawn over the cameras.
"""

from __future__ import annotations

import os
import shutil

import numpy as np
from omegaconf import DictConfig, OmegaConf
from tqdm import tqdm

from robots.transforms import pose_matrix


def plot_point_flow(path: str, scene: np.ndarray, labels: np.ndarray, colors: np.ndarray, gripper: np.ndarray,
                    start: np.ndarray, end: np.ndarray, title: str) -> None:
    """Save a 3D figure: scene points in their colours, gripper points, flow arrows start -> end."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig = plt.figure(figsize=(8, 7))
    ax = fig.add_subplot(projection="3d")
    static = labels == 0
    ax.scatter(*scene[static].T, c=colors[static], s=2, depthshade=False)
    ax.scatter(*scene[~static].T, c=colors[~static], s=6, depthshade=False, label="block points")
    ax.scatter(*gripper.T, c="tab:orange", s=4, depthshade=False, label="gripper points (URDF FK)")
    d = end - start
    ax.quiver(*start.T, *d.T, color="tab:red", arrow_length_ratio=0.2, linewidth=0.8, label="ground-truth flow")
    ax.set_xlim(-0.43, 0.43), ax.set_ylim(-0.43, 0.43), ax.set_zlim(0, 0.3)
    ax.set_box_aspect((1, 1, 0.35))
    ax.view_init(elev=35, azim=-60)
    ax.set_xlabel("x (m)"), ax.set_ylabel("y (m)"), ax.set_zlabel("z (m)")
    ax.set_title(title)
    ax.legend(loc="upper left", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def run(cfg: DictConfig) -> None:
    """Run the demo and write its files into ``cfg.out``."""
    import gymnasium as gym
    import imageio.v2 as imageio

    import envs  # noqa: F401
    from policies import HeuristicPushPolicy
    from worldmodel.data import RolloutStore
    from worldmodel.data.recorder import RecordRollout

    from .collect import episode_seeds

    os.makedirs(cfg.out, exist_ok=True)
    store_path = os.path.join(cfg.out, "demo.zarr")
    shutil.rmtree(store_path, ignore_errors=True)
    env_kwargs = OmegaConf.to_container(cfg.env, resolve=True)
    env = RecordRollout(gym.make("PushT4D-v0", max_episode_steps=int(cfg.max_steps), render_mode="rgb_array",
                                 **env_kwargs), store_path, attrs={"seed": int(cfg.seed)})
    frames = []
    for seed in tqdm(episode_seeds(int(cfg.seed), int(cfg.episodes)), desc="demo episodes", unit="ep"):
        policy = HeuristicPushPolicy(np.random.default_rng(seed))
        obs, info = env.reset(seed=seed)
        done = False
        while not done:
            frames.append(env.render())
            obs, reward, terminated, truncated, info = env.step(policy.act(obs, info))
            done = terminated or truncated
    env.close()
    video = os.path.join(cfg.out, "pusht4d_rgb.mp4")
    imageio.mimwrite(video, [np.repeat(np.repeat(f, 2, 0), 2, 1) for f in frames], fps=10, macro_block_size=8)

    store = RolloutStore(store_path)
    ep = store.episode(0)
    moved = np.linalg.norm(np.diff(ep["block_pose"][:, :2], axis=0), axis=1)
    H = int(cfg.flow_horizon)
    t = int(np.clip(np.argmax(moved > 1e-3) - 1, 0, len(moved) - H - 1)) if len(moved) > H else 0
    end_pose = ep["block_pose7"][min(t + H, len(moved))]


    obj = ep["scene_obj_coords"][t]
    is_block = ~np.isnan(obj[:, 0])
    future = obj[is_block] @ pose_matrix(end_pose)[:3, :3].T + pose_matrix(end_pose)[:3, 3]
    png = os.path.join(cfg.out, "pusht4d_pointflow.png")
    plot_point_flow(png, ep["scene_points"][t], ep["scene_labels"][t], ep["scene_colors"][t], ep["gripper_points"][t],
                    ep["scene_points"][t][is_block], future, f"PushT4D-v0: scene at t={t}, block flow to t+{H}")
    print(f"wrote {store_path} ({store.num_episodes} episodes), {video}, {png}")
    if cfg.plan.episodes > 0:
        from worldmodel.cli.main import run_job

        plan_dir = os.path.join(cfg.out, "plan")
        shutil.rmtree(plan_dir, ignore_errors=True)
        overrides = [f"{k}={v}" for k, v in OmegaConf.to_container(cfg.plan, resolve=True).items()]
        run_job("eval", overrides + [f"out={plan_dir}"])
