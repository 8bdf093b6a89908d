"""``wm4d estimate-material`` end to end on a recorded deformable PushT4D jelly episode."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

gym = pytest.importorskip("gymnasium")
pytest.importorskip("warp")

import envs  # noqa: E402,F401  (registers the tasks)
from worldmodel.cli.jobs.estimate_material import contact_window, replay_kwargs  # noqa: E402
from worldmodel.cli.main import run_job  # noqa: E402
from worldmodel.data.recorder import RecordRollout  # noqa: E402

E_TRUE = 6.0e3
# coarse particles (1.6 cm, 130 of them) keep the recording and the fit to seconds
FAST = dict(robot="panda_hand", block_material="jelly", block_particle_spacing=0.016, block_youngs_modulus=E_TRUE,
            image_size=48, num_scene_points=256, num_gripper_points=64, num_object_points=64)
PUSH = [(0.0, -0.05), (0.0, -0.03), (0.0, 0.0), (0.0, 0.02), (0.0, 0.04), (0.0, 0.04), (0.0, 0.0), (0.0, -0.05)]


@pytest.fixture(scope="module")
def recorded(tmp_path_factory: pytest.TempPathFactory) -> str:
    path = tmp_path_factory.mktemp("jelly") / "jelly.zarr"
    env = RecordRollout(gym.make("PushT4D-v0", max_episode_steps=len(PUSH), **FAST), path)
    env.reset(seed=0, options={"block_pose": (0.0, 0.02, 0.3), "ee_xy": (0.0, -0.08)})
    for action in PUSH:
        env.step(np.array(action, np.float32))
    env.close()
    return str(path)


def estimate(data: str, out: object, *extra: str) -> dict:
    run_job("estimate-material", [f"data={data}", "episode=0", f"out={out}", "window=0.6", "progress=false", *extra])
    return json.loads((out / "estimate.json").read_text())  # type: ignore[operator]


def test_job_recovers_the_jelly_modulus_from_3x_off(recorded: str, tmp_path: object) -> None:
    result = estimate(recorded, tmp_path, f"youngs_modulus0={3 * E_TRUE}")
    assert result["youngs_modulus"] == pytest.approx(E_TRUE, rel=0.03)
    lo, hi = result["youngs_modulus_ci95"]
    assert lo <= result["youngs_modulus"] <= hi
    assert result["particles"] > 100 and 0.0 < result["window"]["seconds"] <= 2.0
    assert len(result["substeps_per_frame"]) == result["window"]["last_row"]  # warm-up and fitted frames
    losses = result["loss_history"]
    assert np.all(np.diff(losses) <= 0.0) and losses[-1] < 1e-3 * losses[0]
    assert result["youngs_modulus_history"][0] == pytest.approx(3 * E_TRUE)
    assert (tmp_path / "estimate.png").stat().st_size > 0  # type: ignore[operator]


def test_job_never_reads_the_recorded_modulus(recorded: str, tmp_path: object) -> None:
    import zarr

    corrupted = tmp_path / "corrupted.zarr"  # type: ignore[operator]
    shutil.copytree(recorded, corrupted)
    root = zarr.open_group(str(corrupted), mode="a")
    root.attrs["env_kwargs"] = {**root.attrs["env_kwargs"], "block_youngs_modulus": 1.0e9}
    assert "block_youngs_modulus" not in replay_kwargs(dict(root.attrs["env_kwargs"]))
    a = estimate(recorded, tmp_path / "a", "max_iterations=1", "plot=false")  # type: ignore[operator]
    b = estimate(str(corrupted), tmp_path / "b", "max_iterations=1", "plot=false")  # type: ignore[operator]
    assert a["youngs_modulus"] == b["youngs_modulus"] and a["loss_history"] == b["loss_history"]
    assert a["youngs_modulus_history"][0] == pytest.approx(1.0e4)  # the configured start, not the recorded value


def test_contact_window_and_bad_input(recorded: str, tmp_path: object) -> None:
    tracks = np.zeros((6, 4, 3))
    far = np.tile([[5.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0]], (6, 1, 1))
    half = np.full((1, 3), 0.01)
    assert contact_window(tracks, far, half, 0.01, 2, 10) == (0, 5, None)  # no contact: the settling from row 0
    near = far.copy()
    near[3:, 0, 0] = 0.015  # the box's face comes within 5 mm of the particles at row 3
    assert contact_window(tracks, near, half, 0.01, 2, 10) == (1, 5, 3)
    assert contact_window(tracks, near, half, 0.004, 2, 10)[2] is None  # 5 mm away is not within a 4 mm reach
    assert contact_window(tracks, near, half, 0.01, 2, 2) == (1, 3, 3)
    assert contact_window(tracks[:4], near[:4], half, 0.01, 0, 10) == (0, 3, 3)  # contact in the last row: settling
    with pytest.raises(ValueError, match="at least 2"):
        contact_window(tracks[:1], near[:1], half, 0.01, 0, 10)  # no frame at all
    with pytest.raises(ValueError, match="window"):
        estimate(recorded, tmp_path, "window=3.0")
    with pytest.raises(ValueError, match="youngs_modulus0"):
        estimate(recorded, tmp_path, "youngs_modulus0=-5")


def test_job_without_contact_fits_the_settling_under_gravity(tmp_path: object) -> None:
    path = tmp_path / "far.zarr"  # type: ignore[operator]
    env = RecordRollout(gym.make("PushT4D-v0", max_episode_steps=5, **{**FAST, "block_youngs_modulus": 1.5e4}), path)
    env.reset(seed=0, options={"block_pose": (0.0, 0.02, 0.3), "ee_xy": (0.3, -0.3)})
    for _ in range(5):
        env.step(np.array((0.3, -0.3), np.float32))  # the hand stays away: the block only settles
    env.close()
    result = estimate(str(path), tmp_path, "plot=false")
    assert result["window"]["contact_row"] is None and result["window"]["first_row"] == 0
    assert result["youngs_modulus"] == pytest.approx(1.5e4, rel=0.03)


def test_job_recovers_the_modulus_at_the_default_particle_spacing(tmp_path: object) -> None:
    # ``wm4d collect`` at the default spacing (~10.7k particles; the shape that crashed after one iteration and
    # took ~140 s per iteration): seed 2's random push touches the block at row 3-4, 8 steps keep it cheap.
    # The lower bound (5.5 kPa) cuts the bracketing walk's step from 10 kPa to 5 kPa: the fit must stay inside
    # the admissible set, not crash, and still land within 10%.
    path = tmp_path / "default.zarr"  # type: ignore[operator]
    truth = 6.0e3
    run_job("collect", ["env.robot=panda_hand", "env.block_material=jelly", f"env.block_youngs_modulus={truth}",
                        "env.image_size=48", "env.num_scene_points=256", "env.num_gripper_points=32", "episodes=1",
                        "max_steps=8", "seed=2", "policy=random_push", f"out={path}"])
    result = estimate(str(path), tmp_path, "window=0.5", "plot=false", "youngs_modulus_bounds=[5500,1e7]")
    assert result["particles"] > 10_000 and result["window"]["contact_row"] is not None
    assert result["youngs_modulus"] == pytest.approx(truth, rel=0.10)
    assert min(e for e, _ in result["evaluations"]) == pytest.approx(5500.0)  # the walk's step stopped at the bound
    assert not result["at_bound"]
    assert result["converged"] and result["diverged_rollouts"] == 0
