"""Bad input gets a clear error and changes nothing; no action at any accepted speed moves the block through a wall.

The fuzz tests draw their bad inputs from a seeded numpy Generator; every one must raise an error
whose message names the argument, leave the env's state as it was, and the env must step a valid
action right after. ``_distinct`` counts the inputs by their type and repr.
"""

from __future__ import annotations

from functools import partial

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.error import ClosedEnvironmentError, ResetNeeded

import envs  # noqa: F401  (registers the tasks)
from envs.pusht import geometry as geo
from envs.robot_setup import MAX_SPEED
from robots.transforms import pose_matrix

HALF = geo.WORKSPACE / 2
BACKENDS = ("mujoco", "pybullet")
ROBOTS = ("panda_hand", "panda")


def _distinct(values: list) -> list:
    """``values`` without repeats (compared by type and repr)."""
    seen, out = set(), []
    for v in values:
        key = f"{type(v).__name__}:{v!r}"
        if key not in seen:
            seen.add(key)
            out.append(v)
    return out


def _word(rng: np.random.Generator) -> str:
    return "".join(rng.choice(list("abcdefghijklmnopqrstuvwxyz_"), size=int(rng.integers(1, 9))))


def bad_actions(rng: np.random.Generator, size: int, count: int) -> list:
    """``count`` distinct actions that are not ``size`` finite real numbers."""
    out: list = [None, "", b"\x00", {}, [], {"x": 0.1}, object(), np.zeros(size, dtype=object), [[0.1], [0.2, 0.3]]]
    while len(_distinct(out)) < count:
        kind = int(rng.integers(8))
        v = rng.uniform(-1, 1, size).round(3)
        if kind == 0:  # NaN or inf somewhere
            v[rng.integers(size)] = rng.choice([np.nan, np.inf, -np.inf])
            out.append(v.astype(rng.choice([np.float32, np.float64])))
        elif kind == 1:  # a wrong shape
            shape = tuple(int(n) for n in rng.integers(0, 4, size=int(rng.integers(0, 4))))
            if shape != (size,):
                out.append(rng.uniform(-0.3, 0.3, shape).round(3))
        elif kind == 2:  # numbers as strings
            out.append([str(x) for x in v] if rng.random() < 0.5 else np.array([str(x) for x in v]))
        elif kind == 3:  # booleans
            out.append(list(rng.random(size) < 0.5) if rng.random() < 0.5 else rng.random(size) < 0.5)
        elif kind == 4:  # complex numbers, even with no imaginary part
            out.append(v + 1j * rng.integers(0, 2, size))
        elif kind == 5:  # one entry of the wrong kind
            w = [float(x) for x in v]
            w[int(rng.integers(size))] = [None, "0.1", True, 1j, (0.1,)][int(rng.integers(5))]
            out.append(w)
        elif kind == 6:  # a plain number or string where a vector is due
            out.append(float(v[0]) if rng.random() < 0.5 else _word(rng))
        else:  # a vector too long or too short by one
            out.append(rng.uniform(-0.3, 0.3, size + rng.choice([-1, 1])).round(3))
    return _distinct(out)[:count]


@pytest.fixture(scope="module")
def state_envs():
    """One state-mode PushT4D-v0 per backend (floating hand), reset."""
    made = {b: gym.make("PushT4D-v0", obs_mode="state", robot="panda_hand", backend=b) for b in BACKENDS}
    for env in made.values():
        env.reset(seed=0)
    yield made
    for env in made.values():
        env.close()


def _snapshot(env) -> np.ndarray:
    sim = env.unwrapped.sim
    return np.concatenate([sim.body_pose7(), sim.tcp_xy(), sim.robot_qpos()])


def _step_valid(env, rng: np.random.Generator) -> None:
    obs, *_ = env.step(env.action_space.sample() * 0.5 if rng.random() < 0.5 else np.zeros(2, np.float32))
    assert env.observation_space.contains(obs)


@pytest.mark.parametrize("backend", BACKENDS)
def test_fuzzed_bad_actions_raise_and_change_nothing(state_envs, backend):
    env, rng = state_envs[backend], np.random.default_rng(18)
    env.action_space.seed(18)
    actions = bad_actions(rng, 2, 70)
    assert len(actions) == 70
    for bad in actions:
        before = _snapshot(env)
        with pytest.raises(ValueError, match=r"^action must"):
            env.step(bad)
        np.testing.assert_array_equal(_snapshot(env), before)
        _step_valid(env, rng)


