"""The pieces of Poke4D's penalty contact: the complementarity solve and the clearance bookkeeping."""

import itertools

import numpy as np
import pytest

from envs.poke_contact import CONTACT_MARGIN, GATE_FACTOR, ContactResult, ContactTracker, complementary_forces


def brute_force_forces(A: np.ndarray, rhs: np.ndarray) -> np.ndarray:
    """The unique solution of F = max(0, rhs - (A - I) F) by trying every active set."""
    n = len(rhs)
    M = A - np.eye(n)
    for size in range(n + 1):
        for active in itertools.combinations(range(n), size):
            F = np.zeros(n)
            idx = list(active)
            if idx:
                F[idx] = np.linalg.solve(A[np.ix_(idx, idx)], rhs[idx])
            if np.all(F >= -1e-12) and np.allclose(F, np.maximum(0.0, rhs - M @ F), atol=1e-9):
                return F
    raise AssertionError("no active set solves the problem")


@pytest.mark.parametrize("seed", range(20))
def test_complementary_forces_solve_the_contact_problem_exactly(seed):
    """Random coupled contacts (A = I + G D G^T): every contact either pushes with its end-of-substep penalty or
    is separated with zero force, the same solution as enumerating all active sets."""
    rng = np.random.default_rng(seed)
    n, k = rng.integers(2, 7), 4
    G = rng.normal(size=(n, k))
    A = np.eye(n) + (G * rng.uniform(0.5, 20.0, k)) @ G.T
    rhs = rng.normal(size=n) * 10.0
    F = complementary_forces(A, rhs)
    assert np.all(F >= 0)
    np.testing.assert_allclose(F, np.maximum(0.0, rhs - (A - np.eye(n)) @ F), atol=1e-9)
    np.testing.assert_allclose(F, brute_force_forces(A, rhs), atol=1e-9)


def test_a_contact_left_penetrating_after_others_separate_is_added_back():
    """Contact 1 alone would be pushed out by contact 0's force; once contact 0 pulls (is dropped), contact 1
    penetrates again and must push."""
    A = np.array([[1.0, 5.0], [5.0, 30.0]])
    rhs = np.array([1.0, 8.0])
    F = complementary_forces(A, rhs)
    np.testing.assert_allclose(F, brute_force_forces(A, rhs), atol=1e-12)
    assert F[1] > 0


def test_tracker_solves_a_point_again_only_once_it_may_have_reached_the_margin():
    tracker = ContactTracker(np.zeros((2, 3)), slack=0.001)
    np.testing.assert_array_equal(tracker.due(), [0, 1])  # unmeasured points are due at once
    result = ContactResult(np.zeros(1), 0.0, 0.0, 0, np.array([0.010, 0.0025]), np.zeros((2, 3)), 1.0)
    tracker.measured(np.array([0, 1]), np.full((2, 3), 0.5), result, since=0.0)
    np.testing.assert_array_equal(tracker.displacement, np.full((2, 3), 0.5))  # u = p - X starts the next pull-back
    tracker.advance(0.001)
    np.testing.assert_array_equal(tracker.due(), [1])  # 0.5 mm from the margin: due after 1 mm of travel
    clear_0 = GATE_FACTOR * (0.010 - CONTACT_MARGIN) - 0.001
    tracker.advance(clear_0 - 0.001 - 1e-9)
    np.testing.assert_array_equal(tracker.due(), [1])
    tracker.advance(2e-9)
    np.testing.assert_array_equal(tracker.due(), [0, 1])
