"""Gaussians driven by MPM particles, FE modes and k-nearest particles."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from physics import modal, mpm
from physics.splats import (
    GaussianSplats,
    KNearestDeformation,
    ModalSplatDriver,
    MPMSplatDriver,
    box_splats,
    deform_splats,
    eval_sh,
    fill_interior,
    sphere_splats,
)


def unit_dirs(n: int, m: int, rng: np.random.Generator) -> np.ndarray:
    d = rng.normal(size=(n, m, 3))
    return d / np.linalg.norm(d, axis=2, keepdims=True)


def spinning_sphere(omega: float, thin: float = 1.0,
                    material: object = None) -> tuple[GaussianSplats, mpm.MPMSolver, MPMSplatDriver, float]:
    """A stiff jelly sphere of splats (filled) spinning about z at ``omega`` rad/s in a 24^3 grid;
    ``thin`` scales the discs' normal axis."""
    centre = np.array([0.5, 0.5, 0.5])
    splats = sphere_splats(centre, 0.12, 0.015, np.random.default_rng(0))
    splats = splats.updated(log_scales=splats.log_scales + np.log([1.0, 1.0, thin]), quaternions=splats.quaternions)
    solver = mpm.MPMSolver(mpm.MPMConfig(grid_res=24, bounds=((0, 0, 0), (1, 1, 1)), gravity=(0, 0, 0),
                                         track_covariance=True))
    fill = fill_interior(splats, solver.config.dx / 2)
    x = np.concatenate([splats.positions, fill.positions])
    v = np.cross([0.0, 0.0, omega], x - centre)
    material = mpm.FixedCorotated(2e5, 0.3, 1000.0) if material is None else material
    driver = MPMSplatDriver(splats, solver, material, fill.positions, fill.spacing, fill.origin, v,
                            total_volume=fill.volume)
    return splats, solver, driver, fill.volume


def test_mpm_spinning_jelly_rotates_its_gaussians_and_their_colour():
    splats, solver, driver, volume = spinning_sphere(omega=3.0)
    assert solver.masses().sum() == pytest.approx(1000.0 * 4.0 / 3.0 * np.pi * 0.12**3, rel=0.05)
    assert driver.num_fill > 0 and solver.num_particles == len(splats) + driver.num_fill
    for _ in range(5):
        solver.step(0.04)
    frame = driver.splats()
    assert len(frame) == len(splats)  # fill particles are not written back
    R = Rotation.from_rotvec([0.0, 0.0, 0.6]).as_matrix()  # 3 rad/s for 0.2 s
    centre = np.array([0.5, 0.5, 0.5])
    expected = (splats.positions - centre) @ R.T + centre
    assert np.abs(frame.positions - expected).max() < 0.02  # the rim moved 72 mm
    cov = splats.covariances
    assert np.abs(frame.covariances - R @ cov @ R.T).max() < 0.15 * np.abs(cov).max()
    dirs = unit_dirs(len(splats), 6, np.random.default_rng(1))
    err = np.abs(eval_sh(frame.sh, dirs @ R.T) - eval_sh(splats.sh, dirs)).max()
    unrotated = np.abs(eval_sh(splats.sh, dirs @ R.T) - eval_sh(splats.sh, dirs)).max()
    assert err < 0.25 * unrotated
    assert np.array_equal(frame.ply.vertex["opacity"], splats.ply.vertex["opacity"])
    assert np.array_equal(frame.ply.vertex["f_dc_1"], splats.ply.vertex["f_dc_1"])


def test_mpm_keeps_flat_gaussians_flat():
    # discs 1e-3 as thick as wide (common in trained scenes): elastic materials use F Sigma F^T in float64
    splats, solver, driver, _ = spinning_sphere(omega=3.0, thin=0.014)
    assert (splats.scales.min(axis=1) / splats.scales.max(axis=1)).min() < 1.5e-3
    for _ in range(3):
        solver.step(0.04)
    ratio = np.sort(driver.splats().scales, axis=1) / np.sort(splats.scales, axis=1)
    assert np.abs(ratio - 1.0).max() < 1e-3
    # plastic materials read the solver's float32 covariances: floored, never singular or NaN
    splats, solver, driver, _ = spinning_sphere(omega=3.0, thin=0.014,
                                                material=mpm.VonMises(2e5, 0.3, 1000.0, yield_stress=1e5))
    for _ in range(3):
        solver.step(0.04)
    scales = driver.splats().scales
    assert np.all(np.isfinite(scales)) and scales.min() >= 0.9e-3 * splats.scales.min()
    assert np.median(np.abs(np.sort(scales, axis=1) / np.sort(splats.scales, axis=1) - 1.0)) < 0.01


