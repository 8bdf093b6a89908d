"""Push4D-v0's factors of variation (``randomize=``, DESIGN §12): drawn per reset, reported, and in effect."""

import gymnasium as gym
import mujoco
import numpy as np
import pybullet as pb
import pytest
from shapely.affinity import scale as scale_geometry

import envs  # noqa: F401
from envs.push.factors import FACTORS
from robots.transforms import pose_matrix

BACKENDS = ("mujoco", "pybullet")
SMALL = dict(image_size=48, num_scene_points=128, num_gripper_points=32)
ALL = dict(scale=[0.8, 1.25], mass=[0.3, 2.0], friction=[0.2, 1.2], object_color=True,
           table_color=[[0.2, 0.3, 0.4], [0.9, 0.8, 0.1, 1.0]], light=True, camera_pose=0.05,
           gripper=["panda_hand", "stick"])
GOAL = (0.0, 0.0, np.pi / 4)
START = {"object_pose": (0.0, 0.0, 0.3), "ee_xy": (-0.2, 0.02)}


def make(backend="mujoco", **kw):
    return gym.make("Push4D-v0", backend=backend, **kw).unwrapped


def push_along_x(env, steps=15):
    """Step the tool from (-0.2, 0) to (0.05, 0) (toward an object at the origin); the object poses (steps, 7)."""
    return np.array([env.step(np.array([x, 0.0], np.float32))[4]["object_pose7"]
                     for x in np.linspace(-0.2, 0.05, steps)])


@pytest.mark.parametrize("backend", BACKENDS)
def test_same_seed_same_factors_and_observations(backend):
    kw = dict(object=["L", "plus"], obs_mode="pointcloud", randomize=ALL, backend=backend, **SMALL)
    a, b = make(**kw), make(**kw)
    reports = []
    for seed in (0, 1, 2):
        (oa, ia), (ob, ib) = a.reset(seed=seed), b.reset(seed=seed)
        assert ia["randomization"] == ib["randomization"]
        assert sorted(ia["randomization"]) == sorted(
            ["scale", "mass", "friction", "object_color", "table_color", "light_direction", "light_intensity",
             "camera_offsets", "gripper"])
        reports.append(ia["randomization"])
        for _ in range(2):
            for k in oa:
                np.testing.assert_array_equal(oa[k], ob[k], err_msg=k)
            action = a.action_space.sample()
            oa, _, _, _, ia = a.step(action)
            ob, _, _, _, ib = b.step(action)
            assert ia["randomization"] == reports[-1]  # every step, the episode's values
        assert a.observation_space.contains(oa)
    for key in ("scale", "mass", "friction", "light_intensity"):  # different seeds, different factors
        assert len({r[key] for r in reports}) == 3, key
    a.close()
    b.close()


@pytest.mark.parametrize("backend", BACKENDS)
def test_scale_follows_exactly(backend):
    base = make(backend, object="L", obs_mode="state")
    env = make(backend, object="L", obs_mode="pointcloud", randomize={"scale": [0.6, 1.5]}, image_size=64,
               num_scene_points=512)
    scales = []
    for seed in (0, 1):
        obs, info = env.reset(seed=seed, options={"object_pose": GOAL, "ee_xy": (-0.35, -0.35)})
        s = info["randomization"]["scale"]
        scales.append(s)
        assert env.object.footprint.area == pytest.approx(s**2 * base.object.footprint.area, rel=1e-12)
        assert env.object.footprint.equals_exact(scale_geometry(base.object.footprint, s, s, origin=(0, 0)), 1e-12)
        np.testing.assert_allclose(env.object_local, s * base.object_local, atol=1e-12)
        np.testing.assert_allclose(info["goal_object_points"], info["object_points"], atol=2e-3)
        assert info["coverage"] > 0.999 and info["is_success"]
        # the engine holds the scaled body: it rests on the table, and the cameras see it as tall as it is
        assert abs(info["object_pose7"][2]) < 2e-3
        top = obs["scene_points"][obs["scene_labels"] == 1][:, 2].max()
        assert abs(top - s * base.object.height) < 4e-3, (top, s * base.object.height)
    assert abs(scales[0] - scales[1]) > 0.05
    _, info = env.reset(seed=3, options=START)
    T0_inv, p0 = np.linalg.inv(pose_matrix(info["object_pose7"])), info["object_points"].astype(np.float64)
    for x in np.linspace(-0.2, 0.05, 12):  # pushed: the tracks stay exact, p_t = T_t T_0^-1 p_0
        _, _, _, _, info = env.step(np.array([x, 0.0], np.float32))
        T = pose_matrix(info["object_pose7"]) @ T0_inv
        np.testing.assert_allclose(info["object_points"], p0 @ T[:3, :3].T + T[:3, 3], atol=1e-5)
    assert np.linalg.norm(info["object_points"] - p0, axis=1).mean() > 0.005
    base.close()
    env.close()


