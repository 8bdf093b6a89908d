"""PushT4D-v0: the Push-T task in 3D with a URDF robot, RGB-D, fused point clouds and exact point flow."""

from __future__ import annotations

import numpy as np

from physics.rigid import Scene

from ..checks import choice, fraction
from ..push.env import EE_CLEARANCE, MATERIALS, Push4DEnv
from ..robot_setup import ROBOTS, RobotSetup, make_robot
from . import geometry as geo
from .scene import make_scene

BLOCK_MATERIALS = MATERIALS  # all but "rigid" are MPM blocks (envs.pusht.deformable)
SUCCESS_090 = 0.90  # coverage of the looser success flag is_success_090


class PushT4DEnv(Push4DEnv):
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
    POSE_KEY = "block_pose"
    KEEP_INSIDE_WALLS = False  # PushT4D-v0's start distribution: the T may start reaching into a wall

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
        self.robot_variant = choice("robot", robot, ROBOTS)
        self.block_material = choice("block_material", block_material, BLOCK_MATERIALS)
        if block_material not in self.BUILDS_MATERIALS:
            raise ValueError(f"{type(self).__name__} builds block_material in {self.BUILDS_MATERIALS}, got "
                             f"{block_material!r}: gym.make('PushT4D-v0', block_material=...) picks the class")
        if block_material == "rigid" and block_youngs_modulus is not None:
            raise ValueError(f"block_youngs_modulus applies to deformable blocks {BLOCK_MATERIALS[1:]}, not 'rigid'")
        super().__init__(
            obs_mode=obs_mode, object="T", robot="panda" if robot == "panda" else None, goal_pose=geo.GOAL_POSE,
            start=start, backend=backend, action_mode=action_mode, render_mode=render_mode, image_size=image_size,
            num_cameras=num_cameras, num_scene_points=num_scene_points, num_gripper_points=num_gripper_points,
            num_object_points=num_object_points, object_point_fraction=fraction("block_point_fraction",
                                                                                block_point_fraction),
            friction=friction, max_speed=max_speed, seed_points=seed_points, render_size=render_size,
        )
        self.robot_name = self.robot_variant

    # ------------------------------------------------------------------ scene
    def _make_robot(self) -> RobotSetup:
        return make_robot(self.robot_variant, max_speed=self.max_speed)

    def _make_scene(self, friction: float) -> Scene:
        """The rigid backend's scene (table, walls, the T block on its pads, robot, cameras)."""
        return make_scene(self.robot, self.cameras, friction=friction)

    def _rest_z(self) -> float:
        return geo.PAD_CLEARANCE

    def _ee_clear(self, ee: np.ndarray, pose: np.ndarray, footprint) -> bool:
        return geo.distance_to_footprint(pose, ee) >= EE_CLEARANCE

    # ------------------------------------------------------------ observation
    def coverage(self, pose3: np.ndarray) -> float:
        """Coverage of the goal T by the block at planar pose ``pose3`` (exact polygons)."""
        return geo.coverage(pose3)

    def _observe_task(self) -> tuple[dict, dict]:
        pose7, pose3, cov, object_points = self._object_state()
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
