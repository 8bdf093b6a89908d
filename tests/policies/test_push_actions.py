"""Push-primitive actions for RL: decoding, validation and pushes that move and turn the block as intended."""

import gymnasium as gym
import numpy as np
import pytest

import envs  # noqa: F401
from envs.pusht import geometry as geo
from policies import FlowReward
from policies.push_actions import EDGE_MARGIN, PushPrimitiveActions

START = {"block_pose": (0.0, 0.0, 0.0), "ee_xy": (0.25, 0.3)}  # bar along x, stem toward +y


@pytest.fixture(scope="module")
def env():
    env = PushPrimitiveActions(gym.make("PushT4D-v0", obs_mode="state", robot="panda_hand"))
    yield env
    env.close()


def test_actions_decode_to_a_contact_direction_and_log_length(env):
    com = geo.COM_LOCAL[:2]
    contact, u, length = env.decode([0.0, 1.0, 0.0, -1.0])  # along the stem, through the centre of mass
    np.testing.assert_allclose(u, [0.0, 1.0])
    np.testing.assert_allclose(contact, [com[0], 0.0], atol=1e-12)  # enters at the bar's outer edge
    assert length == pytest.approx(0.01)
    contact, u, length = env.decode([-3.0, 0.0, 1.0, 1.0])  # toward -x, outermost line; clipped to [-1, 1]
    np.testing.assert_allclose(u, [-1.0, 0.0])
    # the line is offset along (-u_y, u_x) = (0, -1) to the bar's outer edge (minus the margin); it enters at x = 0.1
    np.testing.assert_allclose(contact, [0.1, EDGE_MARGIN], atol=1e-12)
    assert length == pytest.approx(0.10)
    assert env.decode([0, 0, 0, 0])[1] @ [1.0, 0.0] == pytest.approx(1.0)  # no direction: along +x
    assert env.action_space.shape == (4,)


def test_bad_input_is_refused(env):
    with pytest.raises(ValueError, match="action_mode='absolute'"):
        PushPrimitiveActions(gym.make("PushT4D-v0", obs_mode="state", action_mode="delta"))
    with pytest.raises(ValueError, match="min_length"):
        PushPrimitiveActions(env.env, min_length=0.2, max_length=0.1)
    with pytest.raises(ValueError, match="4 finite numbers"):
        env.decode([0.0, np.nan, 0.0, 0.0])
    with pytest.raises(ValueError, match="4 finite numbers"):
        env.decode([0.0, 0.0, 0.0])


def test_a_push_through_the_centre_of_mass_translates_the_block(env):
    env.reset(seed=0, options=START)
    _, reward, _, _, info = env.step([0.0, -1.0, 0.0, 1.0])  # in at the stem's tip, 10 cm toward -y
    moved = info["block_pose"][:2] - np.asarray(START["block_pose"][:2])
    assert -0.14 < moved[1] < -0.08 and abs(moved[0]) < 0.01  # the fingers' front leads the tool centre by ~2 cm
    assert abs(geo.wrap_angle(info["block_pose"][2])) < np.radians(5)
    assert info["inner_steps"] == len(info["inner_rewards"]) > 10  # travel around the block, then the push
    assert reward == info["inner_rewards"][-1] == pytest.approx(min(1.0, info["coverage"] / geo.SUCCESS_COVERAGE))


def test_an_offset_push_turns_the_block_the_right_way(env):
    turns = []
    for side in (-1.0, 1.0):
        env.reset(seed=0, options=START)
        _, _, _, _, info = env.step([1.0, 0.0, side * 0.9, 0.5])  # toward +x, off the centre of mass
        turns.append(geo.wrap_angle(info["block_pose"][2]))
    # offset along (-u_y, u_x) = +y: the line passes above the centre of mass and turns the T clockwise
    assert turns[0] > np.radians(5) and turns[1] < -np.radians(5)


def test_wraps_a_flow_reward():
    env = PushPrimitiveActions(FlowReward(gym.make("PushT4D-v0", obs_mode="state", robot="panda_hand")))
    env.reset(seed=1)
    _, reward, _, _, info = env.step([0.0, 1.0, 0.0, 0.0])
    assert reward == pytest.approx(info["flow_reward"]) and 0 < reward <= 1
    env.close()


def test_model_reward_scores_the_whole_push():
    # with the simulator as the "model" (state mode suffices for it), the shaping of a push is the
    # true change of the potential: the travel and the push are predicted together
    from policies import ModelReward
    from policies.dynamics import OracleDynamics

    inner = gym.make("PushT4D-v0", obs_mode="pointcloud", robot="panda_hand", image_size=48, num_scene_points=256)
    push_env = PushPrimitiveActions(inner)
    env = ModelReward(push_env, OracleDynamics(inner), gamma=1.0)
    _, info = env.reset(seed=0, options=START)
    phi0 = info["potential"]
    _, reward, _, _, info = env.step([0.3, -1.0, 0.2, 0.5])
    assert info["inner_steps"] > 10
    assert info["model_shaping"] == pytest.approx(info["potential"] - phi0, abs=2e-4)
    assert abs(info["model_shaping"]) > 1e-3  # the push moved the block
    assert reward == pytest.approx(info["task_reward"] + info["model_shaping"])
    env.close()
