"""Deformable PushT4D throughput: env steps/s per block material while the gripper pushes the T.

    python benchmarks/bench_deformable.py [--steps N] [--robot panda_hand] [--obs-mode pointcloud]
                                          [--spacing 0.004] [--materials jelly,plasticine,sand]

Each material runs ``--steps`` control steps (0.1 s each) of a straight push through the
block after one warm-up step, in the default pointcloud mode with 2 cameras at 96x96. Printed
per material: steps/s by wall time and by this process's CPU time (robust to other tenants'
load; Warp runs CPU kernels on one thread), particles, MPM substeps per step, the MPM share of
the step time and the particle-substeps/s of the solver; the rigid env's rate over the same
pushes in the same run is the anchor (ratio column, wall time), and gym-pusht's 96x96 pixel mode
(extra `bench`) the external one (issue target: jelly >= 0.005x gym-pusht pixels, ~3 steps/s).
"""

from __future__ import annotations

import argparse
import time

import gymnasium as gym
import numpy as np
from bench_env import gym_pusht_rate

import envs  # noqa: F401

START = {"block_pose": (0.0, 0.0, 0.0), "ee_xy": (0.0, -0.06)}


def push_targets(steps: int) -> list[np.ndarray]:
    """Fingertip targets pushing the T along +y, then sideways: contact in every step."""
    return [np.array([0.03 * np.sin(0.4 * i), min(0.02 * (i + 1), 0.25)]) for i in range(steps)]


def measure(kwargs: dict, steps: int) -> dict:
    """Steps/s and MPM figures of one env configuration over ``steps`` pushes (after a warm-up step)."""
    env = gym.make("PushT4D-v0", **kwargs)
    env.reset(seed=0, options=START)
    u = env.unwrapped
    targets = push_targets(steps + 1)
    env.step(targets[0])
    mpm = getattr(u, "mpm", None)
    sub0 = mpm.num_substeps_taken if mpm is not None else 0
    mpm_time = [0.0]
    if mpm is not None:  # time the solver's frames inside the env steps
        frame = mpm.step

        def timed_frame(dt: float) -> int:
            s = time.perf_counter()
            n = frame(dt)
            mpm_time[0] += time.perf_counter() - s
            return n

        mpm.step = timed_frame
    t0, c0 = time.perf_counter(), time.process_time()
    for a in targets[1:]:
        env.step(a)
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    out = {"steps_per_s": steps / wall, "cpu_steps_per_s": steps / cpu}
    if mpm is not None:
        substeps = (mpm.num_substeps_taken - sub0) / steps
        out.update(particles=mpm.num_particles, substeps=substeps, mpm_share=mpm_time[0] / wall,
                   particle_substeps_per_s=mpm.num_particles * substeps * steps / mpm_time[0])
    env.close()
    return out


def main() -> None:
    """Print the table."""
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=6)
    ap.add_argument("--robot", default="panda_hand")
    ap.add_argument("--obs-mode", default="pointcloud")
    ap.add_argument("--spacing", type=float, default=0.004)
    ap.add_argument("--materials", default="jelly,plasticine,sand")
    args = ap.parse_args()
    base = dict(robot=args.robot, obs_mode=args.obs_mode)
    pixels = gym_pusht_rate("pixels")
    if pixels is None:
        print("gym-pusht not installed (pip install -e .[bench]); no external anchor")
    else:
        print(f"gym-pusht   {pixels:8.1f} steps/s  (pixels 96x96, median of 3 runs after a warm-up; external anchor)")
    rigid = measure(base, max(50, args.steps))["steps_per_s"]
    print(f"rigid       {rigid:8.2f} steps/s  (anchor, {args.robot}, {args.obs_mode})")
    for material in args.materials.split(","):
        r = measure({**base, "block_material": material, "block_particle_spacing": args.spacing}, args.steps)
        print(f"{material:11s} {r['steps_per_s']:8.3f} steps/s ({r['cpu_steps_per_s']:.3f} per CPU time)  "
              f"{r['steps_per_s'] / rigid:7.4f}x rigid  "
              + (f"{r['steps_per_s'] / pixels:7.4f}x gym-pusht pixels  " if pixels else "") +
              f"{r['particles']} particles  {r['substeps']:.0f} substeps/step  MPM {100 * r['mpm_share']:.0f}% "
              f"of the step  {r['particle_substeps_per_s']:.3g} particle-substeps/s")


if __name__ == "__main__":
    main()
