"""Golden trajectories: the envs replay the stored actions of ``tests/envs/golden/*.npz`` and return the same
observations and tracks (positions within 1e-6 m), so refactoring cannot change behaviour unnoticed.

The files were recorded by ``tests/envs/golden/record_golden.py`` (state mode; PushT4D with both robots
and both backends, a jelly block, a Poke4D rod).
"""

import sys
from pathlib import Path

import numpy as np
import pytest

GOLDEN = Path(__file__).parent / "golden"
sys.path.insert(0, str(GOLDEN))
from record_golden import CASES, rollout  # noqa: E402

TOLERANCE = 1e-6  # m (and the same absolute tolerance for angles, coverage, energies)


@pytest.mark.parametrize("name", sorted(CASES))
def test_replay_matches_golden(name):
    case = CASES[name]
    golden = dict(np.load(GOLDEN / f"{name}.npz"))
    replay = rollout(case["env_id"], case["kwargs"], golden["actions"], len(golden["actions"]))
    assert sorted(replay) == sorted(golden)
    for key, expected in golden.items():
        np.testing.assert_allclose(replay[key], expected, rtol=0, atol=TOLERANCE, err_msg=f"{name}: {key}")
