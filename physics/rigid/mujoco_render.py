"""Offscreen MuJoCo rendering: RGB and metric depth in one pass, labels in a second.

`MujocoCameraRenderer.render` draws the model's fixed cameras (the observations' images);
`MujocoCameraRenderer.render_views` draws any `physics.render.Camera` (same conventions) with extra
visual-only boxes added to the drawn scene, never to the model. Shadows, reflections and
multisampling are off (software rendering is dominated by them, and multisampling would blend
labels at edges). Images are returned top row first.

The fixed cameras' frames are composited: the static geoms (table, walls) are drawn once per
camera and kept, and each frame draws only the moving ones and keeps, per pixel, whichever is
nearer, as the depth test of a full draw would (static geoms come first in the draw order, so a
tie goes to the moving geom, as under MuJoCo's ``GL_LEQUAL``). The result is the full draw's, bit
for bit, at well under its cost (a software rasteriser's time goes per drawn geom, not per pixel).
The kept images are redrawn whenever what they show changes (cameras, lights, static geoms,
materials); where compositing cannot be exact (a see-through geom or material, a reflective
material, a shadow-casting light) every frame is a full draw.

Frames for a point cloud alone (``render(..., robot_rgb=False)``) need the robot's depth and labels but not its
colours (the cloud drops robot pixels): the moving geoms are then drawn as two parts, the robot-free ones in
colour and the robot's depth only (its lighting skipped), and merged as the full draw's depth test would; every
pixel but the robot's is the full draw's, bit for bit. Sites (markers such as the tool centre point) are never
drawn: they are not surfaces of the scene.
"""

from __future__ import annotations

from .gl import gl_context  # before mujoco: it selects the headless GL backend

# isort: split
import mujoco
import numpy as np

from physics.render import LABEL_ROBOT, Camera

from .spec import Box

