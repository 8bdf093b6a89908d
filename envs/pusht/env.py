"""PushT4D-v0: the Push-T task in 3D with a URDF robot, RGB-D, fused point clouds and exact point flow."""

from __future__ import annotations

import numpy as np
import shapely
from gymnasium import spaces

from physics.render import Camera, Frames, orbit_cameras
from physics.rigid import BACKENDS, Scene, make_backend
from robots.gripper_points import DEFAULT_GRIPPER_LINKS
from robots.transforms import pose_matrix
from robots.urdf import RobotDescription

from ..base import CROP_MARGIN, TaskEnv
from ..checks import MAX_POINTS, choice, fraction, nonnegative_int, option_vector, positive_float, positive_int
from ..robot_setup import MAX_SPEED, ROBOTS, make_robot
from . import geometry as geo
from .scene import make_scene

STARTS = ("full", "near_goal")
BLOCK_MATERIALS = ("rigid", "jelly", "plasticine", "sand")  # all but "rigid" are MPM blocks (envs.pusht.deformable)
EE_RESET_RANGE = 0.33  # m: full start, fingertips xy ~ U([-0.33, 0.33]^2)
BLOCK_RESET_RANGE = 0.25  # m: full start, block xy ~ U([-0.25, 0.25]^2)
EE_CLEARANCE = 0.03  # m: the fingertips start at least this far from the block's footprint
NEAR_GOAL_RADIUS = 0.05  # m: near_goal start, the block within this distance of the goal ...
NEAR_GOAL_YAW = np.pi / 6  # rad: ... and this far from the goal's yaw
MAX_RESET_DRAWS = 1000  # draws of the fingertips before a reset gives up
CROP_TOP = 0.1  # m: the fused cloud keeps points up to this height
CROP_BOTTOM = -0.005  # m: ... and down to just below the table top
MAX_FRICTION = 10.0  # beyond any real pair of materials (most are below 1.5); keeps the contact solvers finite
SUCCESS_090 = 0.90  # coverage of the looser success flag is_success_090


