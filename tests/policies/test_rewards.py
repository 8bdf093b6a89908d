"""Flow rewards: FlowReward measures the true tracks against a (time-aligned) target flow, ModelReward's
model-predicted shaping is finite with a learned model and telescopes with a perfect one."""

import gymnasium as gym
import numpy as np
import pytest
import torch

from envs.pusht import geometry as geo
from policies import FlowReward, ModelReward
from policies.dynamics import goal_positions
from policies.rewards import mean_distance, transfer_rigid_motion
from worldmodel.dynamics import LearnedDynamics, Prediction
from worldmodel.models import PointNetFlow

SMALL = dict(robot="panda_hand", image_size=48, num_scene_points=256, num_gripper_points=32)
GOAL = np.array(geo.GOAL_POSE)
PUSH_DIR = np.array([-1.0, 1.0]) / np.sqrt(2)  # along the stem of the T at the goal yaw
FAR = {"ee_xy": (0.3, -0.3)}  # the hand away from a block near the goal


@pytest.fixture(scope="module")
def state_env():
    """One state-mode env (delta actions) for the FlowReward tests: making an env takes seconds."""
    env = gym.make("PushT4D-v0", obs_mode="state", robot="panda_hand", action_mode="delta")
    yield env
    env.close()


@pytest.fixture(scope="module")
def cloud_env():
    """One small point-cloud env (absolute actions) for the ModelReward tests."""
    env = gym.make("PushT4D-v0", **SMALL)
    yield env
    env.close()


class NextPoints:
    """A perfect "model": the env itself is stepped to the target and restored (get_state/set_state)."""

    def __init__(self, env: gym.Env):
        self.env, self.calls = env.unwrapped, []

    def reset(self) -> None:
        self.calls.append("reset")

    def observe(self, obs: dict, info: dict) -> None:
        self.calls.append("observe")

    def rollout(self, obs: dict, info: dict, targets: torch.Tensor) -> Prediction:
        snapshot = self.env.get_state()
        _, _, _, _, nxt = self.env.step(targets[0, 0].numpy().astype(np.float64))
        self.env.set_state(snapshot)
        return Prediction(torch.as_tensor(nxt["object_points"])[None, None],
                          torch.as_tensor(info["goal_object_points"]))


def push_start(offset: float = 0.06) -> dict:
    """Block ``offset`` m short of the goal along its stem, the hand 0.04 m behind its bar."""
    block = GOAL[:2] - offset * PUSH_DIR
    return {"block_pose": (*block, GOAL[2]), "ee_xy": tuple(block - 0.04 * PUSH_DIR)}


def analytic(info, target=None):
    return mean_distance(info["object_points"], info["goal_object_points"] if target is None else target)


def test_flow_distance_is_the_mean_point_distance_and_falls_under_a_push(state_env):
    env = FlowReward(state_env, scale=0.05)
    _, info = env.reset(seed=0, options={"block_pose": tuple(GOAL), **FAR})
    assert info["flow_distance"] < 1e-6
    _, reward, *_, info = env.step(np.zeros(2, np.float32))
    assert info["flow_distance"] == pytest.approx(analytic(info), abs=1e-12) and info["flow_distance"] < 2e-3
    assert reward == pytest.approx(np.exp(-info["flow_distance"] / 0.05))

    _, info = env.reset(seed=0, options=push_start())
    assert info["flow_distance"] == pytest.approx(0.06, abs=1e-6)  # a pure translation of 6 cm
    distances, rewards = [info["flow_distance"]], []
    for _ in range(4):
        _, reward, *_, info = env.step((0.02 * PUSH_DIR).astype(np.float32))
        assert info["flow_distance"] == pytest.approx(analytic(info), abs=1e-12)
        assert 0 < reward <= 1 and info["task_reward"] == pytest.approx(np.clip(info["coverage"] / 0.95, 0, 1))
        distances.append(info["flow_distance"])
        rewards.append(reward)
    assert distances[-1] < 0.02 < 0.05 < distances[0] and np.all(np.diff(distances) < 1e-3)
    assert rewards[-1] > rewards[0] + 0.3


def test_add_mode_and_target_pose(state_env):
    pose = (0.1, -0.05, 0.3)
    env = FlowReward(state_env, target_pose=pose, mode="add")
    _, info = env.reset(seed=1, options={"block_pose": pose, "ee_xy": (-0.3, 0.3)})
    assert info["flow_distance"] < 1e-6  # at the target pose, not the goal
    _, reward, *_, info = env.step(np.zeros(2, np.float32))
    target = goal_positions(info["goal_object_points"], GOAL, np.array(pose))
    assert info["flow_distance"] == pytest.approx(analytic(info, target), abs=1e-12)
    assert reward == pytest.approx(info["task_reward"] + info["flow_reward"])


