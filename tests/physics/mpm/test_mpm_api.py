"""MPM solver contract: input validation, contact modes, CFL guard, out-of-grid and NaN handling."""

from __future__ import annotations

import numpy as np
import pytest

wp = pytest.importorskip("warp")

from physics.mpm import (  # noqa: E402
    Box,
    FixedCorotated,
    Fluid,
    Fracture,
    MPMConfig,
    MPMSolver,
    Plane,
    SimulationDivergedError,
    Snow,
    Sphere,
    sample_box,
    sample_sphere,
)

wp.config.quiet = True
BOUNDS = ((0.0, 0.0, 0.0), (0.4, 0.4, 0.4))


def small_solver(**kw: object) -> MPMSolver:
    return MPMSolver(MPMConfig(grid_res=8, bounds=BOUNDS, **kw))


def block(spacing: float = 0.025, lo: tuple = (0.15, 0.15, 0.15),
          hi: tuple = (0.25, 0.25, 0.25)) -> tuple[np.ndarray, np.ndarray]:
    return sample_box(lo, hi, spacing, np.random.default_rng(0))


@pytest.mark.parametrize(
    ("material", "match"),
    [
        (lambda: FixedCorotated(1e4, 0.5, 1000.0), "poisson_ratio"),
        (lambda: FixedCorotated(1e4, -1.0, 1000.0), "poisson_ratio"),
        (lambda: FixedCorotated(-1.0, 0.3, 1000.0), "youngs_modulus"),
        (lambda: FixedCorotated(1e4, 0.3, 0.0), "density"),
        (lambda: Fluid(bulk_modulus=0.0), "bulk_modulus"),
        (lambda: FixedCorotated(np.ones(3) * 1e4, 0.3, 1000.0), "shape"),
    ],
)
def test_bad_material_parameters_raise(material: object, match: str) -> None:
    solver = small_solver()
    x, vol = block()
    with pytest.raises(ValueError, match=match):
        solver.add_particles(x, vol, material())
    assert solver.num_particles == 0


def test_bad_particle_inputs_raise() -> None:
    solver = small_solver()
    x, vol = block()
    mat = FixedCorotated(1e4, 0.3, 1000.0)
    bad = x.copy()
    bad[3, 1] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        solver.add_particles(bad, vol, mat)
    with pytest.raises(ValueError, match="outside the bounds"):
        solver.add_particles(x + 1.0, vol, mat)
    with pytest.raises(ValueError, match="volumes"):
        solver.add_particles(x, -vol, mat)
    with pytest.raises(ValueError, match="volumes"):
        solver.add_particles(x, vol[:-1], mat)
    with pytest.raises(ValueError, match="velocities"):
        solver.add_particles(x, vol, mat, velocities=np.zeros((2, 3)))
    with pytest.raises(ValueError, match="contact mode"):
        Plane((0, 0, 0), (0, 0, 1), contact="glue")
    with pytest.raises(ValueError, match="grid_res"):
        MPMConfig(grid_res=2)
    assert solver.num_particles == 0


def test_cfl_guard_and_automatic_substeps() -> None:
    x, vol = block()
    stiff = FixedCorotated(1e6, 0.3, 1000.0)
    c = np.sqrt((stiff.youngs_modulus * (1 - 0.3) / ((1 + 0.3) * (1 - 0.6))) / 1000.0)
    dx = MPMConfig(grid_res=8, bounds=BOUNDS).dx
    with pytest.raises(ValueError, match="CFL"):
        small_solver(dt=2.0 * dx / c).add_particles(x, vol, stiff)
    auto = small_solver()
    auto.add_particles(x, vol, stiff)
    dt, count = auto.substep_size(1.0 / 60.0)
    assert dt * c / dx <= auto.config.cfl + 1e-9
    assert auto.step(1.0 / 60.0) == count
    assert auto.num_substeps_taken == count
    soft = small_solver()
    soft.add_particles(x, vol, FixedCorotated(1e3, 0.3, 1000.0))
    assert soft.substep_size(1.0 / 60.0)[1] < count  # softer material, fewer substeps


