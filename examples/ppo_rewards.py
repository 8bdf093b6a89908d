"""PPO (stable-baselines3) on the short-goal PushT4D protocol with three rewards: the env's coverage
reward, the flow-tracking `FlowReward` and the env reward plus the model-predicted shaping of `ModelReward`.

Every run (reward x seed) trains for the same number of env steps (``--steps``) and is evaluated every
``--eval-every`` steps on the same held-out episodes with the *coverage* reward: ``avg_max_reward``
(mean over episodes of the episode's max coverage reward) and ``success`` (coverage > 0.95 at any
step). PPO sees a flat 10-vector (fingertip xy, block x, y, sin/cos yaw, goal x, y, sin/cos yaw);
for ModelReward the inner env renders point clouds, which only the reward wrapper reads.

Rows are appended to ``<out>/curves.csv`` when a run finishes; finished runs are skipped on the next
call (resumable). ``<out>/summary.csv`` (final numbers per run) and ``<out>/ppo_rewards.png``
(learning curves, mean +- std over seeds) are rewritten at the end. Needs the ``rl`` extra::

    pip install -e ".[rl]"
    nice -n 10 python examples/ppo_rewards.py --steps 20000 --seeds 0 1 2 --checkpoint pretrained
"""

from __future__ import annotations

import argparse
import csv
import time
from pathlib import Path

import gymnasium as gym
import numpy as np
import torch
from tqdm import tqdm

import envs  # noqa: F401  (registers PushT4D-v0)
from envs import pusht_geometry as geo
from policies import FlowReward, ModelReward

REWARDS = ("coverage", "flow", "model")
FIELDS = ("reward", "seed", "budget", "steps", "avg_max_reward", "success", "wall_s")
EVAL_SEED = 100_000  # held-out episode seeds: EVAL_SEED + i
ENV_KW = dict(robot="panda_hand", action_mode="delta", start="near_goal")


class FlatObservation(gym.ObservationWrapper):
    """The state of a PushT4D env as a flat vector: agent xy, block x, y, sin/cos yaw, goal x, y, sin/cos yaw."""

    def __init__(self, env: gym.Env):
        super().__init__(env)
        self.observation_space = gym.spaces.Box(-1.0, 1.0, (10,), np.float32)
        gx, gy, gyaw = geo.GOAL_POSE
        self._goal = np.array([gx, gy, np.sin(gyaw), np.cos(gyaw)], np.float32)

    def observation(self, obs: dict) -> np.ndarray:
        """Flatten the dict observation."""
        x, y, yaw = obs["block_pose"]
        return np.concatenate([obs["agent_pos"], [x, y, np.sin(yaw), np.cos(yaw)], self._goal]).astype(np.float32)


def make_env(reward: str, args: argparse.Namespace, model: torch.nn.Module | None = None) -> gym.Env:
    """A training env for ``reward`` with the flat observation."""
    obs_mode = "pointcloud" if reward == "model" else "state"
    env = gym.make("PushT4D-v0", obs_mode=obs_mode, max_episode_steps=args.max_episode_steps, **ENV_KW)
    if reward == "flow":
        env = FlowReward(env, scale=args.flow_scale, mode="replace")
    elif reward == "model":
        env = ModelReward(env, model, weight=args.shaping_weight, gamma=args.gamma)
    return FlatObservation(env)


def evaluate(policy, env: gym.Env, episodes: int) -> tuple[float, float]:
    """(avg_max_reward, success rate) of the deterministic policy over the held-out episodes."""
    best, success = [], []
    for i in range(episodes):
        obs, _ = env.reset(seed=EVAL_SEED + i)
        rewards, ok, done = [], False, False
        while not done:
            action, _ = policy.predict(obs, deterministic=True)
            obs, r, terminated, truncated, info = env.step(action)
            rewards.append(r)
            ok |= bool(info["is_success"])
            done = terminated or truncated
        best.append(max(rewards))
        success.append(ok)
    return float(np.mean(best)), float(np.mean(success))


def read_rows(path: Path) -> list[dict]:
    """Rows of a CSV written by this script (none when it does not exist)."""
    if not path.exists():
        return []
    with path.open() as f:
        return list(csv.DictReader(f))


def run(reward: str, seed: int, args: argparse.Namespace, model: torch.nn.Module | None) -> list[dict]:
    """Train one PPO agent and return its evaluation rows."""
    from stable_baselines3 import PPO
    from stable_baselines3.common.callbacks import BaseCallback

    eval_env = FlatObservation(gym.make("PushT4D-v0", obs_mode="state", max_episode_steps=args.max_episode_steps,
                                        **ENV_KW))
    env = make_env(reward, args, model)
    env.reset(seed=seed)
    env.action_space.seed(seed)
    agent = PPO("MlpPolicy", env, n_steps=args.n_steps, batch_size=args.batch_size, gamma=args.gamma,
                learning_rate=args.lr, seed=seed, device="cpu", verbose=0)
    rows, t0 = [], time.perf_counter()
    bar = tqdm(total=args.steps, desc=f"{reward} seed {seed}", unit="step", dynamic_ncols=True)

    def record(steps: int) -> None:
        avg_max, success = evaluate(agent, eval_env, args.eval_episodes)
        rows.append(dict(reward=reward, seed=seed, budget=args.steps, steps=steps, avg_max_reward=round(avg_max, 4),
                         success=round(success, 4), wall_s=round(time.perf_counter() - t0, 1)))
        bar.set_postfix(avg_max=f"{avg_max:.3f}", success=f"{success:.2f}")

    class Progress(BaseCallback):
        def _on_step(self) -> bool:
            bar.update(1)
            if self.num_timesteps % args.eval_every == 0:
                record(self.num_timesteps)
            return True

    record(0)
    agent.learn(total_timesteps=args.steps, callback=Progress())
    if rows[-1]["steps"] != args.steps:
        record(args.steps)
    bar.close()
    env.close()
    eval_env.close()
    return rows


