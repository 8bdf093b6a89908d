"""Push4D-v0 throughput per object and gripper, against PushT4D-v0 measured in the same run.

    python benchmarks/bench_push4d.py [--steps N] [--objects T,L,duck,bunny,random_urdf/042] [--grippers ...]

The anchor is PushT4D-v0 (floating Panda hand, MuJoCo, pointcloud observations). Every env is
driven by the same pushes: fingertip targets 2 cm around the object's origin, so the gripper is
in contact most of the time (random targets over the workspace would mostly time free motion).
Each Push4D-v0 configuration is printed with its ratio to the anchor; the goal is >= 0.8x for a
mesh object with the Panda hand in pointcloud mode.
"""

from __future__ import annotations

import argparse
import time

import gymnasium as gym
import numpy as np

import envs  # noqa: F401


def rate(env: gym.Env, steps: int, pose_key: str, seed: int = 0) -> float:
    """Steps per second over ``steps`` pushing steps (targets around the object's origin); resets count."""
    rng = np.random.default_rng(seed)
    obs, _ = env.reset(seed=seed)
    t = time.perf_counter()
    for _ in range(steps):
        target = obs[pose_key][:2] + rng.normal(0.0, 0.02, 2)
        obs, _, term, trunc, _ = env.step(np.clip(target, -0.42, 0.42).astype(np.float32))
        if term or trunc:
            obs, _ = env.reset()
    return steps / (time.perf_counter() - t)


def main() -> None:
    """Print the table."""
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=200)
    ap.add_argument("--objects", default="T,L,ring,duck,bunny,random_urdf/042")
    ap.add_argument("--grippers", default="panda_hand,stick,xarm_gripper")
    ap.add_argument("--backend", default="mujoco")
    args = ap.parse_args()
    anchor_env = gym.make("PushT4D-v0", robot="panda_hand", obs_mode="pointcloud", backend=args.backend)
    rate(anchor_env, 10, "block_pose")  # warm up
    anchor = rate(anchor_env, args.steps, "block_pose")
    anchor_env.close()
    print(f"PushT4D-v0 panda_hand pointcloud {args.backend}          {anchor:7.1f} steps/s  (anchor)")
    configs = [(o, "panda_hand") for o in args.objects.split(",")]
    configs += [("duck", g) for g in args.grippers.split(",") if g != "panda_hand"]
    for obj, gripper in configs:
        env = gym.make("Push4D-v0", object=obj, gripper=gripper, obs_mode="pointcloud", backend=args.backend)
        rate(env, 10, "object_pose")  # warm up (objects and their convex pieces are cached per process)
        r = rate(env, args.steps, "object_pose")
        env.close()
        print(f"Push4D-v0 {obj:16s} {gripper:12s} pointcloud  {r:7.1f} steps/s  {r / anchor:5.2f}x anchor")


if __name__ == "__main__":
    main()
