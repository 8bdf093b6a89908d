"""The scripted pushers, the heuristic and the push-primitive planner on any footprint (Push4D-v0), with the T of
PushT4D-v0 exactly as before: contact candidates on every ring (holes, concave parts), the hand's real outline,
progress on library objects with two grippers, and ``wm4d collect|eval env_id=Push4D-v0``."""

import json

import gymnasium as gym
import numpy as np
import pytest
import shapely

import envs  # noqa: F401
from envs.objects import load_object
from envs.pusht import geometry as geo
from policies.dynamics import OracleDynamics, goal_positions
from policies.footprint import (
    OUTLINE_SPACING,
    PushGeometry,
    object_geometry,
    outline_candidates,
    pusht_geometry,
)
from policies.hand import grow_by_hand, hand_layers, hand_obstacle
from policies.primitives import PrimitiveConfig, PrimitiveMPC
from policies.scripted import HeuristicPushPolicy, RandomPushPolicy, around_block, limit_surface_radius
from worldmodel.cli.main import run_job

SMALL_CLOUD = dict(obs_mode="pointcloud", image_size=48, num_scene_points=256, num_gripper_points=256)


def todays_t_candidates() -> tuple[np.ndarray, np.ndarray]:
    """The T's candidates as the pushers have always made them: per edge of the T's ring, normals oriented by
    probing 1 mm off the outline."""
    v = geo.footprint_vertices()
    pts, nrm = [], []
    for a, b in zip(v[:-1], v[1:], strict=True):
        edge = b - a
        length = np.linalg.norm(edge)
        n = max(1, int(length / OUTLINE_SPACING))
        pts.append(a + ((np.arange(n) + 0.5) / n)[:, None] * edge)
        nrm.append(np.repeat((np.array([edge[1], -edge[0]]) / length)[None], n, axis=0))
    pts, nrm = np.concatenate(pts), np.concatenate(nrm)
    inside = np.array([geo.footprint().contains(shapely.Point(*p)) for p in pts + 1e-3 * nrm])
    nrm[inside] *= -1
    return pts, nrm


def test_the_t_gives_todays_candidates_radius_pushes_and_paths():
    g = pusht_geometry()
    pts, nrm = todays_t_candidates()
    assert np.array_equal(g.outline, pts) and np.array_equal(g.normals, nrm) and len(pts) == 79
    assert np.array_equal(g.contacts, g.outline) and g.hand is None and (g.region == -1).all()
    assert g.radius == limit_surface_radius() == pytest.approx(0.06660954473096171, rel=1e-14)
    assert g.symmetry == 1 and not g.yaw_free
    # Push4D's "T" carries the same footprint and centre of mass: the same (cached) geometry
    env = gym.make("Push4D-v0", object="T", obs_mode="state")
    _, info = env.reset(seed=0)
    env.close()
    assert object_geometry(info) is g and object_geometry({}) is g
    # the heuristic's ranking and the travel around the T, as recorded before any footprint was supported
    idx, ang, length, cost = HeuristicPushPolicy(np.random.default_rng(0)).ranked_pushes(
        np.array([-0.05, 0.03, 0.4]), np.array([0.2, -0.2]), 5)
    assert idx.tolist() == [11, 10, 11, 10, 27] and np.degrees(ang).round(6).tolist() == [20, 20, 0, 0, -20]
    np.testing.assert_allclose(length, 0.06, rtol=1e-14)
    np.testing.assert_allclose(cost, [0.00011952446760973966, 0.00022502849376802373, 0.00028747853810899045,
                                      0.0003503458761540981, 0.00037598859883836844], rtol=1e-9)
    path = np.array(around_block(np.array([0.0, -0.2]), np.array([0.05, 0.35]), np.array([0.0, 0.0, 0.3]), 0.04))
    assert len(path) == 21
    np.testing.assert_allclose(path[[0, 5, -1]], [[-0.011530260026589176, -0.1627258039071071],
                                                  [-0.11748466530734074, -0.056805011455649826], [0.05, 0.35]],
                               atol=1e-12)


def outward(footprint, pts: np.ndarray, nrm: np.ndarray, eps: float = 1e-5) -> tuple[np.ndarray, np.ndarray]:
    """Whether a point ``eps`` along each normal is outside the material, and ``eps`` against it inside."""
    out = ~shapely.contains_xy(footprint, *(pts + eps * nrm).T)
    inside = shapely.contains_xy(footprint, *(pts - eps * nrm).T)
    return out, inside


