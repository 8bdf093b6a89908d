"""The pieces of Poke4D's penalty contact: the complementarity solve and the clearance bookkeeping."""

import itertools

import gymnasium as gym
import numpy as np
import pytest
from scipy.spatial import cKDTree

import envs  # noqa: F401  (registers the tasks)
from envs.poke.object import modal_object
from physics.modal import ModalDynamics
from physics.modal.contact import (
    CONTACT_MARGIN,
    GATE_FACTOR,
    ContactTracker,
    MotionBound,
    PullBackMemory,
    complementary_forces,
)
from physics.modal.contact_object import box_sdf
from physics.modal.embedding import PointEmbedding
from physics.modal.pullback import GRID_CELL, GRID_COARSE, PullBack


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
    hand_only = MotionBound(1.0, 0.0, *np.zeros((4, 2)))  # 1 m/s, object at rest: 0.1 mm per 0.1 ms substep
    memory = PullBackMemory(12)
    tracker = ContactTracker(np.array([5, 9]), memory, hand_only, 1e-4, 1000, slack=0.001)
    np.testing.assert_array_equal(tracker.due(), [0, 1])  # unmeasured points are due at once
    start = tracker.start(np.array([0, 1]), np.full((2, 3), 2.0))
    np.testing.assert_array_equal(start.rest, np.full((2, 3), 2.0))  # no pull-back yet: the point itself
    np.testing.assert_array_equal(start.nearest, [-1, -1])
    back = PullBack(np.full((2, 3), 0.5), np.array([3, 7]), np.full((2, 3), 0.4), np.tile(np.eye(3), (2, 1, 1)))
    tracker.measured(np.array([0, 1]), np.ones((2, 3)), np.array([0.010, 0.0025]), back, since=0)
    start = tracker.start(np.array([1]), np.full((1, 3), 2.0))
    np.testing.assert_array_equal(start.rest, [[1.5, 1.5, 1.5]])  # p - u, u = 0.5 from the last pull-back
    np.testing.assert_array_equal(start.nearest, [7])
    np.testing.assert_array_equal(start.looked_up, [[0.4, 0.4, 0.4]])
    assert memory.nearest[9] == 7 and memory.nearest[5] == 3 and np.all(memory.nearest[:5] == -1)  # kept per point
    later = ContactTracker(np.array([9, 11]), memory, hand_only, 1e-4, 1000, slack=0.001)
    np.testing.assert_array_equal(later.start(np.array([0, 1]), np.full((2, 3), 2.0)).rest,
                                  [[1.5, 1.5, 1.5], [2.0, 2.0, 2.0]])  # remembered across trackers, or none
    for _ in range(10):
        tracker.advance()
    np.testing.assert_array_equal(tracker.due(), [1])  # 0.5 mm from the margin: due after 1 mm of travel
    clear_0 = GATE_FACTOR * (0.010 - CONTACT_MARGIN) - 0.001  # 5.4 mm: due after 54 substeps
    for _ in range(43):
        tracker.advance()
    np.testing.assert_array_equal(tracker.due(), [1])
    tracker.advance()
    assert tracker.step * 1e-4 >= clear_0 - 1e-12
    np.testing.assert_array_equal(tracker.due(), [0, 1])
    far = ContactTracker(np.array([5, 9]), PullBackMemory(12), hand_only, 1e-4, 1000, slack=0.001)
    first = PullBack(*(a[:1] for a in back))
    far.measured(np.array([1]), np.ones((1, 3)), np.array([0.02 / GATE_FACTOR + CONTACT_MARGIN]), first, since=0)
    np.testing.assert_array_equal(far.due(), [0])  # the second is known to be 2 cm (less slack) away
    assert far.may_touch()
    for _ in range(100):
        far.advance()
    far.rebound(MotionBound(3.0, 0.0, *np.zeros((4, 2))))  # a contact: 1 cm used up, the 9 mm left at 3 m/s
    for _ in range(29):
        far.advance()
    np.testing.assert_array_equal(far.due(), [0])
    far.advance()
    np.testing.assert_array_equal(far.due(), [0, 1])
    short = ContactTracker(np.array([5]), PullBackMemory(12), hand_only, 1e-4, 10, slack=0.001)
    short.measured(np.array([0]), np.ones((1, 3)), np.array([0.01]), first, since=0)
    assert not short.may_touch()  # 1 mm of travel in the whole period cannot close 8 mm


def test_motion_bound_holds_for_free_vibration():
    """No surface sample of a freely ringing rod moves further in time t than the bound says, from any state,
    and over a few milliseconds after a flick it is close to the fastest sample's speed x t."""
    env = gym.make("Poke4D-v0", obs_mode="state", task="settle")
    u = env.unwrapped
    rng = np.random.default_rng(0)
    for _ in range(5):
        q, qdot = rng.normal(size=16) * 1e-3 / np.arange(1, 17), rng.normal(size=16) * 0.02
        u.dynamics.reset(q, qdot)
        bound = u.contact.motion_bound(q, qdot, 0.0)
        start = u.contact.obj.displacements(q)
        for t in (0.001, 0.002, 0.005, 0.01, 0.05, 0.2):
            dyn = ModalDynamics(u.object.modes, u.damping)
            dyn.reset(q, qdot)
            dyn.step(t)
            moved = np.linalg.norm(u.contact.obj.displacements(dyn.q) - start, axis=1).max()
            assert moved <= bound(np.array([t]))[0] + 1e-12
    flicked = u.contact.motion_bound(np.zeros(16), u.flick(np.array([1.0, 0.0, 0.0]), 0.03), 0.0)
    assert flicked(np.array([0.002]))[0] < 1.5 * 0.002 * flicked.surface_speed


