"""``wm4d demo``: the main job.

1. Records heuristic pushing episodes of PushT4D-v0 and writes ``outputs/demo.zarr``,
   ``outputs/pusht4d_rgb.mp4`` (an oblique view of the whole rig, the arm on its gantry included, beside a
   top-down view of the table, ``video_height`` pixels high, with the goal pose shaded on the table and the
   coverage in the corner) and ``outputs/pusht4d_pointflow.png`` (fused scene points, URDF gripper points
   and the exact ground-truth flow of the block's points over ``flow_horizon`` steps, in 3D and from above
   with the goal, the block before and after, the fingertip path and the shipped model's predicted flow).
2. Plans with the shipped point-flow model: ``wm4d eval`` with push-primitive MPC and learned dynamics on
   a handful of short-goal episodes (``plan`` in the config) into ``outputs/plan/``:
   ``summary.json``, ``episodes.jsonl``, ``coverage.png`` and videos (the same two views) with the
   predicted block points of every plan drawn against their goal positions.
"""

from __future__ import annotations

import os
import shutil

import numpy as np
from omegaconf import DictConfig, OmegaConf
from tqdm import tqdm

from robots.transforms import pose_matrix

SCENE_GREY = (0.62, 0.62, 0.62)
MAX_ARROWS = 60  # flow arrows drawn per panel (evenly spread over the block's points)


