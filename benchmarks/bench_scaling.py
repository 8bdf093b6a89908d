"""Scaling curves: how env, MPM, modal and point-flow model costs grow with problem size, as PNGs.

    python benchmarks/bench_scaling.py [--quick] [--out benchmarks/results] [--only env,mpm,modal,model,train]

Each section writes ``<out>/scaling_<name>.png`` (log-log or lin-log) and prints every figure next to
its ratio to an anchor measured in the same run, so a loaded machine scales both alike:

- ``env``: PushT4D-v0 steps/s (MuJoCo, panda_hand, pointcloud obs) vs camera image size and number of
  cameras; anchor gym-pusht's 96x96 pixel mode (extra ``bench``).
- ``mpm``: ``physics.mpm`` particle-substeps/s vs particle count (64^3 grid) and grid size (32k particles)
  on bench_mpm.py's J-fluid workload; anchor Taichi's single-thread mpm3d at its default size (65,536
  particles, 64^3), when ``taichi`` is installed.
- ``modal``: ``ModalModel.solve(20)`` vs ``scipy.sparse.linalg.eigsh(K, 20, M=M, sigma=0)`` on the same
  matrices of bench_modal.py's cantilever, vs free DOFs (the solver wraps ARPACK shift-invert too).
- ``model``: shipped ``pusht4d-pointflow`` inference time vs scene points (batch 1) and vs batch size
  (independent scenes, and candidate pushes on one encoded scene: the MPC case); anchor the
  default shape (1024 points, batch 1) and the 50 ms goal.
- ``train``: PointNetFlow training samples/s vs batch size on synthetic batches; anchor batch 16.

Timings are process CPU time (``time.process_time``) on one thread (torch threads = 1, BLAS limited
to one thread, Warp and Taichi on the CPU), which other tenants' load disturbs far less than wall
time. ``--quick`` is a smoke run (few sizes, few steps). The figures also go to ``<out>/scaling.json``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from worldmodel.runtime import configure_threads

configure_threads(1)  # before torch is imported anywhere (env, model and training sections)

import matplotlib  # noqa: E402

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter  # noqa: E402

Series = dict[str, tuple[list[float], list[float]]]


def cpu_rate(work: int, fn: Callable[[], object]) -> float:
    """``work`` units per CPU second of one call of ``fn``."""
    start = time.process_time()
    fn()
    return work / max(time.process_time() - start, 1e-9)


def cpu_ms(fn: Callable[[], object], repeats: int) -> float:
    """Median CPU milliseconds of ``repeats`` calls of ``fn`` after one warm-up call."""
    fn()
    times = []
    for _ in range(repeats):
        start = time.process_time()
        fn()
        times.append(1000 * (time.process_time() - start))
    return statistics.median(times)


@dataclass
class Panel:
    """One log-log (or lin-log) axes: ``series`` as marked lines, ``hlines`` as dashed horizontal anchors,
    ``points`` as stars."""

    title: str
    xlabel: str
    ylabel: str
    series: Series
    hlines: dict[str, float] = field(default_factory=dict)
    points: dict[str, tuple[float, float]] = field(default_factory=dict)
    logx: bool = True
    logy: bool = True


def plot(path: Path, title: str, panels: list[Panel]) -> None:
    """Write ``panels`` side by side to ``path`` under ``title``."""
    plain = FuncFormatter(lambda v, _: f"{v:g}")
    fig, axes = plt.subplots(1, len(panels), figsize=(6.0 * len(panels), 4.6), dpi=110, squeeze=False)
    for ax, p in zip(axes[0], panels, strict=True):
        for label, (xs, ys) in p.series.items():
            ax.plot(xs, ys, marker="o", label=label)
        colour = len(p.series)
        for label, y in p.hlines.items():
            ax.axhline(y, color=f"C{colour}", linestyle="--", label=label)
            colour += 1
        for label, (x, y) in p.points.items():
            ax.plot([x], [y], marker="*", markersize=15, linestyle="none", color=f"C{colour}", label=label)
            colour += 1
        ax.set_xscale("log" if p.logx else "linear")
        ax.set_yscale("log" if p.logy else "linear")
        if p.logx:  # plain tick labels at the measured sizes
            ax.set_xticks(sorted({x for xs, _ in p.series.values() for x in xs}))
            ax.xaxis.set_major_formatter(plain)
            ax.xaxis.set_minor_formatter(NullFormatter())
        if p.logy:
            ax.yaxis.set_major_locator(LogLocator(subs=(1.0, 2.0, 5.0)))
            ax.yaxis.set_major_formatter(plain)
            ax.yaxis.set_minor_formatter(NullFormatter())
        else:
            ax.set_ylim(bottom=0)
        ax.set(xlabel=p.xlabel, ylabel=p.ylabel)
        ax.set_title(p.title, fontsize=9)
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=7.5)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    print(f"wrote {path}", flush=True)


def env_rate(env: object, steps: int, seed: int = 0) -> float:
    """Steps per CPU second over ``steps`` random actions (resets at episode ends included)."""
    env.reset(seed=seed)
    env.action_space.seed(seed)
    actions = [env.action_space.sample() for _ in range(steps)]

    def run() -> None:
        for a in actions:
            *_, term, trunc, _ = env.step(a)
            if term or trunc:
                env.reset()

    return cpu_rate(steps, run)


def section_env(quick: bool, out: Path) -> dict:
    """PushT4D-v0 pointcloud steps/s vs image size and cameras, gym-pusht pixels as the anchor."""
    import gymnasium as gym

    import envs  # noqa: F401  (registers the tasks)

    sizes = [48, 96] if quick else [48, 96, 128, 192, 256]
    cameras = [1, 2] if quick else [1, 2, 3]
    steps = 30 if quick else 200
    anchor = None
    try:
        import gym_pusht  # noqa: F401

        env = gym.make("gym_pusht/PushT-v0", obs_type="pixels")
        anchor = env_rate(env, 3 * steps)
        env.close()
        print(f"gym-pusht pixels 96x96: {anchor:.0f} steps/s (anchor)")
    except ImportError:
        print("gym-pusht not installed (pip install -e .[bench]): no anchor")
    rates: dict[tuple[int, int], float] = {}
    for n in cameras:
        for size in sizes:
            env = gym.make("PushT4D-v0", robot="panda_hand", obs_mode="pointcloud", backend="mujoco",
                           image_size=size, num_cameras=n)
            env_rate(env, 5)  # warm-up (renderer set-up)
            r = env_rate(env, steps)
            env.close()
            rates[n, size] = r
            ratio = f" = {r / anchor:.2f}x gym-pusht pixels" if anchor else ""
            print(f"PushT4D pointcloud {n} camera(s) {size:4d}px: {r:7.1f} steps/s{ratio}", flush=True)
    hlines = {"gym-pusht pixels 96x96 (anchor, same run)": anchor} if anchor else {}
    by_size: Series = {f"{n} camera{'s' if n > 1 else ''}": (sizes, [rates[n, s] for s in sizes]) for n in cameras}
    by_cams: Series = {f"{s}x{s} px": (cameras, [rates[n, s] for n in cameras]) for s in sizes}
    plot(out / "scaling_env.png", "PushT4D-v0 (MuJoCo, panda_hand, pointcloud obs, 1024 fused points)", [
        Panel("vs camera image size", "camera image side (px, square)", "env steps per CPU second", by_size, hlines),
        Panel("vs number of cameras", "cameras", "env steps per CPU second", by_cams, hlines)])
    return {"anchor_gym_pusht_pixels": anchor, "by_image_size": by_size}


def section_mpm(quick: bool, out: Path) -> dict:
    """MPM particle-substeps/s vs particle count and grid size; Taichi mpm3d as the anchor point."""
    import warp as wp
    from bench_mpm import BULK, N_GRID, bench_ours, bench_taichi

    from physics.mpm import Fluid

    wp.config.quiet = True
    substeps = 10 if quick else 100
    counts = [8192, 32768] if quick else [4096, 16384, 65536, 262144]
    grids = [32, 64] if quick else [32, 48, 64, 96, 128]
    grid_particles = 32768
    fluid = Fluid(bulk_modulus=BULK, density=1.0)
    xs, ys = [], []
    for n in counts:
        r = bench_ours(fluid, n, substeps, "cpu", N_GRID)[0]
        xs.append(n)
        ys.append(r)
        print(f"MPM J-fluid {n:7d} particles, grid {N_GRID}^3: {r:.3e} particle-substeps/s", flush=True)
    gx, gy = [], []
    for g in grids:
        try:
            r = bench_ours(fluid, grid_particles, substeps, "cpu", g)[0]
        except ValueError as e:  # a fixed dt beyond CFL at this resolution
            print(f"MPM grid {g}^3: skipped ({e})")
            continue
        gx.append(g)
        gy.append(r)
        print(f"MPM J-fluid {grid_particles} particles, grid {g:3d}^3: {r:.3e} particle-substeps/s", flush=True)
    taichi = bench_taichi(65536, substeps)
    by_count: Series = {f"physics.mpm J-fluid, {N_GRID}^3 grid": (xs, ys)}
    by_grid: Series = {f"physics.mpm J-fluid, {grid_particles} particles": (gx, gy)}
    count_points: dict[str, tuple[float, float]] = {}
    grid_hlines: dict[str, float] = {}
    if taichi is None:
        print("taichi not installed: no anchor")
    else:
        label = "Taichi mpm3d, 1 thread, 65,536 particles, 64^3 (anchor)"
        count_points, grid_hlines = {label: (65536.0, taichi)}, {label: taichi}
        print(f"Taichi mpm3d 1 thread 65536 particles, 64^3: {taichi:.3e} particle-substeps/s (anchor)")
        print("  vs particles: " + ", ".join(f"{x}: {y / taichi:.2f}x" for x, y in zip(xs, ys, strict=True)))
        print("  vs grid:      " + ", ".join(f"{x}^3: {y / taichi:.2f}x" for x, y in zip(gx, gy, strict=True)))
    ylabel = "particle-substeps per CPU second"
    plot(out / "scaling_mpm.png", "physics.mpm (Warp, CPU), mpm3d J-fluid workload, dt 2e-4 s", [
        Panel(f"vs particle count ({N_GRID}^3 grid)", "particles", ylabel, by_count, points=count_points),
        Panel(f"vs grid size ({grid_particles} particles)", "grid cells per side", ylabel, by_grid, grid_hlines)])
    return {"anchor_taichi_mpm3d": taichi, "substeps": substeps, "by_particles": by_count, "by_grid": by_grid}


def section_modal(quick: bool, out: Path) -> dict:
    """20-mode solve CPU time vs free DOFs, ours vs scipy eigsh(sigma=0) on the same K and M."""
    from bench_modal import cantilever
    from scipy.sparse.linalg import eigsh

    from physics.modal.eigen import single_threaded_blas

    cells = [(25, 3, 2), (50, 5, 3)]
    if not quick:
        cells += [(72, 7, 4), (100, 10, 5), (120, 12, 6), (144, 14, 8)]
    dofs, ours, theirs = [], [], []
    with single_threaded_blas():
        for c in cells:
            model = cantilever(c, 1)
            K, M = model._k_free, model._m_free
            fresh = cantilever(c, 1)
            start = time.process_time()
            fresh.solve(20)
            t_ours = time.process_time() - start
            start = time.process_time()
            eigsh(K, 20, M=M, sigma=0)
            t_scipy = time.process_time() - start
            dofs.append(model.num_dofs)
            ours.append(t_ours)
            theirs.append(t_scipy)
            print(f"modal {c}: {model.num_dofs:6d} DOF | ours {t_ours:6.2f} s | scipy eigsh(sigma=0) {t_scipy:6.2f} s "
                  f"| speed-up {t_scipy / t_ours:4.1f}x", flush=True)
    series: Series = {"ModalModel.solve(20) (nested dissection + multifrontal)": (dofs, ours),
                      "scipy eigsh(K, 20, M, sigma=0), SuperLU (anchor)": (dofs, theirs)}
    plot(out / "scaling_modal.png", "Modal eigen-solve, 20 modes, linear-tet aluminium cantilever 0.8 x 0.06 x 0.03 m",
         [
        Panel("same K and M on both sides, 1 BLAS thread", "free degrees of freedom", "CPU seconds per solve",
              series)])
    return {"series": series}


def model_batch(model: object, B: int, N: int, Nr: int = 256) -> dict:
    """A synthetic input batch of ``model``'s shapes (values do not matter for timing)."""
    from bench_model import random_batch

    batch = random_batch(B, N, Nr, model.horizon)
    for key in model.inputs:
        batch[key] = batch["scene_points"] * 0.0
    return batch


