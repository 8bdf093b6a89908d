"""The PPO example's env stack (no stable-baselines3 needed): features, wrappers' order, training-only continuation."""

import importlib.util
from pathlib import Path

import numpy as np

from envs.pusht import geometry as geo

ROOT = Path(__file__).resolve().parents[2]
SPEC = importlib.util.spec_from_file_location("ppo_rewards", ROOT / "examples" / "ppo_rewards.py")
ppo = importlib.util.module_from_spec(SPEC)
SPEC.loader.exec_module(ppo)


def test_goal_offset_in_the_block_frame_is_the_world_offset_rotated():
    flat = ppo.FlatObservation.__new__(ppo.FlatObservation)
    flat._goal = np.asarray(geo.GOAL_POSE, float)
    yaw = 0.7
    obs = {"agent_pos": np.array([0.1, -0.2]), "block_pose": np.array([0.05, 0.02, yaw])}
    f = flat.observation(obs)
    to_goal, in_block = f[8:10], f[10:12]
    np.testing.assert_allclose(geo.rot_z(yaw)[:2, :2] @ in_block, to_goal, atol=1e-6)
    np.testing.assert_allclose(to_goal * ppo.FlatObservation.SCALE, np.asarray(geo.GOAL_POSE[:2]) - [0.05, 0.02],
                               atol=1e-6)
    np.testing.assert_allclose(f[12:], [np.sin(geo.GOAL_POSE[2] - yaw), np.cos(geo.GOAL_POSE[2] - yaw)], atol=1e-6)


def test_training_goes_on_past_success_and_evaluation_stops_there():
    args = ppo.parse_args(["--actions", "step", "--max-episode-steps", "30"])
    solved = {"block_pose": geo.GOAL_POSE, "ee_xy": (0.3, 0.3)}
    env = ppo.make_env("flow", args)
    obs, _ = env.reset(seed=0, options=solved)
    assert env.observation_space.contains(obs) and env.action_space.shape == (2,)
    _, reward, terminated, _, info = env.step(np.zeros(2, np.float32))
    assert info["is_success"] and not terminated
    assert 0.9 < reward <= 1.0  # the flow reward of a block at its goal
    evaluation = ppo.make_env("coverage", args, train=False)
    evaluation.reset(seed=0, options=solved)
    assert evaluation.step(np.zeros(2, np.float32))[2]


def test_push_actions_stack_rewards_the_state_each_push_reaches():
    env = ppo.make_env("flow", ppo.parse_args(["--actions", "push", "--max-episode-steps", "60"]))
    obs, _ = env.reset(seed=0)
    assert env.observation_space.contains(obs) and env.action_space.shape == (4,)
    _, reward, _, _, info = env.step(np.array([0.0, 1.0, 0.0, -1.0], np.float32))
    assert info["inner_steps"] > 1 and reward == info["flow_reward"] == info["inner_rewards"][-1]