@pytest.mark.parametrize("contact", ["slip", "sticky", "friction"])
def test_contact_modes_on_a_plane(contact: str) -> None:
    """A block sliding on the floor: slip keeps v_t, sticky stops it, friction decelerates ~ mu g."""
    solver = small_solver(boundary="open")
    x, vol = block(lo=(0.1, 0.15, 0.1), hi=(0.2, 0.25, 0.2))
    v0 = np.tile([1.0, 0.0, 0.0], (len(x), 1))
    solver.add_particles(x, vol, FixedCorotated(2e3, 0.3, 500.0), velocities=v0)
    solver.add_collider(Plane((0.0, 0.0, 0.1), (0.0, 0.0, 1.0), contact=contact, friction=0.3))
    for _ in range(6):
        solver.step(1.0 / 60.0)
    m = solver.masses()
    vx = float((m * solver.velocities()[:, 0]).sum() / m.sum())
    if contact == "slip":
        assert vx == pytest.approx(1.0, abs=0.03)
    elif contact == "sticky":
        assert vx < 0.8
    else:
        # Coulomb: the bottom layer decelerates; the block as a whole slows, but keeps moving
        assert 0.5 < vx < 0.99


def test_moving_box_collider_pushes_particles() -> None:
    solver = small_solver(gravity=(0.0, 0.0, 0.0))
    x, vol = block()
    solver.add_particles(x, vol, FixedCorotated(2e3, 0.3, 500.0))
    pusher = solver.add_collider(Box((0.09, 0.2, 0.2), (0.05, 0.1, 0.1), contact="sticky"))
    pusher.set_velocity(linear=(0.5, 0.0, 0.0))
    for _ in range(6):
        solver.step(1.0 / 60.0)
    assert pusher.position[0] == pytest.approx(0.09 + 0.05, abs=1e-9)
    assert solver.positions()[:, 0].mean() > 0.2 + 0.02


def test_sphere_collider_slip_keeps_tangential_speed() -> None:
    solver = small_solver(gravity=(0.0, 0.0, 0.0), boundary="open")
    x, vol = block()
    solver.add_particles(x, vol, FixedCorotated(2e3, 0.3, 500.0), velocities=np.tile([0.0, 0.5, 0.0], (len(x), 1)))
    solver.add_collider(Sphere((0.2, 0.2, 0.02), 0.12, contact="slip"))  # touches the block's underside
    solver.step(1.0 / 60.0)
    assert solver.velocities()[:, 1].mean() == pytest.approx(0.5, abs=0.02)


def test_particles_leaving_the_grid_are_clamped_and_counted() -> None:
    solver = small_solver(boundary="open", gravity=(0.0, 0.0, 0.0))
    x, vol = block()
    solver.add_particles(x, vol, FixedCorotated(1e3, 0.3, 500.0), velocities=np.tile([0.0, 0.0, 2.0], (len(x), 1)))
    with pytest.warns(RuntimeWarning, match="clamped"):
        for _ in range(8):
            solver.step(1.0 / 60.0)
    assert solver.num_clamped > 0
    z = solver.positions()[:, 2]
    assert z.max() <= BOUNDS[1][2] + 1e-6 and np.all(np.isfinite(z))


def test_nan_is_reported_with_particle_indices() -> None:
    solver = small_solver()
    x, vol = block()
    solver.add_particles(x, vol, FixedCorotated(1e3, 0.3, 500.0))
    v = solver.particles.v.numpy()
    v[7] = np.nan
    solver.particles.v.assign(v)
    with pytest.raises(SimulationDivergedError) as err:
        solver.step(1.0 / 60.0)
    assert 7 in err.value.indices


def test_snow_hardens_and_fracture_damages() -> None:
    solver = small_solver(gravity=(0.0, 0.0, 0.0), boundary="open")
    xs, vs = block(lo=(0.05, 0.15, 0.15), hi=(0.15, 0.25, 0.25))
    xf, vf = block(lo=(0.25, 0.15, 0.15), hi=(0.35, 0.25, 0.25))
    squeeze = np.zeros((len(xs), 3))
    squeeze[:, 0] = -10.0 * (xs[:, 0] - 0.1)  # compress the snow block along x
    stretch = np.zeros((len(xf), 3))
    stretch[:, 0] = 20.0 * (xf[:, 0] - 0.3)  # pull the brittle block apart
    snow = solver.add_particles(xs, vs, Snow(youngs_modulus=2.0e4), velocities=squeeze)
    frac = solver.add_particles(xf, vf, Fracture(1e4, 0.3, 500.0, critical_stretch=1.02, softening=0.05),
                                velocities=stretch)
    for _ in range(4):
        solver.step(1.0 / 60.0)
    plastic = solver.plastic_state()
    tau = np.linalg.norm(solver.stresses().reshape(-1, 9), axis=1)
    assert np.abs(plastic[snow]).max() > 5e-3  # plastic flow moved volume change into J_p
    assert tau[snow].mean() > 0.0  # snow carries stress
    assert plastic[frac].max() == pytest.approx(1.0)  # fully damaged somewhere
    assert len(solver.materials) == 2


