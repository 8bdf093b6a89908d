"""``wm4d collect``: record scripted-policy episodes into a zarr rollout store (resumable).

Episode i uses reset seed and policy generator from ``SeedSequence(seed).spawn``, so a
resumed or multi-process collection writes exactly what one uninterrupted run would. Episodes run in this
process, in ``workers`` local processes, or as tasks on a Ray cluster (``launcher=ray``, `worldmodel.cli.launchers`:
a local cluster, or an existing one at ``ray_address``); they are written in order whatever the launcher, and an
episode whose Ray worker dies is run again.

Before anything is written the job builds the env, resets it and asks the policy for its
first action, so an unknown env id or kwarg, or a policy that does not fit the env, fails
with one line and leaves no store. The store records the env's full resolved kwargs, the
policy config, seed, ``max_steps`` and ``fps``; ``resume=true`` appends only into a store of
exactly that configuration (`worldmodel.data.schema`). Images are recorded whenever the
observations hold them (``env.obs_mode=rgbd`` or ``all``); ``record_images=true`` asks for them
with any obs mode (``state`` is recorded as ``rgbd``, ``pointcloud`` as ``all``, and the
store's ``env_kwargs`` say so).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from omegaconf import DictConfig, OmegaConf
from tqdm import tqdm

from ..options import require_positive_ints

IMAGE_OBS_MODES = {"state": "rgbd", "pointcloud": "all"}  # the obs mode that adds images to each


def episode_seeds(seed: int, count: int) -> list[int]:
    """Per-episode seeds derived from the run seed (the first k are the same whatever ``count`` >= k)."""
    return [int(s.generate_state(1)[0]) for s in np.random.SeedSequence(seed).spawn(count)]


def check_env_id(env_id: str) -> None:
    """ValueError unless ``env_id`` is registered (after ``import envs``), listing the package's tasks."""
    import gymnasium as gym

    import envs  # noqa: F401  (registers the tasks)

    if env_id not in gym.registry:
        ours = sorted(k for k, spec in gym.registry.items() if str(spec.entry_point).startswith("envs."))
        raise ValueError(f"unknown env_id {env_id!r}; worldmodel4d's tasks: {', '.join(ours)}")


def make_policy(policy_cfg: dict, seed: int) -> Any:
    """The scripted policy of ``policy_cfg`` with its generator seeded by ``seed``."""
    from worldmodel.safe_config import instantiate_checked

    return instantiate_checked(policy_cfg, "policy", "policy", rng=np.random.default_rng(seed), _convert_="all")


def _lacking(where: str, keys: Any, given: dict) -> list[str]:
    """The entries of ``keys`` that ``given`` lacks, as ``where[key]``; an entry that is a tuple of keys names
    alternatives (one of them is enough: ``where['a'] or where['b']``)."""
    out = []
    for k in keys:
        options = (k,) if isinstance(k, str) else tuple(k)
        if not any(o in given for o in options):
            out.append(" or ".join(f"{where}[{o!r}]" for o in options))
    return out


def policy_fit_error(policy: Any, env_id: str, obs: dict, info: dict) -> str | None:
    """Why ``policy`` cannot act in ``env_id`` (the observation/info keys it reads that the env lacks), or None.

    ``policy.REQUIRED_KEYS`` maps ``obs`` and ``info`` to the keys it reads; a tuple among them names alternatives
    (the scripted pushers read ``block_pose`` of PushT4D-v0 or ``object_pose`` of Push4D-v0)."""
    required = getattr(policy, "REQUIRED_KEYS", {})
    lacking = _lacking("obs", required.get("obs", ()), obs) + _lacking("info", required.get("info", ()), info)
    if not lacking:
        return None
    return (f"policy {type(policy).__name__} does not fit {env_id}: it reads {', '.join(lacking)}, which "
            f"{env_id} does not give (its observations hold {sorted(obs)})")


