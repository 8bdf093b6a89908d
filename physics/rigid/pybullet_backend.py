"""PyBullet implementation of `RigidBackend` (DIRECT mode, TinyRenderer: no GL libraries needed).

The robot is loaded from the URDF text of `urdf_export.robot_urdf` (the Panda URDF's own
links on the same gantry mount as the MuJoCo model). The gantry slides are servoed by
explicit PD forces, f = kp (x_ref - x) - kv dx, with MuJoCo's gains; arm joints hold their
posture with Bullet's position motors (explicit PD is unstable on the light distal links,
which MuJoCo stabilises with joint armature). Gravity acts on the free body only, as a force
the backend applies at its centre of mass: the robot is weightless, which is what MuJoCo's
``gravcomp`` makes of the arm (and the gantry carries the hand's weight in both engines).
Snapshots use Bullet's own ``saveState`` (contacts and solver warm start included) plus the
friction model's history and the contacts it works from (Bullet does not restore contact
manifolds exactly), so a restored simulation continues as the original.

Friction of the free body (sim-to-sim parity with MuJoCo, benchmarks/parity_backends.py):
Bullet's multibody solver projects friction onto its cone in a fixed tangent basis with a
different effective mass per direction, so a sliding contact's friction is off the slip
direction by up to ~20 degrees where the body also turns (measured at the block's pads:
MuJoCo's elliptic cones stay within ~2 degrees of Coulomb), and the block turned up to twice
as fast as in MuJoCo. Bullet therefore solves only the normal forces of the table and robot
contacts (their Bullet friction is zero); before each physics step the backend computes the
body's planar friction implicitly (`planar_friction`) and applies it as an external wrench:
Coulomb friction with ``scene.static_friction`` at every table contact, and at every robot
contact the effective friction MuJoCo's soft pusher contacts produce (measured on the parity
pushes): horizontal Coulomb friction with ``robot.friction`` regularised over a slip of
``PUSH_SLIP`` (MuJoCo's pusher transmits ~0.2 N/N of friction at 2 mm/s of slip and ~0.45 at
50 mm/s) and a downward force of ``PUSH_PRESS`` times the normal force (the part of MuJoCo's
friction cone that presses the block onto the table). The normal forces are those Bullet solved
in the previous step and the frictionless velocity is predicted from the body's momentum change
over that step. Walls keep Bullet's friction. The robot's convex collision hulls are shrunk by
Bullet's 1 mm hull margin so that the margin restores MuJoCo's (margin-free) hull.

A free body of convex pieces (`FreeBody.hulls`) is a compound of Bullet convex meshes, each piece shrunk by the
same margin, plus a sphere of radius HULL_MARGIN at every vertex of every shrunk piece (exactly its margin-rounded
corners): Bullet's convex-mesh contacts add one point per step, and a pushed box given as a hull tipped and sank
3-7 mm into the table on those; the corner spheres give every vertex resting on the table its own contact point,
as Bullet's box-box contacts do for boxes. Bullet's base frame is then the principal frame at the centre of mass
(``localInertiaDiagonal`` = the principal moments); poses are converted to and from the body frame.
"""

from __future__ import annotations

import dataclasses
import math
import os
import tempfile
from functools import lru_cache

import numpy as np
import pybullet as pb
import trimesh
from scipy.spatial import ConvexHull, HalfspaceIntersection
from scipy.spatial.transform import Rotation

from physics.render import LABEL_OBJECT, LABEL_ROBOT, LABEL_STATIC, Camera, Frames

from .base import RigidBackend, SimState
from .bodies import hull_mesh, principal_axes, shrink_hull, spread_points
from .planar_friction import planar_friction
from .spec import Box, Light, MeshGeom, RobotModel, Scene
from .urdf_export import robot_urdf

GROUP_BODY, GROUP_ROBOT, GROUP_STATIC = 1, 2, 4
ARM_TORQUE = 87.0  # N m, the Panda's joint torque limit
GRAVITY = 9.81  # m/s^2
NEAR, FAR = 0.02, 5.0
HULL_MARGIN = 0.001  # m, the collision margin Bullet's URDF importer puts around convex hulls
MAX_CORNERS = 64  # corner spheres per convex piece of a free body (the most spread-out vertices of larger ones)
SUPPORT_SLIP = 1e-4  # m/s, slip below which table contacts count as sticking
REST_SPEED = 1e-4  # m/s (and rad/s times 0.1 m): an untouched body this slow is simply held at rest
PUSH_SLIP = 0.015  # m/s, slip over which the pusher's friction is regularised (MuJoCo's effective one)
PUSH_PRESS = 0.3  # downward force on the body per newton of pusher normal force (MuJoCo's effective one)
N_HISTORY = 7  # friction history: previous planar velocity (3), applied wrench (3), valid flag
STALL_PERIODS = 2  # servo periods in a row the body must push back harder than max_push_force (not an impact)
FAR_AWAY = [0.0, 0.0, 1000.0]  # m: where a reset parks the body for a moment, out of every collision pair
PARKED = (0.0, 0.0, -100.0)  # m: where decorations wait between `render_views` calls (beyond every camera's far plane)
TINY_DIFFUSE = 0.35  # TinyRenderer's diffuse light coefficient when none is given (`set_light` scales it)


