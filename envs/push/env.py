"""Push4D-v0: push any object with any gripper onto a goal pose, with RGB-D, fused point clouds and exact point flow."""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

import numpy as np
import shapely
from gymnasium import spaces

from physics.render import Camera, Frames, orbit_cameras
from physics.rigid import BACKENDS, Scene, make_backend
from robots.gripper_points import GripperPoints
from robots.transforms import pose_matrix
from robots.urdf import RobotDescription

from .. import workspace as ws
from ..base import CLOUD_MODES, CROP_MARGIN, TaskEnv
from ..checks import MAX_POINTS, choice, fraction, nonnegative_int, option_vector, positive_float, positive_int
from ..objects import RigidObject, load_object
from ..robot_setup import MAX_SPEED, RobotSetup, make_gripper, make_robot
from .factors import Draw, moved_cameras, parse_randomize, scaled_object, with_mass
from .scene import object_body, object_pool

STARTS = ("full", "near_goal")
MATERIALS = ("rigid", "jelly", "plasticine", "sand")  # all but "rigid" are MPM objects (envs.push.deformable)
ROBOTS = (None, "panda")  # None: the floating ``gripper``; "panda": the arm on its gantry (its own hand)
GOAL_POSE = ws.GOAL_POSE
EE_RESET_RANGE = 0.33  # m: full start, fingertips xy ~ U([-0.33, 0.33]^2)
OBJECT_RESET_RANGE = 0.25  # m: full start, object xy ~ U([-0.25, 0.25]^2)
EE_CLEARANCE = 0.03  # m: the fingertips start at least this far from the object's footprint
NEAR_GOAL_RADIUS = 0.05  # m: near_goal start, the object within this distance of the goal ...
NEAR_GOAL_YAW = np.pi / 6  # rad: ... and this far from the goal's yaw
MAX_RESET_DRAWS = 1000  # draws of a pose before a reset gives up
CROP_TOP = 0.3  # m: the fused cloud keeps points up to this height (tall meshes) ...
CROP_BOTTOM = -0.005  # m: ... and down to just below the table top
MAX_FRICTION = 10.0
SUCCESS_COVERAGE = ws.SUCCESS_COVERAGE
CAMERA_TARGET = (0.0, 0.0, 0.0)  # where the cameras look (also when randomize['camera_pose'] moves them)
SCALED_CACHE = 16  # scaled objects kept, per (pool object, scale)


@dataclass(frozen=True, eq=False)
class Setting:
    """What an episode is played with: ``shape`` (the pool object, scaled: the engine's geometry), ``object`` (it
    with the drawn mass), the gripper (an index into the env's grippers), the cameras (None: the env's own) and the
    drawn factor values (`envs.push.factors.Draw`). Snapshots (`Push4DEnv.get_state`) carry it."""

    shape: RigidObject
    object: RigidObject
    gripper: int = 0
    cameras: tuple[Camera, ...] | None = None
    draw: Draw = Draw()


