"""Point-flow model speed on this CPU: inference ms at batch 1 and for 256 candidate pushes on one
encoded scene (the MPC case), and training samples/s; optionally the thread settings side by side
under a background load.

    python benchmarks/bench_model.py [--model pointnet|transformer|all] [--points 1024] [--gripper 256]
                                     [--horizon 10] [--width W] [--threads T]
    python benchmarks/bench_model.py --compare [--load busy|blas|torch|sim|none] [--load-procs 2] [--mix]

Without ``--compare`` the figures are measured with ``worldmodel.runtime.configure_threads(T)``
(T unset: the package default). ``--compare`` measures, each in a fresh process and in this one
run, torch's own defaults (what the package did before it configured threads), ``--threads 1``
the old way (``torch.set_num_threads(1)`` only) and the package default, while ``--load-procs``
processes of ``--load`` run beside them (``busy``: a Python loop; ``blas``: numpy matmuls on
OpenBLAS threads; ``torch``: torch ops on torch's default threads; ``sim``: PushT4D-v0 steps);
``--mix`` runs numpy matmuls in the benchmark's own process before each timed inference (BLAS
and torch threads taking turns, as in ``wm4d eval``).
Times are medians over the repeats (a best-of hides the stalls a loaded machine causes).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

MODELS = {"pointnet": ("PointNetFlow", 128), "transformer": ("PointFlowTransformer", 64)}
SETTINGS = {  # --compare: name -> how the child process sets its threads
    "torch defaults": "torch",
    "threads=1 (torch.set_num_threads)": "one",
    "package default (configure_threads)": "package",
}
SCRUB = ("OMP_WAIT_POLICY", "OPENBLAS_NUM_THREADS", "GOMP_SPINCOUNT", "OMP_NUM_THREADS")


def random_batch(B: int, N: int, Nr: int, H: int) -> dict:
    """A batch of the model's input shapes (values do not matter for timing)."""
    import torch

    g = torch.Generator().manual_seed(0)
    return {"scene_points": torch.rand(B, N, 3, generator=g), "scene_colors": torch.rand(B, N, 3, generator=g),
            "scene_normals": torch.rand(B, N, 3, generator=g),
            "gripper_points": torch.rand(B, H + 1, Nr, 3, generator=g),
            "gripper_velocity": torch.rand(B, H + 1, Nr, 3, generator=g),
            "gripper_acceleration": torch.rand(B, H + 1, Nr, 3, generator=g),
            "target": torch.rand(B, H, N, 3, generator=g) * 0.01}


def timed(fn, repeats: int, between=None) -> tuple[float, float]:
    """(median, best) wall time of ``repeats`` calls after one warm-up call, in ms; ``between()`` (untimed)
    runs before each call."""
    fn()
    times = []
    for _ in range(repeats):
        if between is not None:
            between()
        t = time.perf_counter()
        fn()
        times.append(1000 * (time.perf_counter() - t))
    return statistics.median(times), min(times)


