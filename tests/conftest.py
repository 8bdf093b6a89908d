"""Shared fixtures of the test suite."""

import gymnasium as gym
import pytest

import envs  # noqa: F401  (registers PushT4D-v0)


@pytest.fixture
def make_env():
    """Factory of PushT4D-v0 envs that are closed after the test."""
    made = []

    def factory(**kwargs):
        env = gym.make("PushT4D-v0", **kwargs)
        made.append(env)
        return env

    yield factory
    for env in made:
        env.close()


@pytest.fixture(scope="module")
def near_goal_cloud_env():
    """A small near-goal pointcloud env (floating hand, 48 px cameras, 256 scene / 32 gripper points)."""
    env = gym.make("PushT4D-v0", robot="panda_hand", obs_mode="pointcloud", image_size=48, num_scene_points=256,
                   num_gripper_points=32, start="near_goal")
    yield env
    env.close()


def _collect_small_store(path, seed: int, scene_points: int = 128, gripper_points: int = 32, episodes: int = 3,
                         max_steps: int = 20) -> str:
    """Record a small random-push store with ``wm4d collect`` (floating hand, 48 px cameras)."""
    from worldmodel.cli.main import run_job

    run_job("collect", ["env.robot=panda_hand", "env.image_size=48", f"env.num_scene_points={scene_points}",
                        f"env.num_gripper_points={gripper_points}", f"episodes={episodes}", f"max_steps={max_steps}",
                        f"seed={seed}", f"out={path}"])
    return str(path)


@pytest.fixture(scope="session")
def collect_small_store():
    """``collect_small_store(path, seed, scene_points=128, gripper_points=32, episodes=3, max_steps=20)``: record a
    small random-push store with ``wm4d collect`` (floating hand, 48 px cameras) and return its path."""
    return _collect_small_store