def test_fuzzed_bad_poke_actions_raise_and_change_nothing():
    env, rng = gym.make("Poke4D-v0", obs_mode="state"), np.random.default_rng(19)
    env.reset(seed=0)
    for bad in bad_actions(rng, 3, 40):
        before = env.unwrapped.get_state()
        with pytest.raises(ValueError, match=r"^action must"):
            env.step(bad)
        for a, b in zip(env.unwrapped.get_state(), before, strict=True):
            np.testing.assert_array_equal(a, b)
        env.step(np.array([0.1, 0.1, 0.2], np.float32))
    env.close()


def bad_reset_options(rng: np.random.Generator, count: int) -> list[tuple[object, str]]:
    """``count`` distinct (options, word the error must name) for PushT4D-v0's reset."""
    out: list[tuple[object, str]] = [([1, 2], "reset options"), ("block_pose", "reset options"), (5, "reset options"),
                                     ((("block_pose", (0, 0, 0)),), "reset options")]
    while len(_distinct(out)) < count:
        kind = int(rng.integers(6))
        if kind == 0:
            out.append(({_word(rng): (0.0, 0.0)}, "unknown reset options"))
        elif kind == 1:  # the block past a wall, or far outside
            xy = rng.choice([-1, 1], 2) * rng.uniform(0.33, 5.0, 2).round(3)
            out.append(({"block_pose": (*xy, round(float(rng.uniform(-np.pi, np.pi)), 3))}, "block_pose"))
        elif kind == 2:  # the hand outside the workspace
            xy = rng.uniform(-2, 2, 2).round(3)
            if np.abs(xy).max() > HALF:
                out.append(({"ee_xy": tuple(xy)}, "ee_xy"))
        elif kind == 3:  # the fingers inside the block's bar (its origin is the bar's outer-edge midpoint)
            x, y, yaw = *rng.uniform(-0.2, 0.2, 2).round(3), round(float(rng.uniform(-np.pi, np.pi)), 3)
            u, v = rng.uniform(-0.09, 0.09), rng.uniform(0.005, 0.045)
            ee = (round(x + u * np.cos(yaw) - v * np.sin(yaw), 4), round(y + u * np.sin(yaw) + v * np.cos(yaw), 4))
            out.append(({"block_pose": (x, y, yaw), "ee_xy": ee}, "ee_xy"))
        else:  # not finite real numbers of the right size
            key, size = [("block_pose", 3), ("ee_xy", 2)][kind - 4]
            out.append(({key: bad_actions(rng, size, 1)[0] if rng.random() < 0.7 else np.zeros(size + 1)}, key))
    return _distinct(out)[:count]


@pytest.mark.parametrize("backend", BACKENDS)
def test_fuzzed_bad_reset_options_raise_and_change_nothing(state_envs, backend):
    env, rng = state_envs[backend], np.random.default_rng(20)
    env.action_space.seed(20)
    cases = bad_reset_options(rng, 40)
    for options, word in cases:
        before = _snapshot(env)
        with pytest.raises(ValueError, match=word):
            env.reset(options=options)
        np.testing.assert_array_equal(_snapshot(env), before)
        _step_valid(env, rng)
    obs, _ = env.reset(options={"block_pose": (0.3, 0.2, 0.0), "ee_xy": (HALF, -HALF)})  # at the limits: fine
    assert env.observation_space.contains(obs)


def test_fuzzed_bad_poke_reset_options_raise():
    env, rng = gym.make("Poke4D-v0", obs_mode="state"), np.random.default_rng(21)
    env.reset(seed=0)
    k = env.unwrapped.object.num_modes
    cases = [({"ee_pos": (0.0, 0.0, 1.0)}, "ee_pos"), ({"ee_pos": (0.5, 0.0, 0.1)}, "ee_pos"), ("q", "reset options"),
             ({_word(rng): 0}, "unknown reset options")]
    for key, size in (("ee_pos", 3), ("q", k), ("qdot", k), ("target_displacement", 3)):
        cases += [({key: bad}, key) for bad in bad_actions(rng, size, 6)]
    for options, word in _distinct(cases):
        with pytest.raises(ValueError, match=word):
            env.reset(options=options)
        env.step(np.array([0.15, 0.15, 0.2], np.float32))
    env.close()


