"""The task base: a new task is its scene, episode start and evaluation; the base gives it the rest.

``ReachBall`` is a whole task in a few hooks: the floating Panda hand moves its fingertips
toward a ball of points hovering over the table; success when they are within 2 cm.
"""

import numpy as np
import pytest
from gymnasium import spaces
from gymnasium.error import ClosedEnvironmentError, ResetNeeded
from gymnasium.utils.env_checker import check_env

from envs.base import TaskEnv
from envs.poke.scene import kinematic_robot, render_scene, table_frames
from physics.render import LABEL_OBJECT, orbit_cameras
from robots.gripper_points import DEFAULT_GRIPPER_LINKS


class ReachBall(TaskEnv):
    """Bring the fingertips within 2 cm of a ball hovering 0.1 m over the table (test task)."""

    RESET_OPTIONS = ("ball",)
    ACTION_MEANING = "fingertip xyz in metres"

    def __init__(self, obs_mode="state", action_mode="absolute", render_mode=None, num_scene_points=128):
        self.tcp = np.array([0.0, 0.0, 0.2])
        self.ball = np.zeros(3)
        sphere = np.random.default_rng(0).normal(size=(64, 3))
        self.offsets = 0.02 * sphere / np.linalg.norm(sphere, axis=1, keepdims=True)
        super().__init__(obs_mode=obs_mode, action_mode=action_mode, render_mode=render_mode, image_size=48,
                         num_cameras=2, num_scene_points=num_scene_points, num_gripper_points=32,
                         object_point_fraction=0.25, seed_points=0)

    def _make_cameras(self, num, width, height):
        return orbit_cameras(num, width, height, radius=0.6, height_m=0.5)

    def _crop_box(self):
        return np.array([-0.3, -0.3, -0.005]), np.array([0.3, 0.3, 0.4])

    def _load_scene(self):
        self.robot = kinematic_robot("panda_hand", 32, 0)
        self.table = table_frames(self.cameras)

    def _gripper_source(self):
        return self.robot.robot.desc, DEFAULT_GRIPPER_LINKS

    def _link_poses(self, links):
        return self.robot.link_poses(self.tcp, links)

    def _target_bounds(self):
        return np.array([-0.2, -0.2, 0.01]), np.array([0.2, 0.2, 0.35])

    def _tool_position(self):
        return self.tcp

    def _step_physics(self, target):
        self.tcp = target.copy()

    def _parse_reset_options(self, options):
        return options.get("ball")

    def _initialize_episode(self, ball):
        self.ball = np.array([*self.np_random.uniform(-0.15, 0.15, 2), 0.1]) if ball is None else np.asarray(ball)
        self.tcp = np.array([0.0, 0.0, 0.3])

    def _state_spaces(self):
        return {"agent_pos": spaces.Box(-1.0, 1.0, (3,), np.float32)}

    def _observe_task(self):
        d = float(np.linalg.norm(self.tcp - self.ball))
        return ({"agent_pos": self.tcp.astype(np.float32)},
                {"distance": d, "is_success": d < 0.02, "object_points": (self.ball + self.offsets).astype(np.float32)})

    def _render_frames(self):
        return render_scene(self.cameras, self.table, self.ball + self.offsets, np.full((64, 3), 0.8), 0.01,
                            self.robot, self.tcp)

    def _evaluate(self, info):
        return -info["distance"], bool(info["is_success"]), False

    def _save_state(self):
        return self.tcp.copy(), self.ball.copy()

    def _restore_state(self, state):
        self.tcp, self.ball = (np.array(v) for v in state)


def test_a_task_of_hooks_passes_gymnasiums_checker_in_every_obs_mode():
    for mode in ("state", "rgbd", "pointcloud", "all"):
        env = ReachBall(obs_mode=mode)
        check_env(env, skip_render_check=True)
        obs, info = env.reset(seed=0)
        assert set(obs) <= set(env.observation_space.spaces) and env.observation_space.contains(obs)
        if mode != "state":
            assert info["object_points_visible"].shape == (64,) and info["object_points_visible"].any()
        if mode in ("pointcloud", "all"):
            assert (obs["scene_labels"] == LABEL_OBJECT).any()
            np.testing.assert_allclose(obs["gripper_points"], env.robot.gripper_points(env.tcp), atol=1e-6)
        env.close()


def test_the_base_runs_the_episode_the_task_describes():
    env = ReachBall()
    with pytest.raises(ResetNeeded):
        env.step(np.zeros(3, np.float32))
    obs, info = env.reset(options={"ball": [0.1, 0.0, 0.1]})
    assert not info["is_success"]
    obs, reward, terminated, truncated, info = env.step(np.array([0.1, 0.0, 0.1], np.float32))
    assert terminated and info["is_success"] and reward == pytest.approx(0.0, abs=1e-7)
    # out-of-box actions are clipped to it; bad ones are refused and change nothing
    env.step(np.array([5.0, -5.0, 5.0], np.float32))
    np.testing.assert_allclose(env.tcp, [0.2, -0.2, 0.35], rtol=1e-6)
    before = env.get_state()
    for bad in ([np.nan, 0, 0], [0.0, 0.0], "up", None):
        with pytest.raises(ValueError, match="^action must"):
            env.step(bad)
    np.testing.assert_array_equal(env.get_state()[0], before[0])
    with pytest.raises(ValueError, match="unknown reset options"):
        env.reset(options={"goal": 1})
    env.close()
    with pytest.raises(ClosedEnvironmentError):
        env.reset()


def test_delta_actions_step_from_the_tool_and_stay_in_the_box():
    env = ReachBall(action_mode="delta")
    assert env.action_space.high.tolist() == pytest.approx([0.03] * 3)
    env.reset(seed=1)
    env.step(np.array([0.03, -0.03, 0.03], np.float32))
    np.testing.assert_allclose(env.tcp, [0.03, -0.03, 0.33], rtol=1e-6)
    env.step(np.array([0.0, 0.0, 0.03], np.float32))
    assert env.tcp[2] == pytest.approx(0.35)  # clipped to the absolute box


def test_snapshots_restore_the_episode_and_render_modes_show_every_camera():
    env = ReachBall(obs_mode="rgbd", render_mode="rgbd_tuple")
    env.reset(seed=2)
    state = env.get_state()
    first = env.step(np.array([0.05, 0.05, 0.2], np.float32))[0]
    env.set_state(state)
    again = env.step(np.array([0.05, 0.05, 0.2], np.float32))[0]
    np.testing.assert_array_equal(first["depth"], again["depth"])
    rgb, depth = env.render()
    assert rgb.shape == (48, 96, 3) and depth.shape == (48, 96)
    with pytest.raises(ValueError, match="render_mode"):
        ReachBall(render_mode="ansi")
    with pytest.raises(ValueError, match="obs_mode"):
        ReachBall(obs_mode="pixels")


def test_reset_options_are_checked_before_the_rng_is_seeded():
    class Strict(ReachBall):
        def _parse_reset_options(self, options):
            if "ball" in options and np.asarray(options["ball"])[2] < 0:
                raise ValueError("options['ball'] must be above the table")
            return super()._parse_reset_options(options)

    env = Strict()
    env.reset(seed=3)
    draw = env.np_random.bit_generator.state
    with pytest.raises(ValueError, match="above the table"):
        env.reset(seed=99, options={"ball": [0.0, 0.0, -1.0]})
    assert env.np_random.bit_generator.state == draw
