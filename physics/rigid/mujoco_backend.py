"""MuJoCo implementation of `RigidBackend`.

Control: every ``servo_dt`` the tool setpoint moves toward the commanded xy by at most
``max_speed * servo_dt``, and stops where the tool is for the rest of the control period once
the free body pushes back with more than ``max_push_force`` (sustained over two servo periods).
A floating robot's two slide actuators track the setpoint directly; an arm tracks it through
damped-least-squares inverse kinematics of the tool site (position and orientation, null-space
pull toward ``rest_q``), warm-started from the previous solution, and joint position servos (the
robot is gravity-compensated).
"""

from __future__ import annotations

from . import gl  # noqa: F401  (selects a headless GL backend before mujoco is imported)

# isort: split
import math

import mujoco
import numpy as np

from physics.render import LABEL_OBJECT, LABEL_ROBOT, LABEL_STATIC, Camera, Frames

from .base import RigidBackend, SimState
from .mjcf import mat_to_quat, scene_to_mjcf
from .spec import Light, Scene

STATE_SPEC = mujoco.mjtState.mjSTATE_INTEGRATION
IK_AXIS_WEIGHT = 0.3
IK_MAX_STEP = 0.2
STALL_PERIODS = 2  # servo periods in a row the body must push back harder than max_push_force (not an impact)