def _quat_xyzw(wxyz) -> list[float]:
    w, x, y, z = wxyz
    return [x, y, z, w]


def _rotation(wxyz) -> np.ndarray:
    return np.array(pb.getMatrixFromQuaternion(_quat_xyzw(wxyz))).reshape(3, 3)


@lru_cache(maxsize=32)
def shrunk_hull(path: str, scale: tuple[float, float, float], margin: float) -> trimesh.Trimesh:
    """The convex hull of a (scaled) mesh with every face moved inward by ``margin``."""
    vertices = np.asarray(trimesh.load(path, force="mesh", process=False).vertices) * np.asarray(scale)
    hull = ConvexHull(vertices)
    planes = hull.equations.copy()  # n.x + d <= 0 inside
    planes[:, 3] += margin
    inner = HalfspaceIntersection(planes, vertices[hull.vertices].mean(axis=0)).intersections
    return trimesh.convex.convex_hull(inner)


def _with_shrunk_hulls(robot: RobotModel, out_dir: str) -> RobotModel:
    """``robot`` with each contact link's collision meshes replaced by OBJ files (in ``out_dir``) of their
    hulls shrunk by HULL_MARGIN, which Bullet's margin grows back (Bullet's primitives keep their margin inside)."""
    links = []
    for link in robot.links:
        if link.name in robot.contact_links:
            hulls = []
            for g in link.collision:
                if g.shape != "mesh":
                    hulls.append(g)
                    continue
                out = os.path.join(out_dir, f"hull{len(os.listdir(out_dir))}.obj")
                shrunk_hull(g.path, tuple(g.scale), HULL_MARGIN).export(out)
                hulls.append(MeshGeom(out, g.T_link_mesh, (1.0, 1.0, 1.0), g.rgba))
            link = dataclasses.replace(link, collision=tuple(hulls))
        links.append(link)
    return dataclasses.replace(robot, links=tuple(links))


