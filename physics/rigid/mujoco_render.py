"""Offscreen MuJoCo rendering: RGB and metric depth in one pass, labels in a second.

`MujocoCameraRenderer.render` draws the model's fixed cameras (the observations' images);
`MujocoCameraRenderer.render_views` draws any `physics.render.Camera` (same conventions) with extra
visual-only boxes added to the drawn scene, never to the model. Shadows, reflections and
multisampling are off (software rendering is dominated by them, and multisampling would blend
labels at edges). Images are returned top row first.
"""

from __future__ import annotations

from .gl import gl_context  # before mujoco: it selects the headless GL backend

# isort: split
import mujoco
import numpy as np

from physics.render import Camera

from .spec import Box


class MujocoCameraRenderer:
    """Renders the cameras of ``model``; ``geom_labels`` maps each geom id to a segmentation label.

    ``size`` (width, height): the largest image it must draw, if larger than the model's offscreen
    buffer (``visual/global offwidth/offheight``, a visual setting that the simulation never reads).
    """

    def __init__(self, model: mujoco.MjModel, geom_labels: np.ndarray, hidden_groups: tuple[int, ...] = (3,),
                 size: tuple[int, int] | None = None):
        self.model = model
        if size is not None:
            model.vis.global_.offwidth = max(int(model.vis.global_.offwidth), int(size[0]))
            model.vis.global_.offheight = max(int(model.vis.global_.offheight), int(size[1]))
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
        self._buffers: dict[tuple[int, int, int], tuple[np.ndarray, ...]] = {}

    def _check_size(self, w: int, h: int) -> None:
        if w > self.width or h > self.height:
            raise ValueError(f"image {w}x{h} exceeds the offscreen buffer {self.width}x{self.height}")

    def _buffer(self, n: int, w: int, h: int) -> tuple[np.ndarray, ...]:
        if (n, w, h) not in self._buffers:
            self._buffers[(n, w, h)] = (np.zeros((n, h, w, 3), np.uint8), np.zeros((n, h, w), np.float32),
                                        np.zeros((n, h, w, 3), np.uint8))
        return self._buffers[(n, w, h)]

    def _draw(self, viewport: mujoco.MjrRect, rgb: np.ndarray, z: np.ndarray, ids: np.ndarray) -> None:
        """Draw the updated scene twice into the camera's buffers: colours and depth, then segment ids."""
        scn, ctx = self._scene, self._ctx
        scn.flags[mujoco.mjtRndFlag.mjRND_SEGMENT] = 0
        scn.flags[mujoco.mjtRndFlag.mjRND_IDCOLOR] = 0
        mujoco.mjr_render(viewport, scn, ctx)
        mujoco.mjr_readPixels(rgb, z, viewport, ctx)
        scn.flags[mujoco.mjtRndFlag.mjRND_SEGMENT] = 1
        scn.flags[mujoco.mjtRndFlag.mjRND_IDCOLOR] = 1
        mujoco.mjr_render(viewport, scn, ctx)
        mujoco.mjr_readPixels(ids, None, viewport, ctx)

    def _scene_geoms(self) -> np.ndarray:
        """Scene-geom index -> model geom id (-1: not a model geom, and the background) of the updated scene."""
        scn = self._scene
        return np.array([g.objid if g.objtype == mujoco.mjtObj.mjOBJ_GEOM else -1 for g in scn.geoms[: scn.ngeom]]
                        + [-1])

    def _decode(self, rgb_buf: np.ndarray, z_buf: np.ndarray, id_buf: np.ndarray, seg_geom: np.ndarray
                ) -> tuple[np.ndarray, ...]:
        rgb = rgb_buf[:, ::-1]
        z = z_buf[:, ::-1]
        depth = self._near / (1.0 - z * (1.0 - self._near / self._far))
        ids = id_buf[:, ::-1].astype(np.int32)
        segid = ids[..., 0] + (ids[..., 1] << 8) + (ids[..., 2] << 16) - 1  # -1: background
        label = self._labels[seg_geom[segid]]
        depth = np.where(segid < 0, np.float32(0.0), depth).astype(np.float32)
        return np.ascontiguousarray(rgb), depth, label

    def render(self, data: mujoco.MjData, width: int, height: int) -> tuple[np.ndarray, ...]:
        """rgb (V,H,W,3) uint8, depth (V,H,W) float32 metres, labels (V,H,W) int32 of every fixed camera."""
        w, h, n = int(width), int(height), self.model.ncam
        self._check_size(w, h)
        rgb_buf, z_buf, id_buf = self._buffer(n, w, h)
        self._gl.make_current()
        viewport = mujoco.MjrRect(0, 0, w, h)
        for i in range(n):
            self._cam.fixedcamid = i
            mujoco.mjv_updateScene(self.model, data, self._opt, None, self._cam, mujoco.mjtCatBit.mjCAT_ALL,
                                   self._scene)
            self._draw(viewport, rgb_buf[i], z_buf[i], id_buf[i])
            if self._seg_geom is None:  # fixed for a fixed model
                self._seg_geom = self._scene_geoms()
        return self._decode(rgb_buf, z_buf, id_buf, self._seg_geom)

    def render_views(self, data: mujoco.MjData, cameras: tuple[Camera, ...], boxes: list[Box] = ()
                     ) -> tuple[np.ndarray, ...]:
        """rgb, depth and labels (as `render`) of ``cameras`` (one image size, centred principal points), with
        visual-only ``boxes`` (label 0) added to the drawn scene."""
        w, h, n = int(cameras[0].width), int(cameras[0].height), len(cameras)
        if any((c.width, c.height) != (w, h) for c in cameras):
            raise ValueError("render_views: all cameras must share one image size")
        self._check_size(w, h)
        rgb_buf, z_buf, id_buf = self._buffer(n, w, h)
        self._gl.make_current()
        viewport = mujoco.MjrRect(0, 0, w, h)
        scn = self._scene
        free = mujoco.MjvCamera()  # placed below: the scene's OpenGL cameras and its headlight are overwritten
        for i, cam in enumerate(cameras):
            mujoco.mjv_updateScene(self.model, data, self._opt, None, free, mujoco.mjtCatBit.mjCAT_ALL, scn)
            for b in boxes:
                if scn.ngeom >= scn.maxgeom:
                    break
                R = np.zeros(9)
                mujoco.mju_quat2Mat(R, np.asarray(b.quat, dtype=float))
                g = scn.geoms[scn.ngeom]
                mujoco.mjv_initGeom(g, mujoco.mjtGeom.mjGEOM_BOX, np.asarray(b.half_size, float),
                                    np.asarray(b.pos, float), R, np.asarray(b.rgba, np.float32))
                g.segid = scn.ngeom
                scn.ngeom += 1
            self._place_camera(cam)
            self._draw(viewport, rgb_buf[i], z_buf[i], id_buf[i])
        return self._decode(rgb_buf, z_buf, id_buf, self._scene_geoms())

    def _place_camera(self, cam: Camera) -> None:
        """Point the scene's OpenGL cameras (both eyes) and its headlight as ``cam`` (OpenCV axes, pinhole)."""
        scn = self._scene
        T = np.asarray(cam.cam2world, dtype=float)
        top = self._near * (cam.height / 2.0) / cam.fy
        centre = self._near * ((cam.width - 1) / 2.0 - cam.cx) / cam.fx
        for gl_cam in scn.camera:
            gl_cam.pos[:] = T[:3, 3]
            gl_cam.forward[:] = T[:3, 2]
            gl_cam.up[:] = -T[:3, 1]
            gl_cam.frustum_near, gl_cam.frustum_far = self._near, self._far
            gl_cam.frustum_top, gl_cam.frustum_bottom, gl_cam.frustum_center = top, -top, centre
        for k in range(scn.nlight):
            if scn.lights[k].headlight:
                scn.lights[k].pos[:] = T[:3, 3]
                scn.lights[k].dir[:] = T[:3, 2]

    def close(self) -> None:
        """Free the GL context (made current first: freeing MuJoCo's render context while another renderer's
        context is current would free that renderer's buffers and leave its next frame empty)."""
        if getattr(self, "_gl", None) is not None:
            self._gl.make_current()
            self._ctx.free()
            self._gl.free()
            self._gl = None
