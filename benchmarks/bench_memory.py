"""Resident memory of one PushT4D-v0 env over a long run (does it stay bounded and flat?).

    python benchmarks/bench_memory.py [--steps 100000] [--obs-mode pointcloud] [--robot panda_hand]

Prints the resident set size (RSS) after construction and every ``--every`` steps; the
process holds nothing but the env.
"""

from __future__ import annotations

import argparse
import time

import gymnasium as gym
import psutil

import envs  # noqa: F401


def main() -> None:
    """Run the soak and print RSS figures."""
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=100_000)
    ap.add_argument("--every", type=int, default=10_000)
    ap.add_argument("--obs-mode", default="pointcloud")
    ap.add_argument("--robot", default="panda_hand")
    args = ap.parse_args()
    proc = psutil.Process()
    env = gym.make("PushT4D-v0", robot=args.robot, obs_mode=args.obs_mode)
    env.reset(seed=0)
    env.action_space.seed(0)
    mb = lambda: proc.memory_info().rss / 2**20  # noqa: E731
    start = mb()
    print(f"after construction and reset: {start:.0f} MB", flush=True)
    t = time.perf_counter()
    samples = []
    for i in range(1, args.steps + 1):
        _, _, term, trunc, _ = env.step(env.action_space.sample())
        if term or trunc:
            env.reset()
        if i % args.every == 0:
            samples.append(mb())
            print(f"step {i:7d}: {samples[-1]:.0f} MB  ({i / (time.perf_counter() - t):.0f} steps/s)", flush=True)
    first = samples[0] if samples else start
    print(f"peak {max(samples + [start]):.0f} MB; "
          f"growth after the first {args.every} steps: {samples[-1] - first:+.1f} MB")


if __name__ == "__main__":
    main()
