"""PPO (stable-baselines3) on the short-goal PushT4D protocol with three rewards: the env's coverage
reward, the flow-tracking `FlowReward` and the env reward plus the model-predicted shaping of `ModelReward`.

Every run (reward x seed) trains for the same number of PPO steps (``--steps``) and is evaluated every
``--eval-every`` steps on the same held-out episodes with the *coverage* reward: ``avg_max_reward``
(mean over episodes of the episode's max coverage reward over all env steps) and ``success``
(coverage > 0.95 at any step). PPO sees a flat vector of order-one features (`FlatObservation`);
for ModelReward the inner env renders point clouds, which only the reward wrapper reads.

Actions (``--actions``): ``step`` = the env's delta fingertip steps, rescaled to [-1, 1]; ``push`` =
one whole push per PPO step (`policies.push_actions.PushPrimitiveActions`: contact on the T's
outline, angle, length), rewarded with the wrapped reward of the state the push reached. Training
episodes go on past success until the time limit (`ContinueAfterSuccess`); evaluation episodes stop
there. ``--reach-weight`` adds a potential-based approach term to every reward alike.

Rows are appended to ``<out>/curves.csv`` when a run finishes; finished runs are skipped on the next
call (resumable). ``<out>/summary.csv`` (per evaluation step and reward: mean and std over
seeds) and ``<out>/ppo_rewards.png`` (learning curves) are rewritten at the end and printed as a
table; runs of different budgets are pooled per step (the PPO schedule is constant). Needs the ``rl`` extra::

    pip install -e ".[rl]"
    nice -n 10 python examples/ppo_rewards.py --actions push --steps 20480 --seeds 0 1 2
"""

from __future__ import annotations

import argparse
import csv
import time
from pathlib import Path

import gymnasium as gym
import numpy as np
import torch
from tqdm import tqdm

import envs  # noqa: F401  (registers PushT4D-v0)
from envs.pusht import geometry as geo
from policies import FlowReward, ModelReward
from policies.push_actions import PushPrimitiveActions

REWARDS = ("coverage", "flow", "model")
FIELDS = ("actions", "reward", "seed", "budget", "steps", "env_steps", "avg_max_reward", "success", "wall_s")
SUMMARY_FIELDS = ("actions", "reward", "steps", "seeds", "avg_max_reward", "avg_max_std", "success")
EVAL_SEED = 100_000  # held-out episode seeds: EVAL_SEED + i
ENV_KW = dict(robot="panda_hand", start="near_goal")
ACTIONS = ("step", "push")


class FlatObservation(gym.ObservationWrapper):
    """The state of a PushT4D env as a flat vector of order-one features (positions in units of 0.2 m).

    Fingertip xy; block x, y, sin/cos yaw; block minus fingertip xy; goal minus block x, y in the
    world and in the block's frame, and sin/cos of the yaw error. The relative terms spare the
    policy from learning differences and rotations.
    """

    SCALE = 0.2  # m

    def __init__(self, env: gym.Env):
        super().__init__(env)
        self.observation_space = gym.spaces.Box(-np.inf, np.inf, (14,), np.float32)
        self._goal = np.asarray(geo.GOAL_POSE, dtype=float)

    def observation(self, obs: dict) -> np.ndarray:
        """Flatten the dict observation."""
        agent = np.asarray(obs["agent_pos"], dtype=float) / self.SCALE
        x, y, yaw = np.asarray(obs["block_pose"], dtype=float)
        gx, gy, gyaw = self._goal
        to_goal = np.array([gx - x, gy - y]) / self.SCALE
        c, s = np.cos(yaw), np.sin(yaw)
        in_block = np.array([c * to_goal[0] + s * to_goal[1], -s * to_goal[0] + c * to_goal[1]])
        block = np.array([x, y]) / self.SCALE
        err = gyaw - yaw
        return np.concatenate([agent, block, [s, c], block - agent, to_goal, in_block,
                               [np.sin(err), np.cos(err)]]).astype(np.float32)


