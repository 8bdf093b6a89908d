"""PushT4D-v0: gymnasium contract, determinism, bad input, geometry of observations, exact tracks."""

import gymnasium as gym
import numpy as np
import pytest
import shapely
from gymnasium.utils.env_checker import check_env
from shapely import affinity

from envs.base import OBS_MODES
from envs.pusht import geometry as geo
from robots.transforms import pose_matrix

ROBOTS = ("panda", "panda_hand")
BACKENDS = ("mujoco", "pybullet")


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("robot", ROBOTS)
@pytest.mark.parametrize("obs_mode", OBS_MODES)
def test_check_env(make_env, robot, obs_mode, backend):
    env = make_env(robot=robot, obs_mode=obs_mode, backend=backend, image_size=48, num_scene_points=256,
                   num_gripper_points=64)
    check_env(env.unwrapped, skip_render_check=True)


def test_default_spaces_and_registration(make_env):
    env = make_env()
    assert env.spec.max_episode_steps == 300
    obs, info = env.reset(seed=0)
    assert obs["scene_points"].shape == (1024, 3) and obs["gripper_points"].shape == (256, 3)
    assert env.action_space.shape == (2,) and np.isclose(env.action_space.high[0], 0.4265)
    for key in ("coverage", "is_success", "is_success_090", "block_pose", "block_com_pose", "block_pose7",
                "object_points", "goal_object_points", "object_points_visible"):
        assert key in info


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("robot", ROBOTS)
def test_same_seed_same_observations(make_env, robot, backend):
    def rollout():
        env = make_env(robot=robot, obs_mode="all", backend=backend, image_size=48, num_scene_points=256)
        obs, _ = env.reset(seed=123)
        out = [obs]
        for a in np.linspace([-0.2, -0.2], [0.2, 0.1], 4):
            out.append(env.step(a.astype(np.float32))[0])
        return out

    for o1, o2 in zip(rollout(), rollout(), strict=True):
        for k in o1:
            np.testing.assert_array_equal(o1[k], o2[k], err_msg=k)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("asynchronous", [False, True])
def test_vector_envs(asynchronous, backend):
    from functools import partial

    # "envs:" makes a spawned worker import envs (registering the task); nothing of this module is pickled
    fns = [partial(gym.make, "envs:PushT4D-v0", robot="panda_hand", backend=backend, image_size=32,
                   num_scene_points=128)] * 2
    # worker processes are spawned: a forked OpenGL (EGL/OSMesa) state is not safe to reuse
    venv = gym.vector.AsyncVectorEnv(fns, context="spawn") if asynchronous else gym.vector.SyncVectorEnv(fns)
    obs, _ = venv.reset(seed=[1, 2])
    assert obs["scene_points"].shape == (2, 128, 3)
    obs, rew, term, trunc, info = venv.step(np.zeros((2, 2), np.float32))
    assert rew.shape == (2,) and obs["gripper_points"].shape[0] == 2
    venv.close()


@pytest.mark.parametrize("kwargs, word", [
    ({"obs_mode": "pixels"}, "obs_mode"), ({"robot": "ur5"}, "robot"), ({"backend": "isaac"}, "backend"),
    ({"num_scene_points": 0}, "num_scene_points"), ({"num_gripper_points": -3}, "num_gripper_points"),
    ({"action_mode": "velocity"}, "action_mode"), ({"start": "random"}, "start"),
])
def test_bad_kwargs_raise_value_error_naming_allowed(kwargs, word):
    import envs  # noqa: F401

    with pytest.raises(ValueError, match=word):
        gym.make("PushT4D-v0", **kwargs)


@pytest.mark.parametrize("backend", BACKENDS)
def test_bad_actions_raise_and_leave_env_usable(make_env, backend):
    env = make_env(robot="panda_hand", obs_mode="state", backend=backend).unwrapped
    env.reset(seed=0)
    before, tcp = env.sim.body_pose7(), env.sim.tcp_xy()
    for bad in ([np.nan, 0.0], [0.0, np.inf], [0.1, 0.2, 0.3], [[0.1, 0.2]]):
        with pytest.raises(ValueError, match="action"):
            env.step(np.array(bad, dtype=np.float32))
    np.testing.assert_array_equal(env.sim.body_pose7(), before)
    np.testing.assert_array_equal(env.sim.tcp_xy(), tcp)
    obs, *_ = env.step(np.array([5.0, -5.0], np.float32))  # out of bounds: clipped, fine
    assert np.all(np.abs(obs["agent_pos"]) < 0.44)


