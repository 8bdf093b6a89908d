"""LearnedDynamics with a longer per-point history and the displacement since the episode's start."""

import gymnasium as gym
import numpy as np
import pytest
import torch

import envs  # noqa: F401
from worldmodel.dynamics import LearnedDynamics
from worldmodel.models import PointNetFlow


@pytest.fixture(scope="module")
def env():
    env = gym.make("PushT4D-v0", robot="panda_hand", obs_mode="pointcloud", image_size=48, num_scene_points=256,
                   num_gripper_points=32)
    yield env
    env.close()


def test_learned_dynamics_feeds_older_motions_and_the_motion_since_the_start(env):
    obs, info = env.reset(seed=0, options={"block_pose": (0.0, 0.0, 0.0), "ee_xy": (0.0, -0.08)})
    torch.manual_seed(0)
    model = PointNetFlow(horizon=2, width=16, use_velocity=True, history=4, since_start=True)
    dyn = LearnedDynamics(model)
    assert dyn.past == ["previous_displacement", "earlier_displacement", "displacement_lag3", "displacement_lag4"]
    assert dyn.since_start
    dyn.observe(obs, info)
    assert not dyn.start_displacement(obs).any() and not dyn.previous_displacement(obs, lag=3).any()
    tracks = [info["object_points"]]
    for target in ((0.0, -0.02), (0.0, 0.03), (0.0, 0.05), (0.0, 0.06), (0.0, 0.07)):
        obs, _, _, _, info = env.step(np.array(target))
        dyn.observe(obs, info)
        tracks.append(info["object_points"])
    as_scene = {"scene_points": tracks[-1], "scene_labels": np.ones(len(tracks[-1]), int)}
    for lag in range(1, 5):
        np.testing.assert_allclose(dyn.previous_displacement(as_scene, lag), tracks[-lag] - tracks[-lag - 1], atol=1e-6)
    np.testing.assert_allclose(dyn.start_displacement(as_scene), tracks[-1] - tracks[0], atol=1e-6)
    assert np.linalg.norm(tracks[-1] - tracks[0], axis=1).max() > 1e-3
    assert not dyn.start_displacement(obs)[obs["scene_labels"] == 0].any()
    targets = torch.tensor([[[0.0, 0.08], [0.0, 0.09], [0.0, 0.10]]])
    pred = dyn.rollout(obs, info, targets)  # chunks of 2 and 1 steps: the features chain through them
    assert pred.points.shape[:2] == (1, 3) and torch.isfinite(pred.points).all()
    # the second chunk sees the predicted motion: the same as a rollout started from the predicted scene
    first = dyn.rollout(obs, info, targets[:, :2])
    torch.testing.assert_close(pred.points[:, :2], first.points)
    dyn.reset()
    assert not dyn.start_displacement(obs).any()
