"""``wm4d collect launcher=ray``: the same store as a local run, and a killed worker loses only its episode."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import numpy as np
import psutil
import pytest

from worldmodel.cli.main import run_job
from worldmodel.data import RolloutStore

pytest.importorskip("ray")

SMALL = ["env.image_size=48", "env.num_scene_points=128", "env.num_gripper_points=32", "seed=7"]


def assert_same_store(a: str, b: str) -> None:
    sa, sb = RolloutStore(a), RolloutStore(b)
    assert sa.num_episodes == sb.num_episodes and sa.keys == sb.keys
    np.testing.assert_array_equal(sa.episode_seeds, sb.episode_seeds)
    np.testing.assert_array_equal(sa.episode_ends, sb.episode_ends)
    for key in sa.keys:
        np.testing.assert_array_equal(sa.array(key), sb.array(key), err_msg=key)
    for i in range(sa.num_episodes):
        assert sa.episode_info(i) == sb.episode_info(i)


def _episode_workers(root: psutil.Process) -> list[psutil.Process]:
    """The Ray worker processes below ``root`` that are running an episode (their title names the task)."""
    out = []
    for p in root.children(recursive=True):
        try:
            if any("run_episode" in part for part in p.cmdline()):
                out.append(p)
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
    return out


@pytest.mark.slow
def test_ray_store_equals_the_local_one_and_a_killed_worker_loses_only_its_episode(tmp_path):
    local, ray_run = tmp_path / "local.zarr", tmp_path / "ray.zarr"
    run_job("collect", [*SMALL, "env_id=Push4D-v0", "env.object=[L, disk]", "episodes=5", "max_steps=40",
                        "workers=1", f"out={local}"])
    cmd = [sys.executable, "-m", "worldmodel.cli.main", "collect", *SMALL, "env_id=Push4D-v0", "env.object=[L, disk]",
           "episodes=5", "max_steps=40", "launcher=ray", "workers=2", f"out={ray_run}"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    killed = None
    deadline = time.monotonic() + 240
    while proc.poll() is None and killed is None and time.monotonic() < deadline:
        busy = _episode_workers(psutil.Process(proc.pid))
        if busy:
            time.sleep(0.3)  # mid-episode
            try:
                os.kill(busy[0].pid, signal.SIGKILL)
                killed = busy[0].pid
            except ProcessLookupError:
                continue
        time.sleep(0.02)
    out, _ = proc.communicate(timeout=300)
    assert proc.returncode == 0, out[-3000:]
    assert killed is not None, "no Ray worker was seen running an episode"
    assert_same_store(str(local), str(ray_run))  # the killed worker's episode ran again; nothing lost or mixed


def test_bad_launcher_settings_are_refused(tmp_path):
    with pytest.raises(ValueError, match="launcher must be one of"):
        run_job("collect", [*SMALL, "episodes=1", "max_steps=3", "launcher=slurm", f"out={tmp_path / 'a.zarr'}"])
    with pytest.raises(ValueError, match="needs launcher=ray"):
        run_job("collect", [*SMALL, "episodes=1", "max_steps=3", "ray_address=auto", f"out={tmp_path / 'b.zarr'}"])
    assert not (tmp_path / "a.zarr").exists() and not (tmp_path / "b.zarr").exists()