@pytest.mark.parametrize("name", ["L", "ring", "star/20", "star/22", "U", "duck", "bunny"])
def test_candidates_lie_on_every_ring_with_normals_out_of_the_material(name):
    footprint = load_object(name).footprint
    pts, nrm, region = outline_candidates(footprint)
    boundary = footprint.boundary
    assert shapely.distance(boundary, shapely.points(pts)).max() < 1e-9
    np.testing.assert_allclose(np.linalg.norm(nrm, axis=1), 1.0, atol=1e-12)
    out, inside = outward(footprint, pts, nrm)
    assert out.all() and inside.all(), (name, np.flatnonzero(~(out & inside)))
    assert abs(len(pts) - boundary.length / OUTLINE_SPACING) < 0.1 * len(pts) + 20  # about every 1 cm
    if name in ("L", "U", "star/20", "star/22"):  # concave: some candidates face into a concavity
        assert (shapely.contains_xy(footprint.convex_hull, *(pts + 0.005 * nrm).T) & out).any()


def test_a_holes_candidates_point_into_the_hole_and_are_reached_only_from_inside_it():
    g = PushGeometry.build(load_object("ring").footprint, np.zeros(2))
    hole = g.region == 0
    assert hole.sum() > 20 and (g.region[~hole] == -1).all() and len(g.holes) == 1
    assert np.all(np.sum(g.normals[hole] * -g.outline[hole], axis=1) > 0)  # toward the centre: out of the material
    assert np.all(np.sum(g.normals[~hole] * g.outline[~hole], axis=1) > 0)  # away from it
    pose = np.array([0.05, -0.02, 0.3])
    assert (g.reachable(pose, np.array([0.3, 0.3])) == ~hole).all()
    assert (g.reachable(pose, pose[:2]) == hole).all()  # a hand in the hole
    policy = RandomPushPolicy(np.random.default_rng(0))
    policy.geometry = g
    picks = {policy.choose_push(pose, np.array([0.3, 0.3]))[0] for _ in range(60)}
    assert not picks & set(np.flatnonzero(hole).tolist())
    # a travel from outside to a point outside the ring never cuts across it, nor over the hole
    path = g.travel(pose, np.array([-0.25, 0.0]), np.array([0.3, 0.05]), 0.04)
    placed = g.at(pose)
    assert min(placed.distance(shapely.Point(*p)) for p in path) > 0.02
    assert not any(shapely.contains_xy(shapely.Polygon(placed.interiors[0]), *p) for p in path)


def test_symmetry_and_yaw_free_footprints():
    assert PushGeometry.build(load_object("disk").footprint, np.zeros(2)).yaw_free
    plus = PushGeometry.build(load_object("plus").footprint, np.zeros(2))
    assert plus.symmetry == 4 and not plus.yaw_free
    goals = plus.symmetric_goals(np.array([0.05, -0.02, 0.3]))
    placed = [plus.at(g) for g in goals]
    assert len(goals) == 4 and all(p.symmetric_difference(placed[0]).area < 1e-4 * plus.footprint.area
                                   for p in placed)


def test_the_hand_grows_the_obstacle_and_contacts_lie_on_the_object():
    square = shapely.box(-0.05, -0.05, 0.05, 0.05)
    hand = np.array([[-0.01, -0.02], [0.01, -0.02], [0.01, 0.02], [-0.01, 0.02]])
    grown = hand_obstacle(square, hand)
    assert grown.symmetric_difference(shapely.box(-0.06, -0.07, 0.06, 0.07)).area < 1e-10  # Minkowski sum
    env = gym.make("Push4D-v0", object="duck", gripper="panda_hand", **SMALL_CLOUD)
    obs, info = env.reset(seed=0)
    env.close()
    layers = hand_layers(obs, info)
    assert layers is not None and len(layers) >= 2  # the fingers, then the 20 cm wide hand
    assert np.ptp(layers[-1].outline[:, 1]) > 0.15 > np.ptp(layers[0].outline[:, 1])
    assert hand_layers({k: v for k, v in obs.items() if k != "gripper_points"}, info) is None  # state: a point
    pusht_obs = {("block_pose" if k == "object_pose" else k): v for k, v in obs.items()}
    assert hand_layers(pusht_obs, info) is None  # PushT4D's pushers keep their point hand
    g = object_geometry(info)
    grown = grow_by_hand(g, layers, float(info["object_pose"][2]))
    fp = g.footprint
    assert shapely.distance(fp, shapely.points(grown.contacts)).max() < 1e-6  # touching the object
    assert not shapely.contains_xy(fp, *grown.outline.T).any()  # the fingertip centre stays out of it
    out, _ = outward(grown.obstacle, grown.outline, grown.normals)
    assert out.all()