def bench(name: str, width: int, a: argparse.Namespace) -> dict[str, float]:
    """Print and return the figures of one model class."""
    import torch

    import worldmodel.models
    from worldmodel.formulation import heteroscedastic_huber

    cls = getattr(worldmodel.models, MODELS[name][0])
    torch.manual_seed(0)
    model = cls(horizon=a.horizon, width=width).eval()
    one = random_batch(1, a.points, a.gripper, a.horizon)
    many = random_batch(256, a.points, a.gripper, a.horizon)
    between = None
    if a.mix:  # numpy (OpenBLAS) work in this process between inferences, as a simulation's in `wm4d eval`
        import numpy as np

        m = np.random.default_rng(0).random((300, 300))

        def between():
            return m @ m @ m

    with torch.no_grad():
        ms1, best1 = timed(lambda: model(one), a.repeats, between)

        def shared():
            return model.decode(model.encode_scene(one), model.encode_push(many))

        ms256, _ = timed(shared, 3)
    print(f"{cls.__name__} width {width}, Ns {a.points}, Nr {a.gripper}, H {a.horizon}, "
          f"{torch.get_num_threads()} threads")
    print(f"parameters: {sum(p.numel() for p in model.parameters())}")
    print(f"inference batch 1: {ms1:.1f} ms median, {best1:.1f} ms best (goal <= 50 ms)"
          + (" [numpy matmuls between calls]" if a.mix else ""))
    print(f"inference 256 pushes on one encoded scene: {ms256:.0f} ms (goal <= 1000 ms)")
    model.train()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    train_batch = random_batch(16, a.points, a.gripper, a.horizon)

    def step():
        pred, log_var = model(train_batch)
        loss = heteroscedastic_huber(pred, log_var, train_batch["target"])
        opt.zero_grad()
        loss.backward()
        opt.step()

    ms, _ = timed(step, max(3, a.repeats // 3))
    print(f"training: {16 / (ms / 1000):.0f} samples/s (batch 16)", flush=True)
    return {"infer_ms": ms1, "infer256_ms": ms256, "train_sps": 16 / (ms / 1000)}


def set_threads(how: str, threads: int | None) -> str:
    """Apply a thread setting before torch is imported; returns a description of it."""
    if how == "package":
        from worldmodel.runtime import configure_threads

        n = configure_threads(threads)
        return f"configure_threads({threads}) -> {n} threads, OMP_WAIT_POLICY={os.environ.get('OMP_WAIT_POLICY')}"
    import torch

    if how == "one":
        torch.set_num_threads(1)
    return f"{torch.get_num_threads()} threads, OMP_WAIT_POLICY={os.environ.get('OMP_WAIT_POLICY', 'unset')}"


def load(kind: str, seconds: float) -> None:
    """Keep the CPU busy with ``kind`` of work for ``seconds`` (a background process of ``--compare``)."""
    end = time.time() + seconds
    if kind == "busy":
        while time.time() < end:
            sum(range(10000))
    elif kind == "blas":
        import numpy as np

        m = np.random.default_rng(0).random((200, 200))
        while time.time() < end:
            m @ m
    elif kind == "torch":
        import torch

        m = torch.rand(64, 4000)
        while time.time() < end:
            (m * 2).relu_()
    elif kind == "sim":
        import gymnasium as gym

        import envs  # noqa: F401  (registers the tasks)

        env = gym.make("PushT4D-v0", robot="panda_hand", obs_mode="pointcloud", image_size=64)
        env.reset(seed=0)
        while time.time() < end:
            *_, terminated, truncated, _ = env.step(env.action_space.sample())
            if terminated or truncated:
                env.reset()
    else:
        raise ValueError(f"unknown load {kind!r}")


def compare(a: argparse.Namespace, argv: list[str]) -> None:
    """Run each thread setting in a fresh process beside ``a.load_procs`` processes of ``a.load``."""
    me, env = str(Path(__file__).resolve()), {k: v for k, v in os.environ.items() if k not in SCRUB}
    loads = []
    if a.load != "none":
        loads = [subprocess.Popen([sys.executable, me, "--run-load", a.load], env=env,
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL) for _ in range(a.load_procs)]
        time.sleep(3.0)  # let the load start (imports)
    try:
        print(f"load: {a.load} x{a.load_procs if loads else 0}, {os.cpu_count()} CPUs, "
              f"load average {os.getloadavg()[0]:.1f} at start", flush=True)
        for label, how in SETTINGS.items():
            print(f"\n== {label}", flush=True)
            subprocess.run([sys.executable, me, "--setting", how, *argv], env=env, check=True)
        print(f"\nload average {os.getloadavg()[0]:.1f} at end")
    finally:
        for p in loads:
            p.kill()
            p.wait()


def main() -> None:
    """Print the figures of the chosen models (or, with ``--compare``, of each thread setting)."""
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", choices=[*MODELS, "all"], default="pointnet")
    ap.add_argument("--points", type=int, default=1024)
    ap.add_argument("--gripper", type=int, default=256)
    ap.add_argument("--horizon", type=int, default=10)
    ap.add_argument("--width", type=int, default=None, help="default: 128 pointnet, 64 transformer")
    ap.add_argument("--threads", type=int, default=None, help="torch threads (default: configure_threads' choice)")
    ap.add_argument("--repeats", type=int, default=15, help="timed calls of batch-1 inference (training: a third)")
    ap.add_argument("--compare", action="store_true", help="torch defaults vs threads=1 vs the package default")
    ap.add_argument("--mix", action="store_true", help="numpy matmuls in this process between timed inferences")
    ap.add_argument("--load", choices=["none", "busy", "blas", "torch", "sim"], default="none")
    ap.add_argument("--load-procs", type=int, default=2, help="background load processes (--compare)")
    ap.add_argument("--setting", choices=sorted(set(SETTINGS.values())), default="package", help=argparse.SUPPRESS)
    ap.add_argument("--run-load", default=None, help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.run_load:
        load(a.run_load, seconds=3600)
        return
    if a.compare:
        skip = {"--compare", "--load", "--load-procs"}
        argv, it = [], iter(sys.argv[1:])
        for arg in it:
            if arg.split("=", 1)[0] in skip:
                if arg in ("--load", "--load-procs"):
                    next(it, None)
                continue
            argv.append(arg)
        compare(a, argv)
        return
    print(set_threads(a.setting, a.threads), flush=True)
    for name in MODELS if a.model == "all" else [a.model]:
        bench(name, a.width or MODELS[name][1], a)


if __name__ == "__main__":
    main()
