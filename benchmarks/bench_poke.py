"""Poke4D-v0 throughput: steps/s in pointcloud and state mode, against PushT4D-v0 measured in the same run.

    python benchmarks/bench_poke.py [--steps N] [--shapes rod,stem,plate]

The anchor is PushT4D-v0 (floating hand, MuJoCo, pointcloud observations, random actions).
Poke4D-v0 is timed under random fingertip targets and under the scripted random pokes that
``wm4d collect ... policy=random_poke`` records (contact most of the time, where the modal
contact is substepped finely), each printed with its ratio to the anchor. The goal is a
Poke4D-v0 pointcloud rate within 2x of the anchor and at least 50 steps/s.
"""

from __future__ import annotations

import argparse
import time

import gymnasium as gym
import numpy as np

import envs  # noqa: F401
from policies.poke import RandomPokePolicy


def rate(env: gym.Env, steps: int, policy: RandomPokePolicy | None = None, seed: int = 0) -> float:
    """Steps per second over ``steps`` steps of random actions (or of ``policy``); resets count."""
    obs, info = env.reset(seed=seed)
    env.action_space.seed(seed)
    t = time.perf_counter()
    for _ in range(steps):
        action = env.action_space.sample() if policy is None else policy.act(obs, info)
        obs, _, term, trunc, info = env.step(action)
        if term or trunc:
            obs, info = env.reset()
            if policy is not None:
                policy.reset()
    return steps / (time.perf_counter() - t)


def main() -> None:
    """Print the table."""
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=200)
    ap.add_argument("--shapes", default="rod,stem,plate")
    args = ap.parse_args()
    anchor_env = gym.make("PushT4D-v0", robot="panda_hand", obs_mode="pointcloud", backend="mujoco")
    rate(anchor_env, 10)  # warm up
    anchor = rate(anchor_env, args.steps)
    anchor_env.close()
    print(f"PushT4D-v0 panda_hand pointcloud (random)  {anchor:7.1f} steps/s  (anchor)")
    for shape in args.shapes.split(","):
        for mode in ("pointcloud", "state"):
            env = gym.make("Poke4D-v0", shape=shape, obs_mode=mode)
            rate(env, 5)  # warm up (modes and meshes are cached per process)
            for name, policy in (("random", None), ("pokes", RandomPokePolicy(np.random.default_rng(0)))):
                r = rate(env, args.steps, policy)
                print(f"Poke4D-v0 {shape:5s} {mode:10s} ({name:6s})  {r:7.1f} steps/s  {r / anchor:5.2f}x anchor")
            env.close()


if __name__ == "__main__":
    main()