def section_model(quick: bool, out: Path) -> dict:
    """Shipped model inference CPU ms vs scene points and batch size, one torch thread."""
    import torch

    from worldmodel import load_pretrained

    model = load_pretrained("pusht4d-pointflow")
    repeats = 2 if quick else 7
    points = [256, 1024] if quick else [256, 512, 1024, 2048, 4096, 8192]
    batches = [1, 4, 16] if quick else [1, 4, 16, 64, 256]
    with torch.no_grad():
        anchor = cpu_ms(lambda: model(model_batch(model, 1, 1024)), 3 * repeats)
        print(f"pusht4d-pointflow batch 1, 1024 points: {anchor:.1f} ms (anchor; torch threads "
              f"{torch.get_num_threads()})")
        px, py = [], []
        for n in points:
            b = model_batch(model, 1, n)
            ms = cpu_ms(lambda b=b: model(b), repeats)
            px.append(n)
            py.append(ms)
            print(f"  batch 1, {n:5d} scene points: {ms:8.1f} ms = {ms / anchor:6.2f}x anchor", flush=True)
        bx, by, cy = [], [], []
        scene = model.encode_scene(model_batch(model, 1, 1024))
        for B in batches:
            b = model_batch(model, B, 1024)
            ms = cpu_ms(lambda b=b: model(b), 1 if B >= 64 else repeats)
            shared = cpu_ms(lambda b=b: model.decode(scene, model.encode_push(b)), repeats)
            bx.append(B)
            by.append(ms)
            cy.append(shared)
            print(f"  1024 points, batch {B:3d}: {ms:8.1f} ms ({ms / B:.2f} ms/sample, {ms / anchor:.1f}x anchor); "
                  f"{B} pushes on one encoded scene {shared:8.1f} ms", flush=True)
    by_points: Series = {"batch 1": (px, py)}
    by_batch: Series = {"batch of scenes": (bx, by), "pushes on one encoded scene (MPC)": (bx, cy)}
    goal = {"50 ms goal (batch 1)": 50.0}
    plot(out / "scaling_model.png", "pusht4d-pointflow (PointNetFlow) inference, 1 torch thread, H 10, 256 gripper pts",
         [
        Panel("vs scene points (batch 1)", "scene points", "CPU ms per call", by_points, goal,
              {"anchor: 1024 points, batch 1": (1024.0, anchor)}),
        Panel("vs batch (1024 scene points)", "batch size / candidate pushes", "CPU ms per call", by_batch, goal,
              {"anchor: 1024 points, batch 1": (1.0, anchor)})])
    return {"anchor_ms": anchor, "by_points": by_points, "by_batch": by_batch}


