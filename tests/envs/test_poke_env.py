"""Poke4D-v0: modal ringing and Rayleigh decay of poked objects, penalty contact depth, the reach and settle
tasks, the observation contract, determinism, bad input, vector envs and recording with tracks."""

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env
from scipy.optimize import curve_fit
from scipy.spatial import cKDTree

import envs  # noqa: F401  (registers the tasks)
from physics.modal import euler_bernoulli_cantilever_hz
from physics.modal.contact_object import box_sdf
from physics.modal.embedding import PointEmbedding
from policies.poke import FINGER_BOX, DampingPokePolicy, RandomPokePolicy

SMALL = dict(image_size=48, num_scene_points=256, num_gripper_points=64, num_object_points=512)


def poke_and_release(env, direction: np.ndarray, depth: float, steps: int) -> np.ndarray:
    """Push the fingers ``depth`` past the object's side below its tip along ``direction``, pull back clear
    and hold; returns the tip displacement (steps, 3) after the release."""
    u = env.unwrapped
    d = np.array([*direction[:2], 0.0]) / np.linalg.norm(direction[:2])
    tip = u.object.shape.tip
    half = float(np.max(np.abs(u.object.bounds[:, :2]) @ np.abs(d[:2])))  # the object's half extent along d
    finger = float(np.abs(FINGER_BOX[1, :2]) @ np.abs(d[:2]))
    z = tip[2] - 0.03
    contact = tip - d * (half + finger)
    start = np.array([*(contact - 0.04 * d)[:2], z])
    env.reset(seed=0, options={"ee_pos": start, "target_displacement": [1.0, 0.0, 0.0]})
    for s in np.linspace(0.0, 1.0, 8)[1:]:
        env.step((start + d * (0.04 + depth) * s).astype(np.float32))
    for _ in range(3):
        env.step(start.astype(np.float32))
    return np.array([env.step(start.astype(np.float32))[4]["tip_displacement"] for _ in range(steps)])


@pytest.mark.parametrize("shape,youngs_modulus", [("rod", None), ("rod", 2.0e6), ("stem", None), ("plate", 1.5e6)])
def test_poked_object_rings_at_its_first_mode_and_decays_at_the_rayleigh_rate(shape, youngs_modulus):
    alpha, beta = 0.3, 5e-4
    env = gym.make("Poke4D-v0", obs_mode="state", shape=shape, youngs_modulus=youngs_modulus, rayleigh_alpha=alpha,
                   rayleigh_beta=beta, reach_window=1000, max_episode_steps=1000)
    u = env.unwrapped
    C = u.object.tip_compliance(u.dynamics.omega)[:2, :2]
    soft = np.linalg.eigh(C)[1][:, -1]  # the tip's softest horizontal direction
    track = poke_and_release(env, soft, 0.03, 256)
    x = track[:, :2] @ soft
    assert np.abs(x).max() > 0.003  # the poke set it ringing
    # frequency: peak of the Hann-windowed, zero-padded spectrum of the 10 Hz tip track
    n, dt = len(x), 0.1
    spectrum = np.abs(np.fft.rfft((x - x.mean()) * np.hanning(n), 64 * n))
    f_peak = np.fft.rfftfreq(64 * n, dt)[np.argmax(spectrum)]
    f1 = u.modal_frequencies_hz[0]
    assert f_peak == pytest.approx(f1, rel=0.02)
    # decay: a damped cosine fitted to the track (after the faster higher modes have died out)
    t = np.arange(n) * dt
    keep = t > 1.0
    model = lambda t, a, s, f, ph: a * np.exp(-s * t) * np.cos(2 * np.pi * f * t + ph)  # noqa: E731
    fit, _ = curve_fit(model, t[keep], x[keep], p0=[np.abs(x).max(), 0.1, f_peak, 0.0])
    w1 = 2 * np.pi * f1
    assert fit[1] == pytest.approx(alpha / 2 + beta * w1**2 / 2, rel=0.05)  # xi1 * omega1 of C = alpha M + beta K
    if shape == "rod":  # and the FEM mode is the beam's: a clamped-free Euler-Bernoulli cantilever
        E = 1.0e6 if youngs_modulus is None else youngs_modulus
        assert f1 == pytest.approx(euler_bernoulli_cantilever_hz(0.2, 0.02, 0.02, E, 1000.0), rel=0.03)


