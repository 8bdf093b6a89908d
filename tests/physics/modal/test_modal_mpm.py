"""Cross-check: a small-amplitude MPM vibration of a clamped bar rings at the modal f1 (within 5%)."""

from __future__ import annotations

import importlib

import numpy as np
import pytest

from physics.modal import ModalModel, box_tet_mesh
from physics.modal.embedding import PointEmbedding

GRID_RES = 32


def _mpm():
    try:
        mpm = importlib.import_module("physics.mpm")
    except ImportError as err:
        pytest.skip(f"physics.mpm is not importable yet ({err}); the MPM cross-check needs it")
    missing = [name for name in ("MPMSolver", "MPMConfig", "FixedCorotated", "Box", "sample_box")
               if not hasattr(mpm, name)]
    if missing:
        pytest.skip(f"physics.mpm lacks {', '.join(missing)}; the MPM cross-check needs them")
    return mpm


def test_mpm_cantilever_rings_at_the_modal_frequency():
    mpm = _mpm()
    E, nu, rho = 1e5, 0.3, 1000.0
    length, h = 0.3, 0.06  # free length and square section (m)
    solver = mpm.MPMSolver(mpm.MPMConfig(grid_res=GRID_RES, bounds=((0.0, 0.0, 0.0), (0.45, 0.16, 0.16)),
                                         gravity=(0.0, 0.0, 0.0), device="cpu"))
    dx = solver.config.dx
    root = 4 * dx  # the clamp ends on a grid plane, so the clamped nodes stop exactly at the beam root
    lo = np.array([0.0, 0.05, 0.05])
    spacing = dx / 2
    x, vol = mpm.sample_box(lo, lo + [root + length, h, h], spacing, np.random.default_rng(0), jitter=0.0)

    # the FEM bar is the body the particles represent (each fills a cube of side ``spacing``)
    body_lo, body_hi = x.min(axis=0) - spacing / 2, x.max(axis=0) + spacing / 2
    vertices, tets = box_tet_mesh(body_hi - [root, body_lo[1], body_lo[2]], (12, 2, 2))
    model = ModalModel(vertices + [root, body_lo[1], body_lo[2]], tets, E, nu, rho, fixed=vertices[:, 0] < 1e-9)
    modes = model.solve(1)
    shape = PointEmbedding(model, x).interpolate(modes.node_shapes[0])
    shape[x[:, 0] < root] = 0.0
    v0 = 0.01  # m/s at the tip: amplitude ~ v0 / omega ~ 1.5 mm, a fraction of a cell
    solver.add_particles(x, vol, mpm.FixedCorotated(E, nu, rho), velocities=v0 * shape / np.abs(shape).max())
    solver.add_collider(mpm.Box((0.0, 0.08, 0.08), (root + 0.1 * dx, 0.2, 0.2), contact="sticky"))

    f_modal = modes.frequencies_hz[0]
    tip = x[:, 0] > body_hi[0] - spacing
    axis = int(np.argmax(np.abs(shape[tip]).mean(axis=0)))
    frame_dt = 1.0 / (f_modal * 40)
    times, tip_u = [0.0], [0.0]
    for frame in range(1, 32):  # 0.78 periods: past the half-period zero crossing
        solver.step(frame_dt)
        times.append(frame * frame_dt)
        tip_u.append(float(np.mean(solver.positions()[tip, axis] - x[tip, axis])))
    u = np.array(tip_u) * np.sign(tip_u[3])
    crossing = np.flatnonzero((u[1:-1] > 0) & (u[2:] <= 0))[0] + 1  # the first + to - crossing: half a period
    t_half = times[crossing] + (times[crossing + 1] - times[crossing]) * u[crossing] / (u[crossing] - u[crossing + 1])
    assert 1.0 / (2.0 * t_half) == pytest.approx(f_modal, rel=0.05)