COMMON_BAD_KWARGS = [  # (kwarg, bad value): refused by every task that takes the argument
    ("obs_mode", "pixels"), ("obs_mode", None), ("obs_mode", "State"), ("obs_mode", 1), ("obs_mode", ["state"]),
    ("robot", "ur5"), ("robot", ""), ("robot", True), ("action_mode", "velocity"), ("action_mode", 0),
    ("render_mode", "rgb"), ("render_mode", 1), ("backend", "isaac"), ("backend", 3),
    ("image_size", 0), ("image_size", -4), ("image_size", 1.5), ("image_size", "96"), ("image_size", (64,)),
    ("image_size", (64, 64, 3)), ("image_size", (0, 64)), ("image_size", True), ("image_size", None),
    ("image_size", 5000), ("image_size", [64, "a"]), ("image_size", np.float32(96.0)), ("image_size", (64, 2.5)),
    ("num_cameras", 0), ("num_cameras", -1), ("num_cameras", 2.0), ("num_cameras", "2"), ("num_cameras", True),
    ("num_scene_points", 0), ("num_scene_points", -5), ("num_scene_points", 1.5), ("num_scene_points", "1024"),
    ("num_scene_points", None), ("num_scene_points", 10**7), ("num_gripper_points", 0), ("num_gripper_points", -3),
    ("num_gripper_points", 2.5), ("num_gripper_points", False), ("num_gripper_points", 10**9),
    ("num_object_points", 0), ("num_object_points", "256"), ("num_object_points", np.nan),
    ("max_speed", 0.0), ("max_speed", -1.0), ("max_speed", np.inf), ("max_speed", np.nan), ("max_speed", 1.0001),
    ("max_speed", 2), ("max_speed", 1e9), ("max_speed", "0.5"), ("max_speed", True), ("max_speed", None),
    ("max_speed", 0.5 + 0j), ("seed_points", -1), ("seed_points", 0.5), ("seed_points", "0"), ("seed_points", True),
    ("seed_points", None),
]
PUSHT_BAD_KWARGS = [
    ("start", "random"), ("start", None), ("block_material", "steel"), ("block_material", 1),
    ("block_point_fraction", -0.1), ("block_point_fraction", 1.5), ("block_point_fraction", np.nan),
    ("block_point_fraction", "0.5"), ("block_point_fraction", None), ("friction", 0.0), ("friction", -0.5),
    ("friction", np.inf), ("friction", np.nan), ("friction", 10.5), ("friction", 1e300), ("friction", "0.5"),
    ("friction", True), ("friction", None), ("block_youngs_modulus", 1e4),
]
JELLY_BAD_KWARGS = [
    ("block_youngs_modulus", -1.0), ("block_youngs_modulus", np.inf), ("block_youngs_modulus", 1e8),
    ("block_youngs_modulus", "2e4"), ("block_particle_spacing", 0.0), ("block_particle_spacing", 0.5),
    ("block_particle_spacing", "x"), ("block_domain_size", 0.1), ("block_domain_size", np.nan),
    ("friction", np.inf), ("friction", 10.5),
]
POKE_BAD_KWARGS = [
    ("task", "lift"), ("shape", "cube"), ("object_point_fraction", 2.0), ("object_point_fraction", "a"),
    ("youngs_modulus", 0.0), ("youngs_modulus", np.inf), ("poisson_ratio", 0.5), ("poisson_ratio", "0.3"),
    ("poisson_ratio", True), ("density", -1.0), ("rayleigh_alpha", -0.1), ("rayleigh_alpha", "a"),
    ("rayleigh_beta", np.nan), ("contact_stiffness", 0.0), ("contact_damping", -1.0), ("contact_damping", None),
    ("max_contact_force", np.inf), ("max_hand_force", 0.0), ("substeps", 0), ("substeps", 2.0), ("num_modes", 0),
    ("reach_window", -1), ("reach_tolerance", 0.0), ("settle_threshold", "x"),
]