def test_pull_back_inverts_the_deformation_from_any_start():
    """X + u(X) = p for rest points on and just under the surface of a bent rod, from a cold start and from a
    start one substep stale; the first-order expansion agrees with exact FE interpolation."""
    obj = modal_object("rod", 1.0e6, 0.3, 1000.0, 16, 4096, 1)
    rng = np.random.default_rng(0)
    q = np.zeros(16)
    q[:4] = [0.005, -0.003, 0.001, 0.0005]
    assert 0.03 < np.linalg.norm(obj.tip_basis @ q) < 0.05  # the tip bent by centimetres
    pick = rng.choice(len(obj.surface), 200, replace=False)
    X = obj.surface[pick] - obj.normals[pick] * rng.uniform(0.0, 0.002, (200, 1))  # on and just inside (exact FE)
    p = X + obj.embed(X) @ q
    assert np.linalg.norm(p - X, axis=1).max() > 0.01
    cold = obj.probe(p, q).back
    np.testing.assert_allclose(cold.rest, X, atol=5e-5)
    warm = obj.probe(p, q, obj.probe(p - 0.001, q * 0.98).back, reach=0.0015).back
    np.testing.assert_allclose(warm.rest, X, atol=5e-5)
    grad = np.moveaxis(PointEmbedding(obj.model, X).gradient(obj.modes.node_shapes), 0, -1) @ q
    np.testing.assert_allclose(warm.F, np.eye(3) + grad, atol=0.02)  # the exact FE displacement gradient


def test_probe_measures_pulled_back_points_against_the_union_of_boxes():
    """On the bent stem (two boxes) the kernel's distance, normal and modal rows are the rest-frame box distance,
    F^-T n and basis(X)^T F^-T n of numpy; rows beyond the margin are zero; X + u(X) = p."""
    obj = modal_object("stem", 2.0e6, 0.3, 1000.0, 16, 4096, 1)
    rng = np.random.default_rng(1)
    q = rng.normal(size=16) * 2e-3 / np.arange(1, 17)
    pick = rng.choice(len(obj.surface), 300, replace=False)
    X = obj.surface[pick] + obj.normals[pick] * rng.uniform(-0.002, 0.01, (300, 1))  # inside, on and off the surface
    inside = box_sdf(X, obj.sdf_boxes)[0] < 0
    p = X + obj.embed(X) @ q
    probe = obj.probe(p, q, margin=0.004)
    back = probe.back
    np.testing.assert_allclose(back.rest[inside], X[inside], atol=5e-5)  # exact FE inside the mesh
    fields = (obj.expansion[back.nearest] @ q).reshape(-1, 4, 3)
    np.testing.assert_allclose(back.F, fields[:, :3] + np.eye(3), atol=1e-12)
    np.testing.assert_allclose(back.rest + fields[:, 3] + np.einsum("pij,pj->pi", fields[:, :3], back.rest), p,
                               atol=1e-12)  # the first-order field maps the rest point onto p
    dist, n = box_sdf(back.rest, obj.sdf_boxes)
    np.testing.assert_allclose(probe.distance, dist, atol=1e-12)
    normal = np.linalg.solve(np.swapaxes(back.F, 1, 2), n[..., None])[..., 0]
    np.testing.assert_allclose(probe.normal, normal, atol=1e-12)
    e = obj.expansion[back.nearest]
    basis = e[:, 9:] + np.einsum("pimk,pm->pik", e[:, :9].reshape(-1, 3, 3, 16), back.rest)
    rows = np.einsum("pik,pi->pk", basis, normal)
    near = dist < 0.004
    assert 0 < near.sum() < len(near)
    np.testing.assert_allclose(probe.modal_normal[near], rows[near], atol=1e-12)
    assert np.all(probe.modal_normal[~near] == 0)


def test_sample_grid_finds_a_sample_nearly_as_near_as_the_nearest():
    """Within the table the grid's sample is at most a cell diagonal further than the nearest sample (a coarse
    cell's diagonal further than 3 mm from the surface); beyond it the border cells still give a valid sample."""
    grid = modal_object("plate", 1.0e6, 0.3, 1000.0, 16, 4096, 1).prober.grid
    rng = np.random.default_rng(2)
    lo, hi = grid.lo, grid.lo + grid.dims * GRID_CELL
    X = rng.uniform(lo, hi, (2000, 3))
    found = grid.nearest(X)
    exact = cKDTree(grid.samples).query(X)[0]
    excess = np.linalg.norm(grid.samples[found] - X, axis=1) - exact
    close = exact < (GRID_COARSE - 1) * GRID_CELL
    assert close.sum() > 100
    assert np.all(excess[close] <= np.sqrt(3) * GRID_CELL + 1e-12)
    assert np.all(excess <= np.sqrt(3) * GRID_COARSE * GRID_CELL + 1e-12)
    beyond = grid.nearest(np.array([[5.0, -5.0, 5.0], [-1.0, 0.0, 0.1]]))
    assert np.all((beyond >= 0) & (beyond < len(grid.samples)))