def exact_penetration(u, points: np.ndarray) -> np.ndarray:
    """Depth (P,) of world points inside the deformed object, by pulling them back through the exact FE
    displacement field rather than the env's contact samples; <= 0 outside.

    Newton on X + u(X) = p with the FE gradient, from p less the displacement of the nearest deformed
    rendered sample. Outside the mesh u continues to first order from the nearest point of the shape (a
    continuous field, where the mesh embedding's own extrapolation jumps at the surface); the iterate with
    the least residual is kept. Newton converges everywhere but centimetres outside, where the depth is
    only checked to be negative.
    """
    q = u.dynamics.q
    near = box_sdf(points, u.object.sdf_boxes)[0] < u.object.displacement_bound(q) + 0.005
    depth = np.zeros(len(points))
    if not near.any():
        return depth
    p = points[near]
    disp = u.object.displacements(q)
    rest = p - disp[cKDTree(u.object.surface + disp).query(p)[1]]
    shapes, boxes = u.object.modes.node_shapes, np.array(u.object.shape.boxes)
    best, error = rest.copy(), np.full(len(p), np.inf)  # each point's iterate with the least residual
    for _ in range(40):
        onto = np.clip(rest[:, None], boxes[None, :, 0], boxes[None, :, 1])  # the nearest point of each box
        onto = onto[np.arange(len(rest)), np.argmin(np.linalg.norm(onto - rest[:, None], axis=2), axis=1)]
        emb = PointEmbedding(u.object.model, onto)
        gradient = np.moveaxis(emb.gradient(shapes), 0, -1) @ q
        residual = rest + np.moveaxis(emb.interpolate(shapes), 0, -1) @ q \
            + np.einsum("pij,pj->pi", gradient, rest - onto) - p
        better = np.linalg.norm(residual, axis=1) < error
        best[better], error[better] = rest[better], np.linalg.norm(residual[better], axis=1)
        rest = rest - np.linalg.solve(np.eye(3) + gradient, residual[..., None])[..., 0]
    depth[near] = -box_sdf(best, u.object.sdf_boxes)[0]
    # to 10 um (near edges the extension's Jacobian is not exact and the last digits wander)
    assert np.all((error < 1e-5) | (depth[near] < -0.01)), "the exact pull-back near the object did not converge"
    return depth


@pytest.mark.parametrize("shape,seed", [("rod", 0), ("stem", 4), ("plate", 1)])
def test_penalty_contact_keeps_gripper_points_within_2mm_of_the_surface(shape, seed):
    env = gym.make("Poke4D-v0", obs_mode="state", shape=shape, reach_window=1000)
    u = env.unwrapped
    obs, info = env.reset(seed=seed)
    policy = RandomPokePolicy(np.random.default_rng(seed))
    forces, tips = [], []
    for _ in range(60):
        obs, _, _, _, info = env.step(policy.act(obs, info))
        assert info["max_penetration"] <= 0.002
        assert exact_penetration(u, u.gripper_points()).max() <= 0.002
        forces.append(info["contact_force"])
        tips.append(np.linalg.norm(info["tip_displacement"]))
    assert max(forces) > 0.1 and max(tips) > 0.005  # the pokes pressed the object and moved it


@pytest.mark.parametrize("youngs_modulus,robot,pokes,seed",
                         [(1.0e6, "panda_hand", False, 11), (5.0e6, "panda", True, 12)])
def test_the_plates_top_edge_holds_the_fingers(youngs_modulus, robot, pokes, seed):
    """Two cases that once reached 2.1-2.2 mm: the ringing plate's top edge outrunning a substep planned before
    the hand sped it up, and a stiff plate pressed down at the force cap by the arm."""
    env = gym.make("Poke4D-v0", obs_mode="state", shape="plate", youngs_modulus=youngs_modulus, robot=robot,
                   reach_window=1000)
    u = env.unwrapped
    obs, info = env.reset(seed=seed)
    env.action_space.seed(seed)
    policy = RandomPokePolicy(np.random.default_rng(seed))
    deepest = 0.0
    for _ in range(15):
        obs, _, _, _, info = env.step(policy.act(obs, info) if pokes else env.action_space.sample())
        deepest = max(deepest, info["max_penetration"])
        assert exact_penetration(u, u.gripper_points()).max() <= 0.002
    assert 1e-4 < deepest <= 0.0015  # the fingers pressed into the plate, and no deeper than 1.5 mm


@pytest.mark.parametrize("shape", ["rod", "stem", "plate"])
def test_random_fingertip_targets_never_push_points_deeper_than_2mm(shape):
    """Full-speed moves anywhere: into stiff directions (where the hand stalls), onto edges and rotating faces
    of the ringing object."""
    env = gym.make("Poke4D-v0", obs_mode="state", shape=shape, reach_window=1000)
    u = env.unwrapped
    env.reset(seed=3)
    env.action_space.seed(3)
    energies = []
    for _ in range(80):
        _, _, _, _, info = env.step(env.action_space.sample())
        assert info["max_penetration"] <= 0.002
        assert exact_penetration(u, u.gripper_points()).max() <= 0.002
        energies.append(info["modal_energy"])
    assert max(energies) > 1e-4  # the hand hit the object (it starts at rest)