def engine_mass(env) -> tuple[float, np.ndarray, float, float]:
    """(mass, principal moments sorted, table friction, wall friction) of the free body as the engine has them."""
    sim = env.sim
    if env.backend_name == "mujoco":
        b = mujoco.mj_name2id(sim.model, mujoco.mjtObj.mjOBJ_BODY, "object")
        f = sim.model.geom_friction
        table = mujoco.mj_name2id(sim.model, mujoco.mjtObj.mjOBJ_GEOM, "table")
        wall = mujoco.mj_name2id(sim.model, mujoco.mjtObj.mjOBJ_GEOM, "wall_east")
        return float(sim.model.body_mass[b]), np.sort(sim.model.body_inertia[b]), f[table, 0], f[wall, 0]
    mass, wall_friction, moments = pb.getDynamicsInfo(sim.body, -1, physicsClientId=sim.client)[:3]
    wall = pb.getDynamicsInfo(sim._statics[1], -1, physicsClientId=sim.client)[1]
    return mass, np.sort(moments), sim.scene.static_friction, wall


@pytest.mark.parametrize("backend", BACKENDS)
def test_mass_and_friction_reach_the_engine(backend):
    base = make(backend, object="L", obs_mode="state")
    env = make(backend, object="L", obs_mode="state", randomize={"mass": [0.2, 3.0], "friction": [0.1, 1.5]})
    for seed in (0, 1, 2):
        _, info = env.reset(seed=seed)
        r = info["randomization"]
        mass, moments, table, wall = engine_mass(env)
        assert mass == pytest.approx(r["mass"], rel=1e-9)
        expected = np.linalg.eigvalsh(base.object.inertia) * r["mass"] / base.object.mass  # same shape
        np.testing.assert_allclose(moments, expected, rtol=1e-6)
        assert table == pytest.approx(r["friction"], rel=1e-12) and wall == pytest.approx(r["friction"], rel=1e-12)
    base.close()
    env.close()


def test_in_place_mass_and_friction_equal_a_built_engine():
    """MuJoCo: a drawn mass / friction gives the trajectory of an engine built with it (PyBullet's pushes are
    chaotic at 1e-12 kg, so its values are checked in the engine only)."""
    def run(**kw):
        env = make("mujoco", obs_mode="state", **kw)
        env.reset(seed=0, options=START)
        poses = push_along_x(env)
        env.close()
        return poses

    np.testing.assert_allclose(run(object="L", randomize={"mass": [1.5, 1.5]}),
                               run(object={"name": "L", "mass": 1.5}), atol=1e-8)
    np.testing.assert_array_equal(run(object="L", randomize={"friction": [0.8, 0.8]}), run(object="L", friction=0.8))


@pytest.mark.parametrize("backend", BACKENDS)
def test_heavier_object_moves_less(backend):
    moved = []
    for mass in (0.3, 30.0):  # 30 kg takes ~150 N to slide: more than the gripper's 100 N push limit
        env = make(backend, object="L", obs_mode="state", randomize={"mass": [mass, mass]})
        env.reset(seed=0, options=START)
        poses = push_along_x(env)
        moved.append(np.linalg.norm(poses[-1, :2] - poses[0, :2]))
        env.close()
    assert moved[0] > 0.03 and moved[1] < 0.005, moved


