"""Contracts with exactly one owner: the gripper-point motion features (numpy for the dataset, torch for
the planners: one function), the control period, the schema version, the MPM state fields, the delta action
box, the observation and render modes and labels (each defined in one module), and the task base's API."""

import ast
import re
from pathlib import Path

import numpy as np
import torch

from robots.gripper_points import finite_difference_motion

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("robots", "physics", "envs", "worldmodel", "policies")


def definitions(name: str) -> list[str]:
    """Modules that assign ``name`` at module level."""
    found = []
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            for node in ast.parse(path.read_text()).body:
                targets = node.targets if isinstance(node, ast.Assign) else [node.target] \
                    if isinstance(node, ast.AnnAssign) else []
                if any(isinstance(t, ast.Name) and t.id == name for t in targets):
                    found.append(str(path.relative_to(ROOT)))
    return found


def test_each_contract_is_defined_once():
    assert definitions("CONTROL_DT") == ["robots/control.py"]
    assert definitions("SCHEMA_VERSION") == ["worldmodel/data/schema.py"]
    assert definitions("STATE_FIELDS") == ["physics/mpm/state.py"]
    assert definitions("MAX_DELTA") == ["envs/base.py"]
    assert definitions("OBS_MODES") == ["envs/base.py"]
    assert definitions("RENDER_MODES") == ["physics/render/frames.py"]
    assert definitions("LABEL_OBJECT") == ["physics/render/frames.py"]


def test_tasks_leave_sensors_and_the_gym_api_to_the_task_base():
    """The task modules define none of what `envs.base.TaskEnv` owns: the gym API and the sensor keys."""
    owned = {"reset", "step", "render", "get_state", "set_state", "_observe", "_sensor_spaces"}
    for path in (ROOT / "envs").rglob("*.py"):
        if path.name == "base.py":
            continue
        text = path.read_text()
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, ast.ClassDef):
                methods = {f.name for f in node.body if isinstance(f, ast.FunctionDef)}
                assert not methods & owned, (path.name, node.name, methods & owned)
        assert not re.search(r"(?<!\w)(scene_points|intrinsics)=", text), path


def test_mpm_state_snapshot_restores_the_step_exactly():
    from physics.mpm import MPMConfig, MPMSolver
    from physics.mpm.materials import FixedCorotated

    solver = MPMSolver(MPMConfig(grid_res=16, bounds=((0, 0, 0), (1, 1, 1))))
    x = np.random.default_rng(0).uniform(0.4, 0.6, size=(200, 3))
    solver.add_particles(x, np.full(200, 1e-4), FixedCorotated(2e4, 0.3, 1000.0))
    solver.step(0.01)
    snapshot = solver.get_state()
    solver.step(0.01)
    after = solver.positions().copy(), solver.num_substeps_taken
    solver.set_state(snapshot)
    solver.step(0.01)
    np.testing.assert_array_equal(solver.positions(), after[0])
    assert solver.num_substeps_taken == after[1]


def test_gripper_motion_features_are_identical_in_numpy_and_torch():
    rng = np.random.default_rng(0)
    track = rng.normal(size=(11, 64, 3)).astype(np.float32)
    vel, acc = finite_difference_motion(track, 0.1)
    batch = torch.from_numpy(np.stack([track, 2 * track]))  # (K, H + 1, Nr, 3), time along axis 1
    tvel, tacc = finite_difference_motion(batch, 0.1, axis=1)
    assert tvel.dtype == torch.float32 and vel.dtype == np.float32
    np.testing.assert_array_equal(tvel[0].numpy(), vel)
    np.testing.assert_array_equal(tacc[0].numpy(), acc)
    np.testing.assert_array_equal(vel, np.gradient(track, 0.1, axis=0))  # numpy.gradient's rule


def test_gripper_motion_of_a_parabola_is_exact_inside():
    t = np.arange(11) * 0.1
    x = (0.3 * t + 2.0 * t**2)[:, None].repeat(3, axis=1)  # v = 0.3 + 4 t, a = 4
    vel, acc = finite_difference_motion(x, 0.1)
    np.testing.assert_allclose(vel[1:-1, 0], 0.3 + 4 * t[1:-1], atol=1e-12)
    np.testing.assert_allclose(acc[2:-2, 0], 4.0, atol=1e-9)
    still, _ = finite_difference_motion(np.ones((1, 5, 3)), 0.1)
    assert np.all(still == 0)
