"""Seconds per replan of the planners with the shipped point-flow model (and the simulator oracle).

Each planner replans from the same near-goal states (the first observation of ``--episodes``
episodes); the anchor measured in the same run is one batch-1 forward pass of the model, so
the printed ratio (replan / forward) is comparable across machines. The design goal is at
most 1 s per learned-model replan on a 2-core laptop CPU.

    python benchmarks/bench_planning.py --episodes 5 --threads 2
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import gymnasium as gym  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402

import envs  # noqa: E402,F401
from policies.dynamics import OracleDynamics  # noqa: E402
from policies.mpc import FlowCost, MPCPolicy  # noqa: E402
from policies.planners import CEM, PlannerConfig  # noqa: E402
from policies.primitives import PrimitiveConfig, PrimitiveMPC  # noqa: E402
from worldmodel.dynamics import LearnedDynamics  # noqa: E402
from worldmodel.pretrained import load_model  # noqa: E402


def time_replans(make_policy, states: list[tuple[dict, dict]]) -> list[float]:
    """Wall time of one replan from each state (a fresh policy per state)."""
    out = []
    for obs, info in states:
        policy = make_policy()
        policy.act(obs, info)
        out.append(policy.replan_seconds[-1])
    return out


def main() -> None:
    """Print seconds per replan for each planner and the ratio to a model forward pass."""
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--episodes", type=int, default=5)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--checkpoint", default="pretrained")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    model = load_model(args.checkpoint)[0]
    env = gym.make("PushT4D-v0", start="near_goal", obs_mode="pointcloud")
    states = [env.reset(seed=1000 + i) for i in range(args.episodes)]
    dyn = LearnedDynamics(model, max_speed=env.unwrapped.robot.model.max_speed)
    obs, info = states[0]
    dyn.observe(obs, info)
    one = torch.as_tensor(obs["agent_pos"]).expand(1, model.horizon, 2).clone()
    dyn.rollout(obs, info, one)
    t0 = time.perf_counter()
    for _ in range(5):
        dyn.rollout(obs, info, one)
    anchor = (time.perf_counter() - t0) / 5
    print(f"anchor: one batch-1 model rollout (H={model.horizon}) {anchor * 1000:.1f} ms ({args.threads} threads)")
    rng = np.random.default_rng(0)
    planners = {
        "primitive + learned (96 pushes)": lambda: PrimitiveMPC(dyn, rng, PrimitiveConfig()),
        "cem + learned (3 x 64 sequences)":
            lambda: MPCPolicy(dyn, CEM(PlannerConfig(), torch.Generator().manual_seed(0)), FlowCost()),
        "primitive + oracle (96 pushes)": lambda: PrimitiveMPC(OracleDynamics(env), rng, PrimitiveConfig()),
    }
    for name, make in planners.items():
        times = time_replans(make, states)
        med = statistics.median(times)
        print(f"{name:36s} median {med:6.3f} s/replan (min {min(times):.3f}, max {max(times):.3f}) "
              f"= {med / anchor:6.1f}x anchor")


if __name__ == "__main__":
    main()
