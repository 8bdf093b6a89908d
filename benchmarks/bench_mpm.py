"""MPM speed: particle-substeps per second against Taichi's mpm3d example, same run.

Workload (Taichi's mpm3d example at n_grid = 64): 65,536 particles uniformly random in
a 0.4 m cube of a unit domain, 64^3 grid, particle volume (dx / 2)^2, density 1,
J-based weakly compressible fluid with bulk modulus E = 400, gravity 9.8, dt = 2e-4.
We time our general solver (``physics.mpm``) on the fluid and on fixed-corotated
elastic particles of the same size, and Taichi's single-threaded CPU version of the
example when ``taichi`` is installed (extra ``bench``); ratios are against that anchor
measured in the same process. Also prints device memory per particle.

    python benchmarks/bench_mpm.py [--device cpu|cuda] [--particles 65536] [--substeps 200]
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import warp as wp

from physics.mpm import FixedCorotated, Fluid, MPMConfig, MPMSolver

N_GRID = 64


def clock(device: str) -> float:
    """CPU time of this process on CPU devices (robust to other tenants' load), wall time on GPUs."""
    return time.process_time() if device == "cpu" else time.perf_counter()


DT = 2.0e-4
BULK = 400.0


def mpm3d_particles(n: int, rng: np.random.Generator) -> np.ndarray:
    """Initial positions of the mpm3d example (uniform in [0.15, 0.55]^3)."""
    return rng.random((n, 3)) * 0.4 + 0.15


def bench_ours(material: object, n: int, substeps: int, device: str, grid: int = N_GRID) -> tuple[float, MPMSolver]:
    """Particle-substeps/s of ``MPMSolver`` on the mpm3d workload with ``material``."""
    dx = 1.0 / grid
    solver = MPMSolver(MPMConfig(grid_res=grid, bounds=((0.0, 0.0, 0.0), (1.0, 1.0, 1.0)), dt=DT,
                                 gravity=(0.0, 0.0, -9.8), device=device))
    solver.add_particles(mpm3d_particles(n, np.random.default_rng(0)), (dx * 0.5) ** 2, material)
    solver.step(10 * DT)  # compile / warm up
    wp.synchronize_device(device)
    start = clock(device)
    solver.step(substeps * DT)
    wp.synchronize_device(device)
    return n * substeps / (clock(device) - start), solver


def bench_taichi(n: int, substeps: int) -> float | None:
    """Particle-substeps/s of Taichi's mpm3d (J-fluid) on one CPU thread; None without taichi."""
    try:
        import taichi as ti
    except ImportError:
        return None
    ti.init(arch=ti.cpu, cpu_max_num_threads=1, default_fp=ti.f32, log_level=ti.ERROR)
    dx = 1.0 / N_GRID
    p_vol = (dx * 0.5) ** 2
    p_mass = p_vol * 1.0
    x = ti.Vector.field(3, float, n)
    v = ti.Vector.field(3, float, n)
    C = ti.Matrix.field(3, 3, float, n)
    J = ti.field(float, n)
    grid_v = ti.Vector.field(3, float, (N_GRID,) * 3)
    grid_m = ti.field(float, (N_GRID,) * 3)
    bound = 3

    @ti.kernel
    def substep():  # noqa: ANN202 (taichi rejects a return annotation here)
        for cell in ti.grouped(grid_m):
            grid_v[cell] = ti.zero(grid_v[cell])
            grid_m[cell] = 0.0
        ti.loop_config(block_dim=N_GRID)
        for p in x:  # P2G
            Xp = x[p] / dx
            base = int(Xp - 0.5)
            fx = Xp - base
            w = [0.5 * (1.5 - fx) ** 2, 0.75 - (fx - 1) ** 2, 0.5 * (fx - 0.5) ** 2]
            stress = -DT * 4 * BULK * p_vol * (J[p] - 1) / dx**2
            affine = ti.Matrix.identity(float, 3) * stress + p_mass * C[p]
            for off in ti.static(ti.grouped(ti.ndrange(3, 3, 3))):
                dpos = (off - fx) * dx
                weight = w[off[0]][0] * w[off[1]][1] * w[off[2]][2]
                grid_v[base + off] += weight * (p_mass * v[p] + affine @ dpos)
                grid_m[base + off] += weight * p_mass
        for cell in ti.grouped(grid_m):  # grid update
            if grid_m[cell] > 0:
                grid_v[cell] /= grid_m[cell]
            grid_v[cell][2] -= DT * 9.8
            cond = (cell < bound) & (grid_v[cell] < 0) | (cell > N_GRID - bound) & (grid_v[cell] > 0)
            grid_v[cell] = ti.select(cond, 0, grid_v[cell])
        ti.loop_config(block_dim=N_GRID)
        for p in x:  # G2P
            Xp = x[p] / dx
            base = int(Xp - 0.5)
            fx = Xp - base
            w = [0.5 * (1.5 - fx) ** 2, 0.75 - (fx - 1) ** 2, 0.5 * (fx - 0.5) ** 2]
            new_v = ti.zero(v[p])
            new_C = ti.zero(C[p])
            for off in ti.static(ti.grouped(ti.ndrange(3, 3, 3))):
                dpos = (off - fx) * dx
                weight = w[off[0]][0] * w[off[1]][1] * w[off[2]][2]
                g_v = grid_v[base + off]
                new_v += weight * g_v
                new_C += 4 * weight * g_v.outer_product(dpos) / dx**2
            v[p] = new_v
            x[p] += DT * v[p]
            J[p] *= 1 + DT * new_C.trace()
            C[p] = new_C

    x.from_numpy(mpm3d_particles(n, np.random.default_rng(0)).astype(np.float32))
    J.fill(1.0)
    for _ in range(10):
        substep()
    ti.sync()
    start = clock("cpu")
    for _ in range(substeps):
        substep()
    ti.sync()
    rate = n * substeps / (clock("cpu") - start)
    ti.reset()
    return rate


def main() -> None:
    """Print particle-substeps/s, ratios and bytes per particle."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--particles", type=int, default=65536)
    ap.add_argument("--substeps", type=int, default=200)
    ap.add_argument("--grid", type=int, default=N_GRID)
    ap.add_argument("--no-taichi", action="store_true", help="skip the Taichi anchor")
    args = ap.parse_args()
    wp.config.quiet = True
    fluid, solver = bench_ours(Fluid(bulk_modulus=BULK, density=1.0), args.particles, args.substeps, args.device,
                               args.grid)
    elastic, _ = bench_ours(FixedCorotated(youngs_modulus=BULK, poisson_ratio=0.2, density=1.0), args.particles,
                            args.substeps, args.device, args.grid)
    mem = solver.memory_bytes()
    timer = "process CPU time" if args.device == "cpu" else "wall time"
    print(f"device {args.device}, {args.particles} particles, grid {args.grid}^3, {args.substeps} substeps, "
          f"rates per {timer}")
    print(f"ours J-fluid           {fluid:.3e} particle-substeps/s")
    print(f"ours fixed-corotated   {elastic:.3e} particle-substeps/s  ({elastic / fluid:.2f}x our J-fluid)")
    print(f"memory: {mem['particles'] / solver.num_particles:.0f} bytes/particle + grid {mem['grid'] / 2**20:.1f} MiB")
    taichi = (None if args.no_taichi or args.device != "cpu" or args.grid != N_GRID
              else bench_taichi(args.particles, args.substeps))
    if taichi is None:
        print("taichi mpm3d: skipped (install the 'bench' extra for the anchor)")
    else:
        print(f"taichi mpm3d (1 thread) {taichi:.3e} particle-substeps/s")
        print(f"ratio J-fluid / taichi  {fluid / taichi:.2f}x")


if __name__ == "__main__":
    main()