def near_goal_progress(obj, gripper: str, seed: int, steps: int, **kw) -> tuple[float, float, float, bool]:
    """(start, smallest, final) object distance of a near-goal Push4D episode driven by the heuristic, and whether
    it succeeded (coverage > 0.95: a disk's yaw does not count, its distance keeps its turn)."""
    env = gym.make("Push4D-v0", object=obj, gripper=gripper, start="near_goal", **kw)
    obs, info = env.reset(seed=seed)
    policy = HeuristicPushPolicy(np.random.default_rng(seed))
    start = best = info["object_distance"]
    for _ in range(steps):
        obs, _, terminated, _, info = env.step(policy.act(obs, info))
        best = min(best, info["object_distance"])
        if terminated:
            break
    env.close()
    return start, best, info["object_distance"], bool(info["is_success"])


@pytest.mark.parametrize("gripper", ["panda_hand", "stick"])
@pytest.mark.parametrize("obj", ["L", "disk", {"polygon": [[0, 0], [0.12, 0], [0.06, 0.1]], "height": 0.03}])
def test_the_heuristic_brings_flat_objects_toward_their_goal(obj, gripper):
    start, best, final, success = near_goal_progress(obj, gripper, seed=3, steps=120, obs_mode="state")
    assert success or (best < 0.5 * start and final < 0.8 * start), (start, best, final)
    if obj != "disk":
        assert final < 0.5 * start, (start, best, final)


@pytest.mark.parametrize("gripper", ["panda_hand", "stick"])
def test_the_heuristic_pushes_a_tall_mesh_with_the_hands_real_outline(gripper):
    start, best, final, _ = near_goal_progress("duck", gripper, seed=3, steps=120, **SMALL_CLOUD)
    assert best < 0.5 * start and final < 0.8 * start, (start, best, final)


@pytest.mark.parametrize("gripper", ["stick", "xarm_gripper"])
def test_state_mode_gives_the_grippers_outline_and_the_heuristic_plans_with_it(gripper):
    """Without gripper points (state mode) ``info["gripper_outline"]`` is the contact geometry's outline below the
    object's top: the point-cloud mode's gripper points there lie on or inside it, and the pushers use it."""
    opts = {"object_pose": (0.0, 0.0, 0.0), "ee_xy": (-0.2, 0.1)}
    state = gym.make("Push4D-v0", object="arrow", gripper=gripper, obs_mode="state")
    cloud = gym.make("Push4D-v0", object="arrow", gripper=gripper, obs_mode="pointcloud", num_gripper_points=1024)
    obs, info = state.reset(seed=0, options=opts)
    cobs, cinfo = cloud.reset(seed=0, options=opts)
    assert "gripper_outline" not in cinfo
    outline = shapely.Polygon(info["gripper_outline"])
    grip = cobs["gripper_points"]
    low = grip[grip[:, 2] < cloud.unwrapped.object.height]
    assert len(low) > 20
    assert shapely.distance(outline, shapely.points(low[:, :2] - cobs["agent_pos"])).max() < 1e-3
    (layer,) = hand_layers(obs, info)
    np.testing.assert_array_equal(layer.outline, info["gripper_outline"])
    for env in (state, cloud):
        env.close()
    start, best, final, _ = near_goal_progress("duck", "panda_hand", seed=3, steps=120, obs_mode="state")
    assert best < 0.5 * start and final < 0.8 * start, (start, best, final)


def test_random_pushes_move_every_kind_of_object():
    for obj, gripper, kw in (("L", "stick", {"obs_mode": "state"}), ("ring", "panda_hand", {"obs_mode": "state"}),
                             ("duck", "panda_hand", SMALL_CLOUD)):
        env = gym.make("Push4D-v0", object=obj, gripper=gripper, **kw)
        obs, info = env.reset(seed=4)
        policy = RandomPushPolicy(np.random.default_rng(0))
        start = info["object_points"].copy()
        for _ in range(60):
            obs, _, _, _, info = env.step(policy.act(obs, info))
        env.close()
        assert np.linalg.norm(info["object_points"] - start, axis=1).mean() > 0.01, obj


def test_a_pool_of_objects_gives_each_episode_its_own_geometry():
    env = gym.make("Push4D-v0", object=["L", "disk", "arrow"], obs_mode="state")
    policy = RandomPushPolicy(np.random.default_rng(0))
    seen = {}
    for seed in range(6):
        obs, info = env.reset(seed=seed)
        policy.reset()
        policy.act(obs, info)
        seen[info["object_name"]] = policy.geometry
        assert policy.geometry.footprint.equals(info["object_footprint"])
    env.close()
    assert len(seen) > 1 and len({id(g) for g in seen.values()}) == len(seen)
    assert object_geometry({"object_footprint": info["object_footprint"], "object_com": info["object_com"]}) \
        is seen[info["object_name"]]  # cached per footprint


def test_goal_positions_and_the_heuristic_follow_the_envs_goal():
    goal = (0.06, -0.04, 1.2)
    env = gym.make("Push4D-v0", object="L", obs_mode="state", goal_pose=goal, start="near_goal")
    obs, info = env.reset(seed=1)
    policy = HeuristicPushPolicy(np.random.default_rng(0))
    policy.act(obs, info)
    np.testing.assert_allclose(policy.goal, goal)
    moved = goal_positions(info["object_points"], info["object_pose"], info["goal_pose"])
    np.testing.assert_allclose(moved[:, :2], info["goal_object_points"][:, :2], atol=1e-3)
    env.close()


