"""Push-primitive MPC: proposals, adapters started after a travel, and closed-loop progress."""

import gymnasium as gym
import numpy as np
import pytest
import torch

import envs  # noqa: F401
from policies.dynamics import OracleDynamics
from policies.primitives import PrimitiveConfig, PrimitiveMPC
from policies.scripted import HeuristicPushPolicy, push_direction, travel
from robots.gripper_points import finite_difference_motion
from worldmodel.dynamics import LearnedDynamics
from worldmodel.models import PointNetFlow


def point_error(info: dict) -> float:
    return float(np.linalg.norm(info["object_points"] - info["goal_object_points"], axis=1).mean())


def test_ranked_pushes_are_sorted_and_the_heuristic_takes_the_first():
    pose, ee = np.array([-0.05, 0.03, 0.4]), np.array([0.2, -0.2])
    pol = HeuristicPushPolicy(np.random.default_rng(0))
    idx, ang, length, cost = pol.ranked_pushes(pose, ee, 20)
    assert np.all(np.diff(cost) >= 0) and np.isfinite(cost).all()
    assert set(np.round(np.degrees(ang))) <= {-20.0, 0.0, 20.0} and np.all(length > 0)
    i, u, L = HeuristicPushPolicy(np.random.default_rng(0)).choose_push(pose, ee)
    assert (i, L) == (idx[0], length[0])
    np.testing.assert_allclose(u, push_direction(pose, pol.normals[idx[:1]], ang[:1])[0])
    assert abs(np.linalg.norm(u) - 1) < 1e-12
    picks = {HeuristicPushPolicy(np.random.default_rng(s), explore_top_k=8).choose_push(pose, ee)[0] for s in range(12)}
    assert len(picks) > 1 and picks <= set(idx[:8].tolist())
    with pytest.raises(ValueError, match="explore_top_k"):
        HeuristicPushPolicy(np.random.default_rng(0), explore_top_k=0)


def test_push_directions_point_into_the_block():
    pol = HeuristicPushPolicy(np.random.default_rng(0))
    pose = np.array([0.1, -0.05, 1.0])
    u = push_direction(pose, pol.normals, np.zeros(len(pol.normals)))
    n_world = pol.normals @ np.array([[np.cos(1.0), -np.sin(1.0)], [np.sin(1.0), np.cos(1.0)]]).T
    np.testing.assert_allclose(np.sum(u * n_world, axis=1), -1.0, atol=1e-12)


@pytest.fixture(scope="module")
def env(near_goal_cloud_env):
    return near_goal_cloud_env


def test_learned_dynamics_starts_plans_where_the_travel_ends(env):
    obs, info = env.reset(seed=3)
    torch.manual_seed(0)
    model = PointNetFlow(horizon=3, width=16, use_velocity=True)
    dyn = LearnedDynamics(model, max_speed=0.5)
    start = torch.tensor([[0.1, -0.1], [-0.05, 0.12]])
    targets = start[:, None] + torch.tensor([0.01, 0.0]) * torch.arange(1, 4)[:, None]
    pred = dyn.rollout(obs, info, targets, start_xy=start)
    block = obs["scene_labels"] == 1
    assert pred.spread.shape == (2,) and bool(torch.all(pred.spread > 0))  # the model's own error estimate (m)
    for k in range(2):  # a dataset-style sample with the gripper carried to start k, the block at rest
        path = np.concatenate([start[k : k + 1].numpy(), targets[k].numpy()])
        grip = obs["gripper_points"][None] + np.pad(path - obs["agent_pos"], ((0, 0), (0, 1)))[:, None]
        vel, acc = finite_difference_motion(grip, 0.1)
        batch = {"scene_points": obs["scene_points"], "scene_colors": obs["scene_colors"],
                 "scene_normals": obs["scene_normals"], "gripper_points": grip, "gripper_velocity": vel,
                 "gripper_acceleration": acc, "previous_displacement": np.zeros_like(obs["scene_points"])}
        with torch.no_grad():
            flow, _ = model({k_: torch.as_tensor(v, dtype=torch.float32)[None] for k_, v in batch.items()})
        expected = torch.as_tensor(obs["scene_points"])[block] + flow[0][:, torch.from_numpy(block)]
        torch.testing.assert_close(pred.points[k], expected, atol=1e-5, rtol=1e-5)


