"""The preview of a ``wm4d splat-sim`` run: its Gaussians rendered by EWA splatting over the floor.

`Preview` writes ``splat_sim.mp4`` (every frame) and ``preview_NNNN.png`` stills (``PREVIEW_STILLS``
frames spread over the run) with :func:`physics.render.gaussian_raster.render_gaussians`: each
Gaussian drawn with its covariance and opacity (faint haze stays faint), from a camera that frames
the object and its floor about the run's up axis at ``preview_view``'s azimuth, elevation and field
of view (640x480 by default).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
from omegaconf import DictConfig

PREVIEW_GAUSSIANS = 1_000_000  # Gaussians drawn per preview frame at most (an even, seeded subset beyond)
PREVIEW_STILLS = 4  # preview frames also saved as PNG
VIEW_KEYS = ("azimuth_deg", "elevation_deg", "fovy_deg", "width", "height")  # preview_view's keys


class Preview:
    """The run's preview (see the module docstring): ``add`` each frame, then ``close``.

    ``scene`` is the job's ``SplatScene`` (its source Gaussians, simulated rows, file <-> simulation map and
    floor height); frames are GaussianSplats in file coordinates.
    """

    def __init__(self, cfg: DictConfig, scene: object, out: Path) -> None:
        import imageio.v2 as imageio

        from physics.render.gaussian_raster import Floor, preview_camera
        from physics.splats.sh import sh_dc_to_rgb

        source = scene.source
        self.out, self.device = out, str(cfg.device)
        count = len(source)
        self.show = (np.arange(count) if count <= PREVIEW_GAUSSIANS else
                     np.sort(np.random.default_rng(int(cfg.seed)).permutation(count)[:PREVIEW_GAUSSIANS]))
        self.colors = np.clip(sh_dc_to_rgb(source.sh_dc[self.show]), 0.0, 1.0)
        frames = int(cfg.frames)
        self.stills = set(np.unique(np.linspace(0, frames - 1, PREVIEW_STILLS).round().astype(int)).tolist())
        up = scene.frame_map.up_in_file()
        rest = source.positions[scene.rows]
        framed = [rest]
        self.floor = None
        if scene.floor_z is not None:
            sim = scene.to_sim(rest)
            lo, hi = sim.min(axis=0), sim.max(axis=0)
            size = float(np.max(hi - lo)) / scene.scale
            centre = scene.to_file(np.array([(lo[0] + hi[0]) / 2, (lo[1] + hi[1]) / 2, scene.floor_z]))
            self.floor = Floor(centre, up, 1.5 * size)
            spokes = np.array([[1, 0, 0], [-1, 0, 0], [0, 1, 0], [0, -1, 0], [0, 0, 1], [0, 0, -1]], dtype=float)
            framed.append(centre + 0.75 * size * spokes @ (np.eye(3) - np.outer(up, up)))
        self.camera = preview_camera(np.concatenate(framed), up, **preview_view(cfg))
        self.tmp = out / "splat_sim.tmp.mp4"
        self.writer = imageio.get_writer(self.tmp, fps=int(cfg.fps), macro_block_size=1)

    def add(self, index: int, frame: object) -> None:
        """Render ``frame`` (GaussianSplats, file coordinates) as frame ``index`` (a PNG still too when chosen)."""
        import imageio.v2 as imageio

        from physics.render.gaussian_raster import render_gaussians

        part = frame.subset(self.show)
        image = render_gaussians(part.positions, part.covariances, part.opacities, self.colors, self.camera,
                                 floor=self.floor, device=self.device)
        self.writer.append_data(image)
        if index in self.stills:
            tmp = self.out / f"preview_{index:04d}.tmp.png"
            imageio.imwrite(tmp, image)
            os.replace(tmp, self.out / f"preview_{index:04d}.png")

    def close(self, ok: bool) -> None:
        """Finish the video; move it into place when the run succeeded."""
        self.writer.close()
        if ok:
            os.replace(self.tmp, self.out / "splat_sim.mp4")


def preview_view(cfg: DictConfig) -> dict:
    """``cfg.preview_view`` as keyword arguments of `physics.render.gaussian_raster.preview_camera` (which checks
    the values and holds the defaults of missing keys); unknown keys raise ValueError."""
    given = dict(cfg.get("preview_view") or {})
    unknown = set(given) - set(VIEW_KEYS)
    if unknown:
        raise ValueError(f"preview_view has unknown keys {sorted(unknown)}; allowed: {', '.join(VIEW_KEYS)}")
    return {k: (int(v) if k in ("width", "height") else float(v)) for k, v in given.items()}
