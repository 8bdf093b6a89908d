"""RandomPokePolicy's retreat and rest: after a poke the hand backs off along the poke line and waits."""

import numpy as np
import pytest

from policies.poke import RandomPokePolicy


def _rod_info() -> dict:
    z = np.linspace(0.0, 0.2, 21)
    ring = [(0.01 * np.cos(a), 0.01 * np.sin(a)) for a in np.linspace(0, 2 * np.pi, 8, endpoint=False)]
    return {"object_points": np.array([(x, y, h) for h in z for x, y in ring])}


def test_a_poke_ends_with_a_retreat_and_a_rest():
    obs = {"agent_pos": np.array([0.15, 0.0, 0.1])}
    plain = RandomPokePolicy(np.random.default_rng(3))
    resting = RandomPokePolicy(np.random.default_rng(3), retreat=0.06, rest_range=(5, 5))
    plain.plan(obs, _rod_info())
    resting.plan(obs, _rod_info())
    a, b = list(plain._queue), list(resting._queue)
    start = a[-1]  # the plain poke ends back at its start point
    np.testing.assert_allclose(b[: len(a) - 2], a[:-2])  # same travel, push and hold
    away = b[-1]
    assert all(np.allclose(t, away) for t in b[-5:])  # rests 5 steps at the retreat point
    centre = np.zeros(2)
    assert np.linalg.norm(away[:2] - centre) == pytest.approx(np.linalg.norm(start[:2] - centre) + 0.06, abs=1e-9)
    assert away[2] == pytest.approx(start[2])
    with pytest.raises(ValueError, match="retreat"):
        RandomPokePolicy(np.random.default_rng(0), retreat=-0.01)
