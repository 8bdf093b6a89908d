"""Env throughput: steps/s of PushT4D-v0 per backend, robot and obs mode, and gym-pusht in the same run.

    python benchmarks/bench_env.py [--steps N] [--backends mujoco,pybullet] [--robots panda_hand,panda]
                                   [--modes state,pointcloud,rgbd,all] [--repeats R]

gym-pusht (extra `bench`) is the anchor: its state and 96x96 pixel modes are measured in
this run, and every PushT4D figure is printed next to its ratio to them and, for
PyBullet, to MuJoCo in the same mode. With ``--repeats R`` every figure (anchors included) is the
median of R measurements, taken in rounds so that load from other processes hits all of them alike.
Memory: benchmarks/bench_memory.py.
"""

from __future__ import annotations

import argparse
import statistics
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


def gym_pusht_rate(obs_type: str, steps: int = 400, repeats: int = 3) -> float | None:
    """Median steps/s of gym-pusht (``obs_type`` "state" or "pixels") over ``repeats`` fresh envs of ``steps`` random
    actions each, the first discarded as warm-up; None when gym-pusht (extra `bench`) is not installed."""
    try:
        import gym_pusht  # noqa: F401
    except ImportError:
        return None
    rates = []
    for _ in range(repeats + 1):
        env = gym.make("gym_pusht/PushT-v0", obs_type=obs_type)
        rates.append(rate(env, steps))
        env.close()
    return statistics.median(rates[1:])


def main() -> None:
    """Print the table."""
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=500)
    ap.add_argument("--backends", default="mujoco,pybullet")
    ap.add_argument("--robots", default="panda_hand,panda")
    ap.add_argument("--modes", default="state,pointcloud,rgbd,all")
    ap.add_argument("--repeats", type=int, default=1)
    args = ap.parse_args()
    anchor_modes = (("state", "state"), ("pixels", "pixels"))
    try:
        import gym_pusht  # noqa: F401
    except ImportError:
        anchor_modes = ()
        print("gym-pusht not installed (pip install -e .[bench]); no anchor ratios")
    configs = [(b, r, m) for b in args.backends.split(",") for r in args.robots.split(",")
               for m in args.modes.split(",")]
    samples: dict = {}
    for _ in range(max(1, args.repeats)):  # rounds: every figure measured once per round
        for mode, obs_type in anchor_modes:
            env = gym.make("gym_pusht/PushT-v0", obs_type=obs_type)
            samples.setdefault(("anchor", mode), []).append(rate(env, args.steps))
            env.close()
        for backend, robot, mode in configs:
            env = gym.make("PushT4D-v0", robot=robot, obs_mode=mode, backend=backend)
            steps = args.steps if mode == "state" else max(100, args.steps // 4)
            samples.setdefault((backend, robot, mode), []).append(rate(env, steps))
            env.close()
    anchors = {mode: statistics.median(samples["anchor", mode]) for mode, _ in anchor_modes}
    for mode in anchors:
        print(f"gym-pusht {mode:10s} {anchors[mode]:8.0f} steps/s")
    rates = {}
    for backend, robot, mode in configs:
        r = rates[backend, robot, mode] = statistics.median(samples[backend, robot, mode])
        kind = "state" if mode == "state" else "pixels"
        ratio = f"{r / anchors[kind]:6.2f}x gym-pusht {kind}" if kind in anchors else ""
        if backend != "mujoco" and ("mujoco", robot, mode) in rates:
            ratio += f"  {r / rates['mujoco', robot, mode]:5.2f}x mujoco"
        print(f"PushT4D {backend:8s} {robot:10s} {mode:10s} {r:8.0f} steps/s {ratio}", flush=True)


if __name__ == "__main__":
    main()
