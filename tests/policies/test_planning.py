"""Planning: CEM/MPPI optimise known costs, dynamics adapters agree with the simulator and the
dataset's features, MPC with the oracle improves coverage, and wm4d eval resumes and shards."""

import json

import gymnasium as gym
import numpy as np
import pytest
import torch

import envs  # noqa: F401
from envs.pusht import geometry as geo
from policies.dynamics import OracleDynamics, goal_positions
from policies.mpc import FlowCost, MPCPolicy
from policies.planners import CEM, MPPI, PlannerConfig
from robots.gripper_points import finite_difference_motion
from worldmodel.cli.jobs.eval import summarise, wilson_interval
from worldmodel.cli.main import run_job
from worldmodel.dynamics import LearnedDynamics, fingertip_path
from worldmodel.models import PointNetFlow


@pytest.mark.parametrize("planner", [CEM, MPPI])
def test_planners_reach_the_minimum_of_a_known_cost(planner):
    goal = torch.tensor([0.12, -0.05])
    cfg = PlannerConfig(horizon=6, samples=128, iterations=8, init_std=0.03, max_step=0.05)
    p = planner(cfg, torch.Generator().manual_seed(1))

    def cost(targets):  # reach the goal at the end, with the least path length
        return (targets[:, -1] - goal).norm(dim=-1) + 0.01 * torch.diff(targets, dim=1).norm(dim=-1).sum(1)

    plan, c = p.plan(torch.zeros(2), cost)
    assert plan.shape == (6, 2)
    assert (plan[-1] - goal).norm() < 0.01 and c < 0.02
    moves = torch.diff(plan, dim=0, prepend=torch.zeros(1, 2))
    assert moves.norm(dim=-1).max() <= 0.05 + 1e-6  # the hand's speed limit


def test_samples_are_capped_correlated_and_warm_started():
    cfg = PlannerConfig(horizon=8, samples=4000, smoothness=0.8, max_step=1.0)
    p = CEM(cfg, torch.Generator().manual_seed(0))
    moves = p.sample(torch.full((8, 2), 0.01))
    assert torch.equal(moves[0], torch.zeros(8, 2))  # the mean is always a candidate
    x = moves[1:, :, 0]
    corr = torch.corrcoef(torch.stack([x[:, 3], x[:, 4]]))[0, 1]
    assert abs(corr - 0.8) < 0.05 and abs(x[:, 5].std() - 0.01) < 0.001  # AR(1), stationary std
    capped = CEM(PlannerConfig(horizon=3, max_step=0.02), torch.Generator().manual_seed(0))
    assert capped.sample(torch.full((3, 2), 1.0)).norm(dim=-1).max() <= 0.02 + 1e-7
    p.mean = torch.arange(16.0).view(8, 2)
    p.shift(3)
    assert torch.equal(p.mean[:5], torch.arange(6.0, 16.0).view(5, 2)) and not p.mean[5:].any()
    with pytest.raises(ValueError, match="elites"):
        PlannerConfig(samples=4, elites=8)


def test_fingertip_path_and_goal_positions():
    path = fingertip_path(torch.zeros(2), torch.tensor([[[0.12, 0.0], [0.12, 0.0], [0.12, 0.0], [0.0, 0.0]]]), 0.05)
    torch.testing.assert_close(path[0, :, 0], torch.tensor([0.05, 0.10, 0.12, 0.07]))
    pose = np.array([0.1, -0.2, 0.7])
    local = np.random.default_rng(0).uniform(-0.05, 0.05, (20, 3))
    world = local @ geo.rot_z(pose[2]).T + np.array([pose[0], pose[1], 0.0])
    expected = local @ geo.rot_z(geo.GOAL_POSE[2]).T + np.array([geo.GOAL_POSE[0], geo.GOAL_POSE[1], 0.0])
    np.testing.assert_allclose(goal_positions(world, pose), expected, atol=1e-12)


@pytest.fixture(scope="module")
def env(near_goal_cloud_env):
    return near_goal_cloud_env


