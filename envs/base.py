"""The task base of worldmodel4d's environments: what every task shares, written once.

`TaskEnv` owns the observation modes and their spaces, the cameras and the point-cloud
fusion, the gripper points, the render modes, the checks of actions and reset options,
the episode clock (``step`` before ``reset``, use after ``close``) and the shared ``info``
keys (``object_points``, ``object_points_visible``, ``is_success``; ``tracks``,
``track_visible`` and ``scene_track_ids`` where the object deforms). A task supplies its
scene, its episode initialisation and its evaluation, by overriding these hooks
(ManiSkill's ``BaseEnv`` / task split):

- ``_make_cameras(num, width, height)``, ``_crop_box()``: where its cameras look, what the fused
  cloud keeps; ``_load_scene()``: its physics (an engine, a modal object, an MPM block), built after
  the cheap argument checks so a refused env leaves nothing open.
- ``_gripper_source()``, ``_link_poses(links)``: the robot description whose links give the
  gripper points, and where those links are now.
- ``_target_bounds()``, ``_tool_position()``, ``_step_physics(target)``: the absolute action box
  (a delta action is added to the tool position and clipped to it) and one control period.
- ``_parse_reset_options(options)`` (before the RNG is seeded: a refused reset changes nothing),
  ``_initialize_episode(parsed)``.
- ``_state_spaces()``, ``_observe_task()``: the task's state keys and its info (with
  ``object_points``); ``_render_frames()``: RGB-D and segmentation of every camera;
  ``_render_cloud_frames()``: the same where only the fused cloud reads them (robot pixels need no colour);
  ``_render_views(cameras)``: the same of any cameras, with visual-only decorations (videos);
  ``_object_visibility(...)``/``_track_info(...)`` where the object's tracks are more than its points.
- ``_evaluate(info)`` -> (reward, terminated, truncated); ``_save_state``/``_restore_state``.

A task may move its cameras between episodes with ``_set_cameras(cameras)`` (the fused cloud, the
observations' extrinsics and ``render()``'s cameras follow; it moves its renderer's cameras itself).

The task's class docstring is its specification (spaces, reward, termination, arguments),
as in gymnasium's MuJoCo environments.

Render modes (``render_mode=``, every task): ``render()`` returns all cameras side by side:
``"rgb_array"`` RGB (H, V*W, 3) uint8, ``"depth_array"`` depth (H, V*W) float32 in metres (0 where
nothing is hit), ``"rgbd_tuple"`` both, ``"depth_rgb"`` the depth colour-mapped to RGB uint8
(`physics.render.colorize_depth`, turbo colours from red near to blue far over a range fixed at the
first render: for depth videos, e.g. ``gymnasium.wrappers.RecordVideo``). ``"human"`` streams every
reset and step to a rerun viewer window (`envs.human`; it needs a display and ``rerun-sdk``, and is
refused at construction, saying what to use instead, where either is missing); ``render()`` then
returns None. ``render_size`` (int or (W, H); default None) renders with separate cameras of that
size at the observation cameras' poses (same vertical field of view), which also draw the scene's
visual-only decorations (the gantry of the hanging Panda); observations never change with it. Without
it ``render()`` returns the observation cameras' own images (no extra rendering). ``render_views(cameras)``
renders any cameras (e.g. a top-down view for a video) at the current state the same way.
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces
from gymnasium.error import ClosedEnvironmentError, ResetNeeded
from scipy.spatial import cKDTree

from physics.render import LABEL_OBJECT, RENDER_MODES, Camera, Frames, depth_range, resized
from robots.control import CONTROL_HZ
from robots.gripper_points import GripperPoints
from robots.urdf import RobotDescription

from .checks import MAX_POINTS, checked_action, choice, image_size_pair, positive_int, reset_options
from .pointcloud import PointCloudFuser

OBS_MODES = ("state", "rgbd", "pointcloud", "all")
ACTION_MODES = ("absolute", "delta")
CAMERA_MODES = ("rgbd", "all")  # observation modes with images
CLOUD_MODES = ("pointcloud", "all")  # observation modes with fused point clouds and gripper points
MAX_DELTA = 0.03  # m: the largest step of a delta action along each axis (every task)
CROP_MARGIN = 5e-4  # m: the fused cloud's crop stays this far inside a workspace's walls or a table's edge


class TaskEnv(gym.Env):
    """Base of the package's tasks: sensors, observation modes, render modes, validation and the episode clock.

    A task's ``__init__`` checks its own arguments, sets what its hooks read and calls
    ``super().__init__(...)`` with the shared ones (see the module docstring for the hooks).
    """

    metadata = {"render_modes": list(RENDER_MODES), "render_fps": CONTROL_HZ}
    RESET_OPTIONS: tuple[str, ...] = ()  # the keys ``reset(options=...)`` accepts
    ACTION_MEANING = "targets in metres"  # how a bad action's error message names the action

    def __init__(
        self, *, obs_mode: str, action_mode: str, render_mode: str | None, image_size: int | tuple[int, int],
        num_cameras: int, num_scene_points: int, num_gripper_points: int, object_point_fraction: float,
        seed_points: int, render_size: int | tuple[int, int] | None = None,
    ):
        self.obs_mode = choice("obs_mode", obs_mode, OBS_MODES)
        self.action_mode = choice("action_mode", action_mode, ACTION_MODES)
        if render_mode is not None:
            choice("render_mode", render_mode, RENDER_MODES)
        self.render_mode = render_mode
        w, h = image_size_pair(image_size)
        view_size = None if render_size is None else image_size_pair(render_size, name="render_size")
        num_cameras = positive_int("num_cameras", num_cameras)
        self._human = None
        if render_mode == "human":
            from .human import HumanViewer

            self._human = HumanViewer(type(self).__name__)  # refused here (no display / no rerun-sdk), nothing open
        self.num_scene_points = positive_int("num_scene_points", num_scene_points, MAX_POINTS)
        num_gripper_points = positive_int("num_gripper_points", num_gripper_points, MAX_POINTS)
        self.uses_cameras = self.obs_mode != "state"
        self.cameras = self._make_cameras(num_cameras, w, h)
        # render() cameras: the observation cameras' poses at render_size (None: render() shows the observations')
        self._render_size = view_size
        self.render_cameras = None if view_size is None else tuple(
            resized(c, *view_size, name=f"{c.name}_render") for c in self.cameras)
        self._depth_colors: tuple[float, float] | None = None  # depth_rgb's colour range, fixed at the first render
        crop_min, crop_max = self._crop_box()
        self.fuser = PointCloudFuser(self.cameras, self.num_scene_points, crop_min, crop_max,
                                     object_fraction=object_point_fraction)
        if self.obs_mode in CLOUD_MODES:
            self.fuser.require_capacity()  # before any engine is started: a refused env leaves nothing open
        self._load_scene()
        desc, links = self._gripper_source()
        self.gripper = GripperPoints(desc, links, num_gripper_points, seed=seed_points)
        self._target_low, self._target_high = (np.asarray(b, dtype=float) for b in self._target_bounds())
        if self.action_mode == "absolute":
            self.action_space = spaces.Box(self._target_low.astype(np.float32), self._target_high.astype(np.float32),
                                           dtype=np.float32)
        else:
            self.action_space = spaces.Box(-MAX_DELTA, MAX_DELTA, shape=self._target_low.shape,
                                           dtype=np.float32)
        self.observation_space = spaces.Dict(
            {**self._state_spaces(), **self._sensor_spaces(num_cameras, h, w, num_gripper_points)})
        self._frames: Frames | None = None
        self._elapsed: int | None = None  # None until the first reset
        self._closed = False

    # ------------------------------------------------------------------ hooks
    def _make_cameras(self, num: int, width: int, height: int) -> tuple[Camera, ...]:
        """The task's ``num`` cameras of ``width`` x ``height`` pixels."""
        raise NotImplementedError

    def _crop_box(self) -> tuple[np.ndarray, np.ndarray]:
        """Lower and upper world corners (3,) of the region the fused point cloud keeps."""
        raise NotImplementedError

    def _load_scene(self) -> None:
        """Build the task's physics (engine, objects, robot)."""
        raise NotImplementedError

    def _gripper_source(self) -> tuple[RobotDescription, tuple[str, ...]]:
        """The robot description and the links whose surfaces are sampled as gripper points."""
        raise NotImplementedError

    def _link_poses(self, links: tuple[str, ...]) -> np.ndarray:
        """Current world poses (len(links), 4, 4) of the robot's ``links``."""
        raise NotImplementedError

    def _target_bounds(self) -> tuple[np.ndarray, np.ndarray]:
        """Lower and upper corners of the absolute action box (tool targets in metres)."""
        raise NotImplementedError

    def _tool_position(self) -> np.ndarray:
        """The tool's current position in action coordinates (a delta action is added to it)."""
        raise NotImplementedError

    def _step_physics(self, target: np.ndarray) -> None:
        """Simulate one control period toward the tool ``target`` (in the absolute action box)."""
        raise NotImplementedError

    def _parse_reset_options(self, options: dict[str, Any]) -> Any:
        """Check ``reset``'s ``options`` (keys already in ``RESET_OPTIONS``); ValueError if they cannot be used."""
        return options

    def _initialize_episode(self, parsed: Any) -> None:
        """Start an episode from the parsed options, drawing the rest through ``self.np_random``."""
        raise NotImplementedError

    def _state_spaces(self) -> dict[str, spaces.Space]:
        """Spaces of the task's state keys (every observation mode has them)."""
        raise NotImplementedError

    def _observe_task(self) -> tuple[dict, dict]:
        """The task's state observation and its info (with ``object_points`` (K, 3) float32 and ``is_success``)."""
        raise NotImplementedError

    def _render_frames(self) -> Frames:
        """RGB-D and segmentation frames of every camera at the current state."""
        raise NotImplementedError

    def _render_cloud_frames(self) -> Frames | None:
        """Frames that only the fused cloud and the visibility test read (``obs_mode="pointcloud"``): the robot's
        pixels need depth and label but no colour, so a task may draw them cheaper; ``render()`` then draws whole
        frames. None (the default): the task has no cheaper frames, `_render_frames` serves."""
        return None

    def _render_views(self, cameras: tuple[Camera, ...], decorations: bool = True) -> Frames:
        """Frames of any ``cameras`` (one image size) at the current state, with the scene's visual-only
        decorations unless ``decorations`` is False."""
        raise NotImplementedError

    def _evaluate(self, info: dict) -> tuple[float, bool, bool]:
        """The step's reward, whether the task ended (success) and whether it was cut short, from ``info``."""
        raise NotImplementedError

    def _save_state(self) -> tuple:
        """The task's part of a `get_state` snapshot (a tuple; the snapshot appends the elapsed steps)."""
        raise NotImplementedError

    def _restore_state(self, state: tuple) -> None:
        """Restore the task's part of a snapshot."""
        raise NotImplementedError

    def _object_visibility(self, info: dict, frames: Frames) -> np.ndarray:
        """Whether each of ``info['object_points']`` is seen by a camera (z-buffer test)."""
        return self.fuser.visible(info["object_points"], frames.depth, frames.segmentation, LABEL_OBJECT)

    def _track_info(self, obs: dict, info: dict) -> None:
        """Add the tracks of a deforming object to ``info`` (schema 2 keys); rigid tasks add nothing."""

    # ---------------------------------------------------------------- gym API
    def reset(self, *, seed: int | None = None, options: dict | None = None) -> tuple[dict, dict]:
        """Start an episode (the task's docstring gives the start distribution and ``options``)."""
        self._require_open()
        parsed = self._parse_reset_options(reset_options(options, self.RESET_OPTIONS))
        super().reset(seed=seed)
        self._initialize_episode(parsed)
        self._elapsed = 0
        return self._observe()

    def step(self, action: Any) -> tuple[dict, float, bool, bool, dict]:
        """Advance one control period toward the action's target (the task's docstring gives the action)."""
        self._require_open()
        if self._elapsed is None:
            raise ResetNeeded("call reset() before step()")
        a = checked_action(action, self.action_space, self.ACTION_MEANING)
        if self.action_mode == "delta":
            a = np.clip(self._tool_position() + a, self._target_low, self._target_high)
        self._step_physics(a)
        self._elapsed += 1
        obs, info = self._observe()
        reward, terminated, truncated = self._evaluate(info)
        return obs, reward, terminated, truncated, info

    def render(self) -> np.ndarray | tuple[np.ndarray, np.ndarray] | None:
        """All cameras side by side, as ``render_mode`` asks (the module docstring): RGB (H, V*W, 3) uint8,
        depth (H, V*W) metres, both, or colour-mapped depth; None for ``"human"`` (shown at every step)."""
        self._require_open()
        if self.render_mode is None:
            gym.logger.warn("render() called without a render_mode; pass render_mode='rgb_array'")
            return None
        if self.render_mode == "human":
            return None
        frames = self._display_frames()
        if self.render_mode == "depth_rgb" and self._depth_colors is None:
            self._depth_colors = depth_range(frames.depth)
        return frames.side_by_side(self.render_mode, self._depth_colors)

    def render_views(self, cameras: tuple[Camera, ...], decorations: bool = True) -> Frames:
        """`Frames` of any ``cameras`` (`physics.render.Camera`, one image size) at the current state, with the
        scene's visual-only decorations (the hanging Panda's gantry) unless ``decorations`` is False: for videos
        and figures (e.g. a top-down view); not an observation."""
        self._require_open()
        if not cameras:
            raise ValueError("render_views needs at least one camera")
        return self._render_views(tuple(cameras), decorations)

    def get_state(self) -> tuple:
        """Snapshot of the full state (for planners); restore with `set_state`."""
        self._require_open()
        return (*self._save_state(), self._elapsed)

    def set_state(self, state: tuple) -> None:
        """Restore a `get_state` snapshot."""
        self._require_open()
        *task_state, elapsed = state
        self._restore_state(tuple(task_state))
        self._elapsed = elapsed
        self._frames = None

    def close(self) -> None:
        """Release the engine and rendering resources; the env cannot be used afterwards (closing twice is fine)."""
        self._closed = True
        if getattr(self, "_human", None) is not None:
            self._human.close()

    def gripper_points(self) -> np.ndarray:
        """Gripper surface points (Nr, 3) in the world, placed by forward kinematics of the current joints."""
        return self.gripper.place_points(self._link_poses(self.gripper.links))

    # ------------------------------------------------------------ internals
    def _set_cameras(self, cameras: tuple[Camera, ...]) -> None:
        """Observe through ``cameras`` from now on (as many as before, the same image size; e.g. moved per episode):
        the fused cloud's rays and extrinsics, the observations' ``intrinsics`` and ``cam2world`` and ``render()``'s
        cameras (at ``render_size``) follow them. A task whose renderer keeps its own cameras overrides this to move
        those too, calling it."""
        cameras, old = tuple(cameras), self.cameras
        if len(cameras) != len(old) or any((c.width, c.height) != (old[0].width, old[0].height) for c in cameras):
            raise ValueError(f"_set_cameras needs {len(old)} cameras of {old[0].width}x{old[0].height} px, got "
                             f"{[(c.width, c.height) for c in cameras]}")
        self.cameras = cameras
        if self._render_size is not None:
            self.render_cameras = tuple(resized(c, *self._render_size, name=f"{c.name}_render") for c in cameras)
        f = self.fuser
        self.fuser = PointCloudFuser(cameras, f.num_points, f.crop_min, f.crop_max, object_fraction=f.object_fraction,
                                     voxel=f.voxel)
        self._frames = None

    def _display_frames(self) -> Frames:
        """What render() shows: the render cameras' frames, or the observation cameras' (rendered once per step)."""
        if self.render_cameras is not None:
            return self._render_views(self.render_cameras)
        if self._frames is None:
            self._frames = self._render_frames()
        return self._frames

    def _require_open(self) -> None:
        if self._closed:
            raise ClosedEnvironmentError(f"{type(self).__name__} is closed; make a new env")

    def _sensor_spaces(self, V: int, H: int, W: int, Nr: int) -> dict[str, spaces.Box]:
        """Spaces of the camera keys (modes ``rgbd``, ``all``) and the point-cloud keys (``pointcloud``, ``all``)."""
        f32, inf = np.float32, np.inf
        d: dict[str, spaces.Box] = {}
        if self.obs_mode in CAMERA_MODES:
            d.update(
                rgb=spaces.Box(0, 255, (V, H, W, 3), np.uint8),
                depth=spaces.Box(0.0, inf, (V, H, W), f32),
                segmentation=spaces.Box(0, 2, (V, H, W), np.int32),
                intrinsics=spaces.Box(-inf, inf, (V, 3, 3), f32),
                cam2world=spaces.Box(-inf, inf, (V, 4, 4), f32),
            )
        if self.obs_mode in CLOUD_MODES:
            N = self.num_scene_points
            d.update(
                scene_points=spaces.Box(-inf, inf, (N, 3), f32),
                scene_colors=spaces.Box(0.0, 1.0, (N, 3), f32),
                scene_normals=spaces.Box(-1.0, 1.0, (N, 3), f32),
                scene_labels=spaces.Box(0, 1, (N,), np.int32),
                gripper_points=spaces.Box(-inf, inf, (Nr, 3), f32),
            )
        return d

    def _observe(self) -> tuple[dict, dict]:
        """The observation of the current obs mode and the step's info."""
        obs, info = self._observe_task()
        self._frames = None
        if self.uses_cameras:
            f = self._render_cloud_frames() if self.obs_mode == "pointcloud" and self._human is None else None
            if f is None:  # whole frames: render() shows them
                f = self._frames = self._render_frames()
            info["object_points_visible"] = self._object_visibility(info, f)
            if self.obs_mode in CAMERA_MODES:
                obs.update(
                    rgb=f.rgb, depth=f.depth, segmentation=f.segmentation,
                    intrinsics=np.stack([c.intrinsics for c in self.cameras]).astype(np.float32),
                    cam2world=np.stack([c.cam2world for c in self.cameras]).astype(np.float32),
                )
            if self.obs_mode in CLOUD_MODES:
                cloud = self.fuser.fuse(f.rgb, f.depth, f.segmentation)
                obs.update(
                    scene_points=cloud.points, scene_colors=cloud.colors, scene_normals=cloud.normals,
                    scene_labels=cloud.labels, gripper_points=self.gripper_points().astype(np.float32),
                )
        self._track_info(obs, info)
        if self._human is not None:
            self._human.log(self._elapsed or 0, self._display_frames(), self.render_cameras or self.cameras, obs, info)
        return obs, info


def scene_track_ids(obs: dict, tracks: np.ndarray) -> np.ndarray:
    """The track each object-labelled scene point of ``obs`` shows (the nearest of ``tracks`` (P, 3)), -1 for
    static points; empty without a point cloud."""
    if "scene_points" not in obs:
        return np.zeros(0, dtype=np.int32)
    ids = np.full(len(obs["scene_points"]), -1, dtype=np.int32)
    on = np.flatnonzero(obs["scene_labels"] == LABEL_OBJECT)
    if len(on):
        ids[on] = cKDTree(np.asarray(tracks, dtype=np.float64)).query(obs["scene_points"][on].astype(np.float64))[1]
    return ids
