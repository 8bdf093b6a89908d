"""``wm4d collect``: record scripted-policy episodes into a zarr rollout store (resumable).

Episode i uses reset seed and policy generator from ``SeedSequence(seed).spawn``, so a
resumed or multi-process collection writes exactly what one uninterrupted run would.
"""

from __future__ import annotations

import multiprocessing as mp
from typing import Any

import numpy as np
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf
from tqdm import tqdm


def episode_seeds(seed: int, count: int) -> list[int]:
    """Per-episode seeds derived from the run seed."""
    return [int(s.generate_state(1)[0]) for s in np.random.SeedSequence(seed).spawn(count)]


def run_episode(env_id: str, env_kwargs: dict, policy_cfg: dict, seed: int, max_steps: int, record_images: bool) -> dict:
    """Run one episode and return its rows as arrays (see ``envs.recording``)."""
    import gymnasium as gym

    import envs  # noqa: F401  (registers the tasks)
    from envs.recording import EpisodeBuffer, step_row

    env = gym.make(env_id, max_episode_steps=max_steps, **env_kwargs)
    try:
        policy = instantiate(policy_cfg, rng=np.random.default_rng(seed), _convert_="all")
        obs, info = env.reset(seed=seed)
        buf = EpisodeBuffer.empty()
        while True:
            action = policy.act(obs, info)
            row = step_row(obs, info, record_images)
            obs, reward, terminated, truncated, info = env.step(action)
            row["action"], row["reward"] = np.asarray(action, np.float32), np.float32(reward)
            buf.add(row)
            if terminated or truncated:
                return buf.arrays()
    finally:
        env.close()


def _worker(args: tuple) -> dict:
    return run_episode(*args)


def run(cfg: DictConfig) -> None:
    """Collect ``cfg.episodes`` episodes into ``cfg.out`` (appending when ``resume=true``)."""
    from envs.recording import RolloutWriter

    env_kwargs: dict[str, Any] = OmegaConf.to_container(cfg.env, resolve=True)
    policy_cfg = OmegaConf.to_container(cfg.policy, resolve=True)
    if cfg.episodes <= 0 or cfg.max_steps <= 0 or cfg.workers <= 0:
        raise ValueError("episodes, max_steps and workers must be positive integers")
    attrs = {"env_id": cfg.env_id, "env_kwargs": env_kwargs, "seed": int(cfg.seed), "policy": policy_cfg,
             "max_steps": int(cfg.max_steps), "backend": env_kwargs.get("backend", "mujoco")}
    writer = RolloutWriter(cfg.out, attrs, resume=bool(cfg.resume))
    seeds = episode_seeds(int(cfg.seed), int(cfg.episodes))
    todo = list(range(writer.num_episodes, int(cfg.episodes)))
    jobs = [(cfg.env_id, env_kwargs, policy_cfg, seeds[i], int(cfg.max_steps), bool(cfg.record_images)) for i in todo]
    bar = tqdm(total=int(cfg.episodes), initial=writer.num_episodes, desc="collect", unit="ep")
    if cfg.workers == 1:
        results = map(_worker, jobs)
    else:
        pool = mp.get_context("spawn").Pool(int(cfg.workers))
        results = pool.imap(_worker, jobs)
    for i, episode in zip(todo, results):
        writer.add_episode(episode, seeds[i])
        bar.update(1)
    bar.close()
    if cfg.workers > 1:
        pool.close()
    print(f"{writer.num_episodes} episodes, {writer.num_rows} steps in {cfg.out}")