@pytest.mark.parametrize("backend", BACKENDS)
def test_colours_and_light_change_the_pixels(backend):
    kw = dict(object="L", obs_mode="rgbd", image_size=64, backend=backend)
    red, blue = [0.9, 0.1, 0.1], [0.1, 0.2, 0.9]
    plain, painted, lit = (make(**kw), make(**kw, randomize={"object_color": [red], "table_color": [blue]}),
                           make(**kw, randomize={"light": True}))
    options = {"object_pose": (0.05, 0.0, 0.3), "ee_xy": (-0.3, -0.3)}
    o0, _ = plain.reset(seed=0, options=options)
    o1, i1 = painted.reset(seed=0, options=options)
    o2, i2 = lit.reset(seed=0, options=options)
    assert i1["randomization"] == {"object_color": red + [1.0], "table_color": blue + [1.0]}
    for o in (o1, o2):  # colours and light change the colours only
        np.testing.assert_array_equal(o["depth"], o0["depth"])
        np.testing.assert_array_equal(o["segmentation"], o0["segmentation"])
    seg = o0["segmentation"]
    on_object, on_table = seg == 1, (seg == 0) & (o0["depth"] > 0)
    assert on_object.sum() > 20
    for mask, color in ((on_object, red), (on_table, blue)):
        before, after = o0["rgb"][mask].mean(0) / 255, o1["rgb"][mask].mean(0) / 255
        assert np.linalg.norm(after - color) < np.linalg.norm(before - color) - 0.2, (before, after, color)
        assert np.argmax(after) == np.argmax(color)
    d, k = np.array(i2["randomization"]["light_direction"]), i2["randomization"]["light_intensity"]
    assert abs(np.linalg.norm(d) - 1) < 1e-9 and d[2] < -0.49 and 0.5 <= k <= 1.5
    assert np.abs(o2["rgb"].astype(float) - o0["rgb"]).mean() > 1.0
    for env in (plain, painted, lit):
        env.close()


@pytest.mark.parametrize("backend", BACKENDS)
def test_camera_jitter_moves_cameras_and_the_cloud_stays_on_the_table(backend):
    jitter = 0.08
    env = make(backend, object="L", obs_mode="all", randomize={"camera_pose": jitter}, image_size=64,
               num_scene_points=256, render_mode="rgb_array", render_size=40)
    base = np.stack([c.cam2world for c in env.cameras])
    depths = []
    for seed in (0, 1):
        obs, info = env.reset(seed=seed)
        offsets = np.array(info["randomization"]["camera_offsets"])
        eyes = obs["cam2world"][:, :3, 3].astype(float)
        np.testing.assert_allclose(eyes - base[:, :3, 3], offsets, atol=1e-6)
        assert np.all(np.linalg.norm(offsets, axis=1) <= jitter + 1e-12) and np.all(np.linalg.norm(offsets, axis=1)
                                                                                    > 0)
        for T in obs["cam2world"].astype(float):  # each still looks at the table's centre
            axis = T[:3, 2]
            assert np.linalg.norm(np.cross(axis, -T[:3, 3])) < 1e-5 * np.linalg.norm(T[:3, 3])
        np.testing.assert_allclose(env.fuser.cam2world, obs["cam2world"], atol=1e-6)
        np.testing.assert_allclose([c.cam2world for c in env.render_cameras], obs["cam2world"], atol=1e-6)
        table = obs["scene_points"][obs["scene_labels"] == 0]
        assert len(table) > 100 and np.abs(table[:, 2]).max() < 3e-3
        assert env.render().shape == (40, 2 * 40, 3)
        depths.append(obs["depth"])
    assert np.abs(depths[0] - depths[1]).max() > 0.01
    env.close()


def test_drawn_grippers_change_gripper_points():
    env = make("mujoco", object="L", obs_mode="pointcloud", randomize={"gripper": ["panda_hand", "stick"]}, **SMALL)
    spread = {}
    for seed in range(6):
        obs, info = env.reset(seed=seed)
        name = info["randomization"]["gripper"]
        assert env.robot.name == name and env.observation_space.contains(obs)
        reach = np.linalg.norm(obs["gripper_points"][:, :2] - obs["agent_pos"], axis=1).max()
        spread.setdefault(name, set()).add(round(float(reach), 4))
        if name == "stick":
            assert reach < 0.0105 and np.all(obs["qpos"][2:] == 0)  # a 1 cm cylinder; no joints: padded
    assert set(spread) == {"panda_hand", "stick"} and min(spread["panda_hand"]) > 0.03
    env.close()


