"""Push4D-v0: any object, any gripper, exact tracks and footprint coverage (DESIGN §12)."""

import gymnasium as gym
import numpy as np
import pytest
import shapely
import trimesh
from gymnasium.utils.env_checker import check_env
from shapely import affinity

import envs  # noqa: F401
from robots.transforms import pose_matrix

L_POLYGON = [[0.0, 0.0], [0.12, 0.0], [0.12, 0.04], [0.04, 0.04], [0.04, 0.14], [0.0, 0.14]]


def hidden_gripper_urdf(tmp_path) -> dict:
    """A gripper the library does not hold: a box palm with two cylinder fingers (primitives only)."""
    path = tmp_path / "claw.urdf"
    path.write_text("""<?xml version="1.0"?>
<robot name="claw">
  <link name="palm"><visual><geometry><box size="0.06 0.03 0.02"/></geometry></visual>
    <collision><geometry><box size="0.06 0.03 0.02"/></geometry></collision>
    <inertial><mass value="0.3"/><inertia ixx="1e-4" iyy="1e-4" izz="1e-4" ixy="0" ixz="0" iyz="0"/></inertial></link>
  <link name="finger_a"><visual><geometry><cylinder radius="0.008" length="0.05"/></geometry></visual>
    <collision><geometry><cylinder radius="0.008" length="0.05"/></geometry></collision>
    <inertial><mass value="0.05"/><inertia ixx="1e-5" iyy="1e-5" izz="1e-5" ixy="0" ixz="0" iyz="0"/></inertial></link>
  <link name="finger_b"><visual><geometry><cylinder radius="0.008" length="0.05"/></geometry></visual>
    <collision><geometry><cylinder radius="0.008" length="0.05"/></geometry></collision>
    <inertial><mass value="0.05"/><inertia ixx="1e-5" iyy="1e-5" izz="1e-5" ixy="0" ixz="0" iyz="0"/></inertial></link>
  <joint name="a" type="fixed"><parent link="palm"/><child link="finger_a"/><origin xyz="0.02 0 0.035"/></joint>
  <joint name="b" type="fixed"><parent link="palm"/><child link="finger_b"/><origin xyz="-0.02 0 0.035"/></joint>
</robot>
""")
    return {"urdf": str(path), "links": ["palm", "finger_a", "finger_b"], "tcp_link": "palm", "tcp_offset": 0.06}


def hidden_mesh(tmp_path) -> str:
    """A mesh the library does not hold: a hexagonal prism with a notch, written as an OBJ file (metres)."""
    angles = np.linspace(0, 2 * np.pi, 7)[:-1]
    hexagon = shapely.Polygon(np.c_[0.07 * np.cos(angles), 0.07 * np.sin(angles)])
    shape = hexagon.difference(shapely.box(0.03, -0.015, 0.08, 0.015))
    mesh = trimesh.creation.extrude_polygon(shape, 0.035)
    mesh.apply_translation([0.01, -0.02, 0.005])  # the file's own frame: not centred, not on the table
    path = tmp_path / "notched_hexagon.obj"
    mesh.export(path)
    return str(path)


def independent_coverage(footprint: shapely.Geometry, pose, goal) -> float:
    """Coverage from shapely alone: rotate in degrees about the origin, then translate."""
    def place(p):
        return affinity.translate(affinity.rotate(footprint, np.degrees(p[2]), origin=(0, 0)), p[0], p[1])
    g = place(goal)
    return g.intersection(place(pose)).area / g.area


@pytest.mark.parametrize("obj", ["L", "ring", {"polygon": L_POLYGON, "height": 0.03}])
def test_check_env_and_exact_tracks_for_polygons(obj):
    env = gym.make("Push4D-v0", object=obj, obs_mode="state")
    check_env(env.unwrapped, skip_render_check=True)
    obs, info = env.reset(seed=1)
    T0_inv = np.linalg.inv(pose_matrix(info["object_pose7"]))
    p0 = info["object_points"].astype(np.float64)
    rng = np.random.default_rng(0)
    moved = 0.0
    for _ in range(25):  # push toward the object: it moves and turns
        target = obs["object_pose"][:2] + rng.normal(0, 0.02, 2)
        obs, _, terminated, truncated, info = env.step(target.astype(np.float32))
        T = pose_matrix(info["object_pose7"]) @ T0_inv
        np.testing.assert_allclose(info["object_points"], p0 @ T[:3, :3].T + T[:3, 3], atol=1e-5)
        moved = max(moved, float(np.linalg.norm(info["object_points"] - p0, axis=1).mean()))
        if terminated or truncated:
            break
    assert moved > 0.005
    env.close()


