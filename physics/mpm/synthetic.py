"""A synthetic jelly poke: the reference scene of material estimation (tests, benchmarks, examples).

A jelly block (0.12 x 0.08 x 0.06 m, two particles per cell and axis) rests on a friction
floor; a slip sphere of radius 3 cm pokes down and right into its left edge at 0.28 m/s for
0.3 s, then withdraws along the same line.
"""

from __future__ import annotations

from typing import Callable

import numpy as np

from .colliders import Plane, Sphere
from .config import MPMConfig
from .materials import FixedCorotated
from .sampling import sample_box
from .solver import MPMSolver

POKE_SECONDS = 0.3
POKE_VELOCITY = (0.2, 0.0, -0.2)  # m/s


def jelly_poke(youngs_modulus: float, frame_dt: float, grid_res: int = 16, device: str = "cpu"
               ) -> tuple[MPMSolver, Callable[[int], None]]:
    """The block (E = ``youngs_modulus``, Poisson 0.3, 1000 kg/m^3; 216 particles at ``grid_res`` 16,
    cells over the 0.4 m long domain) and the per-frame drive of the sphere for frames of ``frame_dt`` s."""
    cfg = MPMConfig(grid_res=grid_res, bounds=((0.0, 0.0, 0.0), (0.4, 0.3, 0.2)), device=device)
    solver = MPMSolver(cfg)
    x, vol = sample_box((0.14, 0.11, 0.05), (0.26, 0.19, 0.11), cfg.dx / 2, np.random.default_rng(0))
    solver.add_particles(x, vol, FixedCorotated(youngs_modulus, 0.3, 1000.0))
    solver.add_collider(Plane((0.0, 0.0, 0.05), (0.0, 0.0, 1.0), contact="friction", friction=0.5))
    sphere = solver.add_collider(Sphere((0.12, 0.15, 0.14), 0.03, contact="slip"))
    start, v = np.array([0.12, 0.15, 0.14]), np.array(POKE_VELOCITY)

    def drive(frame: int) -> None:
        t = frame * frame_dt
        out = min(t, POKE_SECONDS) - max(0.0, t - POKE_SECONDS)  # time spent going in, net of coming back
        sphere.set_pose(start + v * out)
        sphere.set_velocity(v if t < POKE_SECONDS - 1e-9 else -v)

    return solver, drive