def random_bad_kwargs(rng: np.random.Generator, count: int) -> list[tuple[str, object]]:
    """``count`` distinct (kwarg, bad value) of the shared arguments, drawn out of range or of the wrong kind."""
    out: list[tuple[str, object]] = []
    high = {"max_speed": MAX_SPEED, "image_size": 2048, "num_scene_points": 10**6, "num_gripper_points": 10**6}
    while len(_distinct(out)) < count:
        name = ["max_speed", "image_size", "num_scene_points", "num_gripper_points", "seed_points", "obs_mode",
                "robot", "action_mode"][int(rng.integers(8))]
        kind = int(rng.integers(3))
        if name in ("obs_mode", "robot", "action_mode") or kind == 0:
            out.append((name, _word(rng)))
        elif name == "max_speed":
            out.append((name, round(float(rng.uniform(MAX_SPEED, 100) if kind == 1 else -rng.uniform(0, 10)), 4) or -1))
        elif kind == 1 and name in high:
            out.append((name, int(rng.integers(high[name] + 1, 100 * high[name]))))
        else:
            out.append((name, -int(rng.integers(1, 10**6))))
    return _distinct(out)[:count]


def _kwarg_cases() -> list[tuple[str, dict, str, type]]:
    """(env id, kwargs, word the error names, exception) for every bad constructor argument."""
    cases = []
    for name, value in COMMON_BAD_KWARGS + random_bad_kwargs(np.random.default_rng(24), 30):
        for env_id, extra in (("PushT4D-v0", {}), ("PushT4D-v0", {"block_material": "jelly"}), ("Poke4D-v0", {})):
            cases.append((env_id, {**extra, name: value}, name, ValueError))
    cases += [("PushT4D-v0", {name: value}, name, ValueError) for name, value in PUSHT_BAD_KWARGS]
    cases += [("PushT4D-v0", {"block_material": "jelly", name: value}, name, ValueError)
              for name, value in JELLY_BAD_KWARGS]
    cases += [("Poke4D-v0", {name: value}, name, ValueError) for name, value in POKE_BAD_KWARGS]
    cases += [(env_id, {"frobnicate": 1}, "frobnicate", TypeError) for env_id in ("PushT4D-v0", "Poke4D-v0")]
    # more scene points than the cameras can give (only checked when a point cloud is observed)
    cases += [(env_id, {"image_size": size, "num_scene_points": n}, "num_scene_points", ValueError)
              for env_id in ("PushT4D-v0", "Poke4D-v0") for size, n in ((1, 1024), (16, 4096), ((8, 16), 1024))]
    return cases


def _entry_point(path: str) -> type:
    module, name = path.split(":")
    return getattr(__import__(module, fromlist=[name]), name)


def test_fuzzed_bad_constructor_kwargs_raise_naming_the_argument(state_envs):
    """The same bad value of a shared argument is refused by PushT4D-v0 (rigid and jelly) and Poke4D-v0 alike."""
    rng = np.random.default_rng(22)
    cases = _kwarg_cases()
    assert len(_distinct([(env_id, sorted(kw.items(), key=str)) for env_id, kw, *_ in cases])) == len(cases)
    for env_id, kwargs, word, error in cases:
        # gym.make itself handles render_mode (a human-rendering wrapper; it fails on non-strings): ask the class
        make = _entry_point(gym.spec(env_id).entry_point) if "render_mode" in kwargs else partial(gym.make, env_id)
        with pytest.raises(error, match=word) as info:
            make(**kwargs)
        if error is ValueError and word in kwargs and word != "block_youngs_modulus":
            assert repr(kwargs[word])[:12] in str(info.value) or str(kwargs[word])[:12] in str(info.value)
        _step_valid(state_envs["mujoco"], rng)  # a failed construction leaves other envs (and engines) working


@pytest.mark.parametrize("env_id", ["PushT4D-v0", "Poke4D-v0"])
def test_the_limits_themselves_are_accepted(env_id):
    env = gym.make(env_id, obs_mode="state", max_speed=MAX_SPEED, image_size=(8, 200), seed_points=np.int64(3))
    env.reset(seed=0)
    env.step(env.action_space.sample())
    env.close()
    # the most scene points the cameras can give
    cloud = gym.make(env_id, robot="panda_hand", image_size=16, num_scene_points=1)
    capacity = cloud.unwrapped.fuser.capacity()
    cloud.close()
    env = gym.make(env_id, robot="panda_hand", image_size=16, num_scene_points=capacity, num_gripper_points=16)
    obs, _ = env.reset(seed=0)
    assert obs["scene_points"].shape == (capacity, 3) and len(np.unique(obs["scene_points"], axis=0)) > 0.8 * capacity
    env.close()


