"""``wm4d eval``: closed-loop evaluation of a planner or policy on a task (``env_id``, DESIGN §11).

Each finished episode is appended to ``DIR/episodes.jsonl`` (episode index, seed, success at
any step, max reward, final coverage, steps, seconds per replan); a rerun skips the episodes
already there, and ``shard=i/n`` runs only the episodes with index % n == i, so several
processes (or several sessions) share one evaluation. ``DIR/summary.json`` is recomputed from
every line of the JSONL at the end of each run: ``episodes``, ``pc_success`` and its 95%
Wilson interval ``pc_success_ci95``, ``avg_max_reward``, ``final_coverage_mean`` (with 95%
normal intervals), ``seconds_per_replan``, and for Push4D-v0 the success of each object (``per_object``) and
each drawn gripper (``per_gripper``) with Wilson intervals; ``coverage.png`` plots coverage over time and the
first ``videos`` episodes of a shard are written as mp4: an oblique view of the rig beside a top-down view
of the table (``video_height`` pixels high), with the goal pose shaded on the table, the plan's predicted
block points at its end (red) and their goal positions (dark green), and the coverage in the corner.

An output directory belongs to one configuration (``DIR/config.json``: env id and resolved
kwargs, planner, dynamics, checkpoint weights' SHA-256, cost, seed, ``max_steps``); a run of
another configuration into it is refused with the differing keys, so ``summary.json`` never
mixes settings. The directory is created with the first finished episode.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

import numpy as np
from omegaconf import DictConfig, OmegaConf
from tqdm import tqdm

from ..options import require_positive_ints

CONFIG_FILE = "config.json"  # the configuration an output directory belongs to (eval_configuration)


def wilson_interval(successes: int, n: int, z: float = 1.96) -> list[float]:
    """95% Wilson score interval of a success rate."""
    if n == 0:
        return [0.0, 1.0]
    p = successes / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return [max(0.0, centre - half), min(1.0, centre + half)]


def summarise(rows: list[dict]) -> dict:
    """Summary statistics of episode rows (see the module docstring)."""
    n = len(rows)
    succ = sum(bool(r["success"]) for r in rows)

    def mean_ci(key):
        v = np.array([r[key] for r in rows], float)
        half = 1.96 * v.std(ddof=1) / math.sqrt(n) if n > 1 else float("nan")
        return float(v.mean()) if n else float("nan"), [float(v.mean() - half), float(v.mean() + half)] if n else []

    amr, amr_ci = mean_ci("max_reward")
    fc, fc_ci = mean_ci("final_coverage")
    replans = [s for r in rows for s in r.get("replan_seconds", [])]
    out = {"episodes": n, "pc_success": succ / n if n else float("nan"), "pc_success_ci95": wilson_interval(succ, n),
           "avg_max_reward": amr, "avg_max_reward_ci95": amr_ci, "final_coverage_mean": fc,
           "final_coverage_ci95": fc_ci, "seconds_per_replan": float(np.mean(replans)) if replans else 0.0}
    for name, label in (("per_object", lambda r: r.get("object_name")),
                        ("per_gripper", lambda r: r.get("randomization", {}).get("gripper"))):
        groups: dict[str, list[bool]] = {}
        for r in rows:
            if isinstance(label(r), str):
                groups.setdefault(label(r), []).append(bool(r["success"]))
        if groups:  # success of each object (gripper) the episodes drew
            out[name] = {k: {"episodes": len(v), "pc_success": sum(v) / len(v),
                             "pc_success_ci95": wilson_interval(sum(v), len(v))} for k, v in sorted(groups.items())}
    return out


def _read_rows(path: Path) -> list[dict]:
    if not path.exists():
        return []
    rows = []
    for line in path.read_text().splitlines():
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError:  # a line cut by a crash: that episode reruns
            continue
    return rows


def _parse_shard(shard: str) -> tuple[int, int]:
    try:
        i, n = (int(x) for x in str(shard).split("/"))
    except ValueError:
        raise ValueError(f"shard must look like i/n (e.g. 0/4), got {shard!r}") from None
    if not 0 <= i < n:
        raise ValueError(f"shard i/n needs 0 <= i < n, got {shard!r}")
    return i, n


PUSH_TASKS = ("PushT4D-v0", "Push4D-v0")  # tasks with a goal pose and coverage (the planners' cost, the summary)
PLANNER_KINDS = ("planner", "policy")  # planner.kind: acts through dynamics + cost | acts alone (a baseline)


def planner_kind(cfg: DictConfig) -> str:
    """``cfg.planner.kind``: ``planner`` (MPC through the dynamics model and the cost) or ``policy`` (a scripted
    baseline such as ``planner=heuristic``, run as it is)."""
    kind = cfg.planner.get("kind", "planner")
    if kind not in PLANNER_KINDS:
        raise ValueError(f"planner.kind must be one of {', '.join(PLANNER_KINDS)}, got {kind!r}")
    return str(kind)


def planner_config(cfg: DictConfig) -> dict:
    """The planner's resolved configuration as built and recorded: ``cfg.planner`` without ``kind``."""
    node = OmegaConf.to_container(cfg.planner, resolve=True)
    node.pop("kind", None)
    return node