def plot_point_flow(path: str, ep: dict[str, np.ndarray], t: int, horizon: int, goal: np.ndarray,
                    predicted: np.ndarray | None = None) -> None:
    """Save the point-flow figure of row ``t`` of episode ``ep`` (a rollout store's arrays): a 3D view of the
    fused scene points, the URDF gripper points and the ground-truth flow of the block's points to ``t +
    horizon``; and a top-down view with the ``goal`` footprint (N, 2), the block's outline before and after,
    the fingertip path and (if given) the ``predicted`` displacement (Ns, 3) of a model."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch, Polygon

    from envs.pusht import geometry as geo

    end = min(t + horizon, len(ep["scene_points"]) - 1)
    pts, labels, grip = ep["scene_points"][t], ep["scene_labels"][t], ep["gripper_points"][t]
    block = labels == 1
    obj = ep["scene_obj_coords"][t][block]
    T_end = pose_matrix(ep["block_pose7"][end])
    start, future = pts[block], obj @ T_end[:3, :3].T + T_end[:3, 3]
    flow = future - start
    arrows = np.unique(np.linspace(0, len(start) - 1, min(len(start), MAX_ARROWS)).astype(int))
    tips = ep["agent_pos"][t: end + 1]
    steps = f"t={t} \u2192 t+{end - t}"

    fig = plt.figure(figsize=(15, 7.2))
    grid = fig.add_gridspec(1, 2, width_ratios=(1.25, 1))
    ax = fig.add_subplot(grid[0], projection="3d")
    ax.scatter(*pts[~block].T, c=[SCENE_GREY], s=1.5, depthshade=False)
    ax.scatter(*start.T, c=ep["scene_colors"][t][block], s=7, depthshade=False)
    ax.scatter(*grip.T, c="tab:orange", s=5, depthshade=False)
    ax.quiver(*start[arrows].T, *flow[arrows].T, color="tab:red", arrow_length_ratio=0.15, linewidth=0.9)
    ax.plot(goal[:, 0], goal[:, 1], np.zeros(len(goal)), color="tab:green", lw=2)
    ax.set_xlim(-0.43, 0.43), ax.set_ylim(-0.43, 0.43), ax.set_zlim(0, 0.3)
    ax.set_box_aspect((1, 1, 0.35), zoom=1.25)
    ax.view_init(elev=35, azim=-60)
    ax.set_xlabel("x (m)"), ax.set_ylabel("y (m)"), ax.set_zlabel("z (m)")
    ax.set_title("3D: what the model sees at t, and the true flow")

    ax2 = fig.add_subplot(grid[1])
    ax2.add_patch(Polygon(goal, closed=True, fc=(0.16, 0.67, 0.24, 0.25), ec="tab:green", lw=2))
    for pose, style in ((ep["block_pose"][t], "-"), (ep["block_pose"][end], "--")):
        xy = np.asarray(geo.footprint_at(np.asarray(pose, dtype=float)).exterior.coords)
        ax2.add_patch(Polygon(xy, closed=True, fill=False, ec="tab:blue", lw=1.5, ls=style))
    ax2.scatter(*pts[~block, :2].T, c=[SCENE_GREY], s=3)
    ax2.scatter(*start[:, :2].T, c=ep["scene_colors"][t][block], s=6)
    kw = dict(angles="xy", scale_units="xy", scale=1, width=0.004)
    ax2.quiver(*start[arrows, :2].T, *flow[arrows, :2].T, color="tab:red", **kw)
    if predicted is not None:
        p = predicted[block][arrows]
        ax2.quiver(*start[arrows, :2].T, *p[:, :2].T, color="tab:purple", alpha=0.75, **kw)
    ax2.plot(tips[:, 0], tips[:, 1], "-", color="tab:orange", lw=2)
    ax2.plot(*tips[0], "o", color="tab:orange", ms=6)
    half = geo.WORKSPACE / 2
    ax2.plot([-half, half, half, -half, -half], [-half, -half, half, half, -half], color="0.35", lw=2)
    # zoomed on what moves: the goal, the block before and after, the fingertip path
    seen = np.concatenate([goal, start[:, :2], future[:, :2], tips])
    centre, reach = (seen.min(0) + seen.max(0)) / 2, (seen.max(0) - seen.min(0)).max() / 2 + 0.06
    ax2.set_xlim(centre[0] - reach, centre[0] + reach), ax2.set_ylim(centre[1] - reach, centre[1] + reach)
    ax2.set_aspect("equal")
    ax2.set_xlabel("x (m)"), ax2.set_ylabel("y (m)")
    cov = ep["coverage"]
    ax2.set_title(f"from above: coverage of the goal {cov[t]:.2f} at t, {cov[end]:.2f} at t+{end - t}")

    handles = [
        Line2D([], [], ls="", marker="o", color=SCENE_GREY, label="table points at t (fused from the RGB-D cameras)"),
        Line2D([], [], ls="", marker="o", color=tuple(ep["scene_colors"][t][block].mean(0)),
               label="block points at t (the points that move)"),
        Line2D([], [], ls="", marker="o", color="tab:orange",
               label="gripper points at t (URDF meshes placed by forward kinematics)"),
        Line2D([], [], color="tab:orange", lw=2, label=f"fingertip path {steps} (the action)"),
        Line2D([], [], color="tab:red", lw=2, label=f"true flow {steps}: where each block point goes"),
        Patch(fc=(0.16, 0.67, 0.24, 0.25), ec="tab:green", label="goal pose of the T (success: > 95% covered)"),
        Line2D([], [], color="tab:blue", lw=1.5, label="block outline at t"),
        Line2D([], [], color="tab:blue", lw=1.5, ls="--", label=f"block outline at t+{end - t}"),
    ]
    if predicted is not None:
        handles.append(Line2D([], [], color="tab:purple", lw=2, label="flow predicted by the shipped world model"))
    fig.legend(handles=handles, loc="lower center", ncol=3, fontsize=9, frameon=False)
    fig.suptitle(f"PushT4D-v0 point flow: a world model is given the scene at step t and the gripper's motion "
                 f"over the next {end - t} steps ({(end - t) / 10:.1f} s), and predicts where every block point goes\n"
                 "(red: true flow, purple: predicted)", fontsize=12)
    fig.tight_layout(rect=(0, 0.12, 1, 0.95))
    fig.savefig(path, dpi=110)
    plt.close(fig)


def predicted_flow(checkpoint: str, store_path: str, episode: int, t: int, horizon: int) -> np.ndarray | None:
    """A checkpoint's predicted displacement (Ns, 3) at ``horizon`` of row ``t`` of ``episode`` (the sample
    ``wm4d eval-model`` scores); None when its horizon differs or the row has no sample."""
    from worldmodel.data import RolloutStore

    from .view import predicted_flow as episode_prediction

    store = RolloutStore(store_path)
    lengths = [b - a for a, b in (store.episode_bounds(i) for i in range(store.num_episodes))]
    model_horizon, pred = episode_prediction(checkpoint, store_path, episode, lengths)
    return pred.get(t) if model_horizon == horizon else None


def run(cfg: DictConfig) -> None:
    """Run the demo and write its files into ``cfg.out``."""
    import gymnasium as gym
    import imageio.v2 as imageio

    import envs  # noqa: F401
    from envs.overlay import annotate, goal_polygon, showcase_cameras
    from physics.render import Frames
    from policies import HeuristicPushPolicy
    from worldmodel.data import RolloutStore
    from worldmodel.data.recorder import RecordRollout

    from .collect import episode_seeds

    os.makedirs(cfg.out, exist_ok=True)
    store_path = os.path.join(cfg.out, "demo.zarr")
    shutil.rmtree(store_path, ignore_errors=True)
    env_kwargs = OmegaConf.to_container(cfg.env, resolve=True)
    env = RecordRollout(gym.make("PushT4D-v0", max_episode_steps=int(cfg.max_steps), **env_kwargs), store_path,
                        attrs={"seed": int(cfg.seed)})
    oblique, top = showcase_cameras(int(cfg.video_height))
    goal = goal_polygon(env)

    def frame(info: dict, episode: int, step: int) -> np.ndarray:
        views = [env.unwrapped.render_views((oblique,)), env.unwrapped.render_views((top,), decorations=False)]
        both = Frames(*(np.concatenate([getattr(f, k) for f in views]) for k in ("rgb", "depth", "segmentation")))
        return annotate(both, (oblique, top), goal=goal, text=(
            f"coverage {info['coverage']:.2f} (success > 0.95)", f"episode {episode}, step {step}"))

    frames = []
    for k, seed in enumerate(tqdm(episode_seeds(int(cfg.seed), int(cfg.episodes)), desc="demo episodes", unit="ep")):
        policy = HeuristicPushPolicy(np.random.default_rng(seed))
        obs, info = env.reset(seed=seed)
        done, step = False, 0
        while not done:
            frames.append(frame(info, k, step))
            obs, reward, terminated, truncated, info = env.step(policy.act(obs, info))
            done, step = terminated or truncated, step + 1
        frames.append(frame(info, k, step))
    env.close()
    video = os.path.join(cfg.out, "pusht4d_rgb.mp4")
    imageio.mimwrite(video, frames, fps=10, macro_block_size=8)

    store = RolloutStore(store_path)
    ep = store.episode(0)
    moved = np.linalg.norm(np.diff(ep["block_pose"][:, :2], axis=0), axis=1)
    H = int(cfg.flow_horizon)
    t = int(np.clip(np.argmax(moved > 1e-3) - 1, 0, len(moved) - H - 1)) if len(moved) > H else 0
    predicted = None
    if cfg.plan.checkpoint is not None:
        predicted = predicted_flow(str(cfg.plan.checkpoint), store_path, 0, t, H)
    png = os.path.join(cfg.out, "pusht4d_pointflow.png")
    plot_point_flow(png, ep, t, H, goal, predicted)
    print(f"wrote {store_path} ({store.num_episodes} episodes), {video}, {png}")
    if cfg.plan.episodes > 0:
        from worldmodel.cli.main import run_job

        plan_dir = os.path.join(cfg.out, "plan")
        shutil.rmtree(plan_dir, ignore_errors=True)
        overrides = [f"{k}={v}" for k, v in OmegaConf.to_container(cfg.plan, resolve=True).items()]
        run_job("eval", overrides + [f"out={plan_dir}", f"video_height={int(cfg.video_height)}"])
