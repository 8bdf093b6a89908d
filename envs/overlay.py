"""Drawing over rendered views, for videos and figures of the tasks.

- `draw_points`: world points drawn as squares over all cameras side by side (as ``render()`` returns them).
- `showcase_cameras`: two views for videos: an oblique one that sees the whole rig (table, block, the arm
  and the gantry carrying it) and a top-down map of the table.
- `annotate`: one video frame from `physics.render.Frames` of such views: the goal region shaded on the
  table where the table is seen (a depth test, so the block and the robot cover it), its outline, layers of
  points (e.g. a plan's predicted block points and their goal positions), a text panel (coverage, step), a
  title per view and a legend naming every colour.
- `goal_polygon`: the goal footprint (xy outline) of a pushing task, for `annotate`.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import numpy as np

from physics.render import Camera, Frames, look_at, pinhole
from physics.render.cameras import pixel_rays, project

GOAL_RGB = (40, 170, 60)  # the goal region and its outline
TABLE_TOLERANCE = 0.004  # m: a pixel shows the table (and may show the goal) where its depth is this close to it


def draw_points(image: np.ndarray, cameras, layers: list[tuple[np.ndarray, tuple[int, int, int]]],
                scale: int = 1, radius: int = 1) -> np.ndarray:
    """``image`` (H, V*W, 3), all cameras side by side as the env renders them, upscaled by
    ``scale`` with every layer's world points (N, 3) drawn as squares of its RGB colour."""
    out = np.repeat(np.repeat(image, scale, 0), scale, 1).copy()
    W = image.shape[1] // len(cameras)
    for v, cam in enumerate(cameras):
        for points, color in layers:
            u, vv, z = project(np.asarray(points, np.float64), cam)
            keep = (z > 0) & (u >= 0) & (u < W) & (vv >= 0) & (vv < image.shape[0])
            cols = ((u[keep] + v * W) * scale).round().astype(int)
            rows = (vv[keep] * scale).round().astype(int)
            for dr in range(-radius, radius + 1):
                for dc in range(-radius, radius + 1):
                    r = np.clip(rows + dr, 0, out.shape[0] - 1)
                    c = np.clip(cols + dc, v * W * scale, (v + 1) * W * scale - 1)
                    out[r, c] = color
    return out


def showcase_cameras(height: int = 480) -> tuple[Camera, Camera]:
    """An oblique view of the whole rig (4:3) and a top-down view of the table (4:3, +y up), ``height`` pixels."""
    width = int(round(height * 4 / 3))
    oblique = pinhole("oblique", look_at([1.15, -1.6, 1.5], [-0.1, 0.05, 0.38]), width, height, 45.0)
    # from high up with a narrow field of view: nearly orthographic, so the arm above the table looms less
    top = pinhole("top-down", look_at([0.0, 0.0, 4.2], [0.0, 0.0, 0.0], up=(0.0, 1.0, 0.0)), width, height, 14.3)
    return oblique, top


def goal_polygon(env: Any) -> np.ndarray | None:
    """The goal footprint's outline (N, 2) in xy of a pushing task (PushT4D: the T at its goal pose; Push4D: the
    object's footprint at its goal pose, the outer ring of its largest part), else None."""
    from .push import Push4DEnv
    from .pusht import PushT4DEnv
    from .pusht import geometry as geo

    base = getattr(env, "unwrapped", env)
    if isinstance(base, PushT4DEnv):
        return np.asarray(geo.footprint_at(np.asarray(geo.GOAL_POSE)).exterior.coords)
    if isinstance(base, Push4DEnv):
        goal = base.goal_footprint
        return np.asarray(max(getattr(goal, "geoms", [goal]), key=lambda part: part.area).exterior.coords)
    return None


@dataclass(frozen=True)
class Layer:
    """World points (N, 3) drawn as dots of ``rgb``, named ``label`` in the legend."""

    points: np.ndarray
    rgb: tuple[int, int, int]
    label: str


@lru_cache(maxsize=16)
def _font(size: int) -> Any:
    from PIL import ImageFont

    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # Pillow < 10.1: one bitmap size
        return ImageFont.load_default()


def _table_depth(cam: Camera) -> np.ndarray:
    """Depth (H, W) at which each pixel's ray meets the table plane z = 0 (inf where it does not)."""
    T = np.asarray(cam.cam2world, dtype=float)
    dz = (pixel_rays(cam) @ T[:3, :3].T)[..., 2]  # world z of each ray with camera-frame z = 1
    with np.errstate(divide="ignore"):
        t = np.where(dz < -1e-9, -T[2, 3] / dz, np.inf)
    return t