def make_dynamics(cfg: DictConfig, env):
    """The dynamics model of ``cfg.dynamics`` (``dynamics=learned|oracle``) built for ``env``."""
    from worldmodel.safe_config import instantiate_checked

    node = OmegaConf.to_container(cfg.dynamics, resolve=True)
    node.pop("name", None)
    return instantiate_checked(node, "dynamics", "dynamics", env=env)


def make_policy(cfg: DictConfig, env, seed: int):
    """The policy of ``cfg``: a ``kind: policy`` baseline (the scripted heuristic) built from its ``cfg``, or MPC
    (sampled target sequences, or push primitives) with the dynamics model of ``cfg.dynamics``."""
    import torch

    from policies.mpc import MPCPolicy
    from worldmodel.safe_config import check_config, instantiate_checked

    node = planner_config(cfg)
    if planner_kind(cfg) == "policy":
        check_config({"_target_": node["_target_"]}, "policy", "planner")
        kwargs = dict(node.get("cfg") or {})
        if "_target_" in kwargs:
            raise ValueError("planner.cfg of a kind: policy planner holds the policy's keyword arguments, not a "
                             f"_target_ (got {kwargs['_target_']!r})")
        return instantiate_checked({"_target_": node["_target_"], **kwargs}, "policy", "planner",
                                   rng=np.random.default_rng(seed))
    check_config(node, "planner", "planner")  # before the dynamics model loads anything
    dynamics = make_dynamics(cfg, env)
    if node["_target_"].endswith("PrimitiveMPC"):
        check_config(cfg.cost, "cost", "cost")
        return instantiate_checked(node, "planner", "planner", dynamics=dynamics,
                                   rng=np.random.default_rng(seed), cost=cfg.cost)
    planner = instantiate_checked(node, "planner", "planner", generator=torch.Generator().manual_seed(seed))
    cost = instantiate_checked(cfg.cost, "cost", "cost")
    return MPCPolicy(dynamics, planner, cost, execute_steps=int(cfg.execute_steps))


def video_frame(env, policy, info: dict, step: int, height: int) -> np.ndarray:
    """One video frame: the oblique and top-down views (`envs.overlay.showcase_cameras`) with the goal, the
    policy's last plan (predicted block points at its end against their goal positions) and the coverage."""
    from envs.overlay import Layer, annotate, goal_polygon, showcase_cameras
    from physics.render import Frames

    oblique, top = showcase_cameras(height)
    views = [env.unwrapped.render_views((oblique,)), env.unwrapped.render_views((top,), decorations=False)]
    frames = Frames(*(np.concatenate([getattr(f, k) for f in views]) for k in ("rgb", "depth", "segmentation")))
    plan = getattr(policy, "last_plan", {})
    layers = (Layer(plan["points"][-1], (230, 40, 40), "predicted block points at the plan's end"),
              Layer(plan["goal"], (10, 90, 25), "their goal positions")) if plan else ()
    return annotate(frames, (oblique, top), goal=goal_polygon(env), layers=layers,
                    text=(f"coverage {info['coverage']:.2f} (success > 0.95)", f"step {step}"))