def test_coverage_matches_shapely_for_shapes_and_poses():
    env = gym.make("Push4D-v0", object={"polygon": L_POLYGON, "height": 0.03}, obs_mode="state",
                   goal_pose=(0.05, -0.02, 0.3)).unwrapped
    footprint = shapely.Polygon(L_POLYGON)
    rng = np.random.default_rng(3)
    for _ in range(20):
        pose = np.array([*rng.uniform(-0.1, 0.1, 2), rng.uniform(-np.pi, np.pi)])
        assert abs(env.coverage(pose) - independent_coverage(footprint, pose, (0.05, -0.02, 0.3))) < 1e-9
    assert env.coverage(np.array([0.05, -0.02, 0.3])) == pytest.approx(1.0)
    ring = gym.make("Push4D-v0", object="ring", obs_mode="state").unwrapped
    fp = ring.object.footprint
    assert len(fp.interiors) == 1  # the hole counts: a ring shifted by its inner radius covers little of its goal
    for pose in ([0.0, 0.0, 0.0], [0.02, 0.01, 1.0], [-0.05, 0.03, -2.0]):
        assert abs(ring.coverage(np.array(pose)) - independent_coverage(fp, pose, ring.goal_pose)) < 1e-9
    env.close()
    ring.close()


@pytest.mark.parametrize("backend", ["mujoco", "pybullet"])
def test_hidden_mesh_and_hidden_gripper(tmp_path, backend):
    spec = hidden_gripper_urdf(tmp_path)
    env = gym.make("Push4D-v0", object=hidden_mesh(tmp_path), gripper=spec, backend=backend,
                   obs_mode="pointcloud", image_size=64, num_scene_points=256, num_gripper_points=64)
    check_env(env.unwrapped, skip_render_check=True)
    obs, info = env.reset(seed=0, options={"object_pose": (0.0, 0.0, 0.0), "ee_xy": (-0.2, 0.0)})
    mesh = env.unwrapped.object.mesh
    assert abs(mesh.bounds[0, 2]) < 1e-9  # the file's frame shifted along z only: lowest point on the table
    assert abs(info["object_pose7"][2]) < 0.002 and "notched_hexagon" in info["object_name"]
    assert (obs["scene_labels"] == 1).sum() > 10
    # the gripper points lie on the hidden gripper's boxes and cylinders (placed by the simulated tool pose)
    tcp = np.r_[obs["agent_pos"], 0.01]
    local = obs["gripper_points"] - tcp
    palm = (np.abs(local[:, 0]) <= 0.03 + 1e-3) & (np.abs(local[:, 1]) <= 0.015 + 1e-3)
    assert palm.all()
    assert local[:, 2].min() > -1e-3 and local[:, 2].max() < 0.08
    p0 = info["object_points"].copy()
    for x in np.linspace(-0.2, -0.02, 12):  # a straight push along +x
        obs, _, _, _, info = env.step(np.array([x, 0.0], np.float32))
    dx = info["object_points"][:, 0].mean() - p0[:, 0].mean()
    assert 0.005 < dx < 0.06, dx
    assert abs(info["object_pose"][2]) < 0.5
    env.close()


def test_same_seed_same_object_and_observations():
    kw = dict(object=["L", "plus", "disk", "arrow"], obs_mode="pointcloud", image_size=48, num_scene_points=128,
              num_gripper_points=32)
    a, b = gym.make("Push4D-v0", **kw), gym.make("Push4D-v0", **kw)
    names = []
    for seed in (0, 1, 2, 3):
        (oa, ia), (ob, ib) = a.reset(seed=seed), b.reset(seed=seed)
        assert ia["object_name"] == ib["object_name"]
        names.append(ia["object_name"])
        for k in oa:
            np.testing.assert_array_equal(oa[k], ob[k])
    assert len(set(names)) > 1
    a.close()
    b.close()


