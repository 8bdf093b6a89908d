"""Sim-to-sim parity of PushT4D-v0: the same pushes from the same states in MuJoCo and PyBullet.

    python benchmarks/parity_backends.py [--robot panda_hand] [--speed 0.01]

Scenarios: straight pushes of 30 steps against the T from 8 directions (toward the centre
of mass, and 15 deg off it to make the block turn), from 2 block poses. Prints, per scenario,
the final block position difference (mm), yaw difference (deg) and coverage difference
between the engines, then medians and maxima.

Medians (position mm / yaw deg) at --speed 0.003, 0.005, 0.01 (blocks move 5, 10, 24 cm):
panda_hand 1.2/0.6, 2.2/0.8, 6.8/1.9; panda 1.9/0.6, 3.1/2.2, 7.0/4.3. PyBullet gets there
with its own friction model for the block (physics/rigid/pybullet_backend.py explains it):
Coulomb friction at the table that opposes the slip (Bullet's multibody cone is off by up to
20 deg), and MuJoCo's effective pusher friction. What still differs: long fast pushes (24 cm)
that end with the block jammed against a wall, where the Panda arm's compliance (MuJoCo's
compliant joint servos, Bullet's stiff motors) decides where it slides, and pushes that
change contact (finger corner to face) at a slightly different moment, after which the
blocks part (the maxima).
"""

from __future__ import annotations

import argparse

import gymnasium as gym
import numpy as np
import shapely

import envs  # noqa: F401
from envs.pusht import geometry as geo


def scenarios(speed: float) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """(block pose, start xy, 30 xy targets) of every scenario."""
    out = []
    for pose in (np.array([0.0, 0.0, 0.3]), np.array([0.08, -0.05, -1.2])):
        com = geo.com_pose(pose)[:2]
        for k in range(8):
            a = 2 * np.pi * k / 8
            offset = np.radians(15.0) if k % 2 else 0.0
            d = -np.array([np.cos(a + offset), np.sin(a + offset)])  # push direction
            # start 4 cm outside the footprint (the closed fingers reach 2.6 cm from the tool centre)
            ray = shapely.LineString([com, com - 0.5 * d])
            hit = ray.intersection(geo.footprint_at(pose))
            pts = np.concatenate([np.asarray(g.coords) for g in getattr(hit, "geoms", [hit])])
            exit_point = pts[np.argmax(np.linalg.norm(pts - com, axis=1))]
            start = exit_point - 0.04 * d
            targets = np.array([start + d * speed * (i + 1) for i in range(30)])
            out.append((pose, start, targets))
    return out


def run(backend: str, robot: str, cases) -> list[np.ndarray]:
    """Final block poses (x, y, yaw) of every scenario in ``backend``."""
    env = gym.make("PushT4D-v0", robot=robot, obs_mode="state", backend=backend)
    finals = []
    for pose, start, targets in cases:
        env.reset(options={"block_pose": pose, "ee_xy": start})
        for a in targets:
            obs, *_ = env.step(a.astype(np.float32))
        finals.append(obs["block_pose"].astype(float))
    env.close()
    return finals


def main() -> None:
    """Print the parity table."""
    ap = argparse.ArgumentParser()
    ap.add_argument("--robot", default="panda_hand")
    ap.add_argument("--speed", type=float, default=0.01, help="push length per 0.1 s step (m)")
    args = ap.parse_args()
    cases = scenarios(args.speed)
    a, b = run("mujoco", args.robot, cases), run("pybullet", args.robot, cases)
    dpos, dyaw, dcov, moved = [], [], [], []
    print(f"{'case':>4} {'moved mm':>9} {'turned deg':>10} {'d pos mm':>9} {'d yaw deg':>9} {'d cov':>7}")
    for i, ((pose, _, _), pa, pb) in enumerate(zip(cases, a, b, strict=True)):
        dpos.append(1000 * np.linalg.norm(pa[:2] - pb[:2]))
        dyaw.append(np.degrees(abs(geo.wrap_angle(pa[2] - pb[2]))))
        dcov.append(abs(geo.coverage(pa) - geo.coverage(pb)))
        moved.append(1000 * np.linalg.norm(pa[:2] - pose[:2]))
        turned = np.degrees(geo.wrap_angle(pa[2] - pose[2]))
        print(f"{i:4d} {moved[-1]:9.1f} {turned:10.1f} {dpos[-1]:9.2f} {dyaw[-1]:9.2f} {dcov[-1]:7.3f}")
    print(f"median: position {np.median(dpos):.2f} mm, yaw {np.median(dyaw):.2f} deg, coverage {np.median(dcov):.3f}"
          f"  (blocks moved {np.median(moved):.0f} mm)")
    print(f"max:    position {np.max(dpos):.2f} mm, yaw {np.max(dyaw):.2f} deg, coverage {np.max(dcov):.3f}")


if __name__ == "__main__":
    main()