@pytest.mark.parametrize("backend", BACKENDS)
def test_reset_options_and_start_distributions(make_env, backend):
    env = make_env(robot="panda_hand", obs_mode="state", backend=backend)
    obs, info = env.reset(options={"block_pose": (0.1, -0.05, 0.7), "ee_xy": (-0.3, 0.3)})
    np.testing.assert_allclose(info["block_pose"], (0.1, -0.05, 0.7), atol=1e-6)
    np.testing.assert_allclose(obs["agent_pos"], (-0.3, 0.3), atol=1e-4)
    with pytest.raises(ValueError, match="block_pose"):
        env.reset(options={"block_pose": (0.1, np.nan, 0.0)})
    for seed in range(20):
        obs, info = env.reset(seed=seed)
        assert np.all(np.abs(info["block_pose"][:2]) <= 0.25)
        assert geo.distance_to_footprint(info["block_pose"], obs["agent_pos"]) >= 0.03 - 1e-4
    near = make_env(robot="panda_hand", obs_mode="state", start="near_goal")
    for seed in range(20):
        _, info = near.reset(seed=seed)
        assert np.hypot(*info["block_pose"][:2]) <= 0.05 + 1e-6
        assert abs(geo.wrap_angle(info["block_pose"][2] - np.pi / 4)) <= np.pi / 6 + 1e-6


def test_coverage_matches_independent_shapely_computation():
    assert geo.coverage(geo.GOAL_POSE) == pytest.approx(1.0)
    bar, stem = shapely.box(-0.1, 0.0, 0.1, 0.05), shapely.box(-0.025, 0.05, 0.025, 0.2)
    t = shapely.union(bar, stem)

    def place(x, y, yaw):
        return affinity.translate(affinity.rotate(t, yaw, origin=(0, 0), use_radians=True), x, y)

    rng = np.random.default_rng(5)
    for _ in range(30):
        pose = (*rng.uniform(-0.1, 0.1, 2), rng.uniform(-np.pi, np.pi))
        ref = place(*pose).intersection(place(*geo.GOAL_POSE)).area / place(*geo.GOAL_POSE).area
        assert geo.coverage(pose) == pytest.approx(ref, abs=1e-12)
    assert geo.coverage((0.5, 0.5, 0.0)) == 0.0


@pytest.mark.parametrize("backend", BACKENDS)
def test_reward_termination_and_success_at_goal(make_env, backend):
    env = make_env(robot="panda_hand", obs_mode="state", backend=backend)
    env.reset(options={"block_pose": geo.GOAL_POSE, "ee_xy": (0.3, -0.3)})
    obs, reward, terminated, truncated, info = env.step(np.array([0.3, -0.3], np.float32))
    assert info["coverage"] > 0.99 and reward == 1.0 and terminated and info["is_success"]


def test_com_mass_and_inertia_from_geometry(make_env):
    assert geo.COM_LOCAL[1] == pytest.approx((0.01 * 0.025 + 0.0075 * 0.125) / 0.0175)
    # closed form: each rectangle's own inertia about its centroid + parallel-axis shift to the COM
    rho = 0.8 / 0.0175
    izz = 0.0
    for (x0, y0, x1, y1) in (geo.BAR, geo.STEM):
        a, b = x1 - x0, y1 - y0
        m = rho * a * b
        d = (y0 + y1) / 2 - geo.COM_LOCAL[1]
        izz += m * (a * a + b * b) / 12 + m * d * d
    env = make_env(robot="panda_hand", obs_mode="state").unwrapped
    m = env.sim.model
    import mujoco

    body = mujoco.mj_name2id(m, mujoco.mjtObj.mjOBJ_BODY, "block")
    assert m.body_mass[body] == pytest.approx(0.8)
    np.testing.assert_allclose(m.body_ipos[body][:2], geo.COM_LOCAL[:2], atol=1e-9)
    assert np.max(m.body_inertia[body]) == pytest.approx(izz, rel=1e-9)  # z is the largest principal axis
    import pybullet as pb

    pbenv = make_env(robot="panda_hand", obs_mode="state", backend="pybullet").unwrapped
    dyn = pb.getDynamicsInfo(pbenv.sim.body, -1, physicsClientId=pbenv.sim.client)
    assert dyn[0] == pytest.approx(0.8)
    assert dyn[2][2] == pytest.approx(izz, rel=1e-9)
    np.testing.assert_allclose(dyn[3][:2], 0.0, atol=1e-12)  # base frame at the COM
    np.testing.assert_allclose(pbenv.sim._com_local[:2], geo.COM_LOCAL[:2], atol=1e-12)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("robot", ROBOTS)
