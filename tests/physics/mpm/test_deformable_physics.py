"""Physics of the deformable PushT4D block: materials, colliders, conservation, shape measures."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
from scipy.spatial import ConvexHull
from scipy.spatial.transform import Rotation

from envs.push.particle_footprint import footprint_coverage
from envs.pusht import geometry as geo
from envs.pusht.mpm_block import DEFAULT_SPACING, link_boxes, pose_colliders, rest_particles
from physics.mpm import Box, MPMConfig, MPMSolver
from robots.transforms import kabsch_transform, pose_matrix, quat_to_mat

COARSE = dict(robot="panda_hand", obs_mode="state", block_particle_spacing=0.01, block_youngs_modulus=1e4)
WALL_Y = geo.WORKSPACE / 2 - 0.2 - 0.004  # block y at which the stem's tip is 4 mm from the north wall


def _shape_change(rest: np.ndarray, x: np.ndarray) -> float:
    """RMS distance (m) of particles from the best rigid placement of their ``rest`` positions."""
    T = kabsch_transform(rest, x)
    return float(np.sqrt(((x - geo.transform_points(T, rest)) ** 2).sum(1).mean()))


def _squeeze_against_wall(material: str, **kw) -> tuple[float, float]:
    """Settle the T with its stem against the north wall, press the fingers 2.5 cm into the bar, retract.

    Returns the shape change (against the settled shape) at the deepest press and at the end."""
    env = gym.make("PushT4D-v0", block_material=material, friction=0.1, **{**COARSE, **kw})
    env.reset(seed=0, options={"block_pose": (0.0, WALL_Y, 0.0), "ee_xy": (0.0, WALL_Y - 0.05)})
    u = env.unwrapped
    for _ in range(3):
        env.step(np.array([0.0, WALL_Y - 0.05]))
    settled = u.mpm.positions()
    peak = 0.0
    for target in [WALL_Y + 0.025] * 3 + [WALL_Y - 0.06] * 6:
        env.step(np.array([0.0, target]))
        peak = max(peak, _shape_change(settled, u.mpm.positions()))
    final = _shape_change(settled, u.mpm.positions())
    env.close()
    return peak, final


def test_jelly_recovers_and_plasticine_keeps_its_dent():
    jelly_peak, jelly_final = _squeeze_against_wall("jelly")
    clay_peak, clay_final = _squeeze_against_wall("plasticine")
    assert jelly_peak > 0.008 and clay_peak > 0.008  # both were squeezed by centimetres
    assert jelly_final < 0.25 * jelly_peak  # measured ~0.07
    assert clay_final > 0.5 * clay_peak  # measured ~0.64


@pytest.mark.parametrize("material, spreads", [("sand", True), ("jelly", False)])
def test_sand_slumps_and_spreads_jelly_stands(material, spreads):
    env = gym.make("PushT4D-v0", block_material=material, **COARSE)
    _, info = env.reset(seed=0, options={"block_pose": (0.0, -0.1, 0.0), "ee_xy": (0.3, 0.3)})
    x0 = info["tracks"].astype(np.float64)
    for _ in range(4):
        _, _, _, _, info = env.step(np.array([0.3, 0.3]))
    x = info["tracks"].astype(np.float64)
    area0, area = ConvexHull(x0[:, :2]).volume, ConvexHull(x[:, :2]).volume
    if spreads:
        assert area > 1.15 * area0 and np.percentile(x[:, 2], 95) < 0.8 * np.percentile(x0[:, 2], 95)
    else:
        assert abs(area / area0 - 1.0) < 0.05 and np.percentile(x[:, 2], 95) > 0.9 * np.percentile(x0[:, 2], 95)
    env.close()


def test_mass_is_conserved_and_fingers_are_impenetrable():
    """During a hard press against the wall: total particle mass and the grid's transferred mass stay
    0.8 kg, no particle leaves the domain, and none gets past a finger's mid-plane (~half a cell at most)."""
    env = gym.make("PushT4D-v0", block_material="jelly", **{**COARSE, "block_particle_spacing": 0.006})
    _, info = env.reset(seed=0, options={"block_pose": (0.0, WALL_Y, 0.0), "ee_xy": (0.0, WALL_Y - 0.04)})
    u = env.unwrapped
    centres, halves = link_boxes("panda_hand")
    dx = u.mpm.config.dx
    deepest = np.inf
    for target in [WALL_Y + 0.04] * 4:
        _, _, _, _, info = env.step(np.array([0.0, target]))
        assert u.mpm.masses().sum() == pytest.approx(geo.MASS, rel=1e-6)
        assert u.mpm.grid_mv.numpy()[:, 3].sum() == pytest.approx(geo.MASS, rel=1e-4)
        x = info["tracks"].astype(np.float64)
        for pose, half in zip(info["collider_poses"][1:], halves[1:], strict=True):  # the two fingers
            local = (x - pose[:3]) @ quat_to_mat(pose[3:])
            sdf = np.max(np.abs(local) - half, axis=1)  # exact inside, a lower bound outside
            deepest = min(deepest, sdf.min())
    assert u.mpm.num_clamped == 0
    # the fingers advanced 3 cm past the bar's rest edge while the stem stood at the wall: the T was squeezed
    assert info["collider_poses"][1:, 1].max() + halves[1:, 1].max() > WALL_Y + 0.03
    assert x[:, 1].max() > geo.WORKSPACE / 2 - 0.015
    # grid contact lets particles sink at most ~half a cell into a collider (measured -0.49 dx here), never
    # past a finger's mid-plane: nothing passes through
    assert deepest > max(-0.6 * dx, -halves[1:, :2].min())
    env.close()