def plot(rows: list[dict], path: Path) -> None:
    """Learning curves (mean +- std over seeds) of avg_max_reward and success rate per reward."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(10, 3.8))
    for reward in REWARDS:
        runs = [r for r in rows if r["reward"] == reward]
        if not runs:
            continue
        steps = sorted({int(r["steps"]) for r in runs})
        seeds = sorted({r["seed"] for r in runs})
        for ax, key in zip(axes, ("avg_max_reward", "success")):
            table = {(r["seed"], int(r["steps"])): float(r[key]) for r in runs}
            vals = np.array([[table.get((s, t), np.nan) for t in steps] for s in seeds])
            mean, std = np.nanmean(vals, 0), np.nanstd(vals, 0)
            ax.plot(steps, mean, label=f"{reward} ({len(seeds)} seeds)")
            ax.fill_between(steps, mean - std, mean + std, alpha=0.2)
    for ax, title in zip(axes, ("avg_max_reward (coverage)", "success rate")):
        ax.set(xlabel="env steps", title=title)
        ax.grid(alpha=0.3)
    axes[0].legend()
    fig.suptitle("PPO on PushT4D-v0 short goals (near_goal, panda_hand, delta actions)")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def write_csv(path: Path, rows: list[dict], fields: tuple[str, ...], append: bool) -> None:
    """Write (or append) ``rows`` to a CSV with a header."""
    new = not (append and path.exists())
    with path.open("w" if new else "a", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=fields)
        if new:
            writer.writeheader()
        writer.writerows(rows)


def summarise(rows: list[dict], budget: int) -> list[dict]:
    """The final evaluation of every finished run with ``budget`` steps."""
    return [r for r in rows if int(r["budget"]) == budget and int(r["steps"]) == budget]


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line arguments (see --help)."""
    class Formatter(argparse.ArgumentDefaultsHelpFormatter, argparse.RawDescriptionHelpFormatter):
        pass

    p = argparse.ArgumentParser(description=__doc__, formatter_class=Formatter)
    p.add_argument("--rewards", nargs="+", choices=REWARDS, default=list(REWARDS), help="rewards to train with")
    p.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2], help="training seeds")
    p.add_argument("--steps", type=int, default=20000, help="env steps per run (the same for every reward)")
    p.add_argument("--eval-every", type=int, default=2000, help="evaluate every this many env steps")
    p.add_argument("--eval-episodes", type=int, default=10, help="held-out episodes per evaluation")
    p.add_argument("--max-episode-steps", type=int, default=100, help="episode length (training and evaluation)")
    p.add_argument("--checkpoint", default="pretrained",
                   help="point-flow checkpoint (shipped name or directory) for ModelReward")
    p.add_argument("--flow-scale", type=float, default=0.05, help="FlowReward: exp(-d / scale), metres")
    p.add_argument("--shaping-weight", type=float, default=1.0, help="ModelReward: weight of the shaping term")
    p.add_argument("--gamma", type=float, default=0.99, help="PPO discount (also the shaping's gamma)")
    p.add_argument("--n-steps", type=int, default=512, help="PPO rollout length")
    p.add_argument("--batch-size", type=int, default=64, help="PPO minibatch size")
    p.add_argument("--lr", type=float, default=3e-4, help="PPO learning rate")
    p.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    p.add_argument("--out", type=Path, default=Path(__file__).parent / "results", help="output folder")
    args = p.parse_args(argv)
    for name in ("steps", "eval_every", "eval_episodes", "max_episode_steps", "n_steps", "batch_size", "threads"):
        if getattr(args, name) <= 0:
            p.error(f"--{name.replace('_', '-')} must be positive")
    return args


def main(argv: list[str] | None = None) -> None:
    """Train every (reward, seed) run not yet in the CSV, then write the summary and the plot."""
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    args.out.mkdir(parents=True, exist_ok=True)
    curves = args.out / "curves.csv"
    done = {(r["reward"], int(r["seed"])) for r in summarise(read_rows(curves), args.steps)}
    todo = [(rw, s) for rw in args.rewards for s in args.seeds if (rw, s) not in done]
    model = None
    if any(rw == "model" for rw, _ in todo):
        from worldmodel.pretrained import load_model

        model = load_model(args.checkpoint)[0]
    for reward, seed in todo:
        write_csv(curves, run(reward, seed, args, model), FIELDS, append=True)
    rows = [r for r in read_rows(curves) if int(r["budget"]) == args.steps]
    write_csv(args.out / "summary.csv", summarise(rows, args.steps), FIELDS, append=False)
    plot(rows, args.out / "ppo_rewards.png")
    for reward in REWARDS:
        final = [r for r in summarise(rows, args.steps) if r["reward"] == reward]
        if final:
            am, sr = (np.array([float(r[k]) for r in final]) for k in ("avg_max_reward", "success"))
            print(f"{reward:9s} seeds={len(final)} avg_max_reward={am.mean():.3f}+-{am.std():.3f} "
                  f"success={sr.mean():.2f}+-{sr.std():.2f}")


if __name__ == "__main__":
    main()