def test_pixels_points_and_tracks_are_geometrically_exact(make_env, robot, backend):
    env = make_env(robot=robot, obs_mode="all", backend=backend, image_size=64)
    obs, info = env.reset(options={"block_pose": (0.05, -0.05, 0.4), "ee_xy": (-0.2, 0.0)})
    for a in ([-0.1, -0.05], [0.0, -0.08], [0.02, -0.1]):
        obs, _, _, _, info = env.step(np.array(a, np.float32))
    uw = env.unwrapped
    # back-projected table pixels lie at z = 0
    world = uw.fuser.world_points(obs["depth"]).reshape(obs["depth"].shape + (3,))
    table = (obs["segmentation"] == 0) & (obs["depth"] > 0) & np.all(np.abs(world[..., :2]) < 0.4, axis=-1)
    assert table.sum() > 1000 and np.abs(world[table][:, 2]).max() < 2e-3
    # intrinsics: centred principal point, OpenCV convention
    K = obs["intrinsics"][0]
    assert K[0, 2] == pytest.approx((64 - 1) / 2) and K[1, 2] == pytest.approx((64 - 1) / 2)
    # scene points lie on the table or on the block's surface
    T = pose_matrix(info["block_pose7"])
    local = (obs["scene_points"] - T[:3, 3]) @ T[:3, :3]
    on_block = geo.inside_block(local, tol=3e-3)
    on_table = np.abs(obs["scene_points"][:, 2]) < 2e-3
    assert np.all(on_block | on_table)
    assert np.all(on_block[obs["scene_labels"] == 1])
    np.testing.assert_allclose(np.linalg.norm(obs["scene_normals"], axis=1), 1.0, atol=1e-5)
    table_pts = (obs["scene_labels"] == 0)
    assert np.median(obs["scene_normals"][table_pts, 2]) > 0.999
    # exact tracks: object points are block-pose transforms of the body-frame points
    np.testing.assert_allclose(info["object_points"], geo.transform_points(T, uw.object_local), atol=1e-6)
    assert info["object_points_visible"].any() and not info["object_points_visible"].all()
    # gripper points: URDF FK of the simulator's joints == MuJoCo's own link poses
    links = uw.gripper.links
    ours = uw.robot.link_poses(uw.sim.robot_qpos(), links)
    np.testing.assert_allclose(ours, uw.sim.link_poses(links), atol=1e-5)
    # the simulated tool is where the task says it is: fingertips 0.01 m above the table
    assert abs(info["block_pose7"][2]) < 1e-3  # resting on the table (soft-contact penetration < 1 mm)
    fingertips = obs["gripper_points"][:, 2].min()
    assert 0.005 < fingertips < 0.015
    from_sim, _ = uw.gripper.place(uw.sim.link_poses(links))
    np.testing.assert_allclose(obs["gripper_points"], from_sim, atol=1e-5)


@pytest.mark.parametrize("backend", BACKENDS)
def test_render_modes_give_metric_depth(make_env, backend):
    env = make_env(robot="panda_hand", obs_mode="rgbd", backend=backend, render_mode="depth_array", image_size=40)
    obs, _ = env.reset(seed=0)
    depth = env.render()
    assert depth.shape == (40, 80) and depth.dtype == np.float32
    np.testing.assert_array_equal(depth, np.concatenate(list(obs["depth"]), axis=1))
    assert 0.5 < np.median(depth[depth > 0]) < 2.0


@pytest.mark.parametrize("backend", BACKENDS)
def test_state_save_restore_is_exact(make_env, backend):
    env = make_env(robot="panda", obs_mode="state", backend=backend).unwrapped
    env.reset(seed=3)
    env.step(np.array([0.0, 0.0], np.float32))
    snap = env.get_state()
    a = [env.step(np.array([0.1, 0.05 * i], np.float32))[0]["block_pose"] for i in range(3)]
    env.set_state(snap)
    b = [env.step(np.array([0.1, 0.05 * i], np.float32))[0]["block_pose"] for i in range(3)]
    np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("robot", ROBOTS)
def test_a_block_jammed_against_a_wall_is_pressed_with_a_bounded_force(make_env, robot, backend):
    """The hand keeps pushing a block whose stem touches a wall: the robot stalls at its push-force limit, so the
    block is neither squeezed into the wall nor tilted up, and the fingers stay behind it (without the limit
    the arm's fingers rode over the block in PyBullet and MuJoCo pressed it 6 mm into the wall)."""
    env = make_env(robot=robot, obs_mode="state", backend=backend).unwrapped
    half = geo.WORKSPACE / 2
    pose = np.array([half - 0.201, 0.0, -np.pi / 2])  # the stem points at the east wall, its end 1 mm from it
    env.reset(options={"block_pose": pose, "ee_xy": (pose[0] - 0.06, 0.0)})
    corners = np.c_[geo.footprint_vertices(), np.zeros(len(geo.footprint_vertices()))]
    for i in range(20):
        _, _, _, _, info = env.step(np.array([half, 0.03 * np.sin(i)], np.float32))
        T = pose_matrix(info["block_pose7"])
        assert np.abs((corners @ T[:3, :3].T + T[:3, 3])[:, :2]).max() < half + 2.5e-3
        assert abs(info["block_pose7"][2]) < 2.5e-3 and T[2, 2] > np.cos(np.radians(1.5))
    assert env.sim.tcp_xy()[0] < pose[0]  # behind the bar's outer edge