class PushT4DEnv(TaskEnv):
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

    **Rendering.** ``render()`` shows all cameras side by side (`envs.base` gives the render modes):
    ``render_mode="rgb_array"`` RGB, ``"depth_array"`` depth in metres, ``"rgbd_tuple"`` both,
    ``"depth_rgb"`` colour-mapped depth (for depth videos), ``"human"`` a live rerun viewer (needs a display
    and ``rerun-sdk``; refused with what to use instead where missing). ``render_size`` renders with separate
    cameras of that size at the observation cameras' poses, which also draw the overhead gantry carrying
    ``robot="panda"`` (visual only: no collision, no mass; the observation cameras never see it).
    ``render_views(cameras)`` renders any cameras the same way. Videos:
    ``gymnasium.wrappers.RecordVideo(gym.make("PushT4D-v0", render_mode="rgb_array", render_size=480), folder)``.

    **Arguments.** ``obs_mode``, ``robot`` ("panda", "panda_hand"), ``backend`` ("mujoco", "pybullet"),
    ``action_mode``, ``start``, ``render_mode`` ("rgb_array", "depth_array", "rgbd_tuple", "depth_rgb",
    "human"), ``render_size`` (None: the observation cameras; int or (W, H), at most 2048),
    ``image_size`` (int or (W, H), default 96, at most 2048),
    ``num_cameras`` (2), ``num_scene_points`` (1024; with a point cloud at most the distinct
    points the cameras see of the workspace, `envs.pointcloud.PointCloudFuser.capacity`),
    ``num_gripper_points`` (256), ``num_object_points`` (256; point counts at most 1e6),
    ``block_point_fraction`` (0.25, in [0, 1]), ``friction`` (0.5, in (0, 10]),
    ``max_speed`` (0.5 m/s, in (0, 0.75]: a faster hand throws the block into the walls faster than
    their contacts stop it within half their 0.02 m thickness), ``seed_points`` (seed of the gripper
    and block surface samples, >= 0),
    ``block_material`` ("rigid", default; "jelly", "plasticine", "sand": an MPM block, see
    `envs.pusht.deformable.DeformablePushT4DEnv`, which ``gym.make("PushT4D-v0", ...)`` then builds
    (`envs.pusht.make_pusht4d`), with its own arguments ``block_youngs_modulus``,
    ``block_particle_spacing``, ...; this class itself builds only the rigid block).

    **Version History.**
    ``v0`` (current): the robot stops pushing for the rest of a control step once the block pushes
    back with more than 100 N (a block jammed against a wall; free pushes unchanged), ``max_speed``
    at most 0.75 m/s, bad actions, kwargs and reset options refused; the registered entry point
    (`envs.pusht.make_pusht4d`) picks the rigid or the MPM class. Earlier revisions of ``v0`` let a jammed
    block be squeezed into (PyBullet: levered over) a wall and accepted any speed. Built on the task base
    `envs.base.TaskEnv` (trajectories unchanged).
    """


    BUILDS_MATERIALS = ("rigid",)  # the block materials this class builds (`envs.pusht.make_pusht4d` picks the class)
    RESET_OPTIONS = ("block_pose", "ee_xy")
    ACTION_MEANING = "xy in metres"

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
        render_size: int | tuple[int, int] | None = None,
    ):
        self.robot_name = choice("robot", robot, ROBOTS)
        self.backend_name = choice("backend", backend, BACKENDS)
        self.start = choice("start", start, STARTS)
        self.block_material = choice("block_material", block_material, BLOCK_MATERIALS)
        if block_material not in self.BUILDS_MATERIALS:
            raise ValueError(f"{type(self).__name__} builds block_material in {self.BUILDS_MATERIALS}, got "
                             f"{block_material!r}: gym.make('PushT4D-v0', block_material=...) picks the class")
        if block_material == "rigid" and block_youngs_modulus is not None:
            raise ValueError(f"block_youngs_modulus applies to deformable blocks {BLOCK_MATERIALS[1:]}, not 'rigid'")
        self.num_object_points = positive_int("num_object_points", num_object_points, MAX_POINTS)
        self.friction = positive_float("friction", friction, MAX_FRICTION)
        self.max_speed = positive_float("max_speed", max_speed, MAX_SPEED, " m/s")
        seed_points = nonnegative_int("seed_points", seed_points)
        self.object_local, _ = geo.surface_points(self.num_object_points, seed_points)
        self.goal_object_points = geo.transform_points(
            pose_matrix(geo.pose7_from_pose3(geo.GOAL_POSE)), self.object_local
        ).astype(np.float32)
        self._last_target = np.zeros(2)
        super().__init__(
            obs_mode=obs_mode, action_mode=action_mode, render_mode=render_mode, image_size=image_size,
            num_cameras=num_cameras, num_scene_points=num_scene_points, num_gripper_points=num_gripper_points,
            object_point_fraction=fraction("block_point_fraction", block_point_fraction), seed_points=seed_points,
            render_size=render_size,
        )
        self._finger_outline = self.robot.finger_outline(geo.HEIGHT)

    # ------------------------------------------------------------------ scene
    def _make_cameras(self, num: int, width: int, height: int) -> tuple[Camera, ...]:
        return orbit_cameras(num, width, height)

    def _crop_box(self) -> tuple[np.ndarray, np.ndarray]:
        half = geo.WORKSPACE / 2 - CROP_MARGIN
        return np.array([-half, -half, CROP_BOTTOM]), np.array([half, half, CROP_TOP])

    def _load_scene(self) -> None:
        self.robot = make_robot(self.robot_name, max_speed=self.max_speed)
        self.sim = make_backend(self.backend_name, self._make_scene(self.friction))

    def _make_scene(self, friction: float) -> Scene:
        """The rigid backend's scene (table, walls, T block, robot, cameras)."""
        return make_scene(self.robot, self.cameras, friction=friction)

    def _gripper_source(self) -> tuple[RobotDescription, tuple[str, ...]]:
        return self.robot.desc, DEFAULT_GRIPPER_LINKS

    def _link_poses(self, links: tuple[str, ...]) -> np.ndarray:
        return self.robot.link_poses(self.sim.robot_qpos(), links)

    def _target_bounds(self) -> tuple[np.ndarray, np.ndarray]:
        half = geo.WORKSPACE / 2
        return np.full(2, -half), np.full(2, half)

    def _state_spaces(self) -> dict[str, spaces.Space]:
        f32 = np.float32
        return {
            "agent_pos": spaces.Box(-1.0, 1.0, (2,), f32),
            "block_pose": spaces.Box(np.array([-1, -1, -np.pi], f32), np.array([1, 1, np.pi], f32), dtype=f32),
            "qpos": spaces.Box(-np.inf, np.inf, (len(self.sim.robot_qpos()),), f32),
        }

    # ------------------------------------------------------------------ reset
    def _sample_block_pose(self) -> np.ndarray:
        rng = self.np_random
        if self.start == "near_goal":
            r, a = NEAR_GOAL_RADIUS * np.sqrt(rng.random()), rng.uniform(-np.pi, np.pi)
            gx, gy, gyaw = geo.GOAL_POSE
            yaw = geo.wrap_angle(gyaw + rng.uniform(-1, 1) * NEAR_GOAL_YAW)
            return np.array([gx + r * np.cos(a), gy + r * np.sin(a), yaw])
        return np.array([*rng.uniform(-BLOCK_RESET_RANGE, BLOCK_RESET_RANGE, 2), rng.uniform(-np.pi, np.pi)])

    def _sample_ee(self, block_pose: np.ndarray) -> np.ndarray:
        for _ in range(MAX_RESET_DRAWS):
            ee = self.np_random.uniform(-EE_RESET_RANGE, EE_RESET_RANGE, 2)
            if geo.distance_to_footprint(block_pose, ee) >= EE_CLEARANCE:
                return ee
        raise RuntimeError("could not place the end effector away from the block")

    def _parse_reset_options(self, options: dict) -> tuple[np.ndarray | None, np.ndarray | None]:
        block, ee = option_vector(options, "block_pose", 3), option_vector(options, "ee_xy", 2)
        if block is not None:
            self._check_block_pose(block)
        if ee is not None:
            self._check_ee_xy(ee, block)
        return block, ee

    def _initialize_episode(self, parsed: tuple[np.ndarray | None, np.ndarray | None]) -> None:
        block, ee = parsed
        if block is None:
            block = self._sample_block_pose()
            while ee is not None and self._fingers_overlap(ee, block):  # a given hand: draw the block clear of it
                block = self._sample_block_pose()
        ee = self._sample_ee(block) if ee is None else ee
        self._reset_sim(block, ee)
        self._last_target = ee.copy()

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

    def _reset_sim(self, block_pose: np.ndarray, ee_xy: np.ndarray) -> None:
        """Place the block at planar pose ``block_pose`` and the fingertips at ``ee_xy``, at rest."""
        self.sim.reset(geo.pose7_from_pose3(block_pose), ee_xy)

    # ------------------------------------------------------------------- step
    def _tool_position(self) -> np.ndarray:
        return self.sim.tcp_xy()

    def _step_physics(self, target: np.ndarray) -> None:
        self._last_target = target
        self.sim.step(target)

    def _evaluate(self, info: dict) -> tuple[float, bool, bool]:
        reward = float(np.clip(info["coverage"] / geo.SUCCESS_COVERAGE, 0.0, 1.0))
        return reward, bool(info["is_success"]), False

    # ------------------------------------------------------------ observation
    def _block_state(self) -> tuple[np.ndarray, np.ndarray, float, np.ndarray]:
        """The block's pose7, planar pose, coverage and object points (K, 3) float32."""
        pose7 = self.sim.body_pose7()
        T = pose_matrix(pose7)
        pose3 = geo.pose3_from_pose7(pose7, T[:3, :3])
        return pose7, pose3, geo.coverage(pose3), geo.transform_points(T, self.object_local).astype(np.float32)

    def _render_frames(self) -> Frames:
        return self.sim.render()

    def _render_views(self, cameras: tuple[Camera, ...], decorations: bool = True) -> Frames:
        return self.sim.render_views(cameras, decorations)

    def _observe_task(self) -> tuple[dict, dict]:
        pose7, pose3, cov, object_points = self._block_state()
        obs = {
            "agent_pos": self.sim.tcp_xy().astype(np.float32),
            "block_pose": pose3.astype(np.float32),
            "qpos": self.sim.robot_qpos().astype(np.float32),
        }
        info = {
            "coverage": cov,
            "is_success": cov > geo.SUCCESS_COVERAGE,
            "is_success_090": cov >= SUCCESS_090,
            "block_pose": pose3,
            "block_com_pose": geo.com_pose(pose3),
            "block_pose7": pose7,
            "object_points": object_points,
            "goal_object_points": self.goal_object_points.copy(),
        }
        return obs, info

    # ------------------------------------------------------------------ state
    def _save_state(self) -> tuple:
        return self.sim.get_state(), self._last_target.copy()

    def _restore_state(self, state: tuple) -> None:
        sim_state, target = state
        self.sim.set_state(sim_state)
        self._last_target = target.copy()

    def close(self) -> None:
        """Release the engine and rendering resources; the env cannot be used afterwards (closing twice is fine)."""
        super().close()
        self.sim.close()