class PybulletBackend(RigidBackend):
    """A `Scene` simulated by PyBullet; see the module docstring."""

    def __init__(self, scene: Scene, servo_dt: float = 0.01, solver_iterations: int = 50):
        self.scene = self.built_scene = scene
        self._light_args: dict = {}  # TinyRenderer's light arguments (`set_light`; empty: its defaults)
        self.client = pb.connect(pb.DIRECT)
        c = self.client
        pb.setGravity(0, 0, 0, physicsClientId=c)  # the free body's weight: `_apply_friction`
        pb.setTimeStep(scene.timestep, physicsClientId=c)
        pb.setPhysicsEngineParameter(numSolverIterations=solver_iterations, deterministicOverlappingPairs=1,
                                     physicsClientId=c)
        self.n_servo = int(round(scene.control_dt / servo_dt))
        self.n_sub = int(round(servo_dt / scene.timestep))
        if abs(self.n_servo * self.n_sub * scene.timestep - scene.control_dt) > 1e-9:
            raise ValueError("control_dt must be a whole number of servo periods and timesteps")
        self.servo_dt = self.n_sub * scene.timestep
        # the table's friction on the body is the backend's (see the module docstring); walls keep Bullet's
        self._statics = [self._static_box(b, f) for b, f in
                         [(scene.table, 0.0)] + [(b, scene.static_friction) for b in scene.statics]]
        self._base_from_body = None  # Bullet's base (inertial) frame in the body frame, where it is rotated
        self.body = self._free_body() if scene.body is not None else None
        self._load_robot()
        self._restore_friction(np.zeros(N_HISTORY + 2))
        self._pusher_friction = [0.0, 0.0]  # horizontal friction applied on the robot in the last physics step
        self._renderer_ready = False
        self._decorations = [self._decoration(d.box) for d in scene.decorations]  # last: ids of the others unchanged

    # ------------------------------------------------------------------ build
    def _static_box(self, b: Box, friction: float) -> int:
        c = self.client
        col = pb.createCollisionShape(pb.GEOM_BOX, halfExtents=b.half_size, physicsClientId=c)
        vis = pb.createVisualShape(pb.GEOM_BOX, halfExtents=b.half_size, rgbaColor=b.rgba, physicsClientId=c)
        uid = pb.createMultiBody(0, col, vis, basePosition=b.pos, baseOrientation=_quat_xyzw(b.quat), physicsClientId=c)
        pb.changeDynamics(uid, -1, lateralFriction=friction, physicsClientId=c)
        pb.setCollisionFilterGroupMask(uid, -1, GROUP_STATIC, GROUP_BODY, physicsClientId=c)
        return uid

    def _decoration(self, b: Box) -> int:
        """A visual-only body (no collision shape, no mass) parked out of sight until `render_views`."""
        vis = pb.createVisualShape(pb.GEOM_BOX, halfExtents=b.half_size, rgbaColor=b.rgba, physicsClientId=self.client)
        return pb.createMultiBody(0, -1, vis, basePosition=PARKED, physicsClientId=self.client)

    def _free_body(self) -> int:
        """The free body: boxes around their common centre of mass, exact inertia (principal frame); or its convex
        pieces (`_hull_body`)."""
        c, body = self.client, self.scene.body
        if body.hulls:
            return self._hull_body()
        vols = np.array([8 * np.prod(b.half_size) for b in body.boxes])
        centres = np.array([b.pos for b in body.boxes])
        com = (vols[:, None] * centres).sum(0) / vols.sum()
        masses = body.mass * vols / vols.sum()
        inertia = np.zeros((3, 3))
        for m, b, p in zip(masses, body.boxes, centres, strict=True):
            a, bb, cc = (2 * np.asarray(b.half_size)) ** 2
            d = p - com
            inertia += np.diag([m * (bb + cc), m * (a + cc), m * (a + bb)]) / 12
            inertia += m * (d @ d * np.eye(3) - np.outer(d, d))
        if np.abs(inertia - np.diag(np.diag(inertia))).max() > 1e-12:
            raise ValueError("the free body's boxes must be symmetric about its frame axes")
        self._com_local = com
        self._izz = self._built_izz = float(inertia[2, 2])
        self._built_moments = np.diag(inertia).copy()
        n_box, n_feet = len(body.boxes), len(body.feet)
        col = pb.createCollisionShapeArray(
            [pb.GEOM_BOX] * n_box + [pb.GEOM_SPHERE] * n_feet,
            halfExtents=[b.half_size for b in body.boxes] + [[0, 0, 0]] * n_feet,
            radii=[0.0] * n_box + [body.foot_radius] * n_feet,
            collisionFramePositions=[list(p - com) for p in centres] + [list(np.asarray(f) - com) for f in body.feet],
            physicsClientId=c)
        vis = pb.createVisualShapeArray(
            [pb.GEOM_BOX] * n_box, halfExtents=[b.half_size for b in body.boxes],
            visualFramePositions=[list(p - com) for p in centres], rgbaColors=[b.rgba for b in body.boxes],
            physicsClientId=c)
        uid = pb.createMultiBody(body.mass, col, vis, basePosition=list(com), physicsClientId=c)
        # Bullet multiplies the two coefficients of a pair: the body carries 1, the others the pair value
        pb.changeDynamics(uid, -1, lateralFriction=1.0, localInertiaDiagonal=list(np.diag(inertia)),
                          physicsClientId=c)
        pb.setCollisionFilterGroupMask(uid, -1, GROUP_BODY, GROUP_STATIC | GROUP_ROBOT, physicsClientId=c)
        return uid

    def _hull_body(self) -> int:
        """A free body of convex pieces (see the module docstring): Bullet's base frame is the body's principal frame
        at its centre of mass; each piece is a convex mesh shrunk by HULL_MARGIN (which Bullet's margin grows back)
        with a sphere at each of its corners; drawn with the visual mesh, else the pieces' hulls (flat shaded)."""
        c, body = self.client, self.scene.body
        com = np.asarray(body.com, dtype=float)
        moments, R = principal_axes(body.inertia)
        self._com_local, self._izz = com, float(body.inertia[2, 2])  # planar friction: inertia about the body z
        self._built_izz, self._built_moments = self._izz, moments.copy()

        def to_base(points: np.ndarray) -> np.ndarray:
            return (np.asarray(points, dtype=float) - com) @ R

        if not np.array_equal(R, np.eye(3)):
            self._base_from_body = Rotation.from_matrix(R)
        # spheres: the feet, and a corner sphere of radius HULL_MARGIN at (up to MAX_CORNERS) vertices of each piece
        spheres = [(list(p), body.foot_radius) for p in to_base(np.reshape(body.feet, (-1, 3)))]
        if body.visual is not None:
            drawn = trimesh.Trimesh(to_base(body.visual[0]), body.visual[1], process=False)
        else:  # every piece's hull, flat shaded (each triangle its own corners, with the face's normal)
            drawn = trimesh.util.concatenate([hull_mesh(to_base(h)) for h in body.hulls])
            drawn.unmerge_vertices()
        with tempfile.TemporaryDirectory() as d:  # (files: Bullet's in-memory meshes are limited in size)
            files = []
            for i, h in enumerate(body.hulls):
                inner = hull_mesh(shrink_hull(to_base(h), HULL_MARGIN))
                files.append(os.path.join(d, f"hull{i}.obj"))
                inner.export(files[-1])
                spheres += [(list(v), HULL_MARGIN) for v in spread_points(inner.vertices, MAX_CORNERS)]
            n_hull, n_sph = len(files), len(spheres)
            col = pb.createCollisionShapeArray(
                [pb.GEOM_MESH] * n_hull + [pb.GEOM_SPHERE] * n_sph, fileNames=files + [""] * n_sph,
                meshScales=[[1.0, 1.0, 1.0]] * (n_hull + n_sph), radii=[0.0] * n_hull + [r for _, r in spheres],
                collisionFramePositions=[[0.0, 0.0, 0.0]] * n_hull + [p for p, _ in spheres], physicsClientId=c)
            drawn.export(os.path.join(d, "visual.obj"), include_normals=True)
            vis = pb.createVisualShape(pb.GEOM_MESH, fileName=os.path.join(d, "visual.obj"), rgbaColor=body.rgba,
                                       physicsClientId=c)
            uid = pb.createMultiBody(body.mass, col, vis, physicsClientId=c)
        pb.changeDynamics(uid, -1, lateralFriction=1.0, localInertiaDiagonal=moments.tolist(), physicsClientId=c)
        pb.setCollisionFilterGroupMask(uid, -1, GROUP_BODY, GROUP_STATIC | GROUP_ROBOT, physicsClientId=c)
        return uid

    def _load_robot(self) -> None:
        c, r = self.client, self.scene.robot
        with tempfile.TemporaryDirectory() as d:
            urdf = os.path.join(d, "robot.urdf")
            with open(urdf, "w") as f:
                f.write(robot_urdf(_with_shrunk_hulls(r, d)))
            self.robot = pb.loadURDF(urdf, useFixedBase=True, flags=pb.URDF_USE_INERTIA_FROM_FILE, physicsClientId=c)
        joints = {}
        self.link_index: dict[str, int] = {}
        for j in range(pb.getNumJoints(self.robot, physicsClientId=c)):
            info = pb.getJointInfo(self.robot, j, physicsClientId=c)
            joints[info[1].decode()] = j
            self.link_index[info[12].decode()] = j
        if not r.floating:
            raise ValueError("the PyBullet backend drives gantry-mounted (floating) robots only")
        driven = ("base_x", "base_y") + tuple(r.arm_joints)
        self._driven = [joints[n] for n in driven]
        self._slides, self._arm = self._driven[:2], self._driven[2:]
        pb.setJointMotorControlArray(self.robot, self._slides, pb.VELOCITY_CONTROL, forces=[0.0, 0.0],
                                     physicsClientId=c)
        mass = sum(max(k.mass, 1e-3) for k in r.links)
        self._kp, self._kv = r.stiffness, 2 * np.sqrt(r.stiffness * mass)
        self._rest = np.asarray(r.rest_q, dtype=float) if len(r.rest_q) else np.zeros(0)
        if self._arm:
            pb.setJointMotorControlArray(self.robot, self._arm, pb.POSITION_CONTROL, targetPositions=list(self._rest),
                                         forces=[ARM_TORQUE] * len(self._arm), physicsClientId=c)
        self._fixed_q = np.array([r.fixed_joint_values[k] for k in sorted(r.fixed_joint_values)])
        for i in [-1] + list(range(pb.getNumJoints(self.robot, physicsClientId=c))):
            is_contact = i >= 0 and pb.getJointInfo(self.robot, i, physicsClientId=c)[12].decode() in r.contact_links
            pb.setCollisionFilterGroupMask(self.robot, i, GROUP_ROBOT if is_contact else 0,
                                           GROUP_BODY if is_contact else 0, physicsClientId=c)
            pb.changeDynamics(self.robot, i, lateralFriction=0.0, physicsClientId=c)  # friction: _apply_friction
        self._tcp_link = self.link_index[r.tcp_link]
        self._tcp_offset = np.asarray(r.tcp_offset, dtype=float)
        self._labels = {self.robot: LABEL_ROBOT}
        if self.body is not None:
            self._labels[self.body] = LABEL_OBJECT
        self._setpoint = np.zeros(2)
        self._target = np.zeros(2)
        self._q_cmd = np.zeros(2)
        self._tcp_offset_xy = np.zeros(2)
        self._set_robot(np.zeros(2))
        self._tcp_offset_xy = self.tcp_xy().copy()

    def _set_robot(self, xy: np.ndarray) -> None:
        """Gantry at ``xy``, arm at rest, all at rest."""
        for j, v in zip(self._driven, np.concatenate([xy, self._rest]), strict=True):
            pb.resetJointState(self.robot, j, float(v), 0.0, physicsClientId=self.client)

    # ---------------------------------------------------------------- control
    def _ramp(self, target: np.ndarray) -> np.ndarray:
        delta = target - self._setpoint
        dist = float(np.hypot(delta[0], delta[1]))
        travel = np.minimum(np.arange(1, self.n_servo + 1) * self.scene.robot.max_speed * self.servo_dt, dist)
        return self._setpoint + travel[:, None] * (delta / dist if dist > 0 else np.zeros(2))

    def reset(self, body_pose7: np.ndarray, tcp_xy: np.ndarray) -> None:
        """Place the body and the tool, everything at rest. The body is first moved out of every other body's
        reach and the collision pairs updated, which drops Bullet's persistent contact manifolds: otherwise the
        previous episode's contact points and impulses warm-start the new one and the same reset gives
        different trajectories."""
        c = self.client
        if self.body is not None:  # forget the last episode's contact manifolds (and their warm-start impulses)
            pb.resetBasePositionAndOrientation(self.body, FAR_AWAY, [0, 0, 0, 1], physicsClientId=c)
            pb.performCollisionDetection(physicsClientId=c)
        if self.body is not None and self._base_from_body is not None:  # a hull body's rotated inertial frame
            rot = Rotation.from_quat(_quat_xyzw(body_pose7[3:]))
            pos = np.asarray(body_pose7[:3]) + rot.apply(self._com_local)
            orn = (rot * self._base_from_body).as_quat()
            pb.resetBasePositionAndOrientation(self.body, pos.tolist(), orn.tolist(), physicsClientId=c)
            pb.resetBaseVelocity(self.body, [0, 0, 0], [0, 0, 0], physicsClientId=c)
        elif self.body is not None:
            pos = np.asarray(body_pose7[:3]) + _rotation(body_pose7[3:]) @ self._com_local
            pb.resetBasePositionAndOrientation(self.body, list(pos), _quat_xyzw(body_pose7[3:]), physicsClientId=c)
            pb.resetBaseVelocity(self.body, [0, 0, 0], [0, 0, 0], physicsClientId=c)
        tcp_xy = np.asarray(tcp_xy, dtype=float)
        self._q_cmd = tcp_xy - self._tcp_offset_xy
        self._set_robot(self._q_cmd)
        self._setpoint, self._target = tcp_xy.copy(), tcp_xy.copy()
        self._restore_friction(np.zeros(N_HISTORY + 2))

    def step(self, target_xy: np.ndarray) -> None:
        """One control period: PD servos track the speed-limited setpoint ramp; the setpoint stops where the tool
        is for the rest of the period once the free body pushes back with more than ``max_push_force`` at the end
        of ``STALL_PERIODS`` servo periods in a row."""
        c, rob = self.client, self.robot
        self._target = np.asarray(target_xy, dtype=float).copy()
        ramp = self._ramp(self._target)
        commands = ramp - self._tcp_offset_xy
        limit = self.scene.robot.max_push_force if self.body is not None else np.inf
        end_xy = ramp[-1]
        pressed = 0  # consecutive servo periods ending with the body pushing back harder than the limit
        for k in range(self.n_servo):
            for _ in range(self.n_sub):
                (x, vx, *_), (y, vy, *_) = pb.getJointStates(rob, self._slides, physicsClientId=c)
                f = self._kp * (commands[k] - (x, y)) - self._kv * np.array([vx, vy])
                pb.setJointMotorControlArray(rob, self._slides, pb.TORQUE_CONTROL, forces=list(f), physicsClientId=c)
                if self.body is not None:
                    self._apply_friction()
                pb.stepSimulation(physicsClientId=c)
                if self.body is not None:
                    self._read_contacts()
            if limit == np.inf:
                continue
            pressed = pressed + 1 if self._push_force() > limit else 0
            if pressed == STALL_PERIODS:  # stall: hold the tool where it is for the rest of the period
                end_xy = self.tcp_xy()
                commands = commands.copy()
                commands[k + 1:] = end_xy - self._tcp_offset_xy
        self._q_cmd = end_xy - self._tcp_offset_xy
        self._setpoint = end_xy

    def _push_force(self) -> float:
        """Horizontal force (N) with which the free body pushes the robot back in the last physics step: the normal
        forces Bullet solved and the pusher friction the backend applied."""
        fx, fy = self._pusher_friction
        for *_, nx, ny, _nz, fn in self._robot_contacts:  # normals point into the body
            fx, fy = fx - fn * nx, fy - fn * ny
        return math.hypot(fx, fy)

    def _read_contacts(self) -> None:
        """Keep the body's table and robot contacts Bullet just solved: (x, y, normal force) per table contact,
        (link, x, y, z, nx, ny, nz, normal force) per robot contact, normal into the body.

        Kept (and snapshotted) because Bullet's restoreState does not restore contact manifolds exactly."""
        table, robot = [], []
        for cp in pb.getContactPoints(self.body, physicsClientId=self.client):
            if cp[2] == self._statics[0]:
                table.append((cp[5][0], cp[5][1], cp[9]))
            elif cp[2] == self.robot and cp[9] > 0.0:
                robot.append((cp[4], *cp[5], *cp[7], cp[9]))
        self._table_contacts, self._robot_contacts = table, robot

    def _apply_friction(self) -> None:
        """Apply the free body's weight and friction for the coming physics step (see the module docstring)."""
        c, dt, body = self.client, self.scene.timestep, self.body
        m = (self.scene.body.mass, self.scene.body.mass, self._izz)
        com = pb.getBasePositionAndOrientation(body, physicsClientId=c)[0]
        v, w = pb.getBaseVelocity(body, physicsClientId=c)
        xi = (v[0], v[1], w[2])
        # frictionless velocity: the previous step's momentum change without our wrench, continued
        h = self._history
        xi_star = [2 * x - h[i] - dt * h[3 + i] / m[i] for i, x in enumerate(xi)] if h[6] else list(xi)
        mu_t, mu_r = self.scene.static_friction, self.scene.robot.friction
        supports = [(x - com[0], y - com[1], mu_t * fn) for x, y, fn in self._table_contacts]
        pushers, points, links = [], [], {}
        for link, px, py, pz, nx, ny, _nz, fn in self._robot_contacts:
            nh = (nx * nx + ny * ny) ** 0.5
            if nh < 1e-3:
                continue
            tx, ty, link = -ny / nh, nx / nh, int(link)
            if link not in links:
                links[link] = pb.getLinkState(self.robot, link, computeLinkVelocity=1, physicsClientId=c)
            o, lv, lw = links[link][0], links[link][6], links[link][7]
            rx, ry, rz = px - o[0], py - o[1], pz - o[2]  # pusher point velocity: planar part of v + w x r
            vp = (lv[0] - lw[2] * ry + lw[1] * rz) * tx + (lv[1] + lw[2] * rx - lw[0] * rz) * ty
            pushers.append((tx, ty, px - com[0], py - com[1], vp, mu_r * fn))
            points.append((link, [px, py, pz], fn))
        if not supports and not pushers:
            xi_new, forces = xi_star, []
        elif not pushers and max(abs(xi_star[0]), abs(xi_star[1]), 0.1 * abs(xi_star[2])) < REST_SPEED:
            xi_new, forces = [0.0, 0.0, 0.0], []  # static friction holds an untouched, (nearly) resting body
        else:
            xi_new, forces = planar_friction(xi_star, m[0], m[2], supports, pushers, dt, eps=SUPPORT_SLIP,
                                             v0=PUSH_SLIP, guess=xi)
        wrench = [mi * (a - b) / dt for mi, a, b in zip(m, xi_new, xi_star, strict=True)]
        pb.applyExternalForce(body, -1, [wrench[0], wrench[1], -m[0] * GRAVITY], com, pb.WORLD_FRAME, physicsClientId=c)
        if supports or pushers:
            pb.applyExternalTorque(body, -1, [0.0, 0.0, wrench[2]], pb.WORLD_FRAME, physicsClientId=c)
        friction = [0.0, 0.0]
        for (tx, ty, *_), (link, p, fn), f in zip(pushers, points, forces, strict=True):
            press = PUSH_PRESS * fn
            pb.applyExternalForce(body, -1, [0.0, 0.0, -press], p, pb.WORLD_FRAME, physicsClientId=c)
            pb.applyExternalForce(self.robot, link, [-f * tx, -f * ty, press], p, pb.WORLD_FRAME, physicsClientId=c)
            friction = [friction[0] - f * tx, friction[1] - f * ty]
        self._history = (*xi, *wrench, 1.0)
        self._pusher_friction = friction

    def _friction_snapshot(self) -> np.ndarray:
        """History and kept contacts as one flat array (see `_restore_friction`)."""
        rows = self._table_contacts + self._robot_contacts
        return np.array([*self._history, len(self._table_contacts), len(self._robot_contacts),
                         *(v for row in rows for v in row)], dtype=float)

    def _restore_friction(self, flat: np.ndarray) -> None:
        """Inverse of `_friction_snapshot`."""
        vals = [float(v) for v in flat]
        self._history = tuple(vals[:N_HISTORY])
        n_t, n_r = int(vals[N_HISTORY]), int(vals[N_HISTORY + 1])
        rest = vals[N_HISTORY + 2:]
        self._table_contacts = [tuple(rest[3 * i:3 * i + 3]) for i in range(n_t)]
        self._robot_contacts = [tuple(rest[3 * n_t + 8 * i:3 * n_t + 8 * i + 8]) for i in range(n_r)]

    # ------------------------------------------------------- per-episode changes
    def _apply_body_mass(self, ratio: float) -> None:
        """Bullet's base mass and principal inertia, and the planar friction's inertia, times ``ratio`` (one call:
        Bullet recomputes the inertia from the collision shapes when given a mass alone)."""
        self._izz = self._built_izz * ratio
        pb.changeDynamics(self.body, -1, mass=self.built_scene.body.mass * ratio,
                          localInertiaDiagonal=(self._built_moments * ratio).tolist(), physicsClientId=self.client)

    def _apply_friction_coefficient(self, friction: float) -> None:
        """The walls' Bullet friction; the table's is the backend's own (``scene.static_friction``, already set)."""
        for uid in self._statics[1:]:
            pb.changeDynamics(uid, -1, lateralFriction=friction, physicsClientId=self.client)

    def _apply_body_rgba(self, rgba: tuple[float, float, float, float]) -> None:
        pb.changeVisualShape(self.body, -1, rgbaColor=list(rgba), physicsClientId=self.client)

    def _apply_table_rgba(self, rgba: tuple[float, float, float, float]) -> None:
        pb.changeVisualShape(self._statics[0], -1, rgbaColor=list(rgba), physicsClientId=self.client)

    def _apply_light(self, light: Light | None) -> None:
        """TinyRenderer's light: from ``-direction`` (its light position's direction), diffuse times
        ``intensity``; None: its defaults."""
        self._light_args = {} if light is None else dict(
            lightDirection=[-v for v in light.direction], lightDiffuseCoeff=TINY_DIFFUSE * light.intensity)

    def _apply_cameras(self, cameras: tuple[Camera, ...]) -> None:
        """Nothing to do: `render` draws ``scene.cameras``."""

    # ------------------------------------------------------------------ state
    def body_pose7(self) -> np.ndarray:
        """(x, y, z, qw, qx, qy, qz) of the free body's frame."""
        if self.body is None:
            raise ValueError("this scene has no free body (Scene.body is None)")
        pos, q = pb.getBasePositionAndOrientation(self.body, physicsClientId=self.client)
        if self._base_from_body is not None:  # a hull body's rotated inertial frame
            rot = Rotation.from_quat(q) * self._base_from_body.inv()
            x, y, z, w = rot.as_quat()
            return np.concatenate([np.asarray(pos) - rot.apply(self._com_local), [w, x, y, z]])
        wxyz = np.array([q[3], q[0], q[1], q[2]])
        origin = np.asarray(pos) - _rotation(wxyz) @ self._com_local
        return np.concatenate([origin, wxyz])

    def _link_pose(self, index: int) -> np.ndarray:
        s = pb.getLinkState(self.robot, index, computeForwardKinematics=True, physicsClientId=self.client)
        T = np.eye(4)
        T[:3, :3] = np.array(pb.getMatrixFromQuaternion(s[5])).reshape(3, 3)
        T[:3, 3] = s[4]
        return T

    def tcp_xy(self) -> np.ndarray:
        """xy of the tool centre point."""
        T = self._link_pose(self._tcp_link)
        return (T[:3, :3] @ self._tcp_offset + T[:3, 3])[:2]

    def robot_qpos(self) -> np.ndarray:
        """Driven joint values (gantry x, y, then arm joints) then fixed joint values."""
        q = [s[0] for s in pb.getJointStates(self.robot, self._driven, physicsClientId=self.client)]
        return np.concatenate([q, self._fixed_q])

    def link_poses(self, names: tuple[str, ...]) -> np.ndarray:
        """PyBullet's world poses (len(names), 4, 4) of robot links (URDF link frames)."""
        return np.stack([self._link_pose(self.link_index[n]) for n in names])

    def get_state(self) -> SimState:
        """Bullet's saved state id plus the controller state (valid while this backend lives)."""
        sid = pb.saveState(physicsClientId=self.client)
        controller = np.concatenate([self._setpoint, self._target, self._q_cmd, self._friction_snapshot()])
        return SimState(np.array([float(sid)]), controller, 0.0)

    def set_state(self, state: SimState) -> None:
        """Restore a `get_state` snapshot exactly."""
        pb.restoreState(stateId=int(state.physics[0]), physicsClientId=self.client)
        self._setpoint = state.controller[:2].copy()
        self._target = state.controller[2:4].copy()
        n = 4 + len(self._q_cmd)
        self._q_cmd = state.controller[4:n].copy()
        self._restore_friction(state.controller[n:])

    # -------------------------------------------------------------- rendering
    def render(self, robot_rgb: bool = True) -> Frames:
        """RGB, depth (metres along the optical axis; 0 where nothing is hit) and labels (TinyRenderer; the robot's
        colours are always drawn)."""
        return self._render(self.scene.cameras)

    def render_views(self, cameras: tuple[Camera, ...], decorations: bool = True) -> Frames:
        """`render` of any ``cameras``, with the scene's decorations (unless ``decorations`` is False) placed for
        the moment and parked again after."""
        c = self.client
        if not decorations:
            return self._render(tuple(cameras))
        for uid, b in zip(self._decorations, self.placed_decorations(), strict=True):
            pb.resetBasePositionAndOrientation(uid, b.pos, _quat_xyzw(b.quat), physicsClientId=c)
        try:
            return self._render(tuple(cameras))
        finally:
            for uid in self._decorations:
                pb.resetBasePositionAndOrientation(uid, PARKED, (0.0, 0.0, 0.0, 1.0), physicsClientId=c)

    def _render(self, cams: tuple[Camera, ...]) -> Frames:
        rgb, depth, seg = [], [], []
        for cam in cams:
            T_gl = np.asarray(cam.cam2world, dtype=float) @ np.diag([1.0, -1.0, -1.0, 1.0])
            view = np.linalg.inv(T_gl).T.ravel().tolist()  # column-major
            proj = list(pb.computeProjectionMatrixFOV(cam.fovy_deg, cam.width / cam.height, NEAR, FAR))
            # TinyRenderer samples pixels half a pixel off their centres in both axes (against
            # MuJoCo's depth: up to 7 mm off at 64x64); shift the projection back by half a pixel
            proj[8] += 1.0 / cam.width
            proj[9] += 1.0 / cam.height
            _, _, px, z, ids = pb.getCameraImage(
                cam.width, cam.height, view, proj, shadow=0, renderer=pb.ER_TINY_RENDERER,
                physicsClientId=self.client, **self._light_args)
            px = np.asarray(px, dtype=np.uint8).reshape(cam.height, cam.width, 4)
            z = np.asarray(z, dtype=np.float32).reshape(cam.height, cam.width)
            ids = np.asarray(ids, dtype=np.int64).reshape(cam.height, cam.width)
            obj = np.where(ids >= 0, ids & ((1 << 24) - 1), -1)
            lab = np.full(obj.shape, LABEL_STATIC, np.int32)
            for uid, label in self._labels.items():
                lab[obj == uid] = label
            d = FAR * NEAR / (FAR - (FAR - NEAR) * z)
            depth.append(np.where(obj < 0, 0.0, d).astype(np.float32))
            rgb.append(px[..., :3])
            seg.append(lab)
        return Frames(np.stack(rgb), np.stack(depth), np.stack(seg))

    def close(self) -> None:
        """Disconnect the physics client."""
        if self.client is not None and pb.isConnected(self.client):
            pb.disconnect(self.client)
        self.client = None