def _shade_goal(rgb: np.ndarray, depth: np.ndarray, cam: Camera, polygon: np.ndarray, width: int) -> None:
    """Shade the goal region and draw its outline in place, only where the table itself is seen."""
    from PIL import Image, ImageDraw

    u, v, z = project(np.column_stack([polygon, np.zeros(len(polygon))]), cam)
    if np.any(z <= 0):
        return
    pts = list(zip(u.tolist(), v.tolist(), strict=True))
    fill, line = Image.new("L", (cam.width, cam.height)), Image.new("L", (cam.width, cam.height))
    ImageDraw.Draw(fill).polygon(pts, fill=255)
    ImageDraw.Draw(line).line(pts, fill=255, width=width)
    on_table = np.abs(depth - _table_depth(cam)) < TABLE_TOLERANCE
    inside, edge = (np.asarray(fill) > 0) & on_table, (np.asarray(line) > 0) & on_table
    goal = np.array(GOAL_RGB, dtype=float)
    rgb[inside] = (0.55 * rgb[inside] + 0.45 * goal).astype(np.uint8)
    rgb[edge] = (0.6 * goal).astype(np.uint8)


def annotate(frames: Frames, cameras: tuple[Camera, ...], *, goal: np.ndarray | None = None,
             layers: tuple[Layer, ...] = (), text: tuple[str, ...] = (), titles: bool = True, panel: int = -1
             ) -> np.ndarray:
    """One video frame (H, V*W, 3) uint8: the views of ``frames`` side by side, with the ``goal`` region (xy
    outline (N, 2), shaded on the table), point ``layers``, each view's camera name (``titles``), and in view
    ``panel`` the ``text`` lines (top-left corner) and a legend of the goal and the layers (bottom-left)."""
    from PIL import Image, ImageDraw

    H, W = frames.rgb.shape[1:3]
    views = frames.rgb.copy()
    line = max(2, H // 240)
    if goal is not None:
        for v, cam in enumerate(cameras):
            _shade_goal(views[v], frames.depth[v], cam, np.asarray(goal, dtype=float), line)
    image = Image.fromarray(np.concatenate(list(views), axis=1))
    draw = ImageDraw.Draw(image, "RGBA")
    font, small = _font(max(12, H // 26)), _font(max(10, H // 34))
    dot = max(2, H // 200)
    for v, cam in enumerate(cameras):
        for layer in layers:
            u, vv, z = project(np.asarray(layer.points, dtype=float).reshape(-1, 3), cam)
            keep = (z > 0) & (u >= 0) & (u < W) & (vv >= 0) & (vv < H)
            for x, y in zip(u[keep] + v * W, vv[keep], strict=True):
                draw.ellipse((x - dot, y - dot, x + dot, y + dot), fill=(*layer.rgb, 255), outline=(0, 0, 0, 160))
        if titles:
            _label(draw, (v * W + W - 8, H - 8), cam.name + " view", small, anchor="rb")
    x0 = (panel % len(cameras)) * W
    if text:
        _label(draw, (x0 + 8, 8), "\n".join(text), font, anchor="la")
    entries = ([("goal pose", GOAL_RGB)] if goal is not None else []) + [(x.label, x.rgb) for x in layers]
    y = H - 8
    for label, rgb in reversed(entries):
        box = draw.textbbox((0, 0), label, font=small)
        h = box[3] - box[1]
        draw.rectangle((x0 + 4, y - h - 8, x0 + 22 + h + box[2] - box[0], y + 2), fill=(0, 0, 0, 140))
        draw.rectangle((x0 + 8, y - h - 4, x0 + 8 + h, y - 2), fill=(*rgb, 255))
        draw.text((x0 + 14 + h, y - 3), label, font=small, fill=(255, 255, 255, 255), anchor="lb")
        y -= h + 12
    return np.asarray(image)


def _label(draw: Any, xy: tuple[int, int], text: str, font: Any, anchor: str) -> None:
    """White ``text`` on a translucent dark box anchored at ``xy``."""
    box = draw.multiline_textbbox(xy, text, font=font, anchor=anchor) if "\n" in text else \
        draw.textbbox(xy, text, font=font, anchor=anchor)
    draw.rectangle((box[0] - 5, box[1] - 4, box[2] + 5, box[3] + 4), fill=(0, 0, 0, 140))
    if "\n" in text:
        draw.multiline_text(xy, text, font=font, fill=(255, 255, 255, 255), anchor=anchor, spacing=4)
    else:
        draw.text(xy, text, font=font, fill=(255, 255, 255, 255), anchor=anchor)