def run_episode(env_id: str, env_kwargs: dict, policy_cfg: dict, seed: int, max_steps: int,
                record_images: bool) -> tuple[dict, dict]:
    """Run one episode; its rows as arrays and its per-episode info (see `worldmodel.data.recorder`)."""
    import gymnasium as gym

    import envs  # noqa: F401  (registers the tasks)
    from worldmodel.data.recorder import EpisodeRecorder

    env = gym.make(env_id, max_episode_steps=max_steps, **env_kwargs)
    try:
        policy = make_policy(policy_cfg, seed)
        recorder = EpisodeRecorder(record_images)
        obs, info = env.reset(seed=seed)
        recorder.start(obs, info)
        while True:
            action = policy.act(obs, info)
            obs, reward, terminated, truncated, info = env.step(action)
            recorder.step(action, obs, reward, terminated, info)
            if terminated or truncated:
                return recorder.arrays(), recorder.episode_info
    finally:
        env.close()


def preflight(env_id: str, env_kwargs: dict, policy_cfg: dict, seed: int, record_images: bool | None) -> dict:
    """Build the env, reset it and take the policy's first action; the store's configuration attributes.

    Returns ``env_kwargs`` (resolved, with the obs mode that ``record_images`` needs), ``fps`` and
    ``record_images`` (whether images are recorded). Raises ``ValueError`` naming what does not fit.
    """
    import gymnasium as gym

    import envs  # noqa: F401
    from worldmodel.data.recorder import resolved_env_kwargs

    check_env_id(env_id)
    env = gym.make(env_id, **env_kwargs)
    try:
        if record_images and "rgb" not in env.observation_space.spaces:
            mode = resolved_env_kwargs(env).get("obs_mode")
            if mode not in IMAGE_OBS_MODES:
                raise ValueError(f"record_images=true: {env_id} with obs_mode={mode!r} gives no images")
            env.close()
            env = gym.make(env_id, **{**env_kwargs, "obs_mode": IMAGE_OBS_MODES[mode]})
        resolved = resolved_env_kwargs(env)
        obs, info = env.reset(seed=seed)
        policy = make_policy(policy_cfg, seed)
        problem = policy_fit_error(policy, env_id, obs, info)
        if problem:
            raise ValueError(problem)
        action = np.asarray(policy.act(obs, info))
        if action.shape != env.action_space.shape:
            raise ValueError(f"policy {type(policy).__name__} does not fit {env_id}: its actions have shape "
                             f"{action.shape}, the env's action space {env.action_space.shape}")
        images = "rgb" in obs and record_images is not False
        return {"env_kwargs": resolved, "fps": env.metadata.get("render_fps"), "record_images": images}
    finally:
        env.close()


def run(cfg: DictConfig) -> None:
    """Collect ``cfg.episodes`` episodes into ``cfg.out`` (appending when ``resume=true``)."""
    from worldmodel.data.writer import RolloutWriter

    from ..launchers import check_launcher, run_in_order

    require_positive_ints(cfg, "episodes", "max_steps", "workers")
    check_launcher(cfg.launcher, cfg.ray_address)
    record_images = cfg.record_images
    if record_images not in (None, True, False):
        raise ValueError(f"record_images must be true, false or null (whatever the obs mode gives), "
                         f"got {record_images!r}")
    env_kwargs: dict[str, Any] = OmegaConf.to_container(cfg.env, resolve=True)
    policy_cfg = OmegaConf.to_container(cfg.policy, resolve=True)
    seeds = episode_seeds(int(cfg.seed), int(cfg.episodes))
    setup = preflight(cfg.env_id, env_kwargs, policy_cfg, seeds[0], record_images)
    attrs = {"env_id": cfg.env_id, "seed": int(cfg.seed), "policy": policy_cfg, "max_steps": int(cfg.max_steps),
             **setup}
    writer = RolloutWriter(cfg.out, attrs, resume=bool(cfg.resume))
    todo = list(range(writer.num_episodes, int(cfg.episodes)))
    jobs = [(cfg.env_id, setup["env_kwargs"], policy_cfg, seeds[i], int(cfg.max_steps), setup["record_images"])
            for i in todo]
    bar = tqdm(total=int(cfg.episodes), initial=writer.num_episodes, unit="ep",
               desc="collect" if cfg.launcher == "local" else f"collect (ray, {cfg.workers} workers)")
    results = run_in_order(run_episode, jobs, str(cfg.launcher), int(cfg.workers), cfg.ray_address)
    try:
        for i, (episode, info) in zip(todo, results, strict=True):
            writer.add_episode(episode, seeds[i], info)
            bar.update(1)
    finally:
        results.close()
        bar.close()
    print(f"{writer.num_episodes} episodes, {writer.num_rows} steps in {cfg.out}")