class ReachShaping(gym.Wrapper):
    """Adds potential-based shaping ``weight * (gamma * Phi(s') - Phi(s))`` with Phi = -(fingertip-to-block
    distance) / 0.05 m: it pays the agent for approaching the block and, being potential-based, leaves the
    optimal policy of the wrapped reward unchanged (Ng et al. 1999). Applied alike to every reward compared.
    """

    def __init__(self, env: gym.Env, weight: float, gamma: float):
        super().__init__(env)
        self.weight, self.gamma, self._phi = weight, gamma, 0.0

    @staticmethod
    def potential(info: dict, obs: dict) -> float:
        """Minus the fingertip's distance to the block footprint, in units of 0.05 m."""
        return -geo.distance_to_footprint(info["block_pose"], obs["agent_pos"]) / 0.05

    def reset(self, **kwargs):
        """Reset and remember the start's potential."""
        obs, info = self.env.reset(**kwargs)
        self._phi = self.potential(info, obs)
        return obs, info

    def step(self, action):
        """Step and add the shaping term."""
        obs, reward, terminated, truncated, info = self.env.step(action)
        phi = 0.0 if terminated else self.potential(info, obs)
        shaping = self.weight * (self.gamma * phi - self._phi)
        self._phi = phi
        return obs, float(reward) + shaping, terminated, truncated, info


class ContinueAfterSuccess(gym.Wrapper):
    """Training only: the episode goes on after success (PushT4D terminates only there) until the time limit.

    With a positive per-step reward, ending the episode at success would forfeit the rewards of the
    remaining steps and teach the agent to avoid success; past success the agent keeps earning the
    reward of holding the block at the goal, as in an absorbing goal state.
    """

    def step(self, action):
        """Step and drop the termination."""
        obs, reward, _, truncated, info = self.env.step(action)
        return obs, reward, False, truncated, info


def make_env(reward: str, args: argparse.Namespace, model: torch.nn.Module | None = None,
             train: bool = True) -> gym.Env:
    """A PushT4D env with ``reward`` ("coverage" is the env's own), the flat observation and actions in
    [-1, 1]: fingertip steps (``--actions step``, the env's delta actions rescaled) or whole pushes
    (``--actions push``, `PushPrimitiveActions`)."""
    obs_mode = "pointcloud" if reward == "model" else "state"
    mode = "delta" if args.actions == "step" else "absolute"
    env = gym.make("PushT4D-v0", obs_mode=obs_mode, action_mode=mode, max_episode_steps=args.max_episode_steps,
                   **ENV_KW)
    if train:
        env = ContinueAfterSuccess(env)
    if reward == "flow":
        env = FlowReward(env, scale=args.flow_scale, mode="replace")
    if args.reach_weight > 0:
        env = ReachShaping(env, args.reach_weight, args.gamma)
    if args.actions == "push":
        env = PushPrimitiveActions(env)
    if reward == "model":  # outside the push wrapper: the model scores whole pushes
        env = ModelReward(env, model, weight=args.shaping_weight, gamma=args.gamma)
    if args.actions == "step":
        env = gym.wrappers.RescaleAction(env, np.float32(-1.0), np.float32(1.0))
    return FlatObservation(env)


def evaluate(policy, env: gym.Env, episodes: int) -> tuple[float, float]:
    """(avg_max_reward, success rate) of the deterministic policy over the held-out episodes."""
    best, success = [], []
    for i in range(episodes):
        obs, _ = env.reset(seed=EVAL_SEED + i)
        rewards, ok, done = [], False, False
        while not done:
            action, _ = policy.predict(obs, deterministic=True)
            obs, r, terminated, truncated, info = env.step(action)
            rewards.extend(info.get("inner_rewards", [r]))  # push actions: every inner step counts
            ok |= bool(info["is_success"])
            done = terminated or truncated
        best.append(max(rewards))
        success.append(ok)
    return float(np.mean(best)), float(np.mean(success))


def read_rows(path: Path) -> list[dict]:
    """Rows of a CSV written by this script (none when it does not exist)."""
    if not path.exists():
        return []
    with path.open() as f:
        return list(csv.DictReader(f))


