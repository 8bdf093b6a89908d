"""Push-primitive actions for RL: decoding, validation and a push that really moves the block."""

import gymnasium as gym
import numpy as np
import pytest

import envs  # noqa: F401
from envs import pusht_geometry as geo
from policies import FlowReward
from policies.push_actions import PushPrimitiveActions


@pytest.fixture(scope="module")
def env():
    env = PushPrimitiveActions(gym.make("PushT4D-v0", obs_mode="state", robot="panda_hand"))
    yield env
    env.close()


def test_actions_decode_to_the_outline_angle_and_log_length(env):
    M = len(env.pusher.outline)
    assert env.decode([-1, 0, -1]) == pytest.approx((0, 0.0, 0.01))
    assert env.decode([1, 1, 1]) == pytest.approx((M - 1, np.radians(30), 0.10))
    assert env.decode([5, -5, 0]) == pytest.approx((M - 1, -np.radians(30), np.sqrt(0.01 * 0.10)))  # clipped
    assert env.action_space.shape == (3,)


def test_bad_input_is_refused(env):
    with pytest.raises(ValueError, match="action_mode='absolute'"):
        PushPrimitiveActions(gym.make("PushT4D-v0", obs_mode="state", action_mode="delta"))
    with pytest.raises(ValueError, match="min_length"):
        PushPrimitiveActions(env.env, min_length=0.2, max_length=0.1)
    with pytest.raises(ValueError, match="3 finite numbers"):
        env.decode([0.0, np.nan, 0.0])
    with pytest.raises(ValueError, match="3 finite numbers"):
        env.decode([0.0, 0.0])


def test_a_push_moves_the_block_along_it_and_rewards_the_state_reached(env):
    pose = np.array([0.0, 0.0, 0.0])  # bar along x, stem toward +y
    M = len(env.pusher.outline)
    # the outline point nearest the middle of the stem's end, pushed straight in (toward -y)
    tip = np.array([0.0, geo.footprint_vertices()[:, 1].max()])
    index = int(np.argmin(np.linalg.norm(env.pusher.outline - tip, axis=1)))
    action = [2 * (index + 0.5) / M - 1, 0.0, 1.0]  # 10 cm
    assert env.decode(action)[0] == index
    env.reset(seed=0, options={"block_pose": pose, "ee_xy": (0.25, 0.3)})
    _, reward, _, _, info = env.step(action)
    moved = info["block_pose"][:2] - pose[:2]
    assert moved[1] < -0.05 and abs(moved[0]) < 0.01  # pushed 5-10 cm down the stem's axis
    assert abs(geo.wrap_angle(info["block_pose"][2])) < np.radians(5)
    assert info["inner_steps"] == len(info["inner_rewards"]) > 10  # travel around the block, then the push
    assert reward == info["inner_rewards"][-1] == pytest.approx(min(1.0, info["coverage"] / geo.SUCCESS_COVERAGE))


def test_wraps_a_flow_reward():
    env = PushPrimitiveActions(FlowReward(gym.make("PushT4D-v0", obs_mode="state", robot="panda_hand")))
    env.reset(seed=1)
    _, reward, _, _, info = env.step([0.0, 0.0, 0.0])
    assert reward == pytest.approx(info["flow_reward"]) and 0 < reward <= 1
    env.close()
