"""Collection throughput of ``wm4d collect`` per launcher and worker count, against one local worker in the same run.

    python benchmarks/bench_collect.py [--episodes 12] [--max-steps 50] [--workers 1,2]

Every run records the same episodes (random pushes, Push4D-v0 with the T, floating Panda hand, pointcloud, the
env's defaults) into a fresh store. The anchor is ``launcher=local workers=1`` (this process). Each Ray run is
timed twice: the whole job (starting a local Ray cluster and its worker processes) and, with the cluster
already up, the steady rate. The last line is the driver's cost of writing a step into the store: the rate a
cluster of any size can feed into one store (episodes are independent, so the workers scale until the writer
is the limit).
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from worldmodel.cli.main import run_job


def collect(out: Path, episodes: int, max_steps: int, extra: list[str]) -> float:
    """Seconds for one ``wm4d collect`` run into ``out``."""
    t = time.perf_counter()
    run_job("collect", ["env_id=Push4D-v0", f"episodes={episodes}", f"max_steps={max_steps}", "seed=11",
                        f"out={out}", *extra])
    return time.perf_counter() - t


def main() -> None:
    """Print the table."""
    ap = argparse.ArgumentParser()
    ap.add_argument("--episodes", type=int, default=12)
    ap.add_argument("--max-steps", type=int, default=50)
    ap.add_argument("--workers", default="1,2")
    args = ap.parse_args()
    steps = args.episodes * args.max_steps
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        anchor = steps / collect(root / "anchor.zarr", args.episodes, args.max_steps, ["workers=1"])
        print(f"{'launcher':<34} {'steps/s':>8} {'ratio':>6}")
        print(f"{'local, 1 worker (anchor)':<34} {anchor:8.1f} {1.0:6.2f}")
        for w in (int(x) for x in args.workers.split(",")):
            if w > 1:
                rate = steps / collect(root / f"pool{w}.zarr", args.episodes, args.max_steps, [f"workers={w}"])
                print(f"{f'local pool, {w} workers':<34} {rate:8.1f} {rate / anchor:6.2f}")
            rate = steps / collect(root / f"ray{w}.zarr", args.episodes, args.max_steps,
                                   ["launcher=ray", f"workers={w}"])
            print(f"{f'ray, {w} workers (with start-up)':<34} {rate:8.1f} {rate / anchor:6.2f}")
            import ray

            ray.init(num_cpus=w, include_dashboard=False, log_to_driver=False, logging_level="ERROR")
            collect(root / f"warm{w}.zarr", w, 5, ["launcher=ray", f"workers={w}"])  # start the workers
            rate = steps / collect(root / f"ray{w}b.zarr", args.episodes, args.max_steps,
                                   ["launcher=ray", f"workers={w}"])
            ray.shutdown()
            print(f"{f'ray, {w} workers (cluster up)':<34} {rate:8.1f} {rate / anchor:6.2f}")
        write_rate = _writer_rate(root / "anchor.zarr", root / "copy.zarr")
        print(f"driver writes {write_rate:.0f} steps/s into one store (the ceiling of a cluster feeding it)")


def _writer_rate(src: Path, dst: Path) -> float:
    """Steps per second `RolloutWriter.add_episode` stores, copying the episodes of ``src``."""
    from worldmodel.data import RolloutStore
    from worldmodel.data.writer import RolloutWriter

    store = RolloutStore(src)
    episodes = [(store.episode(i), int(store.episode_seeds[i]), store.episode_info(i))
                for i in range(store.num_episodes)]
    writer = RolloutWriter(dst, dict(store.attrs))
    t = time.perf_counter()
    for steps, seed, info in episodes:
        writer.add_episode(steps, seed, info)
    return store.num_steps / (time.perf_counter() - t)


if __name__ == "__main__":
    main()