def test_undeformed_particles_give_rigid_coverage():
    x = rest_particles(DEFAULT_SPACING)
    rng = np.random.default_rng(5)
    for i in range(20):
        pose = np.array(geo.GOAL_POSE) if i == 0 else np.array([*rng.uniform(-0.1, 0.1, 2), rng.uniform(-np.pi, np.pi)])
        world = geo.transform_points(pose_matrix(geo.pose7_from_pose3(pose, 0.0)), x)
        covered = footprint_coverage(world, DEFAULT_SPACING, geo.footprint(), geo.GOAL_POSE)
        assert abs(covered - geo.coverage(pose)) < 0.02
    with pytest.raises(ValueError):
        footprint_coverage(np.full((3, 3), np.nan), DEFAULT_SPACING, geo.footprint(), geo.GOAL_POSE)


def test_kabsch_recovers_a_rigid_transform_and_rejects_bad_input():
    rest = rest_particles(0.01)
    T = np.eye(4)
    T[:3, :3] = Rotation.from_rotvec([0.1, -0.2, 1.3]).as_matrix()
    T[:3, 3] = (0.1, -0.2, 0.03)
    np.testing.assert_allclose(kabsch_transform(rest, geo.transform_points(T, rest)), T, atol=1e-10)
    with pytest.raises(ValueError):
        kabsch_transform(rest, rest[:-1])


def test_pose_colliders_moves_each_box_from_start_to_end_pose():
    solver = MPMSolver(MPMConfig(grid_res=8, bounds=((-1, -1, -1), (1, 1, 1))))
    boxes = [solver.add_collider(Box((0, 0, 0), (0.1, 0.2, 0.3))) for _ in range(2)]
    start = np.array([[0.1, 0.2, 0.3, 1, 0, 0, 0],
                      [0, 0, 0, *Rotation.from_rotvec([0, 0, 0.5]).as_quat()[[3, 0, 1, 2]]]])
    end = np.array([[0.2, 0.1, 0.3, *Rotation.from_rotvec([0.3, 0, 0]).as_quat()[[3, 0, 1, 2]]],
                    [0.05, 0, 0, *Rotation.from_rotvec([0, 0, -0.4]).as_quat()[[3, 0, 1, 2]]]])
    pose_colliders(boxes, start, end, 0.1)
    solver.step(0.1)  # no particles: the colliders just advance over the frame
    for box, e in zip(boxes, end, strict=True):
        np.testing.assert_allclose(box.position, e[:3], atol=1e-12)
        np.testing.assert_allclose(box.rotation, quat_to_mat(e[3:]), atol=1e-12)
    with pytest.raises(ValueError, match="start_poses"):
        pose_colliders(boxes, start[:1], end, 0.1)
    with pytest.raises(ValueError, match="frame_dt"):
        pose_colliders(boxes, start, end, 0.0)


def test_recentring_the_domain_does_not_change_the_motion():
    """A push carrying the T 0.2 m across makes the local grid re-centre; a grid over the whole
    workspace (same lattice, never moves) gives the same tracks up to float32 rounding."""
    targets = [(0.0, -0.02 + 0.05 * i) for i in range(1, 6)]
    runs = []
    for domain in (None, geo.WORKSPACE):
        env = gym.make("PushT4D-v0", block_material="jelly", block_domain_size=domain, **COARSE)
        env.reset(seed=0, options={"block_pose": (0.0, -0.1, 0.0), "ee_xy": (0.0, -0.16)})
        cells = {env.unwrapped.mpm.domain_cell}
        for t in targets:
            _, _, _, _, info = env.step(np.array(t))
            cells.add(env.unwrapped.mpm.domain_cell)
        runs.append((info["tracks"], cells))
        env.close()
    (local, moves), (whole, fixed) = runs
    assert len(moves) > 1 and len(fixed) == 1
    start_y = -0.1 + rest_particles(0.01)[:, 1].mean()
    assert local[:, 1].mean() - start_y > 0.1  # the T was carried more than 0.1 m
    diff = np.linalg.norm(local - whole, axis=1)
    assert diff.max() < 1e-3 and diff.mean() < 2e-4  # measured 0.53 / 0.12 mm (dx = 20 mm)