def test_learned_dynamics_matches_the_dataset_features_and_chains_chunks(env):
    obs, info = env.reset(seed=3)
    torch.manual_seed(0)
    model = PointNetFlow(horizon=4, width=16)
    dyn = LearnedDynamics(model, max_speed=0.5)
    targets = torch.as_tensor(obs["agent_pos"]) + torch.tensor([0.03, 0.0]) * torch.arange(1, 5)[:, None]
    pred = dyn.rollout(obs, info, targets[None].float())
    block = obs["scene_labels"] == 1
    assert pred.points.shape == (1, 4, int(block.sum()), 3) and pred.goal.shape == (int(block.sum()), 3)
    # the same prediction from a dataset-style sample: gripper points translated along the path
    path = np.concatenate([obs["agent_pos"][None], targets.numpy()])
    grip = obs["gripper_points"][None] + np.pad(path - path[0], ((0, 0), (0, 1)))[:, None]
    vel, acc = finite_difference_motion(grip, 0.1)
    batch = {"scene_points": obs["scene_points"], "scene_colors": obs["scene_colors"],
             "scene_normals": obs["scene_normals"], "gripper_points": grip, "gripper_velocity": vel,
             "gripper_acceleration": acc}
    with torch.no_grad():
        flow, _ = model({k: torch.as_tensor(v, dtype=torch.float32)[None] for k, v in batch.items()})
    expected = torch.as_tensor(obs["scene_points"])[block] + flow[0][:, torch.from_numpy(block)]
    torch.testing.assert_close(pred.points[0], expected, atol=1e-5, rtol=1e-5)
    long = dyn.rollout(obs, info, targets.repeat(2, 1)[None].expand(3, 8, 2).float())
    assert long.points.shape == (3, 8, int(block.sum()), 3)
    torch.testing.assert_close(long.points[:, :4], pred.points.expand(3, -1, -1, -1), atol=1e-5, rtol=1e-5)


def test_oracle_dynamics_replays_the_simulator_and_leaves_the_env_untouched(env):
    obs, info = env.reset(seed=5)
    oracle = OracleDynamics(env)
    block = info["block_pose"].copy()
    targets = torch.tensor(np.linspace(obs["agent_pos"], info["block_pose"][:2], 6)[1:])[None].float()
    pred = oracle.rollout(obs, info, targets.expand(2, -1, -1))
    np.testing.assert_allclose(env.unwrapped.sim.body_pose7()[:2], info["block_pose7"][:2])
    assert np.allclose(info["block_pose"], block)
    for t in range(5):  # the real env, stepped with the same targets, follows the oracle's tracks
        _, _, _, _, info_t = env.step(targets[0, t].numpy())
        np.testing.assert_allclose(pred.points[0, t].numpy(), info_t["object_points"], atol=1e-5)
    torch.testing.assert_close(pred.points[0], pred.points[1])
    oracle.close()


def test_oracle_dynamics_of_a_deformable_block_is_its_own_mpm_twin():
    import gymnasium as gym

    env = gym.make("PushT4D-v0", obs_mode="state", robot="panda_hand", block_material="jelly",
                   block_particle_spacing=0.008)
    obs, info = env.reset(seed=0, options={"block_pose": (0.0, 0.0, 0.0), "ee_xy": (0.0, -0.05)})
    oracle = OracleDynamics(env)
    assert oracle.twin.spec.kwargs["block_material"] == "jelly"
    targets = torch.tensor([[0.0, -0.03], [0.0, -0.01], [0.0, 0.01]])[None].float()  # into the bar
    pred = oracle.rollout(obs, info, targets)
    for t in range(3):
        _, _, _, _, info_t = env.step(targets[0, t].numpy())
        np.testing.assert_allclose(pred.points[0, t].numpy(), info_t["object_points"], atol=1e-5)
    assert np.linalg.norm(info_t["object_points"] - info["object_points"], axis=1).max() > 0.003  # pushed
    oracle.close()
    env.close()


def test_mpc_with_the_oracle_brings_the_block_toward_the_goal():
    e = gym.make("PushT4D-v0", robot="panda_hand", obs_mode="state", start="near_goal")
    obs, info = e.reset(seed=0, options={"block_pose": (-0.06, 0.0, np.pi / 4), "ee_xy": (-0.2, -0.05)})
    planner = CEM(PlannerConfig(horizon=5, samples=16, iterations=2, elites=4), torch.Generator().manual_seed(0))
    policy = MPCPolicy(OracleDynamics(e), planner, FlowCost(), execute_steps=2)
    start = np.linalg.norm(info["object_points"] - info["goal_object_points"], axis=1).mean()
    for _ in range(24):
        obs, _, terminated, _, info = e.step(policy.act(obs, info))
        if terminated:
            break
    end = np.linalg.norm(info["object_points"] - info["goal_object_points"], axis=1).mean()
    assert end < 0.5 * start, (start, end)
    assert len(policy.replan_seconds) >= 1 and policy.last_plan["points"].shape[0] == 5
    e.close()