@pytest.mark.parametrize("shape,fingertips,swing", [("rod", (0.024, 0.0, 0.15), (1, 0, 0)),
                                                    ("stem", (0.037, 0.0, 0.13), (1, 0, 0)),
                                                    ("plate", (0.0, 0.030, 0.08), (0, 1, 0))])
def test_a_ringing_object_striking_a_still_hand_only_loses_energy(shape, fingertips, swing):
    """The fingers rest just beside the object, which swings into them: the hand does no work, so the modal
    energy (plus the little the penalty holds) can only fall, strike after strike."""
    env = gym.make("Poke4D-v0", obs_mode="state", task="settle", shape=shape, reach_window=1000)
    u = env.unwrapped
    _, info = env.reset(seed=0, options={"ee_pos": fingertips, "qdot": u.flick(np.array(swing, float), 0.03)})
    e0, energies, forces = info["modal_energy"], [], []
    for _ in range(30):
        _, _, _, _, info = env.step(np.array(fingertips, np.float32))
        energies.append(info["modal_energy"])
        forces.append(info["contact_force"])
    assert np.count_nonzero(forces) >= 2  # it struck the fingers
    assert max(energies) <= e0 * (1 + 1e-6)
    assert energies[-1] < 0.2 * e0  # and the strikes took most of it (damping alone keeps 65-75%)


def test_a_fast_poke_is_resisted():
    env = gym.make("Poke4D-v0", obs_mode="state", shape="rod")
    u = env.unwrapped
    env.reset(seed=0, options={"ee_pos": [0.08, 0.0, 0.17]})
    for _ in range(3):  # at full speed (0.5 m/s) into the rod, the fingers 3 cm past its rest surface
        _, _, _, _, info = env.step(np.array([-0.03, 0.0, 0.17], np.float32))
        assert info["max_penetration"] <= 0.002
        assert exact_penetration(u, u.gripper_points()).max() <= 0.002
    assert info["tip_displacement"][0] < -0.03  # the rod was pushed ahead of the hand


@pytest.mark.parametrize("shape", ["rod", "plate"])
def test_settle_rings_on_without_action_and_settles_faster_with_a_damping_poke(shape):
    hold = gym.make("Poke4D-v0", obs_mode="state", task="settle", shape=shape, action_mode="delta")
    obs, info = hold.reset(seed=5)
    e0 = info["modal_energy"]
    assert e0 > 0 and np.allclose(info["tip_displacement"], 0.0)
    energy, swing = [], []
    for _ in range(100):
        obs, reward, terminated, _, info = hold.step(np.zeros(3, np.float32))
        assert not terminated
        energy.append(info["modal_energy"])
        swing.append(info["tip_displacement"])
    assert energy[-1] > 0.01 * e0  # still ringing after 10 s
    assert np.ptp(np.array(swing[-10:])[:, :2], axis=0).max() > 0.003
    assert np.all(np.diff(energy) <= 1e-12)  # a free damped object only loses energy

    damp = gym.make("Poke4D-v0", obs_mode="state", task="settle", shape=shape)
    obs, info = damp.reset(seed=5)
    assert info["modal_energy"] == pytest.approx(e0)
    policy = DampingPokePolicy(np.random.default_rng(0))
    for t in range(100):  # noqa: B007 (t is read after the loop)
        obs, reward, terminated, _, info = damp.step(policy.act(obs, info))
        if terminated:
            break
    assert terminated and info["is_success"] and info["modal_energy"] < 0.01 * e0
    assert info["modal_energy"] < energy[t]
    assert reward > 0.85


def test_reach_pushing_the_tip_to_its_target_succeeds_and_idling_runs_out_of_time():
    env = gym.make("Poke4D-v0", obs_mode="state", shape="rod", reach_window=60)
    target = np.array([0.03, 0.0, 0.0])
    obs, info = env.reset(seed=0, options={"ee_pos": [-0.06, 0.0, 0.17], "target_displacement": target})
    assert info["tip_error"] == pytest.approx(0.03)
    rewards = []
    for _ in range(60):
        tip = obs["tip_displacement"]
        step = 0.004 if tip[0] < target[0] else 0.0  # creep forward until the tip is there
        obs, reward, terminated, truncated, info = env.step((obs["agent_pos"] + [step, 0, 0]).astype(np.float32))
        rewards.append(reward)
        if terminated or truncated:
            break
    assert terminated and not truncated and info["is_success"] and info["tip_error"] < 0.005
    assert rewards[-1] > 0.8 > rewards[0]

    obs, info = env.reset(seed=1)
    for t in range(60):
        obs, reward, terminated, truncated, info = env.step(obs["agent_pos"])
        assert not terminated and truncated == (t == 59)
    assert reward == pytest.approx(0.0)