def test_primitive_mpc_with_the_oracle_brings_a_push4d_object_to_its_goal():
    env = gym.make("Push4D-v0", object="L", gripper="stick", obs_mode="state", start="near_goal")
    obs, info = env.reset(seed=0, options={"object_pose": (-0.05, 0.02, np.pi / 4 + 0.3), "ee_xy": (-0.25, 0.0)})
    policy = PrimitiveMPC(OracleDynamics(env), np.random.default_rng(0),
                          PrimitiveConfig(samples=8, prior_samples=8, refine=4, elites=4))
    start = info["object_distance"]
    for _ in range(60):
        obs, _, terminated, _, info = env.step(policy.act(obs, info))
        if terminated:
            break
    policy.dynamics.close()
    env.close()
    assert info["object_distance"] < 0.5 * start, (start, info["object_distance"])


def test_wm4d_collect_and_eval_push4d(tmp_path):
    from robots.transforms import pose_matrix
    from worldmodel.data import PointFlowDataset, RolloutStore

    out = tmp_path / "p.zarr"
    run_job("collect", ["env_id=Push4D-v0", "env.object=L", "env.gripper=stick", "policy=heuristic", "episodes=2",
                        "max_steps=8", "env.image_size=48", "env.num_scene_points=128", "env.num_gripper_points=32",
                        f"out={out}"])
    store = RolloutStore(out)
    assert {"object_pose", "object_pose7", "scene_obj_coords"} <= set(store.keys)
    assert not {"block_pose", "block_pose7"} & set(store.keys)
    kwargs = store.attrs["env_kwargs"]
    assert (kwargs["object"], kwargs["gripper"], store.attrs["env_id"]) == ("L", "stick", "Push4D-v0")
    ep = store.episode(0)
    T = pose_matrix(ep["object_pose7"][3])
    labelled = ep["scene_labels"][3] == 1
    np.testing.assert_allclose(ep["scene_obj_coords"][3][labelled] @ T[:3, :3].T + T[:3, 3],
                               ep["scene_points"][3][labelled], atol=1e-5)
    data = PointFlowDataset(out, horizon=3, split="all")
    assert len(data) == 2 * (8 - 3) and data[0]["target"].shape == (3, 128, 3)
    with pytest.raises(ValueError, match="env_kwargs.object"):  # the object is part of the store's identity
        run_job("collect", ["env_id=Push4D-v0", "env.object=disk", "env.gripper=stick", "policy=heuristic",
                            "episodes=3", "max_steps=8", "env.image_size=48", "env.num_scene_points=128",
                            "env.num_gripper_points=32", f"out={out}", "resume=true"])
    run_job("eval", ["env_id=Push4D-v0", "planner=heuristic", "env.object={polygon: [[0, 0], [0.12, 0], [0.06, 0.1]]}",
                     "env.obs_mode=state", "episodes=2", "max_steps=30", "videos=0", f"out={tmp_path / 'e'}"])
    summary = json.loads((tmp_path / "e" / "summary.json").read_text())
    assert summary["episodes"] == 2 and summary["env_id"] == "Push4D-v0" and summary["env"]["start"] == "near_goal"
    assert summary["env"]["object"] == {"polygon": [[0, 0], [0.12, 0], [0.06, 0.1]]}
    (name,) = summary["per_object"]  # each episode's row names its object; the summary groups by it
    assert summary["per_object"][name]["episodes"] == 2
    assert summary["per_object"][name]["pc_success"] == summary["pc_success"]


def test_push_primitive_actions_push_the_episodes_object():
    from policies.push_actions import PushPrimitiveActions

    env = PushPrimitiveActions(gym.make("Push4D-v0", object="arrow", gripper="stick", obs_mode="state"))
    _, info = env.reset(seed=0, options={"object_pose": (0.0, 0.0, 0.0), "ee_xy": (-0.3, 0.3)})
    assert env.geometry.footprint.equals(info["object_footprint"])
    contact, u, _ = env.decode([1.0, 0.0, 0.0, 0.0])  # along +x through the centre of mass: enters at the tail
    np.testing.assert_allclose(u, [1.0, 0.0])
    assert abs(contact[0] - info["object_footprint"].bounds[0]) < 1e-9
    start = info["object_pose"].copy()
    _, _, _, _, info = env.step([1.0, 0.0, 0.0, 0.0])
    assert 0.005 < info["object_pose"][0] - start[0] < 0.1 and abs(info["object_pose"][1] - start[1]) < 0.02
    env.close()