def test_near_goal_start_and_success_signal():
    env = gym.make("Push4D-v0", object="plus", start="near_goal", obs_mode="state", goal_pose=(0.1, 0.05, 0.5))
    for seed in range(5):
        _, info = env.reset(seed=seed)
        d = np.linalg.norm(info["object_pose"][:2] - np.array([0.1, 0.05]))
        assert d <= 0.05 + 1e-9
        assert info["object_distance"] == pytest.approx(
            float(np.linalg.norm(info["object_points"] - info["goal_object_points"], axis=1).mean()))
    _, info = env.reset(seed=0, options={"object_pose": (0.1, 0.05, 0.5), "ee_xy": (-0.3, -0.3)})
    assert info["coverage"] > 0.95 and info["is_success"] and info["object_distance"] < 0.003
    env.close()


def test_bad_input_is_refused(tmp_path):
    with pytest.raises(ValueError, match="no such|not found|does not exist"):
        gym.make("Push4D-v0", object=str(tmp_path / "missing.obj"))
    with pytest.raises(ValueError, match="self-intersect|invalid|valid"):
        gym.make("Push4D-v0", object={"polygon": [[0, 0], [0.1, 0.1], [0.1, 0], [0, 0.1]], "height": 0.03})
    with pytest.raises(ValueError, match="robot='panda'"):
        gym.make("Push4D-v0", robot="panda", gripper="stick")
    with pytest.raises(ValueError, match="goal_pose"):
        gym.make("Push4D-v0", object="L", goal_pose=(0.42, 0.0, 0.0))
    with pytest.raises(ValueError, match="links|not in"):
        gym.make("Push4D-v0", gripper={"urdf": hidden_gripper_urdf(tmp_path)["urdf"], "links": ["nope"],
                                       "tcp_link": "palm"})
    env = gym.make("Push4D-v0", object="L", obs_mode="state")
    with pytest.raises(ValueError, match="past a wall"):
        env.reset(seed=0, options={"object_pose": (0.41, 0.0, 0.0)})
    with pytest.raises(ValueError, match="object"):
        env.reset(seed=0, options={"block_pose": (0.0, 0.0, 0.0)})
    env.close()


def test_videos_shade_the_objects_goal_footprint():
    from envs.overlay import goal_polygon

    env = gym.make("Push4D-v0", object={"polygon": L_POLYGON, "height": 0.03}, obs_mode="state",
                   goal_pose=(0.05, -0.02, 0.3))
    outline = goal_polygon(env)
    expected = affinity.translate(affinity.rotate(shapely.Polygon(L_POLYGON), 0.3, origin=(0, 0), use_radians=True),
                                  0.05, -0.02)
    assert shapely.Polygon(outline).symmetric_difference(expected).area < 1e-12
    env.close()


@pytest.mark.parametrize("name", ["jenga", "torus", "mug"])
@pytest.mark.parametrize("gripper", ["stick", "panda_hand"])
def test_mesh_objects_move_alike_in_both_engines_on_a_straight_push(name, gripper):
    """A 12 cm push along +x through the centre of mass of a pybullet_data mesh (the torus and the mug as V-HACD
    convex pieces): both engines end within 5 mm and 0.1 rad of each other, the object moved 8-14 cm."""
    ends = []
    for backend in ("mujoco", "pybullet"):
        env = gym.make("Push4D-v0", object=name, gripper=gripper, backend=backend, obs_mode="state")
        com = env.unwrapped.object.com
        _, info = env.reset(seed=0, options={"object_pose": (-com[0], -com[1], 0.0), "ee_xy": (-0.2, 0.0)})
        for k in range(12):
            _, _, _, _, info = env.step(np.array([-0.2 + 0.02 * (k + 1), 0.0]))
        ends.append(info["object_pose"])
        env.close()
    (mj, pb) = ends
    assert 0.08 < mj[0] + com[0] < 0.14, mj
    assert np.hypot(*(mj[:2] - pb[:2])) < 0.005, (mj, pb)
    assert abs(mj[2] - pb[2]) < 0.1, (mj, pb)