def run_episode(env, policy, seed: int, frames: list | None, video_height: int = 480) -> dict:
    """One episode's results (with the reset's per-episode facts: Push4D's ``object_name``, ``randomization``);
    ``frames`` (if a list) receives its video frames (`video_frame`) with the plan drawn."""
    from worldmodel.data.recorder import episode_info

    obs, info = env.reset(seed=seed)
    facts = episode_info(info)
    if hasattr(policy, "reset"):
        policy.reset()
    coverage, rewards, done = [info["coverage"]], [], False
    while not done:
        action = policy.act(obs, info)
        if frames is not None:
            frames.append(video_frame(env, policy, info, len(rewards), video_height))
        obs, reward, terminated, truncated, info = env.step(action)
        coverage.append(info["coverage"])
        rewards.append(reward)
        done = terminated or truncated
    if frames is not None:  # the final state
        frames.append(video_frame(env, policy, info, len(rewards), video_height))
    return {"success": bool(max(coverage) > 0.95), "max_reward": float(max(rewards)),
            "final_coverage": float(coverage[-1]), "steps": len(rewards), "coverage": [round(c, 4) for c in coverage],
            "replan_seconds": [round(s, 4) for s in getattr(policy, "replan_seconds", [])], **facts}


def checkpoint_digest(checkpoint: str) -> str:
    """SHA-256 of the weights a checkpoint name or directory loads (EMA weights when present)."""
    import hashlib

    from worldmodel.pretrained import checkpoint_dir

    ckpt = checkpoint_dir(checkpoint)
    weights = ckpt / "ema.safetensors" if (ckpt / "ema.safetensors").exists() else ckpt / "model.safetensors"
    if not weights.exists():
        raise ValueError(f"{ckpt} is not a checkpoint directory (no model.safetensors)")
    return hashlib.sha256(weights.read_bytes()).hexdigest()


def eval_configuration(cfg: DictConfig, env) -> dict:
    """What makes two evaluations comparable: env id and resolved kwargs, planner, dynamics, weights, cost, seed.

    Shards, episode counts, videos and the output directory are not part of it: runs that differ
    only in those share one ``episodes.jsonl``.
    """
    from worldmodel.data.recorder import resolved_env_kwargs

    config = {"env_id": str(cfg.env_id), "env_kwargs": resolved_env_kwargs(env), "seed": int(cfg.seed),
              "max_steps": int(cfg.max_steps), "planner": planner_config(cfg)}
    if planner_kind(cfg) == "planner":
        config.update(dynamics=str(cfg.dynamics.name), cost=OmegaConf.to_container(cfg.cost, resolve=True),
                      execute_steps=int(cfg.execute_steps))
        if "checkpoint" in cfg.dynamics:
            checkpoint = str(cfg.dynamics.checkpoint)
            config.update(checkpoint=checkpoint, checkpoint_sha256=checkpoint_digest(checkpoint))
    return config


def check_output_dir(out: Path, config: dict) -> None:
    """ValueError unless ``out`` is new, holds no evaluation, or holds one of exactly ``config``."""
    from worldmodel.data.schema import configuration_differences

    stored_path = out / CONFIG_FILE
    if stored_path.exists():
        stored = json.loads(stored_path.read_text())
        diffs = configuration_differences(stored, config, keys=tuple(sorted(set(stored) | set(config))))
        if diffs:
            raise ValueError(f"{out} holds an evaluation of another configuration (a directory holds one); "
                             f"differing keys: " + "; ".join(diffs)
                             + ". Choose another out=, or rerun with its settings.")
    elif (out / "episodes.jsonl").exists():
        raise ValueError(f"{out} holds episodes without a recorded configuration ({CONFIG_FILE}); "
                         "choose another out=")


