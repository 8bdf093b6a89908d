"""Deformable PushT4D-v0 (MPM block): env contract, recording round trip and the replay contract."""

from __future__ import annotations

from functools import partial

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

from envs.pusht import PushT4DEnv
from envs.pusht import geometry as geo
from envs.pusht.deformable import DeformablePushT4DEnv
from envs.pusht.mpm_block import pose_colliders, replay_solver
from robots.control import CONTROL_DT
from robots.transforms import pose_matrix
from worldmodel.data.recorder import RecordRollout

# coarse particles (1 cm, ~700) and a soft jelly keep every step well under a second
FAST = dict(robot="panda_hand", block_particle_spacing=0.01, block_youngs_modulus=5e3, image_size=48,
            num_scene_points=256, num_gripper_points=64, num_object_points=64)
PUSH = [(0.0, 0.08), (0.0, 0.1), (0.02, 0.12), (0.02, 0.12)]


def _start(env: gym.Env, seed: int = 0):
    return env.reset(seed=seed, options={"block_pose": (0.0, 0.02, 0.3), "ee_xy": (0.0, -0.04)})


def test_dispatch_and_bad_kwargs(make_env):
    env = make_env(block_material="jelly", **FAST)
    assert isinstance(env.unwrapped, DeformablePushT4DEnv)
    assert type(make_env(robot="panda_hand", obs_mode="state").unwrapped) is PushT4DEnv
    with pytest.raises(ValueError, match="allowed"):
        gym.make("PushT4D-v0", block_material="honey")
    with pytest.raises(ValueError, match="block_youngs_modulus"):
        gym.make("PushT4D-v0", block_material="jelly", block_youngs_modulus=-1.0)
    with pytest.raises(ValueError, match="block_youngs_modulus"):
        gym.make("PushT4D-v0", block_youngs_modulus=1e4)  # rigid block
    with pytest.raises(ValueError, match="block_particle_spacing"):
        gym.make("PushT4D-v0", block_material="sand", block_particle_spacing=0.0)


@pytest.mark.parametrize("material", ["jelly", "sand"])
def test_check_env(make_env, material):
    env = make_env(block_material=material, obs_mode="all", **FAST)
    check_env(env.unwrapped, skip_render_check=True)


def test_reset_pose_mass_coverage_and_info(make_env):
    env = make_env(block_material="plasticine", **FAST)
    pose = np.array([0.05, -0.03, 0.7])
    obs, info = env.reset(seed=0, options={"block_pose": tuple(pose), "ee_xy": (0.3, 0.3)})
    u = env.unwrapped
    np.testing.assert_allclose(info["block_pose"], pose, atol=1e-5)  # Kabsch of the undeformed T
    np.testing.assert_allclose(obs["block_pose"], pose, atol=1e-5)
    assert abs(info["coverage"] - geo.coverage(pose)) < 0.05  # 1 cm particles (4 mm: 0.02, test_deformable_physics)
    assert u.mpm.masses().sum() == pytest.approx(geo.MASS, rel=1e-5)
    P = u.mpm.num_particles
    assert info["tracks"].shape == (P, 3) and info["tracks"].dtype == np.float32
    assert info["track_visible"].shape == (P,) and 0 < info["track_visible"].sum() < P  # interior unseen
    assert info["collider_poses"].shape == (3, 7)
    np.testing.assert_array_equal(info["object_points"], info["tracks"][u.track_index])
    ids, labels = info["scene_track_ids"], obs["scene_labels"]
    assert np.all((ids >= 0) == (labels == 1)) and np.any(labels == 1)
    # a block scene point lies on the surface of the particle it names (within a splat + a pixel)
    gap = np.linalg.norm(obs["scene_points"][labels == 1] - info["tracks"][ids[labels == 1]], axis=1)
    assert np.median(gap) < 0.012
    # the goal points are the tracked particles of the rest shape at the goal pose
    goal = geo.transform_points(pose_matrix(geo.pose7_from_pose3(geo.GOAL_POSE, z=0.0)),
                                u.rest_local[u.track_index])
    np.testing.assert_allclose(info["goal_object_points"], goal, atol=1e-6)


def test_same_seed_same_observations_and_state_restore(make_env):
    a, b = (make_env(block_material="jelly", **FAST) for _ in range(2))
    outs = []
    for env in (a, b):
        _start(env, seed=3)
        for act in PUSH[:2]:
            obs, _, _, _, info = env.step(np.array(act))
        outs.append((obs, info))
    for k in outs[0][0]:
        np.testing.assert_array_equal(outs[0][0][k], outs[1][0][k])
    np.testing.assert_array_equal(outs[0][1]["tracks"], outs[1][1]["tracks"])
    # get_state / set_state: the continuation from a snapshot is the same
    snap = a.unwrapped.get_state()
    first = [a.step(np.array(act))[4]["tracks"] for act in PUSH[2:]]
    a.unwrapped.set_state(snap)
    again = [a.step(np.array(act))[4]["tracks"] for act in PUSH[2:]]
    for x, y in zip(first, again, strict=True):
        np.testing.assert_array_equal(x, y)
    assert np.abs(first[-1] - outs[0][1]["tracks"]).max() > 0.005  # the block was pushed


