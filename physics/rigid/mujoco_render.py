"""Offscreen MuJoCo rendering of all fixed cameras: RGB and metric depth in one pass, labels in a second.

Shadows, reflections and multisampling are off (software rendering is dominated by them,
and multisampling would blend labels at edges). Images are returned top row first.
"""

from __future__ import annotations

from .gl import gl_context  # before mujoco: it selects the headless GL backend

# isort: split
import mujoco
import numpy as np


class MujocoCameraRenderer:
    """Renders every camera of ``model``; ``geom_labels`` maps each geom id to a segmentation label."""

    def __init__(self, model: mujoco.MjModel, geom_labels: np.ndarray, hidden_groups: tuple[int, ...] = (3,)):
        self.model = model
        self.width = int(model.vis.global_.offwidth)
        self.height = int(model.vis.global_.offheight)
        try:
            self._gl = gl_context(self.width, self.height)
            self._gl.make_current()
        except Exception as err:  # pragma: no cover - depends on the machine's GL libraries
            raise RuntimeError(
                "could not create a headless OpenGL context for MuJoCo rendering; install libegl1 "
                "(MUJOCO_GL=egl) or libosmesa6 (MUJOCO_GL=osmesa), or use obs_mode='state'"
            ) from err
        self._ctx = mujoco.MjrContext(model, mujoco.mjtFontScale.mjFONTSCALE_150)
        mujoco.mjr_setBuffer(mujoco.mjtFramebuffer.mjFB_OFFSCREEN, self._ctx)
        self._scene = mujoco.MjvScene(model, maxgeom=max(1000, model.ngeom + 10))
        self._opt = mujoco.MjvOption()
        for g in hidden_groups:
            self._opt.geomgroup[g] = 0
        self._cam = mujoco.MjvCamera()
        self._cam.type = mujoco.mjtCamera.mjCAMERA_FIXED
        self._labels = np.append(geom_labels, 0).astype(np.int32)  # index -1 -> background
        extent = model.stat.extent
        self._near = model.vis.map.znear * extent
        self._far = model.vis.map.zfar * extent
        self._seg_geom: np.ndarray | None = None
        self._buffers: dict[tuple[int, int], tuple[np.ndarray, ...]] = {}

    def render(self, data: mujoco.MjData, width: int, height: int) -> tuple[np.ndarray, ...]:
        """rgb (V,H,W,3) uint8, depth (V,H,W) float32 metres, labels (V,H,W) int32 of every camera."""
        w, h, n = int(width), int(height), self.model.ncam
        if w > self.width or h > self.height:
            raise ValueError(f"image {w}x{h} exceeds the offscreen buffer {self.width}x{self.height}")
        if (w, h) not in self._buffers:
            self._buffers[(w, h)] = (np.zeros((n, h, w, 3), np.uint8), np.zeros((n, h, w), np.float32),
                                     np.zeros((n, h, w, 3), np.uint8))
        rgb_buf, z_buf, id_buf = self._buffers[(w, h)]
        self._gl.make_current()
        scn, ctx = self._scene, self._ctx
        viewport = mujoco.MjrRect(0, 0, w, h)
        for i in range(n):
            self._cam.fixedcamid = i
            mujoco.mjv_updateScene(self.model, data, self._opt, None, self._cam, mujoco.mjtCatBit.mjCAT_ALL, scn)
            scn.flags[mujoco.mjtRndFlag.mjRND_SEGMENT] = 0
            scn.flags[mujoco.mjtRndFlag.mjRND_IDCOLOR] = 0
            mujoco.mjr_render(viewport, scn, ctx)
            mujoco.mjr_readPixels(rgb_buf[i], z_buf[i], viewport, ctx)
            scn.flags[mujoco.mjtRndFlag.mjRND_SEGMENT] = 1
            scn.flags[mujoco.mjtRndFlag.mjRND_IDCOLOR] = 1
            mujoco.mjr_render(viewport, scn, ctx)
            mujoco.mjr_readPixels(id_buf[i], None, viewport, ctx)
            if self._seg_geom is None:  # scene-geom index -> model geom id; fixed for a fixed model
                self._seg_geom = np.array(
                    [g.objid if g.objtype == mujoco.mjtObj.mjOBJ_GEOM else -1 for g in scn.geoms[: scn.ngeom]] + [-1]
                )
        rgb = rgb_buf[:, ::-1]
        z = z_buf[:, ::-1]
        depth = self._near / (1.0 - z * (1.0 - self._near / self._far))
        ids = id_buf[:, ::-1].astype(np.int32)
        segid = ids[..., 0] + (ids[..., 1] << 8) + (ids[..., 2] << 16) - 1  # -1: background
        label = self._labels[self._seg_geom[segid]]
        depth = np.where(segid < 0, np.float32(0.0), depth).astype(np.float32)
        return np.ascontiguousarray(rgb), depth, label

    def close(self) -> None:
        """Free the GL context."""
        if getattr(self, "_gl", None) is not None:
            self._ctx.free()
            self._gl.free()
            self._gl = None