def test_samplers_are_deterministic_and_fill_the_volume() -> None:
    a, va = sample_sphere((0.2, 0.2, 0.2), 0.1, 0.01, np.random.default_rng(1))
    b, _ = sample_sphere((0.2, 0.2, 0.2), 0.1, 0.01, np.random.default_rng(1))
    np.testing.assert_array_equal(a, b)
    assert va.sum() == pytest.approx(4 / 3 * np.pi * 0.1**3, rel=0.1)
    assert np.linalg.norm(a - 0.2, axis=1).max() <= 0.1 + 0.01
    with pytest.raises(ValueError, match="spacing"):
        sample_box((0, 0, 0), (1, 1, 1), 0.0, np.random.default_rng(0))


def test_mpm_demo_job_writes_an_mp4(tmp_path: object) -> None:
    from worldmodel.cli.jobs import mpm_demo
    from worldmodel.cli.main import compose_config

    for scene in mpm_demo.SCENES:
        solver, _ = mpm_demo.build_scene(scene, 16, np.random.default_rng(0), "cpu")
        assert solver.num_particles > 0
    cfg = compose_config("mpm-demo", ["scene=fracture", "frames=2", "grid_res=16", f"out={tmp_path}"])
    mpm_demo.run(cfg)
    assert (tmp_path / "mpm_fracture.mp4").stat().st_size > 0  # type: ignore[operator]
    with pytest.raises(ValueError, match="unknown scene"):
        mpm_demo.build_scene("lava", 16, np.random.default_rng(0), "cpu")


def test_colliders_past_one_grid_launch_act_like_the_first() -> None:
    """A floor behind 5 far-away boxes (so in the second `grid_collide` chunk) holds the block as it does alone."""
    x, vol = block(lo=(0.15, 0.15, 0.11), hi=(0.25, 0.25, 0.21))
    runs = []
    for far_boxes in (0, 5):
        solver = small_solver()
        solver.add_particles(x, vol, FixedCorotated(1e4, 0.3, 1000.0))
        for i in range(far_boxes):
            solver.add_collider(Box((0.05 + 0.06 * i, 0.39, 0.39), (0.01, 0.01, 0.01)))
        solver.add_collider(Plane((0.0, 0.0, 0.1), (0.0, 0.0, 1.0), contact="sticky"))
        for _ in range(5):
            solver.step(1.0 / 60.0)
        runs.append(solver.positions())
    assert runs[0][:, 2].min() > 0.1 - 0.01  # the floor held
    np.testing.assert_allclose(runs[1], runs[0], atol=1e-6)


def test_single_material_kernel_matches_the_mixed_material_kernel() -> None:
    """Particles of one material step alike whether the solver compiles their model alone or dispatches per
    particle (another material far away, not touching them)."""
    x, vol = block(lo=(0.03, 0.03, 0.1), hi=(0.12, 0.12, 0.19))  # 2 cells apart: no node in common
    other, other_vol = block(lo=(0.28, 0.28, 0.1), hi=(0.37, 0.37, 0.19))
    for material in (FixedCorotated(1e4, 0.3, 1000.0), Fluid(bulk_modulus=1e4, density=1000.0)):
        runs = []
        for mixed in (False, True):
            solver = small_solver(dt=2e-4)  # the same substeps whatever the other material's wave speed
            ids = solver.add_particles(x, vol, material, velocities=np.tile([0.3, 0.1, 0.5], (len(x), 1)))
            if mixed:
                solver.add_particles(other, other_vol, Snow())
            solver.step(1.0 / 60.0)
            runs.append(solver.positions()[ids])
        np.testing.assert_allclose(runs[1], runs[0], atol=1e-6)
