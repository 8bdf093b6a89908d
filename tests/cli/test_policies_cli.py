"""Scripted policies and the wm4d command line (collect, resume)."""

import numpy as np
import pytest

from envs.pusht import geometry as geo
from policies import HeuristicPushPolicy, RandomPushPolicy, make_policy
from policies.scripted import around_block, outline_candidates
from worldmodel.cli.main import run_job
from worldmodel.data import RolloutStore


def test_outline_normals_point_outward():
    pts, nrm = outline_candidates()
    poly = geo.footprint()
    import shapely

    assert all(not poly.contains(shapely.Point(*(p + 2e-3 * n))) for p, n in zip(pts, nrm, strict=True))
    assert all(poly.contains(shapely.Point(*(p - 2e-3 * n))) for p, n in zip(pts, nrm, strict=True))


def test_paths_go_around_the_block():
    pose = np.array([0.0, 0.0, 0.3])
    path = around_block(np.array([0.0, -0.2]), np.array([0.05, 0.35]), pose, step=0.04)
    poly = geo.footprint_at(pose)
    import shapely

    assert all(poly.distance(shapely.Point(*p)) > 0.02 for p in path)
    assert np.max(np.linalg.norm(np.diff(np.array(path), axis=0), axis=1)) <= 0.04 + 1e-9


def test_heuristic_reaches_the_goal(make_env):
    env = make_env(robot="panda_hand", obs_mode="state")
    successes = 0
    for seed in range(6):
        obs, info = env.reset(seed=seed)
        policy = HeuristicPushPolicy(np.random.default_rng(seed))
        for _ in range(300):
            obs, _, term, _, info = env.step(policy.act(obs, info))
            if term:
                successes += 1
                break
    assert successes >= 4  # 88% over 100 held-out seeds (benchmarks/eval_heuristic.py)


def test_pushed_twist_closed_forms():
    from policies.scripted import pushed_twist

    c = 0.05
    # pushing through the centre of mass: pure translation along the push
    V = pushed_twist(np.array([[-0.1, 0.0]]), np.array([[1.0, 0.0]]), c)
    np.testing.assert_allclose(V, [[1.0, 0.0, 0.0]], atol=1e-12)
    # pushing perpendicular to the lever arm r: the contact point moves exactly with the pusher
    r, u = np.array([[0.0, -0.08]]), np.array([[1.0, 0.0]])
    V = pushed_twist(r, u, c)
    contact_velocity = V[0, :2] + V[0, 2] * np.array([-r[0, 1], r[0, 0]])
    np.testing.assert_allclose(contact_velocity, u[0], atol=1e-12)
    assert V[0, 2] > 0  # pushing +x below the centre turns the body counter-clockwise


def test_random_push_touches_the_block(make_env):
    env = make_env(robot="panda_hand", obs_mode="state")
    obs, info = env.reset(seed=4)
    policy = RandomPushPolicy(np.random.default_rng(0))
    start = info["block_pose"].copy()
    for _ in range(60):
        obs, *_ = env.step(policy.act(obs))
    assert np.linalg.norm(obs["block_pose"][:2] - start[:2]) > 0.01
    with pytest.raises(ValueError, match="policy"):
        make_policy("dance", np.random.default_rng(0))


def test_collect_and_resume(tmp_path):
    out = str(tmp_path / "c.zarr")
    args = ["env.robot=panda_hand", "env.obs_mode=state", "max_steps=8", "seed=7", f"out={out}"]
    run_job("collect", args + ["episodes=2"])
    first = RolloutStore(out)
    assert first.num_episodes == 2 and first.num_steps == 16
    run_job("collect", args + ["episodes=3", "resume=true"])
    store = RolloutStore(out)
    assert store.num_episodes == 3
    np.testing.assert_array_equal(store.episode(1)["action"], first.episode(1)["action"])
    ref = str(tmp_path / "ref.zarr")
    run_job("collect", ["env.robot=panda_hand", "env.obs_mode=state", "max_steps=8", "seed=7", f"out={ref}",
                        "episodes=3"])
    np.testing.assert_array_equal(RolloutStore(ref).array("block_pose"), store.array("block_pose"))
    with pytest.raises(ValueError, match="unknown job"):
        run_job("dance")


def test_collect_names_the_backend(tmp_path):
    out = str(tmp_path / "pb.zarr")
    run_job("collect", ["env.robot=panda_hand", "env.backend=pybullet", "max_steps=5", "episodes=1", f"out={out}"])
    store = RolloutStore(out)
    assert store.attrs["env_kwargs"]["backend"] == "pybullet" and "backend" not in store.attrs  # one owner
    assert store.num_steps == 5 and np.isfinite(store.array("scene_points")).all()
