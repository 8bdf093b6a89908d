"""Env throughput: steps/s of PushT4D-v0 per backend, robot and obs mode, and gym-pusht in the same run.

    python benchmarks/bench_env.py [--steps N] [--backends mujoco,pybullet]

gym-pusht (extra `bench`) is the anchor: its state and 96x96 pixel modes are measured in
this run, and every PushT4D figure is printed next to its ratio to them and, for
PyBullet, to MuJoCo in the same mode. Memory: benchmarks/bench_memory.py.
"""

from __future__ import annotations

import argparse
import time

import gymnasium as gym

import envs  # noqa: F401


def rate(env: gym.Env, steps: int, seed: int = 0) -> float:
    """Steps per second over ``steps`` random actions (resets excluded from nothing: they count)."""
    env.reset(seed=seed)
    env.action_space.seed(seed)
    actions = [env.action_space.sample() for _ in range(steps)]
    t = time.perf_counter()
    for a in actions:
        _, _, term, trunc, _ = env.step(a)
        if term or trunc:
            env.reset()
    return steps / (time.perf_counter() - t)


def main() -> None:
    """Print the table."""
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=500)
    ap.add_argument("--backends", default="mujoco,pybullet")
    args = ap.parse_args()
    anchors = {}
    try:
        import gym_pusht  # noqa: F401

        for mode, obs_type in (("state", "state"), ("pixels", "pixels")):
            env = gym.make("gym_pusht/PushT-v0", obs_type=obs_type)
            anchors[mode] = rate(env, args.steps)
            env.close()
            print(f"gym-pusht {mode:10s} {anchors[mode]:8.0f} steps/s")
    except ImportError:
        print("gym-pusht not installed (pip install -e .[bench]); no anchor ratios")
    rates = {}
    for backend in args.backends.split(","):
        for robot in ("panda_hand", "panda"):
            for mode in ("state", "pointcloud", "rgbd", "all"):
                env = gym.make("PushT4D-v0", robot=robot, obs_mode=mode, backend=backend)
                r = rates[backend, robot, mode] = rate(env,
                                                       args.steps if mode == "state" else max(100, args.steps // 4))
                env.close()
                kind = "state" if mode == "state" else "pixels"
                ratio = f"{r / anchors[kind]:6.2f}x gym-pusht {kind}" if kind in anchors else ""
                if backend != "mujoco" and ("mujoco", robot, mode) in rates:
                    ratio += f"  {r / rates['mujoco', robot, mode]:5.2f}x mujoco"
                print(f"PushT4D {backend:8s} {robot:10s} {mode:10s} {r:8.0f} steps/s {ratio}", flush=True)

if __name__ == "__main__":
    main()
