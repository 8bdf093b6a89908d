"""Record golden trajectories (state-mode observations and info tracks for fixed seeds and actions).

``python tests/envs/golden/record_golden.py OUT_DIR [CASE ...]`` writes one ``<case>.npz`` per case of ``CASES``
(or of the cases named):
the actions (drawn once from a seeded generator: heuristic pushes for PushT4D, random fingertip
targets for Poke4D) and what the env returned. ``tests/envs/test_golden.py`` replays the stored actions
and compares, so a refactoring that changes behaviour fails. Rerun only when a behaviour change
is intended, and say so in the commit.
"""

from __future__ import annotations

import sys
from pathlib import Path

import gymnasium as gym
import numpy as np

import envs  # noqa: F401

CASES = {
    "pusht_hand_mujoco": dict(env_id="PushT4D-v0", kwargs=dict(robot="panda_hand", backend="mujoco"), steps=60),
    "pusht_arm_mujoco": dict(env_id="PushT4D-v0", kwargs=dict(robot="panda", backend="mujoco"), steps=60),
    "pusht_hand_pybullet": dict(env_id="PushT4D-v0", kwargs=dict(robot="panda_hand", backend="pybullet"), steps=60),
    "pusht_arm_pybullet": dict(env_id="PushT4D-v0", kwargs=dict(robot="panda", backend="pybullet"), steps=60),
    "pusht_jelly": dict(env_id="PushT4D-v0", kwargs=dict(robot="panda_hand", block_material="jelly",
                                                           block_particle_spacing=0.012), steps=12),
    "poke_rod": dict(env_id="Poke4D-v0", kwargs=dict(shape="rod"), steps=30),
}
SEED = 3
TRACK_STRIDE = 8  # every 8th tracked point is kept


def info_arrays(info: dict) -> dict[str, np.ndarray]:
    """The info entries a golden trajectory keeps (tracks subsampled)."""
    keep = {}
    for key in ("block_pose7", "coverage", "tip_displacement", "modal_energy"):
        if key in info:
            keep[key] = np.asarray(info[key], np.float64)
    keep["object_points"] = np.asarray(info["object_points"], np.float64)[::TRACK_STRIDE]
    if "tracks" in info:
        keep["tracks"] = np.asarray(info["tracks"], np.float64)[::TRACK_STRIDE]
    return keep


def rollout(env_id: str, kwargs: dict, actions: np.ndarray | None, steps: int, seed: int = SEED) -> dict:
    """Run one case; with ``actions`` None they are drawn (and returned) as the case prescribes."""
    env = gym.make(env_id, obs_mode="state", **kwargs)
    obs, info = env.reset(seed=seed)
    rng = np.random.default_rng(seed)
    policy = None
    if actions is None and env_id == "PushT4D-v0":
        from policies import HeuristicPushPolicy

        policy = HeuristicPushPolicy(rng)
    rows: dict[str, list] = {}
    taken = []
    for t in range(steps):
        if actions is not None:
            a = actions[t]
        elif policy is not None:
            a = policy.act(obs, info)
        else:
            a = rng.uniform(env.action_space.low, env.action_space.high)
        taken.append(np.asarray(a, np.float32))
        for k, v in {**{f"obs_{k}": np.asarray(v, np.float64) for k, v in obs.items()}, **info_arrays(info)}.items():
            rows.setdefault(k, []).append(v)
        obs, reward, terminated, truncated, info = env.step(taken[-1])
        rows.setdefault("reward", []).append(float(reward))
        if terminated or truncated:
            break
    env.close()
    return {"actions": np.stack(taken), **{k: np.stack(v) for k, v in rows.items()}}


def main(out: str, names: list[str]) -> None:
    """Record the cases ``names`` (all when empty) into ``out``."""
    unknown = sorted(set(names) - set(CASES))
    if unknown:
        raise SystemExit(f"unknown cases {unknown}; the cases are {sorted(CASES)}")
    Path(out).mkdir(parents=True, exist_ok=True)
    for name in names or list(CASES):
        case = CASES[name]
        result = rollout(case["env_id"], case["kwargs"], None, case["steps"])
        np.savez_compressed(Path(out) / f"{name}.npz", **result)
        print(name, {k: v.shape for k, v in result.items()})


if __name__ == "__main__":
    if len(sys.argv) < 2:
        raise SystemExit(__doc__)
    main(sys.argv[1], sys.argv[2:])
