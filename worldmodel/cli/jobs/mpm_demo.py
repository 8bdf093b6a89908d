"""``wm4d mpm-demo scene=NAME``: simulate one MPM scene and write an mp4 of its particles."""

from __future__ import annotations

from pathlib import Path
from typing import Callable

import numpy as np
from omegaconf import DictConfig

SCENES = ("jelly_drop", "metal_bend", "sand_collapse", "paste", "fluid_dam_break", "snow", "fracture", "gripper_press")


def build_scene(name: str, grid_res: int, rng: np.random.Generator,
                device: str) -> tuple[object, Callable[[int], None]]:
    """Solver with the particles and colliders of scene ``name``, and a per-frame driver."""
    from physics import mpm

    if name not in SCENES:
        raise ValueError(f"unknown scene {name!r}; available: {', '.join(SCENES)}")
    # the grid reaches below the floor: nodes within a cell of the bounds belong to the domain's slip
    # walls, and a floor inside that band would never apply its friction
    solver = mpm.MPMSolver(mpm.MPMConfig(grid_res=grid_res, bounds=((0.0, 0.0, -0.08), (1.0, 0.5, 0.6)), device=device))
    h = solver.config.dx / 2
    floor = solver.add_collider(mpm.Plane((0.0, 0.0, 0.02), (0.0, 0.0, 1.0), contact="friction", friction=0.5))
    drive: Callable[[int], None] = lambda frame: None  # noqa: E731
    if name == "jelly_drop":
        x, v = mpm.sample_sphere((0.5, 0.25, 0.35), 0.1, h, rng)
        solver.add_particles(x, v, mpm.FixedCorotated(2e4, 0.3, 1000.0))
    elif name == "metal_bend":
        x, v = mpm.sample_box((0.2, 0.2, 0.25), (0.8, 0.3, 0.3), h, rng)
        solver.add_particles(x, v, mpm.VonMises(2e5, 0.3, 1000.0, yield_stress=3e3))
        solver.add_collider(mpm.Box((0.2, 0.25, 0.275), (0.06, 0.1, 0.06)))
        solver.add_collider(mpm.Box((0.8, 0.25, 0.275), (0.06, 0.1, 0.06)))
    elif name == "sand_collapse":
        x, v = mpm.sample_box((0.05, 0.05, 0.02), (0.25, 0.45, 0.35), h, rng)
        solver.add_particles(x, v, mpm.DruckerPrager(2e5, 0.3, 1500.0, friction_angle_deg=35.0))
    elif name == "paste":
        x, v = mpm.sample_box((0.4, 0.15, 0.1), (0.6, 0.35, 0.45), h, rng)
        solver.add_particles(x, v, mpm.HerschelBulkley(2e4, 0.3, 1000.0, yield_stress=300.0, viscosity=20.0,
                                                       flow_index=0.6))
    elif name == "fluid_dam_break":
        x, v = mpm.sample_box((0.02, 0.02, 0.02), (0.3, 0.48, 0.4), h, rng)
        solver.add_particles(x, v, mpm.Fluid(bulk_modulus=2e4, density=1000.0))
    elif name == "snow":
        x, v = mpm.sample_sphere((0.3, 0.25, 0.3), 0.1, h, rng)
        solver.add_particles(x, v, mpm.Snow(youngs_modulus=3e4), velocities=np.tile([2.0, 0.0, -1.0], (len(x), 1)))
    elif name == "fracture":
        x, v = mpm.sample_box((0.4, 0.15, 0.3), (0.6, 0.35, 0.4), h, rng)
        solver.add_particles(x, v, mpm.Fracture(5e4, 0.3, 1000.0, critical_stretch=1.03),
                             velocities=np.tile([0.0, 0.0, -3.0], (len(x), 1)))
        solver.add_collider(mpm.Sphere((0.5, 0.25, 0.12), 0.07))
    else:  # gripper_press: two capsule fingers squeeze a jelly block, then lift
        x, v = mpm.sample_box((0.42, 0.17, 0.02), (0.58, 0.33, 0.18), h, rng)
        solver.add_particles(x, v, mpm.FixedCorotated(1e4, 0.35, 1000.0))
        fingers = [solver.add_collider(mpm.Capsule((cx, 0.25, 0.12), 0.025, 0.06, contact="sticky"))
                   for cx in (0.36, 0.64)]

        def drive(frame: int) -> None:
            squeeze = 0.15 if frame < 20 else 0.0
            lift = 0.2 if 25 <= frame < 50 else 0.0
            fingers[0].set_velocity(linear=(squeeze, 0.0, lift))
            fingers[1].set_velocity(linear=(-squeeze, 0.0, lift))

    del floor
    return solver, drive


def render(positions: np.ndarray, colors: np.ndarray, bounds: np.ndarray) -> np.ndarray:
    """Orthographic front view (x right, z up) of the particles as an RGB image."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig = plt.figure(figsize=(6.4, 4.0), dpi=80)
    ax = fig.add_axes((0.0, 0.0, 1.0, 1.0))
    order = np.argsort(-positions[:, 1])  # far (large y) first
    ax.scatter(positions[order, 0], positions[order, 2], s=2.0, c=colors[order], linewidths=0)
    ax.set_xlim(bounds[0, 0], bounds[1, 0])
    ax.set_ylim(bounds[0, 2], bounds[1, 2])
    ax.set_aspect("equal")
    ax.axis("off")
    fig.canvas.draw()
    image = np.asarray(fig.canvas.buffer_rgba())[..., :3].copy()
    plt.close(fig)
    return image


def run(cfg: DictConfig) -> None:
    """Simulate ``cfg.scene`` for ``cfg.frames`` frames and write ``cfg.out/mpm_<scene>.mp4``."""
    import imageio.v2 as imageio
    import matplotlib

    if int(cfg.frames) < 1 or int(cfg.fps) < 1:
        raise ValueError(f"frames and fps must be >= 1, got {cfg.frames}, {cfg.fps}")
    solver, drive = build_scene(str(cfg.scene), int(cfg.grid_res), np.random.default_rng(int(cfg.seed)),
                                str(cfg.device))
    out = Path(str(cfg.out))
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"mpm_{cfg.scene}.mp4"
    bounds = np.array(solver.config.bounds)
    cmap = matplotlib.colormaps["viridis"]
    with imageio.get_writer(path, fps=int(cfg.fps), macro_block_size=1) as writer:
        for frame in range(int(cfg.frames)):
            drive(frame)
            solver.step(1.0 / int(cfg.fps))
            stress = np.linalg.norm(solver.stresses().reshape(-1, 9), axis=1)
            colors = cmap(np.clip(stress / max(np.percentile(stress, 95), 1e-9), 0.0, 1.0))[:, :3]
            writer.append_data(render(solver.positions(), colors, bounds))
    print(f"wrote {path} ({cfg.frames} frames, {solver.num_particles} particles, {solver.num_substeps_taken} substeps)")