def test_mpm_jelly_dropped_on_a_floor_bounces_off_it():
    centre = np.array([0.5, 0.5, 0.3])
    splats = sphere_splats(centre, 0.1, 0.015, np.random.default_rng(2))
    solver = mpm.MPMSolver(mpm.MPMConfig(grid_res=20, bounds=((0, 0, 0), (1, 1, 0.6)), track_covariance=True))
    solver.add_collider(mpm.Plane((0, 0, 0.1), (0, 0, 1), contact="sticky"))
    fill = fill_interior(splats, solver.config.dx / 2)
    driver = MPMSplatDriver(splats, solver, mpm.FixedCorotated(3e4, 0.3, 1000.0), fill.positions, fill.spacing,
                            fill.origin, total_volume=fill.volume)
    lowest, heights, tops = [], [], []
    for _ in range(16):
        solver.step(1.0 / 30.0)
        z = driver.splats().positions[:, 2]
        lowest.append(z.min())
        heights.append(np.ptp(z))
        tops.append(z.max())
    assert min(lowest) > 0.1 and min(lowest) < 0.1 + solver.config.dx  # reaches the floor, never passes it
    assert 0.13 < min(heights) < 0.19  # squashed on impact (rest diameter 0.2), not flattened
    assert max(tops[8:]) > 0.28  # an elastic jelly bounces back up


def test_mpm_driver_needs_covariance_tracking():
    splats = sphere_splats((0.5, 0.5, 0.5), 0.1, 0.03, np.random.default_rng(3))
    solver = mpm.MPMSolver(mpm.MPMConfig(grid_res=8))
    with pytest.raises(ValueError, match="track_covariance"):  # plastic: covariances come from the solver
        MPMSplatDriver(splats, solver, mpm.VonMises(1e4, 0.3, 1000.0, yield_stress=1e3))
    # elastic: F Sigma F^T from F alone, no tracking needed
    driver = MPMSplatDriver(splats, solver, mpm.FixedCorotated(1e4, 0.3, 1000.0))
    np.testing.assert_allclose(driver.splats().covariances, splats.covariances, atol=1e-9)


def test_modal_driver_moves_gaussians_with_the_mode_shapes():
    size = np.array([0.3, 0.1, 0.1])
    vertices, tets = modal.box_tet_mesh(size, (6, 2, 2))
    model = modal.ModalModel(vertices, tets, 1e5, 0.3, 1000.0, order=1)
    modes = model.solve(3)
    splats = box_splats((0.0, 0.0, 0.0), size, 0.02, np.random.default_rng(4))
    driver = ModalSplatDriver(splats, model, modes)
    rest = driver.splats(np.zeros(3))
    assert np.allclose(rest.positions, splats.positions, atol=1e-7)
    assert np.allclose(rest.covariances, splats.covariances, rtol=1e-5, atol=1e-12)
    # Gaussians at mesh vertices follow the vertices' mode shapes exactly
    on_vertices = GaussianSplats.from_arrays(vertices, np.full((len(vertices), 3), 0.01),
                                             np.tile([1.0, 0, 0, 0], (len(vertices), 1)),
                                             np.full(len(vertices), 0.5), np.zeros((len(vertices), 4, 3)))
    q = np.array([0.02, -0.01, 0.015])
    moved = ModalSplatDriver(on_vertices, model, modes).splats(q)
    assert np.allclose(moved.positions, vertices + np.einsum("k,kvd->vd", q, modes.shapes), atol=1e-6)
    # the deformation of a Gaussian is F = I + grad u of its tetrahedron's linear field
    deformed = driver.splats(q)
    F = np.eye(3) + driver.point_modes.grad_basis.numpy() @ q
    cov = splats.covariances
    assert np.allclose(deformed.covariances, F @ cov @ F.transpose(0, 2, 1), rtol=0, atol=1e-6 * np.abs(cov).max())


def test_k_nearest_deformation_is_exact_for_affine_and_rigid_fields():
    rng = np.random.default_rng(5)
    particles = rng.uniform(-0.1, 0.1, (400, 3))
    splats = sphere_splats((0.0, 0.0, 0.0), 0.08, 0.02, rng)
    knn = KNearestDeformation(particles, splats.positions, k=8)
    A = rng.normal(0.0, 0.3, (3, 3))
    u = particles @ A.T + [0.01, 0.02, -0.03]
    assert np.allclose(knn.displacements(u), splats.positions @ A.T + [0.01, 0.02, -0.03], atol=1e-12)
    assert np.allclose(knn.deformation_gradients(u), np.eye(3) + A, atol=1e-12)
    R = Rotation.from_rotvec([0.2, 1.1, -0.4]).as_matrix()
    u = particles @ R.T - particles
    moved = deform_splats(splats, splats.positions + knn.displacements(u), knn.deformation_gradients(u))
    assert np.allclose(moved.positions, splats.positions @ R.T, atol=1e-6)
    dirs = unit_dirs(len(splats), 4, rng)
    assert np.abs(eval_sh(moved.sh, dirs @ R.T) - eval_sh(splats.sh, dirs)).max() < 1e-5
    with pytest.raises(ValueError, match="k must lie"):
        KNearestDeformation(particles, splats.positions, k=2)
