"""Speed of material estimation through the differentiable MPM, against a forward rollout of the same run.

Workload: a fixed-corotated jelly block (E = 2e4 Pa, 0.12 x 0.08 x 0.06 m, two particles
per cell and axis) on a friction floor, poked by a slip sphere moving down and sideways
for 0.3 s then withdrawn; 2 warm-up frames and 10 observed frames of 0.05 s, substeps by
the CFL rule. For each grid resolution the script times (CPU time of this process, robust
to other tenants' load) one forward rollout at the true E (the anchor), one tape rollout
(value and gradient, checkpointed replay) and a whole estimate from 3x the true E, and
prints particles, substeps per frame, iterations, forward rollouts, seconds (total and per
iteration) and the ratios to the anchor.

    python benchmarks/bench_estimation.py [--grid-res 16 24] [--device cpu]
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import warp as wp

from physics.mpm.differentiable import TrackObservations, simulate_frames, trajectory_gradients
from physics.mpm.estimation import estimate_material
from physics.mpm.synthetic import jelly_poke

E_TRUE, FRAME, WARMUP, FRAMES = 2.0e4, 0.05, 2, 10


def clock(device: str) -> float:
    """CPU time of this process on CPU devices, wall time on GPUs."""
    return time.process_time() if device == "cpu" else time.perf_counter()


def main() -> None:
    """Print the timings of each grid resolution."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--grid-res", type=int, nargs="+", default=[16, 24])
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    wp.config.quiet = True
    print("particles  substeps/frame  forward_s  tape_s  tape/forward  iterations  rollouts  estimate_s  s/iteration  "
          "estimate/forward  E/E_true")
    for res in args.grid_res:
        solver, drive = jelly_poke(E_TRUE, FRAME, res, args.device)
        n = solver.num_particles
        t0 = clock(args.device)
        frames = simulate_frames(solver, FRAMES, FRAME, None, drive, warmup_frames=WARMUP)
        forward = clock(args.device) - t0
        obs = TrackObservations(np.arange(n), frames)
        t0 = clock(args.device)
        grads = trajectory_gradients(solver, obs, FRAME, None, drive, np.full(n, E_TRUE), warmup_frames=WARMUP)
        tape = clock(args.device) - t0
        start, start_drive = jelly_poke(3.0 * E_TRUE, FRAME, res, args.device)
        t0 = clock(args.device)
        report = estimate_material(start, obs, FRAME, 3.0 * E_TRUE, drive=start_drive, warmup_frames=WARMUP,
                                   fit_velocity=False, tolerance=3e-3, progress=False)
        est = clock(args.device) - t0
        per_frame = np.mean(grads.substeps[WARMUP:])
        per_iteration = est / max(report.iterations, 1)
        print(f"{n:9d}  {per_frame:14.0f}  {forward:9.2f}  {tape:6.2f}  {tape / forward:12.1f}  "
              f"{report.iterations:10d}  {report.forward_rollouts:8d}  {est:10.1f}  {per_iteration:11.2f}  "
              f"{est / forward:16.1f}  {report.youngs_modulus / E_TRUE:8.4f}")


if __name__ == "__main__":
    main()