@pytest.mark.parametrize("task", ["reach", "settle"])
def test_check_env_passes(task):
    check_env(gym.make("Poke4D-v0", task=task, **SMALL).unwrapped, skip_render_check=True)


def test_same_seed_same_observations_and_the_observation_contract():
    def rollout(seed):
        env = gym.make("Poke4D-v0", obs_mode="all", task="settle", shape="rod", **{**SMALL, "num_object_points": 1024})
        obs, info = env.reset(seed=seed)
        rng = np.random.default_rng(seed)
        out = [(obs, info)]
        for _ in range(3):
            action = rng.uniform(env.action_space.low, env.action_space.high).astype(np.float32)
            obs, _, _, _, info = env.step(action)
            out.append((obs, info))
        return env, out

    env, a = rollout(3)
    _, b = rollout(3)
    _, c = rollout(4)
    for (oa, ia), (ob, ib) in zip(a, b, strict=True):
        for k in oa:
            np.testing.assert_array_equal(oa[k], ob[k])
        np.testing.assert_array_equal(ia["tracks"], ib["tracks"])
    assert not np.array_equal(a[-1][0]["modal_q"], c[-1][0]["modal_q"])
    u = env.unwrapped
    for obs, info in a:
        assert env.observation_space.contains(obs)
        labels, ids = obs["scene_labels"], info["scene_track_ids"]
        assert set(np.unique(labels)) == {0, 1} and set(np.unique(obs["segmentation"])) == {0, 1, 2}
        assert np.array_equal(ids >= 0, labels == 1)
        # object scene points lie on the deformed surface, next to the track they are given
        gap = np.linalg.norm(obs["scene_points"][labels == 1] - info["tracks"][ids[labels == 1]], axis=1)
        # a pixel is seen at its centre's ray: up to half a pixel's footprint beside the sample drawn there
        seen = obs["depth"][obs["segmentation"] == 1]
        tol = 0.5 * np.median(seen) / u.cameras[0].fx + u.object_radius
        assert np.median(gap) < tol and gap.max() < 3 * tol
        assert np.abs(obs["scene_points"][labels == 0][:, 2]).max() < 0.003  # static points: the table top
        np.testing.assert_allclose(info["tracks"], u.object.surface + u.object.basis @ obs["modal_q"].astype(float),
                                   atol=1e-5)
        np.testing.assert_allclose(obs["gripper_points"], u.robot.gripper_points(obs["agent_pos"].astype(float)),
                                   atol=1e-6)
        assert info["track_visible"].any() and not info["track_visible"].all()  # the far side is hidden
        # depth is metres along the optical axis: object pixels back-project onto the object's surface
        cam = u.cameras[0]
        v, w = np.nonzero(obs["segmentation"][0] == 1)
        z = obs["depth"][0][v, w]
        pts = (np.stack([(w - cam.cx) / cam.fx * z, (v - cam.cy) / cam.fy * z, z], 1) @ cam.cam2world[:3, :3].T
               + cam.cam2world[:3, 3])
        near = np.min(np.linalg.norm(pts[:, None] - info["tracks"][None], axis=2), axis=1)
        assert np.median(near) < tol