def test_bad_action_changes_nothing(make_env):
    env = make_env(block_material="jelly", obs_mode="state", **FAST)
    _start(env)
    before = env.unwrapped.mpm.positions()
    for bad in (np.array([np.nan, 0.0]), np.zeros(3)):
        with pytest.raises(ValueError):
            env.step(bad)
    np.testing.assert_array_equal(env.unwrapped.mpm.positions(), before)


def test_sync_vector_env():
    fns = [lambda: gym.make("PushT4D-v0", block_material="sand", obs_mode="pointcloud", **FAST) for _ in range(2)]
    venv = gym.vector.SyncVectorEnv(fns)
    obs, _ = venv.reset(seed=[1, 2])
    assert obs["scene_points"].shape == (2, 256, 3)
    obs, rew, term, trunc, info = venv.step(np.zeros((2, 2), np.float32))
    assert rew.shape == (2,) and info["tracks"].shape[0] == 2
    venv.close()


def test_async_vector_env():
    # "envs:" makes the spawned worker import envs (registering the task); nothing of this module is pickled
    fns = [partial(gym.make, "envs:PushT4D-v0", block_material="plasticine", obs_mode="state", **FAST)] * 2
    venv = gym.vector.AsyncVectorEnv(fns, context="spawn")
    venv.reset(seed=[1, 2])
    _, _, _, _, info = venv.step(np.zeros((2, 2), np.float32))
    assert info["tracks"].shape[0] == 2 and not np.array_equal(info["tracks"][0], info["tracks"][1])
    venv.close()


def test_recording_round_trip_and_replay(tmp_path):
    from worldmodel.data.dataset import PointFlowDataset, track_displacements
    from worldmodel.data.rollouts import RolloutStore

    kwargs = dict(block_material="jelly", **FAST)
    env = RecordRollout(gym.make("PushT4D-v0", max_episode_steps=len(PUSH), **kwargs), tmp_path / "d.zarr")
    _start(env)
    for act in PUSH:
        env.step(np.array(act, np.float32))
    env.close()
    store = RolloutStore(tmp_path / "d.zarr")
    assert store.has_tracks and store.num_episodes == 1
    ep = store.episode(0)
    tracks, ids, poses = ep["tracks"], ep["scene_track_ids"], ep["collider_poses"]
    assert tracks.shape[0] == len(PUSH) and "scene_obj_coords" not in ep
    assert store.attrs["env_kwargs"]["block_youngs_modulus"] == 5e3
    # future positions of block scene points come from their particles' tracks
    target, _, _ = track_displacements(tracks, ids[0], 0, 2)
    moved = np.linalg.norm(target[-1], axis=1)
    assert moved[ids[0] >= 0].max() > 0.01 and np.all(moved[ids[0] < 0] == 0)
    sample = PointFlowDataset(tmp_path / "d.zarr", horizon=2, split="all")[0]  # the training dataset reads them
    np.testing.assert_allclose(sample["target"].numpy(), target, atol=1e-6)
    # replay from the first recorded row with the recorded collider poses and the true E
    solver, colliders = replay_solver(store.attrs["env_kwargs"], tracks[0], 5e3)
    for t in range(len(PUSH) - 1):
        pose_colliders(colliders, poses[t], poses[t + 1], CONTROL_DT)
        solver.step(CONTROL_DT)
        assert np.abs(solver.positions() - tracks[t + 1]).max() < 1e-4
    # a different E gives a different motion (the replay is sensitive to the material)
    other, cols = replay_solver(store.attrs["env_kwargs"], tracks[0], 2e4)
    for t in range(len(PUSH) - 1):
        pose_colliders(cols, poses[t], poses[t + 1], CONTROL_DT)
        other.step(CONTROL_DT)
    assert np.abs(other.positions() - tracks[-1]).max() > 1e-3


def test_pybullet_backend_pushes_the_block(make_env):
    env = make_env(block_material="jelly", backend="pybullet", obs_mode="state", **FAST)
    _, info0 = _start(env)
    for act in PUSH[:3]:
        _, _, _, _, info = env.step(np.array(act))
    assert np.linalg.norm(info["block_pose"][:2] - info0["block_pose"][:2]) > 0.01
