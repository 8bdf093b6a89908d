"""Render modes, render cameras and videos: what render() shows never changes what the agent observes or the
simulation, videos are written for every task, and ``render_mode="human"`` says what to do without a display."""

import sys

import gymnasium as gym
import imageio.v2 as imageio
import numpy as np
import pytest

import envs  # noqa: F401
from envs.robot_setup import BRIDGE_RGBA
from physics.render import colorize_depth, look_at, pinhole

TOP = pinhole("top", look_at([0.0, 0.0, 2.6], [0.0, 0.0, 0.0], up=(0, 1, 0)), 160, 120, 45.0)


@pytest.mark.parametrize("backend", ["mujoco", "pybullet"])
def test_render_cameras_and_the_gantry_leave_observations_and_simulation_unchanged(backend):
    plain = gym.make("PushT4D-v0", backend=backend, obs_mode="rgbd", max_episode_steps=6)
    shown = gym.make("PushT4D-v0", backend=backend, obs_mode="rgbd", max_episode_steps=6, render_mode="rgb_array",
                     render_size=(160, 120))
    a, _ = plain.reset(seed=3)
    b, _ = shown.reset(seed=3)
    actions = np.random.default_rng(0).uniform(-0.3, 0.3, (5, 2)).astype(np.float32)
    for action in actions:
        frame = shown.render()
        assert frame.shape == (120, 320, 3) and frame.dtype == np.uint8
        top = shown.unwrapped.render_views((TOP,))
        for key in a:
            np.testing.assert_array_equal(a[key], b[key], err_msg=key)
        a, b = plain.step(action)[0], shown.step(action)[0]
    # the overhead gantry is drawn in the render views (its bridge seen from above), never in observations
    bridge = np.all(np.abs(top.rgb[0].astype(int) - np.array(BRIDGE_RGBA[:3]) * 255) < 60, axis=-1)
    assert bridge.sum() > 50
    assert not np.all(np.abs(b["rgb"].astype(int) - np.array(BRIDGE_RGBA[:3]) * 255) < 60, axis=-1).any()
    plain.close(), shown.close()


def test_depth_renders_in_metres_or_as_colours_for_videos():
    env = gym.make("PushT4D-v0", robot="panda_hand", obs_mode="state", render_mode="depth_rgb", render_size=64)
    env.reset(seed=0)
    frame = env.render()
    assert frame.shape == (64, 128, 3) and frame.dtype == np.uint8 and len(np.unique(frame.reshape(-1, 3), axis=0)) > 20
    env.close()
    depth_env = gym.make("PushT4D-v0", robot="panda_hand", obs_mode="state", render_mode="depth_array")
    depth_env.reset(seed=0)
    depth = depth_env.render()
    assert depth.dtype == np.float32 and depth.shape == (96, 192) and 0.5 < np.median(depth[depth > 0]) < 2.0
    depth_env.close()
    colors = colorize_depth(np.array([[0.0, 1.0, 1.9]]), near=1.0, far=2.0)[0].astype(int)
    assert (colors[0] == 0).all()  # nothing hit: black
    assert colors[1, 0] > colors[1, 2] and colors[2, 2] > colors[2, 0]  # near red, far blue


@pytest.mark.parametrize("env_id, kwargs, shape", [
    ("PushT4D-v0", {"robot": "panda_hand", "render_mode": "rgb_array", "render_size": (128, 96)}, (96, 256, 3)),
    ("PushT4D-v0", {"robot": "panda_hand", "render_mode": "depth_rgb"}, (96, 192, 3)),
    ("Poke4D-v0", {"render_mode": "rgb_array", "image_size": 64}, (64, 128, 3)),
])
def test_record_video_writes_an_mp4(tmp_path, env_id, kwargs, shape):
    pytest.importorskip("moviepy")
    folder = tmp_path / "videos"
    env = gym.wrappers.RecordVideo(gym.make(env_id, obs_mode="state", max_episode_steps=4, **kwargs), str(folder),
                                   episode_trigger=lambda _: True, disable_logger=True)
    env.reset(seed=0)
    env.action_space.seed(0)
    done, steps = False, 0
    while not done:
        done, steps = any(env.step(env.action_space.sample())[2:4]), steps + 1
    env.close()
    (video,) = folder.glob("*.mp4")
    frames = imageio.mimread(video)
    assert len(frames) == steps + 1 and frames[0].shape == shape  # the reset and every step


@pytest.mark.skipif(sys.platform in ("darwin", "win32"), reason="macOS and Windows always have a display")
def test_human_mode_without_a_display_says_what_to_use_instead(monkeypatch):
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    for env_id in ("PushT4D-v0", "Poke4D-v0"):
        with pytest.raises(ValueError, match="no display") as err:
            gym.make(env_id, render_mode="human")
        assert "render_mode='rgb_array'" in str(err.value) and "RecordVideo" in str(err.value)
        assert "wm4d view" in str(err.value)


def test_human_mode_streams_every_step_to_a_rerun_viewer(monkeypatch, tmp_path):
    chunk = pytest.importorskip("rerun.chunk", reason="this rerun-sdk cannot read .rrd files back")

    from envs.human import HumanViewer

    monkeypatch.setenv("DISPLAY", ":99")
    monkeypatch.setattr(HumanViewer, "_open", lambda self, rec: rec.save(str(tmp_path / "live.rrd")))
    env = gym.make("PushT4D-v0", robot="panda_hand", obs_mode="pointcloud", render_mode="human", max_episode_steps=3)
    env.reset(seed=0)
    env.step(env.action_space.sample())
    assert env.render() is None
    env.close()
    entities = set(chunk.RrdReader(str(tmp_path / "live.rrd")).store().schema().entity_paths())
    assert {"/world/cameras/cam0/image/rgb", "/world/scene", "/world/gripper", "/metrics/coverage"} <= entities


def test_video_frames_shade_the_goal_only_where_the_table_is_seen():
    from envs.overlay import GOAL_RGB, Layer, annotate, goal_polygon, showcase_cameras
    from envs.pusht.geometry import GOAL_POSE

    env = gym.make("PushT4D-v0", robot="panda_hand", obs_mode="state")
    oblique, top = showcase_cameras(240)
    assert (oblique.width, oblique.height) == (320, 240)
    greens = []
    for block in ((0.25, -0.25, 0.0), GOAL_POSE):  # away from the goal, then covering it
        env.reset(options={"block_pose": block, "ee_xy": (-0.35, 0.35)})
        views = env.unwrapped.render_views((top,), decorations=False)
        frame = annotate(views, (top,), goal=goal_polygon(env), text=("coverage",),
                         layers=(Layer(np.zeros((1, 3)), (230, 40, 40), "origin"),))
        assert frame.shape == (240, 320, 3)
        green = np.all(np.abs(frame.astype(int) - (0.55 * views.rgb[0] + 0.45 * np.array(GOAL_RGB))) < 3, axis=-1)
        greens.append(int((green & (views.segmentation[0] == 0)).sum()))
    assert greens[0] > 500 and greens[1] < 0.05 * greens[0]
    env.close()
