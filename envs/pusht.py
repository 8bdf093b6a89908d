"""PushT4D-v0: the Push-T task in 3D with a URDF robot, RGB-D, fused point clouds and exact point flow."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import shapely
from gymnasium import spaces
from gymnasium.error import ClosedEnvironmentError, ResetNeeded

from physics.rigid import BACKENDS, LABEL_OBJECT, Frames, Scene, make_backend
from robots.control import CONTROL_HZ
from robots.gripper_points import DEFAULT_GRIPPER_LINKS, GripperPoints
from robots.transforms import pose_matrix

from . import pusht_geometry as geo
from .cameras import orbit_cameras, side_by_side
from .checks import (
    MAX_POINTS,
    checked_action,
    choice,
    fraction,
    image_size_pair,
    nonnegative_int,
    option_vector,
    positive_float,
    positive_int,
    reset_options,
)
from .obs_spaces import sensor_spaces
from .pointcloud import PointCloudFuser
from .pusht_scene import make_scene
from .robot_setup import MAX_SPEED, ROBOTS, make_robot

OBS_MODES = ("state", "rgbd", "pointcloud", "all")
ACTION_MODES = ("absolute", "delta")
STARTS = ("full", "near_goal")
BLOCK_MATERIALS = ("rigid", "jelly", "plasticine", "sand")  # all but "rigid" are MPM blocks (envs.deformable)
RENDER_MODES = ("rgb_array", "depth_array", "rgbd_tuple")
MAX_DELTA = 0.03
EE_RESET_RANGE = 0.33
BLOCK_RESET_RANGE = 0.25
EE_CLEARANCE = 0.03
MAX_FRICTION = 10.0  # beyond any real pair of materials (most are below 1.5); keeps the contact solvers finite
RESET_OPTIONS = ("block_pose", "ee_xy")


class PushT4DEnv(gym.Env):
    """Push a T-shaped block onto a goal pose on a table with a Franka Panda (gym-pusht in metres, 3D).

    **Scene.** Table top at z = 0; a square workspace of side 0.853 m centred at the origin,
    closed by walls 0.05 m high. T block: bar 0.20 x 0.05 m and stem 0.05 x 0.15 m, 0.04 m
    high, 0.8 kg, uniform density. Block pose (x, y, yaw) is that of the midpoint of the
    bar's outer edge (gym-pusht convention); the block frame's origin is at its bottom face, which
    rests 1 mm above the table on three contact pads (statically determinate support friction).
    Goal pose (0, 0, pi/4). The robot keeps its fingers closed and its fingertips 0.01 m
    above the table; ``robot="panda"`` is the full 7-joint arm carried by an
    overhead xy gantry (joint servos hold its pushing posture), ``robot="panda_hand"`` the
    floating hand + fingers of the same URDF. The robot pushes with a bounded force: once the
    block pushes back with more than 100 N (a block jammed against a wall) it stops where it
    is for the rest of the control step, as a force-limited arm would
    (`physics.rigid.spec.RobotModel.max_push_force`).

    **Action.** ``action_mode="absolute"``: the fingertip xy target in metres,
    ``Box(-0.4265, 0.4265, (2,), float32)``. ``"delta"``: an xy step from the current
    fingertip position, ``Box(-0.03, 0.03, (2,), float32)``. Control at 10 Hz; within a step
    the target is approached at most ``max_speed`` m/s (default 0.5, at most 0.75). Actions
    outside the box are clipped to it; an action that is not finite real numbers of shape (2,)
    (NaN/inf, a wrong shape, None, strings, booleans, complex numbers) raises ValueError and
    changes nothing.

    **Observation** (``obs_mode``, a ``Dict``):
    ``"state"``: ``agent_pos`` (2) fingertip xy, ``block_pose`` (3), ``qpos`` (robot joints:
    7 arm + 2 finger for panda; base x, y + 2 finger for panda_hand).
    ``"rgbd"``: + ``rgb`` (V,H,W,3 uint8), ``depth`` (V,H,W float32 metres along the optical
    axis, 0 where nothing is hit), ``segmentation`` (V,H,W int32: 0 table/walls/background,
    1 block, 2 robot), ``intrinsics`` (V,3,3 OpenCV, cx = (W-1)/2), ``cam2world`` (V,4,4,
    OpenCV axes x right, y down, z forward).
    ``"pointcloud"`` (default): state keys + ``scene_points``, ``scene_colors`` (in [0,1]),
    ``scene_normals`` (unit), ``scene_labels`` (0 static, 1 block): fused from all cameras
    in the world frame, robot pixels removed, cropped to the workspace inside the walls,
    deterministically downsampled to ``num_scene_points`` (block points get up to
    ``block_point_fraction`` of them); and ``gripper_points`` (Nr,3): surface samples of the
    hand and finger links placed by URDF forward kinematics of the simulated joints.
    ``"all"``: the keys of ``rgbd`` and ``pointcloud``.

    **Reward.** coverage = area(goal T intersect block T) / area(goal T) on the exact
    polygons; reward = clip(coverage / 0.95, 0, 1); ``terminated`` when coverage > 0.95.
    Truncated at 300 steps by the registered ``TimeLimit``.

    **Info** every step: ``coverage``, ``is_success`` (> 0.95), ``is_success_090`` (>= 0.90),
    ``block_pose``, ``block_com_pose``, ``block_pose7`` (x, y, z, qw, qx, qy, qz),
    ``object_points`` (K,3: the same K surface points of the T every step, exact tracks),
    ``goal_object_points`` (K,3 at the goal pose); with cameras also
    ``object_points_visible`` (K bool, z-buffer test).

    **Reset.** Through ``self.np_random``: ``start="full"``: fingertip xy ~ U([-0.33, 0.33]^2),
    block xy ~ U([-0.25, 0.25]^2), yaw ~ U(-pi, pi), the fingertip resampled while within
    0.03 m of the footprint; ``start="near_goal"``: block within 0.05 m and +-30 deg of the
    goal. ``reset(options={"block_pose": (x, y, yaw), "ee_xy": (x, y)})`` starts from a
    given state (either key may be given alone): the block's footprint must lie inside the
    walls, ``ee_xy`` in the action box, and the fingers must not overlap the block, else
    ValueError. ``step`` before the first ``reset`` raises gymnasium's ``ResetNeeded``, and
    ``reset``, ``step``, ``render``, ``get_state`` or ``set_state`` after ``close`` its
    ``ClosedEnvironmentError``.

    **Arguments.** ``obs_mode``, ``robot`` ("panda", "panda_hand"), ``backend`` ("mujoco", "pybullet"),
    ``action_mode``, ``start``, ``render_mode`` ("rgb_array", "depth_array", "rgbd_tuple":
    all cameras side by side), ``image_size`` (int or (W, H), default 96, at most 2048),
    ``num_cameras`` (2), ``num_scene_points`` (1024; with a point cloud at most the distinct
    points the cameras see of the workspace, `envs.pointcloud.PointCloudFuser.capacity`),
    ``num_gripper_points`` (256), ``num_object_points`` (256; point counts at most 1e6),
    ``block_point_fraction`` (0.25, in [0, 1]), ``friction`` (0.5, in (0, 10]),
    ``max_speed`` (0.5 m/s, in (0, 0.75]: a faster hand throws the block into the walls faster than
    their contacts stop it within half their 0.02 m thickness), ``seed_points`` (seed of the gripper
    and block surface samples, >= 0),
    ``block_material`` ("rigid", default; "jelly", "plasticine", "sand": an MPM block, see
    `envs.deformable_env.DeformablePushT4DEnv`, which ``gym.make("PushT4D-v0", ...)`` then builds
    (`envs.make_pusht4d`), with its own arguments ``block_youngs_modulus``,
    ``block_particle_spacing``, ...; this class itself builds only the rigid block).

    **Version History.**
    ``v0`` (current): the robot stops pushing for the rest of a control step once the block pushes
    back with more than 100 N (a block jammed against a wall; free pushes unchanged), ``max_speed``
    at most 0.75 m/s, bad actions, kwargs and reset options refused; the registered entry point
    (`envs.make_pusht4d`) picks the rigid or the MPM class. Earlier revisions of ``v0`` let a jammed
    block be squeezed into (PyBullet: levered over) a wall and accepted any speed.
    """

    metadata = {"render_modes": list(RENDER_MODES), "render_fps": CONTROL_HZ}
    BUILDS_MATERIALS = ("rigid",)  # the block materials this class builds (`envs.make_pusht4d` picks the class)

    def __init__(
        self,
        obs_mode: str = "pointcloud",
        robot: str = "panda",
        backend: str = "mujoco",
        action_mode: str = "absolute",
        start: str = "full",
        render_mode: str | None = None,
        image_size: int | tuple[int, int] = 96,
        num_cameras: int = 2,
        num_scene_points: int = 1024,
        num_gripper_points: int = 256,
        num_object_points: int = 256,
        block_point_fraction: float = 0.25,
        friction: float = 0.5,
        max_speed: float = 0.5,
        seed_points: int = 0,
        block_material: str = "rigid",
        block_youngs_modulus: float | None = None,
    ):
        self.obs_mode = choice("obs_mode", obs_mode, OBS_MODES)
        self.robot_name = choice("robot", robot, ROBOTS)
        self.backend_name = choice("backend", backend, BACKENDS)
        self.action_mode = choice("action_mode", action_mode, ACTION_MODES)
        self.start = choice("start", start, STARTS)
        self.block_material = choice("block_material", block_material, BLOCK_MATERIALS)
        if block_material not in self.BUILDS_MATERIALS:
            raise ValueError(f"{type(self).__name__} builds block_material in {self.BUILDS_MATERIALS}, got "
                             f"{block_material!r}: gym.make('PushT4D-v0', block_material=...) picks the class")
        if block_material == "rigid" and block_youngs_modulus is not None:
            raise ValueError(f"block_youngs_modulus applies to deformable blocks {BLOCK_MATERIALS[1:]}, not 'rigid'")
        if render_mode is not None:
            choice("render_mode", render_mode, RENDER_MODES)
        self.render_mode = render_mode
        w, h = image_size_pair(image_size)
        num_cameras = positive_int("num_cameras", num_cameras)
        self.num_scene_points = positive_int("num_scene_points", num_scene_points, MAX_POINTS)
        num_gripper_points = positive_int("num_gripper_points", num_gripper_points, MAX_POINTS)
        self.num_object_points = positive_int("num_object_points", num_object_points, MAX_POINTS)
        block_point_fraction = fraction("block_point_fraction", block_point_fraction)
        friction = positive_float("friction", friction, MAX_FRICTION)
        max_speed = positive_float("max_speed", max_speed, MAX_SPEED, " m/s")
        seed_points = nonnegative_int("seed_points", seed_points)
        self.cameras = orbit_cameras(num_cameras, w, h)
        half = geo.WORKSPACE / 2 - 5e-4
        self.fuser = PointCloudFuser(
            self.cameras, self.num_scene_points, np.array([-half, -half, -0.005]), np.array([half, half, 0.1]),
            object_fraction=block_point_fraction,
        )
        if self.obs_mode in ("pointcloud", "all"):
            self.fuser.require_capacity()  # before any engine is started: a refused env leaves nothing open
        self.robot = make_robot(self.robot_name, max_speed=max_speed)
        self.sim = make_backend(self.backend_name, self._make_scene(friction))
        self.gripper = GripperPoints(self.robot.desc, DEFAULT_GRIPPER_LINKS, num_gripper_points, seed=seed_points)
        self.object_local, _ = geo.surface_points(self.num_object_points, seed_points)
        self.goal_object_points = geo.transform_points(
            pose_matrix(geo.pose7_from_pose3(geo.GOAL_POSE)), self.object_local
        ).astype(np.float32)
        self.uses_cameras = self.obs_mode != "state"
        half_ws = geo.WORKSPACE / 2
        if self.action_mode == "absolute":
            self.action_space = spaces.Box(-half_ws, half_ws, shape=(2,), dtype=np.float32)
        else:
            self.action_space = spaces.Box(-MAX_DELTA, MAX_DELTA, shape=(2,), dtype=np.float32)
        self.observation_space = self._make_observation_space(num_cameras, h, w, num_gripper_points)
        self._frames = None
        self._last_target = np.zeros(2)
        self._elapsed: int | None = None  # None until the first reset
        self._closed = False
        self._finger_outline = self.robot.finger_outline(geo.HEIGHT)

    def _make_scene(self, friction: float) -> Scene:
        """The rigid backend's scene (table, walls, T block, robot, cameras)."""
        return make_scene(self.robot, self.cameras, friction=friction)

    # ------------------------------------------------------------------ spaces
    def _make_observation_space(self, V: int, H: int, W: int, Nr: int) -> spaces.Dict:
        f32, inf = np.float32, np.inf
        D = len(self.sim.robot_qpos())
        d = {
            "agent_pos": spaces.Box(-1.0, 1.0, (2,), f32),
            "block_pose": spaces.Box(np.array([-1, -1, -np.pi], f32), np.array([1, 1, np.pi], f32), dtype=f32),
            "qpos": spaces.Box(-inf, inf, (D,), f32),
        }
        d.update(sensor_spaces(self.obs_mode, V, H, W, self.num_scene_points, Nr))
        return spaces.Dict(d)

    # ------------------------------------------------------------------- reset
    def _sample_block_pose(self) -> np.ndarray:
        rng = self.np_random
        if self.start == "near_goal":
            r, a = 0.05 * np.sqrt(rng.random()), rng.uniform(-np.pi, np.pi)
            gx, gy, gyaw = geo.GOAL_POSE
            yaw = geo.wrap_angle(gyaw + rng.uniform(-1, 1) * np.pi / 6)
            return np.array([gx + r * np.cos(a), gy + r * np.sin(a), yaw])
        return np.array([*rng.uniform(-BLOCK_RESET_RANGE, BLOCK_RESET_RANGE, 2), rng.uniform(-np.pi, np.pi)])

    def _sample_ee(self, block_pose: np.ndarray) -> np.ndarray:
        for _ in range(1000):
            ee = self.np_random.uniform(-EE_RESET_RANGE, EE_RESET_RANGE, 2)
            if geo.distance_to_footprint(block_pose, ee) >= EE_CLEARANCE:
                return ee
        raise RuntimeError("could not place the end effector away from the block")

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        """Start an episode (see the class docstring for the start distributions and ``options``)."""
        self._require_open()
        options = reset_options(options, RESET_OPTIONS)
        block, ee = option_vector(options, "block_pose", 3), option_vector(options, "ee_xy", 2)
        if block is not None:
            self._check_block_pose(block)
        if ee is not None:
            self._check_ee_xy(ee, block)
        super().reset(seed=seed)
        if block is None:
            block = self._sample_block_pose()
            while ee is not None and self._fingers_overlap(ee, block):  # a given hand: draw the block clear of it
                block = self._sample_block_pose()
        ee = self._sample_ee(block) if ee is None else ee
        self._reset_sim(block, ee)
        self._last_target = ee.copy()
        self._elapsed = 0
        obs, info = self._observe()
        return obs, info

    @staticmethod
    def _check_block_pose(block: np.ndarray) -> None:
        """ValueError unless the block's footprint at planar pose ``block`` lies inside the walls."""
        reach = float(np.abs(geo.footprint_at(block).exterior.coords).max())
        if reach > geo.WORKSPACE / 2 + 1e-9:
            raise ValueError(f"options['block_pose'] {block.tolist()} puts the T block {reach - geo.WORKSPACE / 2:.4g} "
                             f"m past a wall; allowed: poses whose footprint lies within |x|, |y| <= "
                             f"{geo.WORKSPACE / 2} m")

    def _check_ee_xy(self, ee: np.ndarray, block: np.ndarray | None) -> None:
        """ValueError unless ``ee`` lies in the action box and (with ``block``) the fingers clear the block."""
        half = geo.WORKSPACE / 2
        if np.any(np.abs(ee) > half):
            raise ValueError(f"options['ee_xy'] must lie within |x|, |y| <= {half} m, got {ee.tolist()}")
        if block is not None and self._fingers_overlap(ee, block):
            raise ValueError(f"options['ee_xy'] {ee.tolist()} puts the fingers inside the block at "
                             f"{block.tolist()}; allowed: fingertips clear of the block's footprint")

    def _fingers_overlap(self, ee: np.ndarray, block: np.ndarray) -> bool:
        """Whether the fingers (their outline below the block's top) at ``ee`` overlap the block at ``block``."""
        if len(self._finger_outline) == 0:
            return False
        return bool(shapely.polygons(self._finger_outline + ee).intersects(geo.footprint_at(block)))

    def _require_open(self) -> None:
        if self._closed:
            raise ClosedEnvironmentError(f"{type(self).__name__} is closed; make a new env")

    def _reset_sim(self, block_pose: np.ndarray, ee_xy: np.ndarray) -> None:
        """Place the block at planar pose ``block_pose`` and the fingertips at ``ee_xy``, at rest."""
        self.sim.reset(geo.pose7_from_pose3(block_pose), ee_xy)

    # -------------------------------------------------------------------- step
    def _check_action(self, action) -> np.ndarray:
        return checked_action(action, self.action_space, "xy in metres")

    def step(self, action):
        """Advance one control period (0.1 s) toward the action's fingertip target."""
        self._require_open()
        if self._elapsed is None:
            raise ResetNeeded("call reset() before step()")
        a = self._check_action(action)
        if self.action_mode == "delta":
            half = geo.WORKSPACE / 2
            a = np.clip(self.sim.tcp_xy() + a, -half, half)
        self._last_target = a
        self._step_sim(a)
        self._elapsed += 1
        obs, info = self._observe()
        reward = float(np.clip(info["coverage"] / geo.SUCCESS_COVERAGE, 0.0, 1.0))
        return obs, reward, bool(info["is_success"]), False, info

    def _step_sim(self, target: np.ndarray) -> None:
        """Simulate one control period toward the fingertip ``target``."""
        self.sim.step(target)

    # ------------------------------------------------------------- observation
    def _block_state(self) -> tuple[np.ndarray, np.ndarray, float, np.ndarray]:
        """The block's pose7, planar pose, coverage and object points (K, 3) float32."""
        pose7 = self.sim.body_pose7()
        T = pose_matrix(pose7)
        pose3 = geo.pose3_from_pose7(pose7, T[:3, :3])
        return pose7, pose3, geo.coverage(pose3), geo.transform_points(T, self.object_local).astype(np.float32)

    def _render_frames(self) -> Frames:
        """RGB-D and segmentation frames of every camera."""
        return self.sim.render()

    def _observe(self) -> tuple[dict, dict]:
        pose7, pose3, cov, object_points = self._block_state()
        qpos = self.sim.robot_qpos()
        obs = {
            "agent_pos": self.sim.tcp_xy().astype(np.float32),
            "block_pose": pose3.astype(np.float32),
            "qpos": qpos.astype(np.float32),
        }
        info = {
            "coverage": cov,
            "is_success": cov > geo.SUCCESS_COVERAGE,
            "is_success_090": cov >= 0.90,
            "block_pose": pose3,
            "block_com_pose": geo.com_pose(pose3),
            "block_pose7": pose7,
            "object_points": object_points,
            "goal_object_points": self.goal_object_points.copy(),
        }
        self._frames = None
        if self.uses_cameras:
            f = self._frames = self._render_frames()
            info["object_points_visible"] = self.fuser.visible(object_points, f.depth, f.segmentation, LABEL_OBJECT)
            if self.obs_mode in ("rgbd", "all"):
                obs.update(
                    rgb=f.rgb,
                    depth=f.depth,
                    segmentation=f.segmentation,
                    intrinsics=np.stack([c.intrinsics for c in self.cameras]).astype(np.float32),
                    cam2world=np.stack([c.cam2world for c in self.cameras]).astype(np.float32),
                )
            if self.obs_mode in ("pointcloud", "all"):
                cloud = self.fuser.fuse(f.rgb, f.depth, f.segmentation)
                obs.update(
                    scene_points=cloud.points,
                    scene_colors=cloud.colors,
                    scene_normals=cloud.normals,
                    scene_labels=cloud.labels,
                    gripper_points=self.gripper_points(qpos).astype(np.float32),
                )
        return obs, info

    def gripper_points(self, qpos: np.ndarray | None = None) -> np.ndarray:
        """Gripper surface points (Nr, 3) in the world for robot joints ``qpos`` (default: the current ones)."""
        qpos = self.sim.robot_qpos() if qpos is None else qpos
        return self.gripper.place(self.robot.link_poses(qpos, self.gripper.links))[0]

    # ----------------------------------------------------------- state / render
    def get_state(self):
        """Snapshot of the full simulation state (for planners); restore with `set_state`."""
        self._require_open()
        return (self.sim.get_state(), self._last_target.copy(), self._elapsed)

    def set_state(self, state) -> None:
        """Restore a `get_state` snapshot."""
        self._require_open()
        sim_state, target, elapsed = state
        self.sim.set_state(sim_state)
        self._last_target, self._elapsed = target.copy(), elapsed

    def render(self):
        """All cameras side by side: RGB (H, V*W, 3) uint8, depth (H, V*W) metres, or both."""
        self._require_open()
        if self.render_mode is None:
            gym.logger.warn("render() called without a render_mode; pass render_mode='rgb_array'")
            return None
        return side_by_side(self._frames if self._frames is not None else self._render_frames(), self.render_mode)

    def close(self) -> None:
        """Release the engine and rendering resources; the env cannot be used afterwards (closing twice is fine)."""
        self._closed = True
        self.sim.close()