def test_wilson_interval_and_summary():
    lo, hi = wilson_interval(5, 10)
    assert lo == pytest.approx(0.2366, abs=1e-4) and hi == pytest.approx(0.7634, abs=1e-4)
    s = summarise([{"success": True, "max_reward": 1.0, "final_coverage": 0.96, "replan_seconds": [0.1, 0.3]},
                   {"success": False, "max_reward": 0.5, "final_coverage": 0.4}])
    assert s["episodes"] == 2 and s["pc_success"] == 0.5 and s["avg_max_reward"] == 0.75
    assert s["seconds_per_replan"] == pytest.approx(0.2)


def test_wm4d_eval_resumes_and_shards(tmp_path):
    args = ["planner=heuristic", "episodes=3", "max_steps=15", "videos=1", "env.obs_mode=state", f"out={tmp_path}"]
    run_job("eval", args + ["shard=1/2"])
    rows = [json.loads(line) for line in (tmp_path / "episodes.jsonl").read_text().splitlines()]
    assert [r["episode"] for r in rows] == [1]
    run_job("eval", args)  # the rest; episode 1 is not rerun
    run_job("eval", args)  # nothing left to do
    rows = [json.loads(line) for line in (tmp_path / "episodes.jsonl").read_text().splitlines()]
    assert sorted(r["episode"] for r in rows) == [0, 1, 2]
    summary = json.loads((tmp_path / "summary.json").read_text())
    for key in ("episodes", "pc_success", "pc_success_ci95", "avg_max_reward", "final_coverage_mean",
                "seconds_per_replan"):
        assert key in summary
    assert summary["episodes"] == 3 and (tmp_path / "coverage.png").exists()
    assert len(list(tmp_path.glob("episode_*.mp4"))) >= 1
    with pytest.raises(ValueError, match="shard"):
        run_job("eval", args + ["shard=2/2"])


def test_learned_dynamics_feeds_the_block_motion_of_the_last_steps(env):
    obs, info = env.reset(seed=0, options={"block_pose": (0.0, 0.0, 0.0), "ee_xy": (0.0, -0.08)})
    dyn = LearnedDynamics(PointNetFlow(horizon=2, width=16, use_velocity=True, history=2))
    assert dyn.past == ["previous_displacement", "earlier_displacement"]
    dyn.observe(obs, info)
    assert not dyn.previous_displacement(obs).any()  # an episode's first step: no motion known
    tracks = [info["object_points"]]
    for target in ((0.0, -0.02), (0.0, 0.03), (0.0, 0.05)):  # the later steps push the bar's edge
        obs, _, _, _, info = env.step(np.array(target))
        dyn.observe(obs, info)
        tracks.append(info["object_points"])
    moved, earlier = tracks[-1] - tracks[-2], tracks[-2] - tracks[-3]  # exact tracks of the same material points
    assert np.linalg.norm(moved, axis=1).max() > 1e-3 and np.linalg.norm(earlier, axis=1).max() > 1e-3
    as_scene = {"scene_points": tracks[-1], "scene_labels": np.ones(len(moved), int)}
    np.testing.assert_allclose(dyn.previous_displacement(as_scene), moved, atol=1e-6)
    np.testing.assert_allclose(dyn.previous_displacement(as_scene, lag=2), earlier, atol=1e-6)
    static = dyn.previous_displacement(obs)[obs["scene_labels"] == 0]
    assert not static.any()
    pred = dyn.rollout(obs, info, torch.tensor([[[0.0, 0.05], [0.0, 0.07], [0.0, 0.09]]]))
    assert pred.points.shape[:2] == (1, 3) and torch.isfinite(pred.points).all()  # chained chunks
    dyn.reset()
    assert not dyn.previous_displacement(obs).any()