def run(cfg: DictConfig) -> None:
    """Evaluate ``cfg.planner`` for ``cfg.episodes`` episodes (this shard's share) into ``cfg.out``."""
    import gymnasium as gym
    import imageio.v2 as imageio

    import envs  # noqa: F401
    from worldmodel.training.checkpoint import atomic_write

    from .collect import check_env_id, episode_seeds

    require_positive_ints(cfg, "episodes", "max_steps")
    shard, shards = _parse_shard(cfg.shard)
    out = Path(cfg.out)
    log = out / "episodes.jsonl"
    env_kwargs = OmegaConf.to_container(cfg.env, resolve=True)
    check_env_id(str(cfg.env_id))
    if str(cfg.env_id) not in PUSH_TASKS:
        raise ValueError(f"wm4d eval scores pushing tasks by their goal coverage; env_id must be one of {PUSH_TASKS}, "
                         f"got {cfg.env_id!r} (evaluate its world model with wm4d eval-model)")
    env = gym.make(str(cfg.env_id), max_episode_steps=int(cfg.max_steps), render_mode="rgb_array", **env_kwargs)
    try:
        config = eval_configuration(cfg, env)
        check_output_dir(out, config)
        done = {r["episode"] for r in _read_rows(log)}
        seeds = episode_seeds(int(cfg.seed), int(cfg.episodes))
        todo = [i for i in range(int(cfg.episodes)) if i % shards == shard and i not in done]
        videos_left = int(cfg.videos) - sum(1 for i in done if i % shards == shard)
        for i in tqdm(todo, desc=f"eval shard {shard}/{shards}", unit="ep"):
            policy = make_policy(cfg, env, seeds[i])
            frames = [] if videos_left > 0 else None
            row = {"episode": i, "seed": seeds[i], **run_episode(env, policy, seeds[i], frames, int(cfg.video_height))}
            if hasattr(policy, "dynamics") and hasattr(policy.dynamics, "close"):
                policy.dynamics.close()
            out.mkdir(parents=True, exist_ok=True)  # created with the first finished episode
            if not (out / CONFIG_FILE).exists():
                atomic_write(out / CONFIG_FILE, lambda p: p.write_text(json.dumps(config, indent=2)))
            if frames:
                imageio.mimwrite(out / f"episode_{i:04d}.mp4", frames, fps=10, macro_block_size=8)
                videos_left -= 1
            with open(log, "a") as f:
                f.write(json.dumps(row) + "\n")
                f.flush()
                os.fsync(f.fileno())
    finally:
        env.close()
    rows = sorted((r for r in _read_rows(log) if r["episode"] < int(cfg.episodes)), key=lambda r: r["episode"])
    if not rows:
        raise ValueError(f"no episode to summarise in {out} (episodes={cfg.episodes}, shard={cfg.shard})")
    summary = {**summarise(rows), "planner": cfg.planner._target_.rsplit(".", 1)[-1],
               "planner_config": config["planner"], "dynamics": config.get("dynamics"),
               "env_id": config["env_id"], "env": config["env_kwargs"], "seed": int(cfg.seed)}
    atomic_write(out / "summary.json", lambda p: p.write_text(json.dumps(summary, indent=2)))
    _plot(out / "coverage.png", rows)
    print(json.dumps({k: summary[k] for k in ("episodes", "pc_success", "pc_success_ci95", "avg_max_reward",
                                              "final_coverage_mean", "seconds_per_replan")}))


def _plot(path: Path, rows: list[dict]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 3.5))
    for r in rows:
        ax.plot(r["coverage"], color="tab:green" if r["success"] else "tab:red", alpha=0.5, lw=1)
    ax.axhline(0.95, color="k", ls="--", lw=0.8, label="success (0.95)")
    ax.set_xlabel("step"), ax.set_ylabel("coverage"), ax.set_ylim(0, 1), ax.legend(fontsize=8)
    ax.set_title(f"{len(rows)} episodes (green: success)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