def test_oracle_dynamics_travels_around_the_block_before_the_plan(env):
    obs, info = env.reset(seed=4, options={"block_pose": (0.0, 0.0, 0.0), "ee_xy": (0.0, -0.2)})
    oracle = OracleDynamics(env)
    start = torch.tensor([[0.0, 0.25]])  # the far side: a straight line would cross the T
    hold = start[:, None].expand(1, 3, 2)
    pred = oracle.rollout(obs, info, hold, start_xy=start)
    # the travel went around: the block is where it was, and the twin's hand is at the start
    np.testing.assert_allclose(pred.points[0, -1].numpy(), info["object_points"], atol=2e-3)
    assert np.linalg.norm(oracle.twin.sim.tcp_xy() - start[0].numpy()) < 0.01
    oracle.close()


def oracle_planner_episode(cfg: PrimitiveConfig, prepare=lambda policy: None) -> PrimitiveMPC:
    """Run `PrimitiveMPC` with the simulator oracle from a fixed near-goal start (floating hand) for up to 60
    steps, after ``prepare(policy)``; assert it brought the block points within 0.3x their starting error."""
    e = gym.make("PushT4D-v0", robot="panda_hand", obs_mode="state", start="near_goal")
    obs, info = e.reset(seed=0, options={"block_pose": (-0.06, 0.0, np.pi / 4), "ee_xy": (-0.2, -0.05)})
    policy = PrimitiveMPC(OracleDynamics(e), np.random.default_rng(0), cfg)
    prepare(policy)
    start = point_error(info)
    for _ in range(60):
        obs, _, terminated, _, info = e.step(policy.act(obs, info))
        if terminated:
            break
    e.close()
    assert point_error(info) < 0.3 * start, (start, point_error(info))
    return policy


def test_primitive_mpc_with_the_oracle_brings_the_block_to_the_goal():
    policy = oracle_planner_episode(PrimitiveConfig(samples=8, prior_samples=8, refine=4, elites=4))
    assert len(policy.replan_seconds) >= 2 and policy.last_plan["points"].shape[0] == 1


def test_primitive_config_rejects_bad_settings():
    for bad in ({"samples": -1}, {"elites": 0}, {"samples": 2, "prior_samples": 2, "elites": 5},
                {"min_length": 0.2}, {"max_angle_deg": 95.0}, {"settle_steps": -1}):
        with pytest.raises(ValueError):
            PrimitiveConfig(**bad)


def test_wm4d_eval_runs_primitive_mpc(tmp_path):
    import json

    from worldmodel.cli.main import run_job

    run_job("eval", ["planner=primitive", "dynamics=oracle", "env.obs_mode=state", "env.robot=panda_hand", "episodes=1",
                     "max_steps=12", "videos=0", "planner.cfg.samples=4", "planner.cfg.prior_samples=4",
                     "planner.cfg.refine=2", "planner.cfg.elites=2", f"out={tmp_path}"])
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["planner"] == "PrimitiveMPC" and summary["episodes"] == 1 and summary["seconds_per_replan"] > 0


def test_the_default_planner_samples_its_own_pushes_in_cem_rounds(monkeypatch):
    assert PrimitiveConfig().prior_samples == 0  # DESIGN §13: the heuristic's proposals are an option, off
    scored = []

    def no_heuristic(*args, **kwargs):
        raise AssertionError("the default planner asked the heuristic for proposals")

    def prepare(policy):
        monkeypatch.setattr(policy.prior, "ranked_pushes", no_heuristic)
        score = policy._score
        monkeypatch.setattr(policy, "_score", lambda *a: scored.append(len(a[2])) or score(*a))

    oracle_planner_episode(PrimitiveConfig(samples=8, refine=4, rounds=3, elites=4), prepare)
    assert scored[:4] == [8, 4, 4, 4]  # the random pushes, then three refinement rounds


def test_the_cost_steers_away_from_pushes_the_model_cannot_predict():
    from policies.mpc import FlowCost
    from worldmodel.dynamics import Prediction

    pts = torch.zeros(2, 3, 5, 3)
    pred = Prediction(pts, torch.zeros(5, 3), spread=torch.tensor([0.001, 0.02]))
    targets, start = torch.zeros(2, 3, 2), torch.zeros(2)
    base = FlowCost(reach_weight=0.0)(pred, targets, start, 0.05)
    cautious = FlowCost(reach_weight=0.0, uncertainty_weight=0.5)(pred, targets, start, 0.05)
    torch.testing.assert_close(cautious - base, 0.5 * pred.spread)
    exact = Prediction(pts, torch.zeros(5, 3))  # the simulator: no spread, no penalty
    torch.testing.assert_close(FlowCost(uncertainty_weight=0.5)(exact, targets, start, 0.05),
                               FlowCost()(exact, targets, start, 0.05))