class Push4DEnv(TaskEnv):
    """Push any object onto a goal pose on a table with any gripper (PushT4D-v0 generalised, in metres, 3D).

    **Scene.** PushT4D-v0's table (top at z = 0), 0.853 m square workspace and 0.05 m walls. The
    object (``object``) is a rigid body: an extruded polygon or a mesh, simulated as its convex
    pieces (`envs.objects.RigidObject.pieces`) with the mass, centre of mass and inertia of its
    geometry. **Object frame** = the file's (or polygon's) own frame, shifted only along z so that
    its lowest point rests on the table; ``object_pose`` (x, y, yaw) places that frame and
    ``object_pose7`` (x, y, z, qw, qx, qy, qz) is its full pose (not the centre of mass). The
    floating ``gripper`` (`robots.grippers`: ``"panda_hand"`` by default, other library grippers or
    ``{"urdf": path, "links": [...], "tcp_link": name}``) holds its ``tcp_link`` frame pointing
    down 0.01 m above the table; ``robot="panda"`` is the full arm on its gantry (its own hand).
    The gripper pushes with a bounded force, as in PushT4D-v0.

    **Action.** As PushT4D-v0: ``action_mode="absolute"`` the tool xy target in metres
    (``Box(-0.4265, 0.4265, (2,))``), ``"delta"`` a step of at most 0.03 m per axis; 10 Hz,
    at most ``max_speed`` m/s; bad actions raise ValueError.

    **Observation** (``obs_mode``): PushT4D-v0's keys with ``object_pose`` in place of
    ``block_pose``: ``"state"``: ``agent_pos`` (2), ``object_pose`` (3), ``qpos``; ``"rgbd"``,
    ``"pointcloud"`` (default; ``scene_labels`` 1 on the object) and ``"all"`` as PushT4D-v0, the
    gripper points sampled on the gripper's contact links.

    **Reward.** coverage = area(goal footprint intersect object footprint) / area(goal footprint)
    (footprint = the object's projection along its own z axis, placed in the plane by
    ``object_pose``); reward = clip(coverage / 0.95, 0, 1); ``terminated`` when coverage > 0.95.
    Truncated at 300 steps by the registered ``TimeLimit``.

    **Info** every step: ``object_pose``, ``object_pose7``, ``object_points`` (K, 3: the same K
    surface points of the object every step, exact tracks), ``goal_object_points`` (K, 3 at the
    goal pose), ``coverage``, ``is_success`` (> 0.95), ``object_distance`` (mean distance between
    ``object_points`` and ``goal_object_points``, m), ``object_name``; for scripted pushers and planners
    the object's geometry: ``object_footprint`` (its shapely footprint in the object frame),
    ``object_com`` (its centre of mass, object frame) and ``goal_pose``; with cameras also
    ``object_points_visible``; ``randomization``: the factor values of the episode (below; ``{}`` without
    ``randomize``); in ``state`` and ``rgbd`` modes (no gripper points) ``gripper_outline`` (K, 2): the convex
    outline, relative to the fingertip centre, of the gripper's contact geometry lower than the object's top.

    **Factors of variation** (``randomize``, a dict; None or ``{}``: none, nothing changes). Each factor asked for
    is drawn at every reset through ``self.np_random``, in this order, and reported in ``info["randomization"]``
    (plain floats, lists and strings):

    - ``"scale": [lo, hi]`` (0 < lo <= hi <= 5): the object's size times s ~ U(lo, hi) about its frame's origin
      (its lowest point stays on the table); mass s^3 times as large (same density) unless ``mass`` is drawn too.
      Tracks, footprint, goal points and coverage follow it exactly. Reported as ``scale``.
    - ``"mass": [lo, hi]`` (kg, 0 < lo <= hi <= 100): the object's mass ~ U(lo, hi) kg, its inertia scaled with it
      (same shape, uniform density). ``mass`` (kg).
    - ``"friction": [lo, hi]`` (0 < lo <= hi <= 10): the object-table (and object-wall) Coulomb coefficient
      ~ U(lo, hi), in place of ``friction`` and the object's own. ``friction``.
    - ``"object_color"``, ``"table_color"``: True (rgb ~ U([0, 1]^3), alpha 1) or a list of rgb(a) colours in
      [0, 1] to draw one from (uniformly). ``object_color``, ``table_color`` (rgba).
    - ``"light": True``: a directional light from azimuth ~ U(-pi, pi) and elevation ~ U(30, 90) deg above the
      horizon, intensity ~ U(0.5, 1.5) times the scene's own. ``light_direction`` (the unit vector the light
      travels along, pointing down), ``light_intensity``.
    - ``"camera_pose": r`` (m, 0 < r <= 0.3): every camera moved by an offset drawn uniformly in a ball of radius r,
      looking at the table's centre again (intrinsics unchanged); ``cam2world``, the fused cloud and ``render()``
      follow. ``camera_offsets`` (V lists of 3, m).
    - ``"gripper": [spec, ...]`` (``robot=None``): the floating gripper drawn uniformly from these specs (in place
      of ``gripper``); ``qpos`` is zero-padded to the longest of their joint vectors. ``gripper`` (its name).

    A new scale or gripper rebuilds the engine; the other factors are set in place. Unknown factors or bad values
    raise ValueError naming what is allowed.

    **Reset.** Through ``self.np_random``: an object of the pool is drawn first (a list or a
    split name of `envs.objects.library_names`), then the factors of ``randomize``, then ``start="full"``: object xy ~
    U([-0.25, 0.25]^2), yaw ~ U(-pi, pi), redrawn until its footprint lies inside the walls;
    fingertips xy ~ U([-0.33, 0.33]^2), redrawn while within 0.03 m of the footprint;
    ``start="near_goal"``: the object within 0.05 m and +-30 deg of ``goal_pose``.
    ``reset(options={"object_pose": (x, y, yaw), "ee_xy": (x, y)})`` starts from a given state
    (the footprint inside the walls, ``ee_xy`` in the action box and clear of the object, else
    ValueError). The same seed gives the same object, state and observations.

    **Arguments.** ``object`` (a library name such as ``"T"``, ``"L"``, ``"duck"``,
    ``"random_urdf/042"``; a mesh file or single-link URDF path; ``{"polygon": [[x, y], ...],
    "height": h}``; either as a dict with ``mass``, ``density``, ``friction``, ``color``, ``scale``;
    a list of these; or ``"train"``/``"val"``/``"test"``), ``gripper``, ``robot`` (None or
    ``"panda"``), ``goal_pose`` ((0, 0, pi/4)), ``start``, ``backend`` ("mujoco", "pybullet"),
    ``friction`` (object-table, 0.5; an object's own ``friction`` overrides it), ``randomize`` (None), ``material``
    ("rigid", default; "jelly", "plasticine", "sand": an MPM object, see `envs.push.deformable.DeformablePush4DEnv`,
    which ``gym.make("Push4D-v0", ...)`` then builds, with its own arguments), and PushT4D-v0's
    ``obs_mode``, ``action_mode``, ``render_mode``, ``render_size``, ``image_size``,
    ``num_cameras``, ``num_scene_points``, ``num_gripper_points``, ``num_object_points``,
    ``object_point_fraction``, ``max_speed``, ``seed_points``.
    """

    RESET_OPTIONS = ("object_pose", "ee_xy")
    ACTION_MEANING = "xy in metres"
    POSE_KEY = "object_pose"  # the observation key (and reset option) of the planar pose
    KEEP_INSIDE_WALLS = True  # redraw start poses whose footprint reaches past a wall

    def __init__(
        self,
        obs_mode: str = "pointcloud",
        object: Any = "T",  # noqa: A002 - the documented keyword (DESIGN §12)
        gripper: Any = "panda_hand",
        robot: str | None = None,
        goal_pose: tuple[float, float, float] = GOAL_POSE,
        start: str = "full",
        backend: str = "mujoco",
        action_mode: str = "absolute",
        render_mode: str | None = None,
        image_size: int | tuple[int, int] = 96,
        num_cameras: int = 2,
        num_scene_points: int = 1024,
        num_gripper_points: int = 256,
        num_object_points: int = 256,
        object_point_fraction: float = 0.25,
        friction: float = 0.5,
        max_speed: float = 0.5,
        seed_points: int = 0,
        render_size: int | tuple[int, int] | None = None,
        randomize: dict[str, Any] | None = None,
        material: str = "rigid",
    ):
        self.material = choice("material", material, MATERIALS)
        if material != "rigid" and not getattr(self, "MPM_OBJECT", False):
            raise ValueError(f"{type(self).__name__} builds rigid objects, got material={material!r}: "
                             "gym.make('Push4D-v0', material=...) picks the class")
        self.robot_name = choice("robot", robot, ROBOTS)
        if robot == "panda" and gripper != "panda_hand":
            raise ValueError(f"robot='panda' pushes with its own hand; gripper={gripper!r} needs robot=None")
        self.factors = parse_randomize(randomize, robot)
        self._grippers = list(self.factors.grippers) if self.factors is not None and self.factors.grippers \
            else [gripper]
        self._robots: dict[int, RobotSetup] = {}  # per gripper index
        self._outlines: dict[tuple[int, float], np.ndarray] = {}  # finger outlines per (gripper index, object height)
        self._scaled: OrderedDict[tuple[int, float], RigidObject] = OrderedDict()
        self.backend_name = choice("backend", backend, BACKENDS)
        self.start = choice("start", start, STARTS)
        self.goal_pose = option_vector({"goal_pose": goal_pose}, "goal_pose", 3)
        self.num_object_points = positive_int("num_object_points", num_object_points, MAX_POINTS)
        self.friction = positive_float("friction", friction, MAX_FRICTION)
        self.max_speed = positive_float("max_speed", max_speed, MAX_SPEED, " m/s")
        self.seed_points = nonnegative_int("seed_points", seed_points)
        self.pool = object_pool(object)  # object specs, loaded when first drawn
        self._loaded: dict[int, RigidObject] = {}
        self.gripper_spec = self._grippers[0]
        self.object = self._load(0)
        self._set_object_geometry()
        self._check_goal(self.goal_pose)
        self._last_target = np.zeros(2)
        super().__init__(
            obs_mode=obs_mode, action_mode=action_mode, render_mode=render_mode, image_size=image_size,
            num_cameras=num_cameras, num_scene_points=num_scene_points, num_gripper_points=num_gripper_points,
            object_point_fraction=fraction("object_point_fraction", object_point_fraction),
            seed_points=self.seed_points, render_size=render_size,
        )
        self._base_cameras = self.cameras
        self._gripper_points = {0: self.gripper}  # per gripper index
        self.setting = Setting(self.object, self.object)

    # ------------------------------------------------------------------ object
    def _load(self, index: int) -> RigidObject:
        """Object ``index`` of the pool (loaded once)."""
        if index not in self._loaded:
            self._loaded[index] = load_object(self.pool[index])
        return self._loaded[index]

    def _set_object_geometry(self) -> None:
        """Surface tracks, footprint and goal points of the current object."""
        obj = self.object
        pts, _ = obj.surface_points(self.num_object_points, np.random.default_rng(self.seed_points), skip_bottom=True)
        self.object_local = np.asarray(pts, np.float64)
        self.goal_footprint = obj.footprint_at(self.goal_pose)
        self.goal_object_points = self._points_at(self.goal_pose)

    def _points_at(self, pose3: np.ndarray) -> np.ndarray:
        """The object's tracked points (K, 3) float32 with its frame at planar pose ``pose3`` on the table."""
        T = pose_matrix(ws.pose7_from_pose3(pose3, self._rest_z()))
        return ws.transform_points(T, self.object_local).astype(np.float32)

    def _check_goal(self, goal: np.ndarray) -> None:
        reach = self._wall_overshoot(goal)
        if reach > 1e-9:
            raise ValueError(f"goal_pose {goal.tolist()} puts {self.object.name!r} {reach:.4g} m past a wall; allowed: "
                             f"poses whose footprint lies within |x|, |y| <= {ws.WORKSPACE / 2} m")

    def _wall_overshoot(self, pose: np.ndarray) -> float:
        """How far (m) the object's footprint at planar ``pose`` reaches past the walls (<= 0: inside)."""
        x0, y0, x1, y1 = self.object.footprint_at(pose).bounds
        return float(max(abs(x0), abs(y0), abs(x1), abs(y1)) - ws.WORKSPACE / 2)

    # ------------------------------------------------------------------ scene
    def _make_cameras(self, num: int, width: int, height: int) -> tuple[Camera, ...]:
        return orbit_cameras(num, width, height, target=CAMERA_TARGET)

    def _crop_box(self) -> tuple[np.ndarray, np.ndarray]:
        half = ws.WORKSPACE / 2 - CROP_MARGIN
        return np.array([-half, -half, CROP_BOTTOM]), np.array([half, half, CROP_TOP])

    def _make_robot(self) -> RobotSetup:
        if self.robot_name == "panda":
            return make_robot("panda", max_speed=self.max_speed)
        return self._gripper_robot(0)

    def _gripper_robot(self, index: int) -> RobotSetup:
        """The floating gripper ``index`` of the env's grippers (built once)."""
        if index not in self._robots:
            self._robots[index] = make_gripper(self._grippers[index], max_speed=self.max_speed)
        return self._robots[index]

    def _load_scene(self) -> None:
        self.robot = self._make_robot()
        self.sim = self._make_sim()
        self._finger_outline = self._outline(0)

    def _outline(self, gripper: int) -> np.ndarray:
        """The finger outline (`RobotSetup.finger_outline`) of gripper ``gripper`` (the current robot) at the current
        object's height, computed once per gripper and height."""
        key = (gripper, self.object.height)
        if key not in self._outlines:
            if len(self._outlines) >= SCALED_CACHE * 4:
                self._outlines.clear()
            self._outlines[key] = self.robot.finger_outline(self.object.height)
        return self._outlines[key]

    def _make_sim(self):
        return make_backend(self.backend_name, self._make_scene(self._default_friction()))

    def _default_friction(self) -> float:
        """The object-statics friction without a drawn one: the object's own, else the env's ``friction``."""
        return self.object.friction if self.object.friction is not None else self.friction

    def _make_scene(self, friction: float) -> Scene:
        """The rigid backend's scene (table, walls, the object, robot, cameras)."""
        return ws.make_scene(self.robot, self.cameras, object_body(self.object), friction=friction)

    def _rest_z(self) -> float:
        """Height of the object frame above the table when the object rests on it."""
        return self.object.rest_z

    def _gripper_source(self) -> tuple[RobotDescription, tuple[str, ...]]:
        return self.robot.desc, self.robot.gripper_links

    def _link_poses(self, links: tuple[str, ...]) -> np.ndarray:
        return self.robot.link_poses(self.sim.robot_qpos(), links)

    def _target_bounds(self) -> tuple[np.ndarray, np.ndarray]:
        half = ws.WORKSPACE / 2
        return np.full(2, -half), np.full(2, half)

    def _state_spaces(self) -> dict[str, spaces.Space]:
        f32 = np.float32
        self._qpos_size = len(self.sim.robot_qpos())
        if self.factors is not None and self.factors.grippers:  # the longest of the grippers' joint vectors
            self._qpos_size = max(2 + len(r.model.arm_joints) + len(r.model.fixed_joint_values)
                                  for r in map(self._gripper_robot, range(len(self._grippers))))
        return {
            "agent_pos": spaces.Box(-1.0, 1.0, (2,), f32),
            self.POSE_KEY: spaces.Box(np.array([-1, -1, -np.pi], f32), np.array([1, 1, np.pi], f32), dtype=f32),
            "qpos": spaces.Box(-np.inf, np.inf, (self._qpos_size,), f32),
        }

    def _qpos(self) -> np.ndarray:
        """The robot's joint values (float32), zero-padded to the observation's length (drawn grippers)."""
        q = self.sim.robot_qpos().astype(np.float32)
        return q if len(q) == self._qpos_size else np.concatenate([q, np.zeros(self._qpos_size - len(q), np.float32)])

    # ------------------------------------------------------------------ reset
    def _use_object(self, index: int) -> None:
        """Make object ``index`` of the pool the current one, rebuilding the engine if it differs."""
        obj = self._load(index)
        self._apply_setting(Setting(obj, obj))

    def _draw_setting(self, index: int) -> Setting:
        """An episode with object ``index`` of the pool and factors drawn through ``self.np_random``."""
        draw = self.factors.draw(self.np_random, len(self.cameras))
        shape = self._load(index)
        if draw.scale is not None:
            key = (index, draw.scale)
            if key not in self._scaled:
                self._scaled[key] = scaled_object(shape, draw.scale)
                while len(self._scaled) > SCALED_CACHE:
                    self._scaled.popitem(last=False)
            shape = self._scaled[key]
            self._scaled.move_to_end(key)
        cameras = None if draw.camera_offsets is None else moved_cameras(
            self._base_cameras, draw.camera_offsets, CAMERA_TARGET)
        return Setting(shape, with_mass(shape, draw.mass), draw.gripper or 0, cameras, draw)

    def _apply_setting(self, new: Setting) -> None:
        """Play on with ``new``: a new engine where its object's geometry or its gripper differ from the current
        ones; the cameras, mass, friction, colours and light set in place (a factor no longer drawn: as built)."""
        old, d = self.setting, new.draw
        cameras = self._base_cameras if new.cameras is None else new.cameras
        if cameras is not self.cameras:
            self._set_cameras(cameras)
        rebuild = new.shape is not old.shape or new.gripper != old.gripper
        if new.gripper != old.gripper:
            self.robot = self._gripper_robot(new.gripper)
            if new.gripper not in self._gripper_points:
                self._gripper_points[new.gripper] = GripperPoints(
                    self.robot.desc, self.robot.gripper_links, self.gripper.num_points, seed=self.seed_points)
            self.gripper = self._gripper_points[new.gripper]
        self.object = new.object
        if new.shape is not old.shape:
            self._set_object_geometry()
        if rebuild:
            self.sim.close()
            self.sim = self._make_sim()
            self._finger_outline = self._outline(new.gripper)
        sim = self.sim
        for value, was, apply, default in (
            (d.mass, old.draw.mass, sim.set_body_mass, self.object.mass),
            (d.friction, old.draw.friction, sim.set_friction, self._default_friction()),
            (d.object_rgba, old.draw.object_rgba, sim.set_body_rgba, self.object.color),
            (d.table_rgba, old.draw.table_rgba, sim.set_table_rgba, ws.TABLE_RGBA),
            (d.light, old.draw.light, sim.set_light, None),
        ):
            if value is not None or (was is not None and not rebuild):
                apply(value if value is not None else default)
        self.setting = new

    def _sample_object_pose(self) -> np.ndarray:
        rng = self.np_random
        for _ in range(MAX_RESET_DRAWS):
            if self.start == "near_goal":
                r, a = NEAR_GOAL_RADIUS * np.sqrt(rng.random()), rng.uniform(-np.pi, np.pi)
                gx, gy, gyaw = self.goal_pose
                yaw = ws.wrap_angle(gyaw + rng.uniform(-1, 1) * NEAR_GOAL_YAW)
                pose = np.array([gx + r * np.cos(a), gy + r * np.sin(a), yaw])
            else:
                pose = np.array([*rng.uniform(-OBJECT_RESET_RANGE, OBJECT_RESET_RANGE, 2), rng.uniform(-np.pi, np.pi)])
            if not self.KEEP_INSIDE_WALLS or self._wall_overshoot(pose) <= 0:
                return pose
        raise RuntimeError(f"could not place {self.object.name!r} inside the walls")

    def _sample_ee(self, pose: np.ndarray) -> np.ndarray:
        footprint = self.object.footprint_at(pose)
        for _ in range(MAX_RESET_DRAWS):
            ee = self.np_random.uniform(-EE_RESET_RANGE, EE_RESET_RANGE, 2)
            if self._ee_clear(ee, pose, footprint):
                return ee
        raise RuntimeError("could not place the gripper away from the object")

    def _ee_clear(self, ee: np.ndarray, pose: np.ndarray, footprint: shapely.Geometry) -> bool:
        """Whether a drawn tool position ``ee`` starts clear of the object (``footprint``, at ``pose``)."""
        return footprint.distance(shapely.Point(*ee)) >= EE_CLEARANCE and not self._fingers_overlap(ee, pose)

    def _drawn_geometry(self) -> bool:
        """Whether a reset draws what the start checks depend on (an object of a pool, its scale, the gripper)."""
        return len(self.pool) > 1 or (self.factors is not None and self.factors.changes_geometry)

    def _parse_reset_options(self, options: dict) -> tuple[np.ndarray | None, np.ndarray | None]:
        pose, ee = option_vector(options, self.POSE_KEY, 3), option_vector(options, "ee_xy", 2)
        if not self._drawn_geometry():  # else the object (and so what fits) is drawn after seeding
            self._check_reset(pose, ee)
        return pose, ee

    def _check_reset(self, pose: np.ndarray | None, ee: np.ndarray | None) -> None:
        """ValueError unless ``pose`` keeps the footprint inside the walls and ``ee`` is in the box, clear of it."""
        if pose is not None and self._wall_overshoot(pose) > 1e-9:
            raise ValueError(f"options[{self.POSE_KEY!r}] {pose.tolist()} puts {self.object.name!r} past a wall; "
                             f"allowed: poses whose footprint lies within |x|, |y| <= {ws.WORKSPACE / 2} m")
        half = ws.WORKSPACE / 2
        if ee is not None and np.any(np.abs(ee) > half):
            raise ValueError(f"options['ee_xy'] must lie within |x|, |y| <= {half} m, got {ee.tolist()}")
        if ee is not None and pose is not None and self._fingers_overlap(ee, pose):
            raise ValueError(f"options['ee_xy'] {ee.tolist()} puts the gripper inside {self.object.name!r} at "
                             f"{pose.tolist()}; allowed: a gripper clear of the object's footprint")

    def _initialize_episode(self, parsed: tuple[np.ndarray | None, np.ndarray | None]) -> None:
        pose, ee = parsed
        index = int(self.np_random.integers(len(self.pool))) if len(self.pool) > 1 else 0
        if self.factors is not None:
            self._apply_setting(self._draw_setting(index))
        elif len(self.pool) > 1:
            self._use_object(index)
        if self._drawn_geometry():
            self._check_reset(pose, ee)
        if pose is None:
            pose = self._sample_object_pose()
            while ee is not None and self._fingers_overlap(ee, pose):
                pose = self._sample_object_pose()
        ee = self._sample_ee(pose) if ee is None else ee
        self._reset_sim(pose, ee)
        self._last_target = ee.copy()

    def _reset_sim(self, pose: np.ndarray, ee_xy: np.ndarray) -> None:
        """Place the object at planar pose ``pose`` and the tool at ``ee_xy``, at rest."""
        self.sim.reset(ws.pose7_from_pose3(pose, self._rest_z()), ee_xy)

    def _fingers_overlap(self, ee: np.ndarray, pose: np.ndarray) -> bool:
        """Whether the gripper's outline below the object's top at ``ee`` overlaps the object at ``pose``."""
        if len(self._finger_outline) == 0:
            return False
        return bool(shapely.polygons(self._finger_outline + ee).intersects(
            self.object.footprint_at(pose)))

    # ------------------------------------------------------------------- step
    def _tool_position(self) -> np.ndarray:
        return self.sim.tcp_xy()

    def _step_physics(self, target: np.ndarray) -> None:
        self._last_target = target
        self.sim.step(target)

    def _evaluate(self, info: dict) -> tuple[float, bool, bool]:
        reward = float(np.clip(info["coverage"] / SUCCESS_COVERAGE, 0.0, 1.0))
        return reward, bool(info["is_success"]), False

    # ------------------------------------------------------------ observation
    def coverage(self, pose3: np.ndarray) -> float:
        """Coverage of the goal footprint by the object's footprint at planar pose ``pose3``."""
        placed = self.object.footprint_at(pose3)
        return float(self.goal_footprint.intersection(placed).area / self.goal_footprint.area)

    def _object_state(self) -> tuple[np.ndarray, np.ndarray, float, np.ndarray]:
        """The object's pose7, planar pose, coverage and tracked points (K, 3) float32."""
        pose7 = self.sim.body_pose7()
        T = pose_matrix(pose7)
        pose3 = ws.pose3_from_pose7(pose7, T[:3, :3])
        return pose7, pose3, self.coverage(pose3), ws.transform_points(T, self.object_local).astype(np.float32)

    def _observe_task(self) -> tuple[dict, dict]:
        pose7, pose3, cov, points = self._object_state()
        obs = {
            "agent_pos": self.sim.tcp_xy().astype(np.float32),
            self.POSE_KEY: pose3.astype(np.float32),
            "qpos": self._qpos(),
        }
        info = {
            "coverage": cov,
            "is_success": cov > SUCCESS_COVERAGE,
            "object_pose": pose3,
            "object_pose7": pose7,
            "object_points": points,
            "goal_object_points": self.goal_object_points.copy(),
            "object_distance": float(np.linalg.norm(points - self.goal_object_points, axis=1).mean()),
            "object_name": self.object.name,
            "object_footprint": shapely.transform(self.object.footprint, lambda xy: xy),  # a copy: infos share nothing
            "object_com": np.array(self.object.com),
            "goal_pose": self.goal_pose.copy(),
            "randomization": self.setting.draw.report(),
        }
        if self.obs_mode not in CLOUD_MODES and len(self._finger_outline):  # no gripper points to read its shape
            info["gripper_outline"] = self._finger_outline.copy()
        return obs, info

    def _render_frames(self) -> Frames:
        return self.sim.render()

    def _render_cloud_frames(self) -> Frames | None:
        # (a subclass that draws more, such as MPM particles, keeps whole frames)
        if not self.sim.SKIPS_ROBOT_RGB or type(self)._render_frames is not Push4DEnv._render_frames:
            return None
        return self.sim.render(robot_rgb=False)

    def _render_views(self, cameras: tuple[Camera, ...], decorations: bool = True) -> Frames:
        return self.sim.render_views(cameras, decorations)

    def _set_cameras(self, cameras: tuple[Camera, ...]) -> None:
        super()._set_cameras(cameras)
        self.sim.set_cameras(self.cameras)

    # ------------------------------------------------------------------ state
    def _save_state(self) -> tuple:
        return self.setting, self.sim.get_state(), self._last_target.copy()

    def _restore_state(self, state: tuple) -> None:
        setting, sim_state, target = state
        if setting is not self.setting:  # a state of another episode (a pool, drawn factors): its setting comes back
            self._apply_setting(setting)
        self.sim.set_state(sim_state)
        self._last_target = target.copy()

    def close(self) -> None:
        """Release the engine and rendering resources; the env cannot be used afterwards (closing twice is fine)."""
        super().close()
        self.sim.close()