@pytest.mark.parametrize("backend", BACKENDS)
def test_step_before_reset_and_use_after_close(backend):
    env = gym.make("PushT4D-v0", obs_mode="state", robot="panda_hand", backend=backend, render_mode="rgb_array")
    with pytest.raises(ResetNeeded):
        env.unwrapped.step(np.zeros(2, np.float32))
    env.reset(seed=0)
    env.step(np.zeros(2, np.float32))
    env.close()
    env.close()  # closing twice is fine
    for use in (lambda: env.unwrapped.reset(seed=0), lambda: env.unwrapped.step(np.zeros(2, np.float32)),
                env.unwrapped.render):
        with pytest.raises(ClosedEnvironmentError, match="closed"):
            use()
    poke = gym.make("Poke4D-v0", obs_mode="state")
    with pytest.raises(ResetNeeded):
        poke.unwrapped.step(np.zeros(3, np.float32))
    poke.close()


def _inside_pose(rng: np.random.Generator) -> np.ndarray:
    """A random block pose whose footprint lies inside the walls, often right next to one."""
    while True:
        pose = np.array([*rng.uniform(-0.36, 0.36, 2), rng.uniform(-np.pi, np.pi)])
        if np.abs(geo.footprint_at(pose).exterior.coords).max() <= HALF - 0.002:
            return pose


def _footprint_reach(pose7: np.ndarray) -> float:
    """Largest |x| or |y| of the block's bottom-face corners (m)."""
    T = pose_matrix(pose7)
    corners = np.c_[geo.footprint_vertices(), np.zeros(len(geo.footprint_vertices()))] @ T[:3, :3].T + T[:3, 3]
    return float(np.abs(corners[:, :2]).max())


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("robot", ROBOTS)
def test_extreme_actions_at_the_top_speed_never_move_the_block_through_a_wall(backend, robot):
    """Alternating corner targets, pushes through the block toward a wall and random targets at ``MAX_SPEED``:
    the block's footprint stays within the walls (up to half their 2 cm thickness: soft contacts) and the block
    stays upright on the table."""
    env = gym.make("PushT4D-v0", obs_mode="state", robot=robot, backend=backend, max_speed=MAX_SPEED).unwrapped
    rng = np.random.default_rng(23)
    worst = {"reach": 0.0, "z": 0.0, "tilt": 0.0}
    for _ in range(6):
        block, ee = _inside_pose(rng), rng.choice([-1, 1], 2) * 0.4
        while geo.distance_to_footprint(block, ee) < 0.05:
            ee = rng.choice([-1, 1], 2) * 0.4
        env.reset(options={"block_pose": block, "ee_xy": ee})
        for i in range(100):
            kind = rng.random()
            if kind < 0.35:  # corners, alternating
                target = np.array([1, -1]) * (1 if i % 2 else -1) * rng.choice([-1, 1]) * HALF
            elif kind < 0.7:  # through the block toward the wall behind it
                b, tcp = env.sim.body_pose7()[:2], env.sim.tcp_xy()
                target = b + (b - tcp) / max(np.linalg.norm(b - tcp), 1e-9)
            elif kind < 0.85:  # far beyond the box (clipped)
                target = rng.uniform(-50, 50, 2)
            else:
                target = rng.uniform(-HALF, HALF, 2)
            _, _, _, _, info = env.step(np.asarray(target, np.float32))
            pose7 = info["block_pose7"]
            worst["reach"] = max(worst["reach"], _footprint_reach(pose7) - HALF)
            worst["z"] = max(worst["z"], abs(pose7[2]))
            tilt = float(np.degrees(np.arccos(np.clip(pose_matrix(pose7)[2, 2], -1, 1))))
            worst["tilt"] = max(worst["tilt"], tilt)
    env.close()
    assert worst["reach"] < geo.WALL_THICKNESS / 2, worst
    assert worst["z"] < 0.015 and worst["tilt"] < 15.0, worst
