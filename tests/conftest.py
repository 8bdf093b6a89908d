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
