"""Video of the Panda hand pushing a jelly, a plasticine and a sand T, with the ground-truth flow drawn.

    python examples/deformable_push_video.py [--steps 16] [--out outputs/deformable_push.mp4]

One row per material (both cameras side by side). Drawn over the rendered frames: the
tracked particles' positions over the last ``--trail`` steps (dark to bright: their exact
flow, from the particle tracks) and the fingertip target (red). Also writes the last frame
as a PNG next to the video.
"""

from __future__ import annotations

import argparse
import os

import gymnasium as gym
import imageio.v2 as imageio
import numpy as np

import envs  # noqa: F401
from envs.overlay import draw_points

START = {"block_pose": (0.0, 0.0, 0.0), "ee_xy": (0.05, -0.06)}


def push_targets(steps: int) -> list[np.ndarray]:
    """Into the bar off its centre (the T turns and dents), then back out and along its side."""
    half = steps // 2
    into = [np.array([0.05, -0.04 + 0.025 * (i + 1)]) for i in range(half)]
    return into + [np.array([0.05 + 0.01 * (i + 1), -0.06]) for i in range(steps - half)]


def material_frames(material: str, steps: int, trail: int, scale: int) -> list[np.ndarray]:
    """Annotated frames of one material's push."""
    env = gym.make("PushT4D-v0", block_material=material, robot="panda_hand", obs_mode="rgbd",
                   render_mode="rgb_array", image_size=160)
    _, info = env.reset(seed=0, options=START)
    cams = env.unwrapped.cameras
    history = [info["object_points"]]
    frames = []
    for target in push_targets(steps):
        _, _, _, _, info = env.step(target)
        history = (history + [info["object_points"]])[-(trail + 1):]
        layers = [(p, tuple(int(c) for c in np.array([40, 90, 255]) * (0.4 + 0.6 * (i + 1) / len(history))))
                  for i, p in enumerate(history)]
        layers.append((np.array([[target[0], target[1], 0.01]]), (255, 40, 40)))
        frames.append(draw_points(env.render(), cams, layers, scale=scale, radius=1))
    env.close()
    return frames


def main() -> None:
    """Write the video and its last frame."""
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=16)
    ap.add_argument("--trail", type=int, default=5)
    ap.add_argument("--out", default="outputs/deformable_push.mp4")
    args = ap.parse_args()
    rows = [material_frames(m, args.steps, args.trail, scale=2) for m in ("jelly", "plasticine", "sand")]
    video = [np.concatenate(step, axis=0) for step in zip(*rows, strict=True)]
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    imageio.mimwrite(args.out, video, fps=5, macro_block_size=8)
    imageio.imwrite(os.path.splitext(args.out)[0] + ".png", video[-1])
    print(f"wrote {args.out} ({len(video)} frames, rows: jelly, plasticine, sand)")


if __name__ == "__main__":
    main()
