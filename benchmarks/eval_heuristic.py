"""Success of the scripted heuristic pusher on PushT4D-v0 (gym-pusht / LeRobot metrics).

    python benchmarks/eval_heuristic.py [--episodes 100] [--seed 5000] [--robot panda_hand] [--start full]

Reports pc_success (success at any step, coverage > 0.95) with a 95% Wilson interval,
avg_max_reward (mean over episodes of the best clip(coverage / 0.95, 0, 1)) and the mean
final coverage. Episode i resets with seed ``seed + i``.
"""

from __future__ import annotations

import argparse
import time

import gymnasium as gym
import numpy as np
from tqdm import trange

import envs  # noqa: F401
from policies import HeuristicPushPolicy
from worldmodel.cli.jobs.eval import wilson_interval


def main() -> None:
    """Run the episodes and print the metrics."""
    ap = argparse.ArgumentParser()
    ap.add_argument("--episodes", type=int, default=100)
    ap.add_argument("--seed", type=int, default=5000)
    ap.add_argument("--robot", default="panda_hand")
    ap.add_argument("--start", default="full")
    ap.add_argument("--backend", default="mujoco")
    args = ap.parse_args()
    env = gym.make("PushT4D-v0", robot=args.robot, obs_mode="state", start=args.start, backend=args.backend)
    success, max_reward, final = [], [], []
    t = time.perf_counter()
    for i in trange(args.episodes, desc="episodes"):
        obs, info = env.reset(seed=args.seed + i)
        policy = HeuristicPushPolicy(np.random.default_rng(args.seed + i))
        best, done = 0.0, False
        while not done:
            obs, reward, terminated, truncated, info = env.step(policy.act(obs, info))
            best = max(best, reward)
            done = terminated or truncated
        success.append(best >= 1.0)
        max_reward.append(best)
        final.append(info["coverage"])
    lo, hi = wilson_interval(int(np.sum(success)), len(success))
    print(f"PushT4D-v0 backend={args.backend} robot={args.robot} start={args.start} episodes={args.episodes} "
          f"seeds {args.seed}..")
    print(f"pc_success {100 * np.mean(success):.1f}% (95% CI {100 * lo:.1f}-{100 * hi:.1f}%), "
          f"avg_max_reward {np.mean(max_reward):.3f}, final coverage {np.mean(final):.3f}, "
          f"{time.perf_counter() - t:.0f} s")


if __name__ == "__main__":
    main()