def test_bad_input_raises_value_error_and_changes_nothing():
    env = gym.make("Poke4D-v0", obs_mode="state")
    obs, _ = env.reset(seed=0)
    state = env.unwrapped.get_state()
    for bad in ([0.0, 0.0], [np.nan, 0.0, 0.1], [0.0, np.inf, 0.1], np.zeros((1, 3))):
        with pytest.raises(ValueError, match="action"):
            env.step(np.asarray(bad, dtype=np.float32))
    after = env.unwrapped.get_state()
    for x, y in zip(state, after, strict=True):
        np.testing.assert_array_equal(x, y)
    with pytest.raises(ValueError, match="reset options"):
        env.reset(options={"block_pose": (0, 0, 0)})
    with pytest.raises(ValueError, match="ee_pos"):
        env.reset(options={"ee_pos": (0.0, 0.0)})
    with pytest.raises(ValueError, match="ee_pos"):
        env.reset(options={"ee_pos": (0.0, 0.0, 2.0)})
    with pytest.raises(ValueError, match="q"):
        env.reset(options={"q": np.zeros(3)})
    for kwargs, word in [({"obs_mode": "pixels"}, "obs_mode"), ({"shape": "cube"}, "shape"), ({"task": "push"}, "task"),
                         ({"robot": "ur5"}, "robot"), ({"backend": "bullet"}, "backend"),
                         ({"num_scene_points": 0}, "num_scene_points"), ({"num_modes": -2}, "num_modes"),
                         ({"youngs_modulus": -1.0}, "youngs_modulus"), ({"poisson_ratio": 0.5}, "poisson_ratio"),
                         ({"rayleigh_alpha": -0.1}, "Rayleigh"), ({"contact_stiffness": 0.0}, "stiffness"),
                         ({"substeps": 0}, "substeps")]:
        with pytest.raises(ValueError, match=word):
            gym.make("Poke4D-v0", **{"obs_mode": "state", **kwargs})
    # an out-of-range action is clipped to the action space
    env.reset(seed=0, options={"ee_pos": [0.1, 0.1, 0.1]})
    obs, *_ = env.step(np.array([5.0, 0.1, 0.1], np.float32))
    assert obs["agent_pos"][0] == pytest.approx(0.15, abs=1e-6)  # 0.05 m per step at 0.5 m/s toward x = 0.2


def test_sync_vector_env_and_state_snapshots():
    venv = gym.vector.SyncVectorEnv([lambda: gym.make("Poke4D-v0", obs_mode="state", task="settle")] * 2)
    obs, _ = venv.reset(seed=[1, 2])
    assert obs["modal_q"].shape == (2, 16) and not np.array_equal(obs["modal_qdot"][0], obs["modal_qdot"][1])
    obs, reward, terminated, truncated, _ = venv.step(obs["agent_pos"])
    assert reward.shape == (2,) and np.all(reward > 0)
    venv.close()
    env = gym.make("Poke4D-v0", obs_mode="state", task="settle")
    env.reset(seed=0)
    snap = env.unwrapped.get_state()
    a = [env.step(np.array([0.0, 0.05, 0.15], np.float32))[0]["modal_q"] for _ in range(3)]
    env.unwrapped.set_state(snap)
    b = [env.step(np.array([0.0, 0.05, 0.15], np.float32))[0]["modal_q"] for _ in range(3)]
    np.testing.assert_array_equal(a, b)


def test_collect_round_trip_into_a_track_store(tmp_path):
    from worldmodel.cli.main import run_job
    from worldmodel.data import PointFlowDataset
    from worldmodel.data.rollouts import RolloutStore

    out = str(tmp_path / "poke.zarr")
    run_job("collect", ["env_id=Poke4D-v0", "policy=random_poke", "episodes=2", "max_steps=12", "env.image_size=48",
                        "env.num_scene_points=128", "env.num_gripper_points=32", "env.num_object_points=256",
                        f"out={out}"])
    store = RolloutStore(out)
    assert store.num_episodes == 2 and store.has_tracks and store.attrs["env_id"] == "Poke4D-v0"
    ep = store.episode(0)
    assert ep["tracks"].shape[1:] == (256, 3) and ep["action"].shape[1:] == (3,)
    assert "scene_obj_coords" not in ep
    H = 4
    data = PointFlowDataset(out, horizon=H, split="all")
    s = data.sample(0)
    ids = ep["scene_track_ids"][0]
    moving = ids >= 0
    expected = ep["tracks"][1 : H + 1][:, ids[moving]] - ep["tracks"][0][ids[moving]]
    np.testing.assert_allclose(s.target[:, moving], expected, atol=1e-6)
    np.testing.assert_array_equal(s.target[:, ~moving], 0.0)


@pytest.mark.parametrize("robot", ["panda_hand", "panda"])
def test_the_fingertips_are_where_agent_pos_says(robot):
    env = gym.make("Poke4D-v0", robot=robot, num_gripper_points=128, image_size=32)
    obs, _ = env.reset(seed=0, options={"ee_pos": (0.12, -0.05, 0.08)})
    g = obs["gripper_points"]
    np.testing.assert_allclose(obs["agent_pos"], (0.12, -0.05, 0.08), atol=1e-6)
    assert 0.08 - 1e-3 < g[:, 2].min() < 0.08 + 5e-3  # the fingertips' lowest surface samples
    tips = g[g[:, 2] < 0.09]
    np.testing.assert_allclose(tips[:, :2].mean(0), (0.12, -0.05), atol=0.01)
    env.close()
