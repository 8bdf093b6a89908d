"""Push4D-v0 with an MPM object (``material`` != "rigid"): any polygon or mesh filled with particles, its mass,
coverage against shapely, exact tracks, the replay contract and bad input."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
import shapely
import trimesh
from gymnasium.utils.env_checker import check_env

from envs.push import Push4DEnv
from envs.push.deformable import DeformablePush4DEnv, replay_solver
from envs.push.mpm_object import DEFAULT_SPACING, pose_colliders
from robots.control import CONTROL_DT

TRIANGLE = {"polygon": [[0.0, 0.0], [0.12, 0.0], [0.06, 0.1]], "height": 0.04}
# coarse particles (8 mm) and a soft jelly keep every step well under a second
FAST = dict(gripper="stick", particle_spacing=0.008, youngs_modulus=5e3, image_size=48, num_scene_points=256,
            num_gripper_points=64, num_object_points=64)


def _push(env: gym.Env, steps: int = 6) -> dict:
    """The stick from 0.12 m left of the object's frame along +x, slightly above its centre line."""
    info = {}
    for k in range(steps):
        _, _, _, _, info = env.step(np.array([-0.12 + 0.03 * (k + 1), 0.03]))
    return info


def test_a_users_mesh_is_filled_at_the_default_spacing_with_its_mass(tmp_path):
    box = trimesh.creation.box((0.1, 0.06, 0.04))
    box.apply_translation((0.0, 0.0, 0.02))
    path = tmp_path / "box.obj"
    box.export(path)
    env = gym.make("Push4D-v0", object={"mesh": str(path), "mass": 0.3}, material="jelly", obs_mode="state")
    u = env.unwrapped
    assert isinstance(u, DeformablePush4DEnv) and u.mpm_config.spacing == DEFAULT_SPACING
    assert len(u.rest_local) == pytest.approx(box.volume / DEFAULT_SPACING**3, rel=0.05)
    assert np.all(u.rest_local.min(0) > [-0.05, -0.03, 0.0]) and np.all(u.rest_local.max(0) < [0.05, 0.03, 0.04])
    _, info = env.reset(seed=0, options={"object_pose": (0.0, 0.0, 0.0), "ee_xy": (-0.2, 0.0)})
    assert u.mpm.masses().sum() == pytest.approx(0.3, rel=1e-5)
    info = _push(env, 2)  # two steps at the default resolution
    assert np.all(np.isfinite(info["tracks"])) and info["tracks"].shape == (len(u.rest_local), 3)
    env.close()


@pytest.mark.parametrize("pose", [(0.0, 0.0, np.pi / 4), (0.03, -0.02, 0.5), (-0.1, 0.1, 2.0)])
def test_coverage_of_the_particles_matches_shapely_and_tracks_are_the_particles(pose):
    env = gym.make("Push4D-v0", object=TRIANGLE, material="plasticine", obs_mode="pointcloud", **FAST)
    obs, info = env.reset(seed=0, options={"object_pose": pose, "ee_xy": (0.35, 0.35)})
    u = env.unwrapped
    goal = u.object.footprint_at(u.goal_pose)
    exact = goal.intersection(u.object.footprint_at(np.array(pose))).area / goal.area
    assert abs(info["coverage"] - exact) < 0.05, (info["coverage"], exact)  # 8 mm particles
    np.testing.assert_allclose(info["object_pose"], pose, atol=1e-5)  # Kabsch of the undeformed object
    np.testing.assert_array_equal(info["object_points"], info["tracks"][u.track_index])
    ids, labels = info["scene_track_ids"], obs["scene_labels"]
    assert np.all((ids >= 0) == (labels == 1)) and np.any(labels == 1)
    if pose[2] == np.pi / 4:  # at the goal: the tracked particles are their goal positions
        assert info["is_success"]
        np.testing.assert_allclose(info["object_points"], info["goal_object_points"], atol=1e-6)
    env.close()


def test_the_stick_pushes_the_object_and_a_replay_reproduces_the_tracks():
    env = gym.make("Push4D-v0", object="L", material="jelly", obs_mode="state", **FAST)
    _, info = env.reset(seed=0, options={"object_pose": (0.0, 0.0, 0.0), "ee_xy": (-0.12, 0.03)})
    tracks, colliders = [info["tracks"]], [info["collider_poses"]]
    for k in range(6):
        _, _, _, _, info = env.step(np.array([-0.12 + 0.03 * (k + 1), 0.03]))
        tracks.append(info["tracks"])
        colliders.append(info["collider_poses"])
    assert info["object_pose"][0] > 0.01  # pushed along +x
    u = env.unwrapped
    kwargs = {"object": "L", "gripper": "stick", "material": "jelly", "particle_spacing": 0.008}
    solver, cols = replay_solver(kwargs, tracks[0], 5e3)
    assert len(cols) == len(u.robot.gripper_links) == colliders[0].shape[0]
    for t in range(6):
        pose_colliders(cols, colliders[t], colliders[t + 1], CONTROL_DT)
        solver.step(CONTROL_DT)
    np.testing.assert_allclose(solver.positions(), tracks[-1], atol=1e-5)
    env.close()


def test_same_seed_same_observations_and_check_env():
    a, b = (gym.make("Push4D-v0", object=TRIANGLE, material="sand", start="near_goal", **FAST) for _ in range(2))
    for env in (a, b):
        env.reset(seed=5)
    oa, ob = (_push(env, 2) for env in (a, b))
    np.testing.assert_array_equal(oa["tracks"], ob["tracks"])
    check_env(a.unwrapped, skip_render_check=True)
    for env in (a, b):
        env.close()


def test_bad_material_input_is_refused():
    with pytest.raises(ValueError, match="allowed"):
        gym.make("Push4D-v0", object="L", material="steel")
    with pytest.raises(ValueError, match="picks the class"):
        Push4DEnv(object="L", material="jelly")
    with pytest.raises(ValueError, match="randomize"):
        gym.make("Push4D-v0", object="L", material="jelly", randomize={"scale": [0.9, 1.1]})
    with pytest.raises(ValueError, match="one object"):
        gym.make("Push4D-v0", object=["L", "disk"], material="jelly")
    with pytest.raises(ValueError, match="domain_size"):
        gym.make("Push4D-v0", object="L", material="jelly", domain_size=0.1)
    with pytest.raises(ValueError, match="particle_spacing"):
        gym.make("Push4D-v0", object="L", material="jelly", particle_spacing=0.5)
    with pytest.raises(ValueError, match="youngs_modulus"):
        gym.make("Push4D-v0", object="L", material="jelly", youngs_modulus=-1.0)


def test_a_large_object_gets_a_domain_that_holds_it():
    big = {"polygon": [[-0.15, -0.1], [0.15, -0.1], [0.15, 0.1], [-0.15, 0.1]], "height": 0.03}
    env = gym.make("Push4D-v0", object=big, material="jelly", obs_mode="state", particle_spacing=0.01)
    diameter = float(np.hypot(0.3, 0.2))
    assert env.unwrapped.mpm_config.domain_size >= diameter + 0.06 - 1e-9
    assert shapely.box(-0.15, -0.1, 0.15, 0.1).equals(env.unwrapped.object.footprint)
    env.close()
