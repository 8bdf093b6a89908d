"""Splat-sim speed: Gaussians x frames per second, against the bare MPM solver in the same run.

Workload: a synthetic sphere of ``--gaussians`` surface splats (SH degree 3) set up exactly
as ``wm4d splat-sim`` does (jelly, scaled to 0.2 m, interior fill at dx / 2, floor, drop),
stepped ``--frames`` frames of 1/30 s. Timed separately per frame: the MPM step (with
covariance tracking), the splat update (positions, covariances -> scales + rotations,
polar(F) and SH rotation) and the PLY write. Anchor: a bare ``MPMSolver`` (no covariance
tracking, no splat output) stepping the same particles for the same frames. CPU time of
this process on CPU devices (robust to other tenants' load), wall time on GPUs.

    python benchmarks/bench_splats.py [--gaussians 20000] [--frames 10] [--grid-res 48] [--device cpu|cuda]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import warp as wp

from physics import mpm
from physics.splats import sphere_splats
from worldmodel.cli.jobs.splat_sim import build
from worldmodel.cli.main import compose_config


def clock(device: str) -> float:
    """CPU time on CPU devices, wall time on GPUs."""
    return time.process_time() if device == "cpu" else time.perf_counter()


def main() -> None:
    """Run the benchmark and print its figures."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--gaussians", type=int, default=20000)
    parser.add_argument("--frames", type=int, default=10)
    parser.add_argument("--grid-res", type=int, default=48)
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    radius = 0.5
    spacing = float(np.sqrt(4.0 * np.pi * radius**2 / args.gaussians))
    splats = sphere_splats((0.0, 0.0, 0.0), radius, spacing, np.random.default_rng(0))
    with tempfile.TemporaryDirectory() as tmp:
        path = splats.save(Path(tmp) / "sphere.ply")
        cfg = compose_config("splat-sim", [f"input={path}", f"grid_res={args.grid_res}", f"device={args.device}"])
        start = clock(args.device)
        scene = build(cfg)
        setup = clock(args.device) - start
        solver, frame_dt = scene.engine.solver, 1.0 / int(cfg.fps)
        solver.step(frame_dt)  # compile / warm up
        scene.frame().save(Path(tmp) / "warm.ply")
        step = update = write = 0.0
        substeps0 = solver.num_substeps_taken
        for index in range(args.frames):
            t0 = clock(args.device)
            solver.step(frame_dt)
            wp.synchronize_device(args.device)
            t1 = clock(args.device)
            frame = scene.frame()
            t2 = clock(args.device)
            frame.save(Path(tmp) / f"frame_{index:04d}.ply")
            t3 = clock(args.device)
            step, update, write = step + t1 - t0, update + t2 - t1, write + t3 - t2
        substeps = solver.num_substeps_taken - substeps0

        # anchor: the bare solver on the same particles, same frames
        p = solver.particles
        bare = mpm.MPMSolver(mpm.MPMConfig(grid_res=args.grid_res, bounds=solver.config.bounds,
                                           gravity=solver.config.gravity, device=args.device))
        bare.add_collider(solver.colliders[0])
        bare.add_particles(p.x.numpy().astype(np.float64), p.volume.numpy().astype(np.float64), solver.materials[0])
        bare.step(frame_dt)
        bare_substeps0 = bare.num_substeps_taken
        t0 = clock(args.device)
        for _ in range(args.frames):
            bare.step(frame_dt)
        wp.synchronize_device(args.device)
        bare_time = clock(args.device) - t0
        bare_substeps = bare.num_substeps_taken - bare_substeps0

    n, total = len(scene.rows), solver.num_particles
    per_frame = (step + update + write) / args.frames
    print(f"device {args.device}; {n} Gaussians + {scene.engine.driver.num_fill} fill particles = {total} particles, "
          f"grid_res {args.grid_res}, dx {solver.config.dx:.4g} m")
    print(f"setup (load, fill, particles): {setup:.2f} s")
    print(f"per frame: MPM step {step / args.frames * 1e3:.0f} ms ({substeps / args.frames:.1f} substeps), "
          f"splat update {update / args.frames * 1e3:.0f} ms, PLY write {write / args.frames * 1e3:.0f} ms")
    print(f"splat-sim: {n * args.frames / (step + update + write):,.0f} Gaussian-frames/s, "
          f"{n * substeps / (step + update + write):,.0f} Gaussian-substeps/s, "
          f"{total * substeps / step:,.2e} particle-substeps/s in the MPM step")
    bare_per_frame = bare_time / args.frames
    print(f"anchor, bare MPM solver on the same particles: {bare_per_frame * 1e3:.0f} ms/frame "
          f"({bare_substeps / args.frames:.1f} substeps), "
          f"{total * bare_substeps / bare_time:,.2e} particle-substeps/s")
    print(f"ratio splat-sim frame / bare solver frame: {per_frame / bare_per_frame:.2f}x")


if __name__ == "__main__":
    main()