def run(reward: str, seed: int, args: argparse.Namespace, model: torch.nn.Module | None) -> list[dict]:
    """Train one PPO agent and return its evaluation rows."""
    from stable_baselines3 import PPO
    from stable_baselines3.common.callbacks import BaseCallback
    from stable_baselines3.common.vec_env import DummyVecEnv

    eval_env = make_env("coverage", argparse.Namespace(**{**vars(args), "reach_weight": 0.0}), train=False)
    env = DummyVecEnv([lambda: make_env(reward, args, model) for _ in range(args.n_envs)])
    env.seed(seed)
    agent = PPO("MlpPolicy", env, n_steps=args.n_steps, batch_size=args.batch_size, gamma=args.gamma,
                learning_rate=args.lr, ent_coef=args.ent_coef, seed=seed, device="cpu", verbose=0,
                policy_kwargs=dict(log_std_init=args.log_std_init))
    rows, t0, env_steps = [], time.perf_counter(), [0]
    bar = tqdm(total=args.steps, desc=f"{reward} seed {seed}", unit="step", dynamic_ncols=True)

    def record(steps: int) -> None:
        avg_max, success = evaluate(agent, eval_env, args.eval_episodes)
        rows.append(dict(actions=args.actions, reward=reward, seed=seed, budget=args.steps, steps=steps,
                         env_steps=env_steps[0], avg_max_reward=round(avg_max, 4), success=round(success, 4),
                         wall_s=round(time.perf_counter() - t0, 1)))
        bar.set_postfix(avg_max=f"{avg_max:.3f}", success=f"{success:.2f}")

    class Progress(BaseCallback):
        _evaluated = 0

        def _on_step(self) -> bool:
            bar.update(args.n_envs)
            env_steps[0] += sum(info.get("inner_steps", 1) for info in self.locals["infos"])
            if self.num_timesteps // args.eval_every > self._evaluated:
                self._evaluated = self.num_timesteps // args.eval_every
                record(self.num_timesteps)
            return True

    record(0)
    agent.learn(total_timesteps=args.steps, callback=Progress())
    if rows[-1]["steps"] != args.steps:
        record(args.steps)
    bar.close()
    env.close()
    eval_env.close()
    return rows


def at_steps(rows: list[dict], reward: str, key: str) -> tuple[list[int], list[np.ndarray]]:
    """Evaluation steps of ``reward``'s runs and, per step, ``key`` of every seed evaluated there.

    Runs of different budgets are pooled: PPO's schedule here is constant (no annealing), so a run
    evaluated after t steps is in the state of a t-step run.
    """
    runs = [r for r in rows if r["reward"] == reward]
    steps = sorted({int(r["steps"]) for r in runs})
    return steps, [np.array([float(r[key]) for r in runs if int(r["steps"]) == t]) for t in steps]