def test_a_short_push_takes_the_hands_front_millimetres_past_the_contact(env):
    """The fingers reach centimetres ahead of the fingertip centre; a push is measured from the hand's front, so
    a 4 mm push ends with the front 4 mm past the contact and moves the block by millimetres, not centimetres."""
    obs, info = env.reset(seed=5, options={"block_pose": (0.0, 0.0, 0.0), "ee_xy": (0.0, -0.2)})
    policy = PrimitiveMPC(OracleDynamics(env), np.random.default_rng(0))
    policy.act(obs, info)  # sees the gripper points
    pose = np.asarray(obs["block_pose"], float)
    i = int(np.argmin(policy.outline[:, 1]))  # the stem's bottom: a push straight up (+y)
    u = push_direction(pose, policy.normals[i : i + 1], np.zeros(1))[0]
    np.testing.assert_allclose(u, [0.0, 1.0], atol=1e-9)
    contact = policy.outline[i]
    pre, push = policy.push_path(pose, i, u, 0.004)
    grip = np.asarray(obs["gripper_points"], float)
    low = grip[grip[:, 2] < obs["scene_points"][obs["scene_labels"] == 1][:, 2].max() + 0.005]
    front = float(((low[:, :2] - obs["agent_pos"]) @ u).max())
    assert 0.005 < front < 0.05  # the fingers lead the centre
    assert abs(float((push[-1] - contact) @ u) + front - 0.004) < 1e-9  # the front ends 4 mm past the contact
    assert abs(float((contact - pre) @ u) - front - policy.standoff) < 1e-9  # ... and starts standoff behind it
    start = info["object_points"].copy()
    for target in [*travel(pose, obs["agent_pos"], pre, policy.step), *push, push[-1], push[-1]]:
        obs, _, _, _, info = env.step(target.astype(np.float32))
    moved = np.linalg.norm(info["object_points"] - start, axis=1)
    assert 0.001 < moved.mean() < 0.008, moved.mean()  # pushed, by millimetres
    policy.dynamics.close()


def test_commit_steps_cut_the_push_and_a_cut_push_goes_on_without_travelling(monkeypatch):
    pose, ee = np.array([0.0, 0.0, 0.3]), np.array([0.15, -0.2])
    whole = PrimitiveMPC(None, np.random.default_rng(0))
    i = 5
    u = push_direction(pose, whole.contact_geometry(pose).normals[i : i + 1], np.zeros(1))[0]
    pre, push = whole.push_path(pose, i, u, 0.08)
    travel = whole.contact_geometry(pose).travel(pose, ee, pre, whole.step)
    for policy in (whole, cut := PrimitiveMPC(None, np.random.default_rng(0), PrimitiveConfig(commit_steps=2))):
        monkeypatch.setattr(policy, "choose_push", lambda p, e: (i, u, 0.08))
        policy.plan(pose, ee)
    assert len(whole._queue) == len(travel) + len(push)  # commit_steps=0: the whole push
    first = next(k for k, p in enumerate(push) if (p - pre) @ u >= cut.standoff - 0.005)  # the front reaches the block
    assert first + 2 < len(push) and len(cut._queue) == len(travel) + first + 2
    np.testing.assert_allclose(cut._queue[-1], push[first + 1])
    # the object went ahead of the hand; the same push replanned there goes on from the hand, no travel back
    hand = cut._queue[-1].copy()
    moved = pose + np.array([*(u * ((hand - pre) @ u - cut.standoff + 0.002)), 0.0])  # contact 2 mm ahead
    cut._queue.clear()
    cut.plan(moved, hand)
    ahead = [(t - hand) @ u for t in cut._queue]
    assert len(cut._queue) <= 3 and 0 < ahead[0] <= cut.step + 1e-9 and np.all(np.diff(ahead) > 0)
    assert np.allclose([np.cross(u, t - hand) for t in cut._queue], 0.0, atol=1e-9)  # along the same line
    # a hand past the contact (the object behind it) travels round as usual
    cut._queue.clear()
    cut.plan(pose, hand)
    assert len(cut._queue) > 3
    with pytest.raises(ValueError, match="commit_steps"):
        PrimitiveConfig(commit_steps=-1)