STATIC = int(mujoco.mjtCatBit.mjCAT_STATIC)  # the geoms of the world body: drawn once per camera and kept
MOVING = int(mujoco.mjtCatBit.mjCAT_DYNAMIC) | int(mujoco.mjtCatBit.mjCAT_DECOR)  # the rest: drawn every frame


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
        self._opt.sitegroup[:] = 0  # sites are markers (the tool centre point), not surfaces
        self._cam = mujoco.MjvCamera()
        self._cam.type = mujoco.mjtCamera.mjCAMERA_FIXED
        self._labels = np.append(geom_labels, 0).astype(np.int32)  # index -1 -> background
        extent = model.stat.extent
        self._near = model.vis.map.znear * extent
        self._far = model.vis.map.zfar * extent
        self._seg_geom: np.ndarray | None = None
        self._buffers: dict[tuple[int, int, int], tuple[np.ndarray, ...]] = {}
        # composited rendering: segment-id -> label tables of the static and the moving part, the static geoms,
        # the kept static frames, what they were drawn from and whether compositing is exact for it
        self._part_labels: dict[int, np.ndarray] = {}
        self._static_geoms: slice | np.ndarray | None = None
        self._static: tuple[np.ndarray, ...] | None = None
        self._static_key: bytes | None = None
        self._composable = False
        visible = np.asarray(self._opt.geomgroup, dtype=bool)[np.clip(model.geom_group, 0, 5)]
        self._drawn_geoms = np.flatnonzero(visible)
        # frames without the robot's colours (`render`'s robot_rgb=False): the two passes, or False if not exact
        self._split: tuple | bool | None = None
        self._robot_z: np.ndarray | None = None

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
        depth = self._depth(z)
        ids = id_buf[:, ::-1].astype(np.int32)
        segid = ids[..., 0] + (ids[..., 1] << 8) + (ids[..., 2] << 16) - 1  # -1: background
        label = self._labels[seg_geom[segid]]
        depth = np.where(segid < 0, np.float32(0.0), depth).astype(np.float32)
        return np.ascontiguousarray(rgb), depth, label

    def render(self, data: mujoco.MjData, width: int, height: int, robot_rgb: bool = True) -> tuple[np.ndarray, ...]:
        """rgb (V,H,W,3) uint8, depth (V,H,W) float32 metres, labels (V,H,W) int32 of every fixed camera.

        ``robot_rgb=False``: the robot's pixels may keep any colour (frames for a point cloud, which drops them);
        depth, labels and every other pixel's colour are those of the full frames."""
        w, h, n = int(width), int(height), self.model.ncam
        self._check_size(w, h)
        self._gl.make_current()
        key = self._frame_state(data)
        if key != self._static_key:
            self._static_key, self._static = key, None
            self._composable = self._can_composite()
        if not self._composable:
            return self._render_full(data, w, h, n)
        if self._static is None or self._static[0].shape != (n, h, w, 3):
            rgb, z, hit, label = (a.copy() for a in self._render_part(data, w, h, n, STATIC))
            self._static = (rgb, z, hit, label, np.where(hit, self._depth(z), np.float32(0.0)).astype(np.float32))
        if not robot_rgb and self._split_passes():
            return self._composite_split(self._static, *self._render_split(data, w, h, n))
        return self._composite(self._static, self._render_part(data, w, h, n, MOVING))

    def _render_full(self, data: mujoco.MjData, w: int, h: int, n: int) -> tuple[np.ndarray, ...]:
        """Every fixed camera's frame drawn whole (`render` where compositing cannot be exact)."""
        rgb_buf, z_buf, id_buf = self._buffer(n, w, h)
        viewport = mujoco.MjrRect(0, 0, w, h)
        for i in range(n):
            self._cam.fixedcamid = i
            mujoco.mjv_updateScene(self.model, data, self._opt, None, self._cam, mujoco.mjtCatBit.mjCAT_ALL,
                                   self._scene)
            self._draw(viewport, rgb_buf[i], z_buf[i], id_buf[i])
            if self._seg_geom is None:  # fixed for a fixed model
                self._seg_geom = self._scene_geoms()
        return self._decode(rgb_buf, z_buf, id_buf, self._seg_geom)

    def _render_part(self, data: mujoco.MjData, w: int, h: int, n: int, catmask: int) -> tuple[np.ndarray, ...]:
        """rgb (V,H,W,3), raw depth-buffer z (V,H,W), whether a geom was drawn (V,H,W) and labels (V,H,W) of the
        geoms of ``catmask`` alone, every fixed camera, top row first (views of the shared buffers but labels)."""
        rgb_buf, z_buf, id_buf = self._buffer(n, w, h)
        viewport = mujoco.MjrRect(0, 0, w, h)
        for i in range(n):
            self._cam.fixedcamid = i
            mujoco.mjv_updateScene(self.model, data, self._opt, None, self._cam, catmask, self._scene)
            self._draw(viewport, rgb_buf[i], z_buf[i], id_buf[i])
            if catmask not in self._part_labels:  # fixed for a fixed model: label of segment id + 1 (0: nothing)
                self._part_labels[catmask] = self._labels[np.roll(self._scene_geoms(), 1)]
        table = self._part_labels[catmask]
        if len(table) <= 256:  # segment ids + 1 fit the red channel
            code = id_buf[:, ::-1, :, 0]
        else:
            ids = id_buf[:, ::-1].astype(np.int32)
            code = ids[..., 0] + (ids[..., 1] << 8) + (ids[..., 2] << 16)
        return rgb_buf[:, ::-1], z_buf[:, ::-1], code != 0, table[code]

    def _composite(self, static: tuple[np.ndarray, ...], moving: tuple[np.ndarray, ...]) -> tuple[np.ndarray, ...]:
        """The frames of the whole scene from those of its static and its moving geoms: per pixel the moving
        geom wherever it was drawn no farther than the static one (the depth test of a full draw)."""
        s_rgb, s_z, s_hit, s_label, _ = static
        m_rgb, m_z, m_hit, m_label = moving
        front = m_hit & (m_z <= s_z)
        z = np.where(front, m_z, s_z)
        depth = np.where(front | s_hit, self._depth(z), np.float32(0.0)).astype(np.float32)
        rgb, sel = s_rgb.copy(), np.flatnonzero(front)  # (a broadcast np.where is slow on uint8 pixels)
        rgb.reshape(-1, 3)[sel] = np.ascontiguousarray(m_rgb).reshape(-1, 3)[sel]
        return rgb, depth, np.where(front, m_label, s_label)

    def _split_passes(self) -> bool:
        """Whether the moving geoms can be drawn as a robot-free colour pass and a robot depth pass whose merge is
        exact (set up once): the robot's geoms (label `LABEL_ROBOT`) and the others are in disjoint geom groups, the
        others share one label, and one part is drawn wholly after the other (it wins depth ties)."""
        if self._split is None:
            self._split = False
            m, static = self.model, np.zeros(self.model.ngeom, bool)
            static[self._static_geoms] = True
            moving = self._drawn_geoms[~static[self._drawn_geoms]]
            robot = moving[self._labels[moving] == LABEL_ROBOT]
            other = moving[self._labels[moving] != LABEL_ROBOT]
            robot_groups, other_groups = set(m.geom_group[robot].tolist()), set(m.geom_group[other].tolist())
            if (len(robot) and len(other) and not robot_groups & other_groups
                    and len(set(self._labels[other].tolist())) == 1 and (robot[0] > other[-1] or other[0] > robot[-1])):
                passes = []
                for groups in (other_groups, robot_groups):
                    opt = mujoco.MjvOption()
                    opt.geomgroup[:] = [int(g in groups and self._opt.geomgroup[g]) for g in range(len(opt.geomgroup))]
                    opt.sitegroup[:] = 0
                    passes.append(opt)
                self._split = (*passes, int(self._labels[other[0]]), bool(robot[0] > other[-1]))
        return bool(self._split)

    def _render_split(self, data: mujoco.MjData, w: int, h: int, n: int) -> tuple[np.ndarray, ...]:
        """rgb (V,H,W,3) and raw depth-buffer z (V,H,W) of the robot-free moving geoms, and z (V,H,W) of the robot
        (drawn without lighting, its colours unread), every fixed camera, top row first (views of the buffers)."""
        rgb_buf, z_buf, _ = self._buffer(n, w, h)
        if self._robot_z is None or self._robot_z.shape != (n, h, w):
            self._robot_z = np.zeros((n, h, w), np.float32)
        opt_other, opt_robot = self._split[:2]
        scn, ctx, viewport = self._scene, self._ctx, mujoco.MjrRect(0, 0, w, h)
        for i in range(n):
            self._cam.fixedcamid = i
            mujoco.mjv_updateScene(self.model, data, opt_other, None, self._cam, MOVING, scn)
            scn.flags[mujoco.mjtRndFlag.mjRND_SEGMENT] = 0
            scn.flags[mujoco.mjtRndFlag.mjRND_IDCOLOR] = 0
            mujoco.mjr_render(viewport, scn, ctx)
            mujoco.mjr_readPixels(rgb_buf[i], z_buf[i], viewport, ctx)
            mujoco.mjv_updateScene(self.model, data, opt_robot, None, self._cam, MOVING, scn)
            scn.flags[mujoco.mjtRndFlag.mjRND_SEGMENT] = 1
            scn.flags[mujoco.mjtRndFlag.mjRND_IDCOLOR] = 1
            mujoco.mjr_render(viewport, scn, ctx)
            mujoco.mjr_readPixels(None, self._robot_z[i], viewport, ctx)
        return rgb_buf[:, ::-1], z_buf[:, ::-1], self._robot_z[:, ::-1]

    def _composite_split(self, static: tuple[np.ndarray, ...], o_rgb: np.ndarray, o_z: np.ndarray, r_z: np.ndarray
                         ) -> tuple[np.ndarray, ...]:
        """`_composite` of the static frames with the robot-free (``o_``) and the robot (``r_``) passes: per pixel
        the nearest of the three (ties to the part drawn later: moving after static, as set up by `_split_passes`);
        the robot's pixels keep the static frame's colours."""
        s_rgb, s_z, _, s_label, s_depth = static
        other_label, robot_last = self._split[2:]
        m_z = np.minimum(o_z, r_z)  # 1 (the cleared buffer) where neither part was drawn
        front = m_z <= s_z
        front &= m_z < 1.0
        sel = np.flatnonzero(front)  # the moving parts' pixels: the rest is the static frames'
        m_sel = m_z.reshape(-1)[sel]
        robot = r_z.reshape(-1)[sel]
        robot = (robot <= m_sel) if robot_last else (robot < o_z.reshape(-1)[sel])
        depth, label, rgb = s_depth.copy(), s_label.copy(), s_rgb.copy()
        depth.reshape(-1)[sel] = self._depth(m_sel)
        label.reshape(-1)[sel] = np.where(robot, np.int32(LABEL_ROBOT), np.int32(other_label))
        shown = sel[~robot]
        rgb.reshape(-1, 3)[shown] = np.ascontiguousarray(o_rgb).reshape(-1, 3)[shown]
        return rgb, depth, label

    def _depth(self, z: np.ndarray) -> np.ndarray:
        """Metric depth (float32) of raw depth-buffer values ``z`` (float32)."""
        return self._near / (1.0 - z * (1.0 - self._near / self._far))

    def _can_composite(self) -> bool:
        """Whether a composited frame is the full draw's: no see-through or reflective geom or material and no
        shadow-casting light."""
        m = self.model
        shadows = self._scene.flags[mujoco.mjtRndFlag.mjRND_SHADOW] and bool(
            np.any(m.light_castshadow & m.light_active))
        return not (shadows or np.any(m.geom_rgba[self._drawn_geoms, 3] < 1.0)
                    or np.any(m.mat_rgba[:, 3] < 1.0) or np.any(m.mat_reflectance > 0.0))

    def _frame_state(self, data: mujoco.MjData) -> bytes:
        """What decides the static frames and whether compositing is exact: cameras, lights, headlight,
        materials, the static geoms and the opacity of all geoms."""
        m = self.model
        if self._static_geoms is None:  # the model geoms that the static part draws (fixed for a fixed model)
            self._cam.fixedcamid = 0
            mujoco.mjv_updateScene(m, data, self._opt, None, self._cam, STATIC, self._scene)
            g = np.unique(self._scene_geoms()[:-1])
            g = g[g >= 0]
            contiguous = len(g) > 0 and g[-1] - g[0] + 1 == len(g)
            self._static_geoms = slice(int(g[0]), int(g[-1]) + 1) if contiguous else g
        g = self._static_geoms
        hl = m.vis.headlight
        parts = (data.cam_xpos, data.cam_xmat, m.cam_fovy, m.cam_intrinsic, m.cam_sensorsize, m.cam_projection,
                 data.light_xpos, data.light_xdir, m.light_active, m.light_type, m.light_castshadow, m.light_diffuse,
                 m.light_ambient, m.light_specular, m.light_attenuation, m.light_cutoff, m.light_exponent,
                 m.light_intensity, hl.ambient, hl.diffuse, hl.specular, m.mat_rgba, m.mat_emission, m.mat_specular,
                 m.mat_shininess, m.mat_reflectance, m.geom_rgba, m.geom_matid[g], m.geom_size[g],
                 m.geom_type[g], m.geom_dataid[g], data.geom_xpos[g], data.geom_xmat[g], self._scene.flags)
        return b"".join(np.asarray(a).tobytes() for a in parts) + bytes([int(hl.active)])

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