def section_train(quick: bool, out: Path) -> dict:
    """PointNetFlow training samples/s vs batch size, one torch thread, synthetic batches."""
    import torch

    from worldmodel.formulation import heteroscedastic_huber
    from worldmodel.models import PointNetFlow

    torch.manual_seed(0)
    model = PointNetFlow(horizon=10, width=128).train()
    opt = torch.optim.AdamW(model.parameters(), lr=3e-4)
    batches = [2, 8] if quick else [2, 4, 8, 16, 32, 64]
    steps = 1 if quick else 3
    results: dict[int, float] = {}
    for B in batches:
        batch = model_batch(model, B, 1024)

        def step(batch: dict = batch) -> None:
            pred, log_var = model(batch)
            loss = heteroscedastic_huber(pred, log_var, batch["target"])
            opt.zero_grad()
            loss.backward()
            opt.step()

        results[B] = B / (cpu_ms(step, steps) / 1000)
        print(f"train batch {B:3d}: {results[B]:6.1f} samples/s", flush=True)
    anchor_b = 16 if 16 in results else batches[-1]
    anchor = results[anchor_b]
    for B, r in results.items():
        print(f"  batch {B:3d}: {r / anchor:.2f}x batch {anchor_b}")
    series: Series = {"PointNetFlow width 128 (AdamW step)": (list(results), list(results.values()))}
    plot(out / "scaling_training.png", "PointNetFlow training, 1 torch thread, synthetic batches", [
        Panel("1024 scene points, 256 gripper points, H 10", "batch size", "training samples per CPU second", series,
              points={f"anchor: batch {anchor_b}": (float(anchor_b), anchor)}, logy=False)])
    return {"anchor_batch": anchor_b, "series": series}


SECTIONS = {"env": section_env, "mpm": section_mpm, "modal": section_modal, "model": section_model,
            "train": section_train}


def main() -> None:
    """Run the chosen sections, write their PNGs and ``scaling.json``."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="smoke run: few sizes, few steps")
    ap.add_argument("--out", type=Path, default=Path("benchmarks/results"))
    ap.add_argument("--only", default=",".join(SECTIONS), help=f"comma list of {', '.join(SECTIONS)}")
    args = ap.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / "scaling.json"
    results = json.loads(path.read_text()) if path.exists() else {}
    for name in args.only.split(","):
        print(f"== {name}", flush=True)
        wall = time.perf_counter()
        results[name] = SECTIONS[name](args.quick, args.out)
        print(f"({name}: {time.perf_counter() - wall:.0f} s wall)", flush=True)
    path.write_text(json.dumps(results, indent=1) + "\n")


if __name__ == "__main__":
    main()