class MujocoBackend(RigidBackend):
    """A `Scene` simulated by MuJoCo; rendering is created lazily on the first `render` call."""

    SKIPS_ROBOT_RGB = True

    def __init__(self, scene: Scene, servo_dt: float = 0.01):
        self.scene = self.built_scene = scene
        xml, assets = scene_to_mjcf(scene)
        self.model = mujoco.MjModel.from_xml_string(xml, assets)
        self.data = mujoco.MjData(self.model)
        self._ik_data = mujoco.MjData(self.model)
        m, r = self.model, scene.robot
        if servo_dt < m.opt.timestep or scene.control_dt < servo_dt:
            raise ValueError(f"servo_dt must lie in [timestep, control_dt], got {servo_dt}")
        self.n_servo = int(round(scene.control_dt / servo_dt))
        self.n_sub = int(round(servo_dt / m.opt.timestep))
        if abs(self.n_servo * self.n_sub * m.opt.timestep - scene.control_dt) > 1e-9:
            raise ValueError("control_dt must be a whole number of servo periods and timesteps")
        self.servo_dt = self.n_sub * m.opt.timestep
        self._body_qadr = self._body_dofadr = None
        if scene.body is not None:
            free = mujoco.mj_name2id(m, mujoco.mjtObj.mjOBJ_JOINT, f"{scene.body.name}_free")
            self._body_qadr, self._body_dofadr = m.jnt_qposadr[free], m.jnt_dofadr[free]
        driven = (("base_x", "base_y") if r.floating else ()) + tuple(r.arm_joints)
        jids = [mujoco.mj_name2id(m, mujoco.mjtObj.mjOBJ_JOINT, n) for n in driven]
        self._qadr = m.jnt_qposadr[jids]
        self._dofadr = m.jnt_dofadr[jids]
        self._slide_dofs = tuple(int(a) for a in self._dofadr[:2])  # the gantry's x, y (floating robots)
        self._jrange = m.jnt_range[jids].copy()
        self._jlimited = m.jnt_limited[jids].astype(bool)
        self._tcp = mujoco.mj_name2id(m, mujoco.mjtObj.mjOBJ_SITE, "tcp")
        self._link_ids = {k.name: mujoco.mj_name2id(m, mujoco.mjtObj.mjOBJ_BODY, k.name) for k in r.links}
        self._fixed_q = np.array([r.fixed_joint_values[k] for k in sorted(r.fixed_joint_values)])
        self._rest = np.asarray(r.rest_q, dtype=float) if len(r.rest_q) else None
        tcp_R = np.zeros(9)
        mujoco.mju_quat2Mat(tcp_R, np.asarray(r.tcp_quat, dtype=float))
        self._tcp_R = tcp_R.reshape(3, 3)
        self._tcp_z = r.tcp_height
        # controller state: setpoint xy, target xy, commanded joints
        self._setpoint = np.zeros(2)
        self._target = np.zeros(2)
        self._q_cmd = np.zeros(len(driven))
        self._jacp = np.zeros((3, m.nv))
        self._jacr = np.zeros((3, m.nv))
        self._renderer = None
        self._view_renderer = None
        labels = np.full(m.ngeom, LABEL_STATIC, np.int32)
        body_id = mujoco.mj_name2id(m, mujoco.mjtObj.mjOBJ_BODY, scene.body.name) if scene.body is not None else -2
        robot_bodies = set(self._link_ids.values())
        for g in range(m.ngeom):
            b = m.geom_bodyid[g]
            if b == body_id:
                labels[g] = LABEL_OBJECT
            elif b in robot_bodies:
                labels[g] = LABEL_ROBOT
        self._geom_labels = labels
        # what the per-episode changes (`RigidBackend.set_*`) start from
        self._body_id = body_id
        self._body_geoms = np.flatnonzero(m.geom_bodyid == body_id)
        self._built_mass = m.body_mass[body_id].copy() if body_id >= 0 else None
        self._built_inertia = m.body_inertia[body_id].copy() if body_id >= 0 else None
        statics = [mujoco.mj_name2id(m, mujoco.mjtObj.mjOBJ_GEOM, b.name) for b in (scene.table, *scene.statics)]
        self._table_geom, self._static_geoms = statics[0], np.array(statics, dtype=int)
        self._sun = mujoco.mj_name2id(m, mujoco.mjtObj.mjOBJ_LIGHT, "sun")
        self._built_light = (m.light_dir[self._sun].copy(), m.light_diffuse[self._sun].copy())
        self._const_data = None  # scratch data for mj_setConst (it runs the model at qpos0)
        # floating base: offset between the carriage origin (base_x, base_y) and the tcp
        self._tcp_offset_xy = np.zeros(2)
        if r.floating:
            if self._rest is not None:
                self._ik_data.qpos[self._qadr[2:]] = self._rest
            mujoco.mj_kinematics(m, self._ik_data)
            self._tcp_offset_xy = self._ik_data.site_xpos[self._tcp][:2].copy()

    # ----------------------------------------------------------------- control
    def _solve_ik(self, xy: np.ndarray, q: np.ndarray, iterations: int, damping: float = 1e-2) -> np.ndarray:
        """Joint values placing the tcp at (xy, tcp_height) with its z axis along tcp_quat's (DLS, warm start q).

        Position is a hard task; the tool axis is weighted by ``IK_AXIS_WEIGHT`` (the arm may
        tilt the tool slightly where a vertical tool cannot reach) and yaw about it is free.
        Steps are limited to ``IK_MAX_STEP`` rad per joint and iteration.
        """
        m, d = self.model, self._ik_data
        goal = np.array([xy[0], xy[1], self._tcp_z])
        axis = self._tcp_R[:, 2]
        for _ in range(iterations):
            d.qpos[self._qadr] = q
            mujoco.mj_kinematics(m, d)
            mujoco.mj_comPos(m, d)
            z = d.site_xmat[self._tcp].reshape(3, 3)[:, 2]
            err = np.concatenate([goal - d.site_xpos[self._tcp], IK_AXIS_WEIGHT * np.cross(z, axis)])
            mujoco.mj_jacSite(m, d, self._jacp, self._jacr, self._tcp)
            J = np.vstack([self._jacp[:, self._dofadr], IK_AXIS_WEIGHT * self._jacr[:, self._dofadr]])
            JJt = J @ J.T + damping**2 * np.eye(6)
            dq = J.T @ np.linalg.solve(JJt, err)
            if self._rest is not None:
                pinv = J.T @ np.linalg.solve(JJt, np.eye(6))
                dq += (np.eye(len(q)) - pinv @ J) @ (0.1 * (self._rest - q))
            q = q + np.clip(dq, -IK_MAX_STEP, IK_MAX_STEP)
            q = np.where(self._jlimited, np.clip(q, self._jrange[:, 0] + 1e-4, self._jrange[:, 1] - 1e-4), q)
        return q

    def _commands(self, xys: np.ndarray, iterations: int) -> np.ndarray:
        """Actuator targets (n, nu) for tool setpoints (n, 2), in order (IK is warm-started along them)."""
        if self.scene.robot.floating:  # gantry to the target, arm joints held at rest
            held = self._rest if self._rest is not None else np.zeros(0)
            return np.concatenate([xys - self._tcp_offset_xy, np.broadcast_to(held, (len(xys), len(held)))], axis=1)
        out = []
        for xy in xys:
            self._q_cmd = self._solve_ik(xy, self._q_cmd, iterations)
            out.append(self._q_cmd)
        return np.array(out)

    def reset(self, body_pose7: np.ndarray, tcp_xy: np.ndarray) -> None:
        """Place the body and the tool (inverse kinematics from ``rest_q``), everything at rest."""
        m, d = self.model, self.data
        mujoco.mj_resetData(m, d)
        if self._body_qadr is not None:
            d.qpos[self._body_qadr : self._body_qadr + 7] = body_pose7
        tcp_xy = np.asarray(tcp_xy, dtype=float)
        if not self.scene.robot.floating:
            self._q_cmd = self._rest.copy() if self._rest is not None else np.zeros(len(self._qadr))
        self._q_cmd = self._commands(tcp_xy[None], iterations=200)[0]
        d.qpos[self._qadr] = self._q_cmd
        d.ctrl[:] = self._q_cmd
        self._setpoint = tcp_xy.copy()
        self._target = tcp_xy.copy()
        mujoco.mj_forward(m, d)

    def _ramp(self, target: np.ndarray) -> np.ndarray:
        """Setpoints (n_servo, 2) moving from the current setpoint toward ``target`` at ``max_speed``."""
        delta = target - self._setpoint
        dist = float(np.hypot(delta[0], delta[1]))
        travel = np.minimum(np.arange(1, self.n_servo + 1) * self.scene.robot.max_speed * self.servo_dt, dist)
        direction = delta / dist if dist > 0 else np.zeros(2)
        return self._setpoint + travel[:, None] * direction

    def _push_force(self) -> float:
        """Horizontal force (N) with which the free body (the robot's only contact) pushes the robot back in the last
        physics step: the constraint force on the gantry slides, which carry every link."""
        f = self.data.qfrc_constraint
        return math.hypot(f[self._slide_dofs[0]], f[self._slide_dofs[1]])

    def step(self, target_xy: np.ndarray) -> None:
        """One control period: the setpoint ramps toward ``target_xy`` at ``max_speed``; servos track it.

        The setpoint stops where the tool is for the rest of the period once the free body pushes
        back with more than ``max_push_force`` at the end of ``STALL_PERIODS`` servo periods in a row."""
        m, d = self.model, self.data
        self._target = np.asarray(target_xy, dtype=float).copy()
        ramp = self._ramp(self._target)
        if np.any(ramp[-1] != self._setpoint):
            commands = self._commands(ramp, iterations=2)
        else:
            commands = np.broadcast_to(self._q_cmd, (self.n_servo, len(self._q_cmd)))
        r = self.scene.robot
        limit = r.max_push_force if self._body_qadr is not None and r.floating else np.inf
        end_xy, end_cmd = ramp[-1], commands[-1]
        pressed = 0  # consecutive servo periods ending with the body pushing back harder than the limit
        for k in range(self.n_servo):
            d.ctrl[:] = commands[k]
            mujoco.mj_step(m, d, nstep=self.n_sub)
            if limit == np.inf:
                continue
            pressed = pressed + 1 if self._push_force() > limit else 0
            if pressed == STALL_PERIODS:  # stall: hold the tool where it is for the rest of the period
                mujoco.mj_kinematics(m, d)
                end_xy = self.tcp_xy()
                end_cmd = self._commands(end_xy[None], iterations=2)[0]
                held = np.broadcast_to(end_cmd, (self.n_servo - k - 1, len(end_cmd)))
                commands = np.concatenate([commands[: k + 1], held])
        self._q_cmd = np.array(end_cmd)
        self._setpoint = end_xy
        mujoco.mj_kinematics(m, d)  # poses of the final state (mj_step leaves those of the state before)

    # ------------------------------------------------------- per-episode changes
    def _apply_body_mass(self, ratio: float) -> None:
        """The body's mass and principal inertia times ``ratio``, then the model's derived constants (as compiling
        with them would give: `mj_setConst`, and the mean mass and inertia the solver scales its tolerance by)."""
        m, b = self.model, self._body_id
        m.body_mass[b] = self._built_mass * ratio
        m.body_inertia[b] = self._built_inertia * ratio
        if self._const_data is None:
            self._const_data = mujoco.MjData(m)
        mujoco.mj_setConst(m, self._const_data)
        m.stat.meanmass = float(np.mean(m.body_mass[1:]))
        m.stat.meaninertia = float(np.mean(m.dof_M0))

    def _apply_friction_coefficient(self, friction: float) -> None:
        self.model.geom_friction[self._static_geoms, 0] = friction  # statics have priority: theirs is the pair's

    def _apply_body_rgba(self, rgba: tuple[float, float, float, float]) -> None:
        self.model.geom_rgba[self._body_geoms] = rgba

    def _apply_table_rgba(self, rgba: tuple[float, float, float, float]) -> None:
        self.model.geom_rgba[self._table_geom] = rgba

    def _apply_light(self, light: Light | None) -> None:
        """The directional light ``sun`` along ``light.direction`` with its built diffuse times ``intensity``."""
        m, built_dir, built_diffuse = self.model, *self._built_light
        m.light_dir[self._sun] = built_dir if light is None else light.direction
        m.light_diffuse[self._sun] = built_diffuse * (1.0 if light is None else light.intensity)
        mujoco.mj_camlight(m, self.data)

    def _apply_cameras(self, cameras: tuple[Camera, ...]) -> None:
        """Move the model's fixed cameras (OpenCV cam2world -> MuJoCo's x right, y up, looking along -z)."""
        m = self.model
        for i, c in enumerate(cameras):
            centred = abs(c.cx - (c.width - 1) / 2) <= 1e-6 and abs(c.cy - (c.height - 1) / 2) <= 1e-6
            if abs(c.fx - c.fy) > 1e-6 * c.fx or not centred:
                raise ValueError(f"camera {c.name!r}: MuJoCo cameras need fx == fy and a centred principal point")
            T = np.asarray(c.cam2world, dtype=float)
            m.cam_pos[i] = T[:3, 3]
            m.cam_quat[i] = mat_to_quat(T[:3, :3] @ np.diag([1.0, -1.0, -1.0]))
            m.cam_fovy[i] = c.fovy_deg
        mujoco.mj_camlight(m, self.data)

    # ------------------------------------------------------------------ state
    def body_pose7(self) -> np.ndarray:
        """(x, y, z, qw, qx, qy, qz) of the free body."""
        if self._body_qadr is None:
            raise ValueError("this scene has no free body (Scene.body is None)")
        return self.data.qpos[self._body_qadr : self._body_qadr + 7].copy()

    def body_velocity(self) -> np.ndarray:
        """Linear (world) and angular (local) velocity of the free body (6,)."""
        if self._body_dofadr is None:
            raise ValueError("this scene has no free body (Scene.body is None)")
        return self.data.qvel[self._body_dofadr : self._body_dofadr + 6].copy()

    def tcp_xy(self) -> np.ndarray:
        """xy of the tool centre point."""
        return self.data.site_xpos[self._tcp][:2].copy()

    def tcp_pose(self) -> np.ndarray:
        """World pose (4, 4) of the tool centre point."""
        T = np.eye(4)
        T[:3, :3] = self.data.site_xmat[self._tcp].reshape(3, 3)
        T[:3, 3] = self.data.site_xpos[self._tcp]
        return T

    def robot_qpos(self) -> np.ndarray:
        """Driven joint values (gantry x, y when floating, then arm joints) then fixed joint values."""
        return np.concatenate([self.data.qpos[self._qadr], self._fixed_q])

    def link_poses(self, names: tuple[str, ...]) -> np.ndarray:
        """MuJoCo's world poses (len(names), 4, 4) of robot links."""
        out = np.tile(np.eye(4), (len(names), 1, 1))
        for i, n in enumerate(names):
            b = self._link_ids[n]
            out[i, :3, :3] = self.data.xmat[b].reshape(3, 3)
            out[i, :3, 3] = self.data.xpos[b]
        return out

    def get_state(self) -> SimState:
        """Physics integration state plus the controller's setpoint, target and joint commands."""
        size = mujoco.mj_stateSize(self.model, STATE_SPEC)
        phys = np.empty(size)
        mujoco.mj_getState(self.model, self.data, phys, STATE_SPEC)
        ctrl = np.concatenate([self._setpoint, self._target, self._q_cmd])
        return SimState(phys, ctrl, float(self.data.time))

    def set_state(self, state: SimState) -> None:
        """Restore a `get_state` snapshot exactly."""
        mujoco.mj_setState(self.model, self.data, state.physics, STATE_SPEC)
        self._setpoint = state.controller[:2].copy()
        self._target = state.controller[2:4].copy()
        self._q_cmd = state.controller[4:].copy()
        mujoco.mj_forward(self.model, self.data)

    # -------------------------------------------------------------- rendering
    def render(self, robot_rgb: bool = True) -> Frames:
        """RGB, depth (metres along the optical axis; 0 where nothing is hit) and labels of every camera;
        ``robot_rgb=False`` leaves the robot's pixels uncoloured (`MujocoCameraRenderer.render`)."""
        if self._renderer is None:
            from .mujoco_render import MujocoCameraRenderer

            self._renderer = MujocoCameraRenderer(self.model, self._geom_labels)
        cams = self.scene.cameras
        if any((c.width, c.height) != (cams[0].width, cams[0].height) for c in cams):
            raise ValueError("all cameras of a scene must share one image size")
        return Frames(*self._renderer.render(self.data, cams[0].width, cams[0].height, robot_rgb))

    def render_views(self, cameras: tuple[Camera, ...], decorations: bool = True) -> Frames:
        """RGB, depth and labels of any ``cameras``, with the scene's decorations unless ``decorations`` is False
        (a second renderer: the observations' renderer and its buffers are left alone)."""
        from .mujoco_render import MujocoCameraRenderer

        w, h = cameras[0].width, cameras[0].height
        r = self._view_renderer
        if r is None or w > r.width or h > r.height:
            if r is not None:
                r.close()
            r = self._view_renderer = MujocoCameraRenderer(self.model, self._geom_labels, size=(w, h))
        return Frames(*r.render_views(self.data, tuple(cameras), self.placed_decorations() if decorations else []))

    def close(self) -> None:
        """Release the rendering contexts."""
        for name in ("_renderer", "_view_renderer"):
            if getattr(self, name) is not None:
                getattr(self, name).close()
                setattr(self, name, None)
