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


@pytest.fixture(scope="session")
def throwaway_venv(tmp_path_factory):
    """``throwaway_venv(*requirements, site=None)``: the python of a fresh virtualenv with ``requirements``
    pip-installed (made once per argument set in a session); ``site`` (a directory) is put on its path after
    its own packages. Skips the test, with pip's reason, when they cannot be installed (no network)."""
    import subprocess
    import sys
    import sysconfig
    from pathlib import Path

    made: dict[tuple, tuple[str | None, str]] = {}  # arguments -> (python, why not)

    def make(requirements: tuple[str, ...], site: str | None) -> tuple[str | None, str]:
        root = tmp_path_factory.mktemp("venv")
        venv = subprocess.run([sys.executable, "-m", "venv", str(root)], capture_output=True, text=True, timeout=300)
        if venv.returncode != 0:
            return None, f"cannot create a virtualenv: {(venv.stderr or venv.stdout).strip().splitlines()[-1:]}"
        python = str(root / "bin" / "python")
        if site is not None:
            purelib = sysconfig.get_path("purelib", vars={"base": str(root), "platbase": str(root)})
            (Path(purelib) / "zz_shared_site.pth").write_text(site + "\n")
        done = subprocess.run([python, "-m", "pip", "install", "--disable-pip-version-check", "-q", *requirements],
                              capture_output=True, text=True, timeout=1800)
        if done.returncode == 0:
            return python, ""
        lines = [ln for ln in (done.stderr + done.stdout).splitlines() if ln.strip() and "is ignored" not in ln]
        return None, (f"cannot pip install {' '.join(requirements)} into a throwaway virtualenv (no network?): "
                      f"{lines[-1] if lines else done.returncode}")

    def factory(*requirements: str, site: str | None = None) -> str:
        key = (requirements, site)
        if key not in made:
            made[key] = make(requirements, site)
        python, why = made[key]
        if python is None:
            pytest.skip(why)
        return python

    return factory