def plot(rows: list[dict], path: Path, actions: str) -> None:
    """Learning curves (mean +- std over seeds) of avg_max_reward and success rate per reward."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(10, 3.8))
    for reward in REWARDS:
        for ax, key in zip(axes, ("avg_max_reward", "success"), strict=True):
            steps, vals = at_steps(rows, reward, key)
            if not steps:
                continue
            mean, std = np.array([v.mean() for v in vals]), np.array([v.std() for v in vals])
            seeds = len({r["seed"] for r in rows if r["reward"] == reward})
            ax.plot(steps, mean, marker=".", label=f"{reward} ({seeds} seeds)")
            ax.fill_between(steps, mean - std, mean + std, alpha=0.2)
    for ax, title in zip(axes, ("avg_max_reward (coverage)", "success rate"), strict=True):
        ax.set(xlabel="PPO steps (pushes)" if actions == "push" else "env steps", title=title)
        ax.grid(alpha=0.3)
    axes[0].legend()
    kind = "push-primitive actions" if actions == "push" else "delta fingertip actions"
    fig.suptitle(f"PPO on PushT4D-v0 short goals (near_goal, panda_hand, {kind})")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def compare(rows: list[dict], actions: str) -> list[dict]:
    """Per evaluation step and reward: seeds, mean and std of avg_max_reward, mean success."""
    out = []
    for reward in REWARDS:
        steps, am = at_steps(rows, reward, "avg_max_reward")
        _, sr = at_steps(rows, reward, "success")
        for t, a, s in zip(steps, am, sr, strict=True):
            out.append(dict(actions=actions, reward=reward, steps=t, seeds=len(a), avg_max_reward=round(a.mean(), 4),
                            avg_max_std=round(a.std(), 4), success=round(s.mean(), 4)))
    return out


def write_csv(path: Path, rows: list[dict], fields: tuple[str, ...], append: bool) -> None:
    """Write (or append) ``rows`` to a CSV with a header."""
    new = not (append and path.exists())
    with path.open("w" if new else "a", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=fields)
        if new:
            writer.writeheader()
        writer.writerows(rows)


def summarise(rows: list[dict], budget: int, actions: str) -> list[dict]:
    """The final evaluation of every finished run with ``budget`` steps of ``actions``."""
    return [r for r in rows if r["actions"] == actions and int(r["budget"]) == budget and int(r["steps"]) == budget]


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line arguments (see --help)."""
    class Formatter(argparse.ArgumentDefaultsHelpFormatter, argparse.RawDescriptionHelpFormatter):
        pass

    p = argparse.ArgumentParser(description=__doc__, formatter_class=Formatter)
    p.add_argument("--rewards", nargs="+", choices=REWARDS, default=list(REWARDS), help="rewards to train with")
    p.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2], help="training seeds")
    p.add_argument("--actions", choices=ACTIONS, default="step",
                   help="agent actions: fingertip steps or whole pushes (one PPO step = one push)")
    p.add_argument("--steps", type=int, default=20000, help="env steps per run (the same for every reward)")
    p.add_argument("--eval-every", type=int, default=2000, help="evaluate every this many env steps")
    p.add_argument("--eval-episodes", type=int, default=10, help="held-out episodes per evaluation")
    p.add_argument("--max-episode-steps", type=int, default=100, help="episode length (training and evaluation)")
    p.add_argument("--checkpoint", default="pretrained",
                   help="point-flow checkpoint (shipped name or directory) for ModelReward")
    p.add_argument("--flow-scale", type=float, default=0.05, help="FlowReward: exp(-d / scale), metres")
    p.add_argument("--shaping-weight", type=float, default=1.0, help="ModelReward: weight of the shaping term")
    p.add_argument("--reach-weight", type=float, default=0.0,
                   help="weight of the fingertip-to-block approach shaping added to every reward (0: none)")
    p.add_argument("--gamma", type=float, default=0.99, help="PPO discount (also the shaping's gamma)")
    p.add_argument("--n-envs", type=int, default=8, help="envs stepped in lockstep (one process)")
    p.add_argument("--n-steps", type=int, default=256, help="PPO rollout length per env")
    p.add_argument("--batch-size", type=int, default=64, help="PPO minibatch size")
    p.add_argument("--lr", type=float, default=3e-4, help="PPO learning rate")
    p.add_argument("--log-std-init", type=float, default=0.0, help="initial log std of the Gaussian policy")
    p.add_argument("--ent-coef", type=float, default=0.0, help="PPO entropy bonus")
    p.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    p.add_argument("--out", type=Path, default=Path(__file__).parent / "results", help="output folder")
    args = p.parse_args(argv)
    for name in ("steps", "eval_every", "eval_episodes", "max_episode_steps", "n_envs", "n_steps", "batch_size",
                 "threads"):
        if getattr(args, name) <= 0:
            p.error(f"--{name.replace('_', '-')} must be positive")
    return args


def main(argv: list[str] | None = None) -> None:
    """Train every (reward, seed) run not yet in the CSV, then write the summary and the plot."""
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    args.out.mkdir(parents=True, exist_ok=True)
    curves = args.out / "curves.csv"
    done = {(r["reward"], int(r["seed"])) for r in summarise(read_rows(curves), args.steps, args.actions)}
    todo = [(rw, s) for rw in args.rewards for s in args.seeds if (rw, s) not in done]
    model = None
    if any(rw == "model" for rw, _ in todo):
        from worldmodel.pretrained import load_model

        model = load_model(args.checkpoint)[0]
    for reward, seed in todo:
        write_csv(curves, run(reward, seed, args, model), FIELDS, append=True)
    rows = [r for r in read_rows(curves) if r["actions"] == args.actions]
    table = compare(rows, args.actions)
    write_csv(args.out / "summary.csv", table, SUMMARY_FIELDS, append=False)
    plot(rows, args.out / "ppo_rewards.png", args.actions)
    print(f"{'steps':>6}  " + "  ".join(f"{rw:>22}" for rw in REWARDS))
    for t in sorted({r["steps"] for r in table}):
        cells = {r["reward"]: f"{r['avg_max_reward']:.3f}+-{r['avg_max_std']:.3f} ({r['seeds']})" for r in table
                 if r["steps"] == t}
        print(f"{t:6d}  " + "  ".join(f"{cells.get(rw, '-'):>22}" for rw in REWARDS))


if __name__ == "__main__":
    main()