def test_time_aligned_flow_uses_the_row_of_the_step(state_env):
    env = state_env
    _, info = env.reset(seed=0, options={"block_pose": tuple(GOAL), **FAR})
    goal_pts = info["goal_object_points"]
    flow = np.stack([goal_positions(goal_pts, GOAL, GOAL + d) for d in ([0, 0, 0], [0.02, 0, 0], [0, 0.05, 0.2])])
    env = FlowReward(env, target_flow=flow)
    _, info = env.reset(options={"block_pose": tuple(GOAL), **FAR})
    assert info["flow_distance"] < 1e-6  # row 0 at the start
    for t in range(1, 5):
        _, _, _, _, info = env.step(np.zeros(2, np.float32))
        rows = [analytic(info, row) for row in flow]
        assert info["flow_distance"] == pytest.approx(rows[min(t, 2)], abs=1e-12)
        assert all(abs(info["flow_distance"] - r) > 0.01 for i, r in enumerate(rows) if i != min(t, 2))


def test_bad_arguments_raise(state_env, cloud_env):
    env = state_env
    for kwargs, match in [(dict(mode="multiply"), "replace"), (dict(scale=0.0), "scale"),
                          (dict(target_pose=(0, 0)), "target_pose"), (dict(target_pose=(0, np.nan, 0)), "finite"),
                          (dict(target_flow=np.zeros((2, 256, 2))), r"\(T, K, 3\)"),
                          (dict(target_pose=(0, 0, 0), target_flow=np.zeros((1, 256, 3))), "not both")]:
        with pytest.raises(ValueError, match=match):
            FlowReward(env, **kwargs)
    with pytest.raises(ValueError, match="object points"):
        FlowReward(env, target_flow=np.zeros((3, 10, 3))).reset(seed=0)
    with pytest.raises(ValueError, match="pointcloud"):
        ModelReward(env, PointNetFlow(horizon=2, width=16))
    cloud = cloud_env
    with pytest.raises(ValueError, match="gamma"):
        ModelReward(cloud, PointNetFlow(horizon=2, width=16), gamma=1.5)
    with pytest.raises(ValueError, match="nn.Module"):
        ModelReward(cloud, 42)
    with pytest.raises(ValueError, match="checkpoint"):
        ModelReward(cloud, "/nonexistent/checkpoint")


def test_rigid_motion_transfer_recovers_a_planar_motion():
    rng = np.random.default_rng(0)
    src, pts = rng.uniform(-0.1, 0.1, (40, 3)), rng.uniform(-0.1, 0.1, (7, 3))
    move = lambda p: p @ geo.rot_z(0.4).T + np.array([0.03, -0.02, 0.0])  # noqa: E731
    np.testing.assert_allclose(transfer_rigid_motion(src, move(src), pts), move(pts), atol=1e-12)


def test_model_reward_with_an_untrained_model_is_finite(make_env):
    torch.manual_seed(0)
    model = PointNetFlow(horizon=2, width=16, use_velocity=True)  # also fed the points' last displacement
    env = ModelReward(make_env(**SMALL, action_mode="delta"), model, weight=2.0)
    obs, info = env.reset(seed=3)
    assert info["potential"] == pytest.approx(-analytic(info))
    np.testing.assert_allclose(env.fingertip_target(obs, [0.01, -0.5]), obs["agent_pos"] + [0.01, -0.03], atol=1e-7)
    for _ in range(3):
        _, reward, *_, info = env.step(np.array([0.01, -0.02], np.float32))
        assert np.isfinite(info["model_shaping"])
        assert reward == pytest.approx(info["task_reward"] + 2.0 * info["model_shaping"])


def test_model_reward_when_the_model_sees_a_subset_of_the_cloud(cloud_env):
    # the learned adapter feeds the model an even subset of the scene points (the count it was trained
    # with); the predicted motion is carried from that subset to all of the env's tracked points
    torch.manual_seed(0)
    dynamics = LearnedDynamics(PointNetFlow(horizon=2, width=16), num_points=64, num_gripper_points=16)
    env = ModelReward(cloud_env, dynamics)
    obs, info = env.reset(seed=0, options=FAR)
    assert len(obs["scene_points"]) > 64
    _, _, _, _, info = env.step(np.asarray(FAR["ee_xy"], np.float32))
    assert np.isfinite(info["model_shaping"])


def test_shaping_with_a_perfect_model_telescopes(cloud_env):
    perfect = NextPoints(cloud_env)
    env = ModelReward(cloud_env, perfect, gamma=1.0)
    _, info = env.reset(seed=0, options=push_start(0.04))
    phi0, shaping = info["potential"], []
    ee = np.array(push_start(0.04)["ee_xy"])
    for t in range(1, 5):
        _, _, _, _, info = env.step((ee + 0.02 * t * PUSH_DIR).astype(np.float32))
        shaping.append(info["model_shaping"])
    assert info["potential"] == pytest.approx(-analytic(info))
    assert sum(shaping) == pytest.approx(info["potential"] - phi0, abs=1e-9)
    assert sum(shaping) > 0.02  # the push brought the block closer
    assert perfect.calls == ["reset"] + ["observe"] * 5  # the dynamics see every state
