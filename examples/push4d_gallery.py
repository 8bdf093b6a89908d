"""A gallery of Push4D-v0's library objects and grippers, rendered by the env itself (the README's figure).

    python examples/push4d_gallery.py [--out examples/results/push4d_gallery.png] [--size 200]

Each tile is one env: the object at the origin, the gripper beside it, seen by a close camera
through `envs.base.TaskEnv.render_views`; the caption names the object (and gripper).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import gymnasium as gym
import imageio.v2 as imageio
import numpy as np
from PIL import Image, ImageDraw

import envs  # noqa: F401
from physics.render.cameras import look_at, pinhole

TILES = (("T", "panda_hand"), ("L", "panda_hand"), ("ring", "panda_hand"), ("star/3", "panda_hand"),
         ("duck", "panda_hand"), ("bunny", "panda_hand"), ("mug", "panda_hand"), ("teddy", "panda_hand"),
         ("random_urdf/042", "panda_hand"), ("torus", "stick"), ("lego", "xarm_gripper"), ("E", "pr2_gripper"))


def tile(obj: str, gripper: str, size: int) -> np.ndarray:
    """One rendered tile (size, size, 3) with its caption."""
    env = gym.make("Push4D-v0", object=obj, gripper=gripper, obs_mode="state")
    env.reset(seed=0, options={"object_pose": (0.0, 0.0, 0.6), "ee_xy": (-0.17, -0.1)})
    cam = pinhole("gallery", look_at((0.2, -0.32, 0.28), (-0.04, -0.02, 0.03)), size, size, 45.0)
    rgb = env.unwrapped.render_views((cam,), decorations=False).rgb[0]
    env.close()
    image = Image.fromarray(rgb)
    draw = ImageDraw.Draw(image)
    text = f"{obj} / {gripper}"
    draw.rectangle(draw.textbbox((6, 4), text), fill=(255, 255, 255))
    draw.text((6, 4), text, fill=(20, 20, 20))
    return np.asarray(image)


def main() -> None:
    """Render the tiles into one PNG."""
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default="examples/results/push4d_gallery.png")
    ap.add_argument("--size", type=int, default=200)
    ap.add_argument("--columns", type=int, default=4)
    args = ap.parse_args()
    tiles = [tile(o, g, args.size) for o, g in TILES]
    rows = [np.concatenate(tiles[i : i + args.columns], axis=1) for i in range(0, len(tiles), args.columns)]
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    imageio.imwrite(out, np.concatenate(rows, axis=0))
    print(out)


if __name__ == "__main__":
    main()