@pytest.mark.parametrize("backend", BACKENDS)
def test_randomize_none_changes_nothing(backend):
    kw = dict(object="L", obs_mode="pointcloud", backend=backend, **SMALL)
    a, b = make(**kw), make(**kw, randomize={})
    for seed in (0, 1):
        (oa, ia), (ob, ib) = a.reset(seed=seed), b.reset(seed=seed)
        for _ in range(2):
            assert ia["randomization"] == {} and ib["randomization"] == {}
            for k in oa:
                np.testing.assert_array_equal(oa[k], ob[k], err_msg=k)
            action = a.action_space.sample()
            (oa, _, _, _, ia), (ob, _, _, _, ib) = a.step(action), b.step(action)
    a.close()
    b.close()
    # factors drawn at the values the scene was built with leave the simulation as it was
    neutral = {"friction": [0.5, 0.5], "mass": [a.object.mass] * 2, "object_color": [list(a.object.color)]}
    runs = []
    for randomize in (None, neutral):
        env = make(backend, object="L", obs_mode="state", randomize=randomize)
        env.reset(seed=0, options=START)
        runs.append(push_along_x(env, 8))
        env.close()
    np.testing.assert_array_equal(*runs)


def test_snapshot_brings_back_the_episode_setting():
    randomize = dict(scale=[0.7, 1.3], object_color=True, camera_pose=0.05, gripper=["panda_hand", "stick"])
    env = make("mujoco", object="L", obs_mode="pointcloud", randomize=randomize, **SMALL)
    env.reset(seed=0)
    env.step(np.array([0.0, 0.0], np.float32))
    snapshot, scale = env.get_state(), env.object.scale
    expected = env.step(np.array([0.1, 0.1], np.float32))[0]
    env.reset(seed=5)
    assert env.object.scale != scale
    env.set_state(snapshot)
    assert env.object.scale == scale
    obs = env.step(np.array([0.1, 0.1], np.float32))[0]
    for k in expected:
        np.testing.assert_array_equal(obs[k], expected[k], err_msg=k)
    env.close()


@pytest.mark.parametrize(("randomize", "kwargs", "match"), [
    ({"size": [1, 2]}, {}, r"unknown randomize factor\(s\) \['size'\]; allowed: \['scale'"),
    ([("scale", [1, 2])], {}, "randomize must be None or a dict"),
    ({"scale": [0.0, 1.0]}, {}, r"randomize\['scale'\] must be a range \[lo, hi\] with 0 < lo <= hi"),
    ({"scale": [1.2, 1.0]}, {}, r"randomize\['scale'\] must be a range"),
    ({"scale": 1.2}, {}, r"randomize\['scale'\] must be a range"),
    ({"mass": [1, "2"]}, {}, r"randomize\['mass'\] must be a range .*kg"),
    ({"friction": [0.1, np.inf]}, {}, r"randomize\['friction'\] must be a range"),
    ({"object_color": [1.0, 0.0, 0.0]}, {}, r"randomize\['object_color'\] must be True .* list of colours"),
    ({"table_color": [[1.2, 0.0, 0.0]]}, {}, r"randomize\['table_color'\] must be True"),
    ({"light": "yes"}, {}, r"randomize\['light'\] must be True"),
    ({"camera_pose": -0.1}, {}, r"randomize\['camera_pose'\] must be the cameras' position jitter in metres"),
    ({"camera_pose": 1.0}, {}, r"randomize\['camera_pose'\]"),
    ({"gripper": []}, {}, r"randomize\['gripper'\] must be a non-empty list"),
    ({"gripper": "stick"}, {}, r"randomize\['gripper'\] must be a non-empty list"),
    ({"gripper": ["stick", "hook"]}, {}, "unknown gripper 'hook'"),
    ({"gripper": ["stick"]}, {"robot": "panda"}, r"randomize\['gripper'\] needs robot=None"),
])
def test_bad_factors_raise(randomize, kwargs, match):
    with pytest.raises(ValueError, match=match):
        gym.make("Push4D-v0", object="L", obs_mode="state", randomize=randomize, **kwargs)


def test_factor_names_are_the_documented_ones():
    assert FACTORS == ("scale", "mass", "friction", "object_color", "table_color", "light", "camera_pose", "gripper")
    doc = type(make("mujoco", object="L", obs_mode="state")).__doc__
    assert all(f'"{name}"' in doc for name in FACTORS)
