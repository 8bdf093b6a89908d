"""Rollout recording: round trip, crash safety (kill -9) and resume."""

import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from robots.transforms import pose_matrix
from worldmodel.data import RolloutStore
from worldmodel.data.recorder import RecordRollout
from worldmodel.data.schema import SCHEMA_VERSION
from worldmodel.data.writer import RolloutWriter


def test_writer_stamps_the_schema_version_the_reader_reads(tmp_path):
    RolloutWriter(tmp_path / "v.zarr").add_episode({"a": np.zeros((2, 1))}, seed=0)
    assert RolloutStore(tmp_path / "v.zarr").attrs["schema_version"] == SCHEMA_VERSION


def test_record_round_trip_exact_flow(make_env, tmp_path):
    env = RecordRollout(make_env(robot="panda_hand", max_episode_steps=6), tmp_path / "r.zarr")
    for seed in (1, 2):
        obs, info = env.reset(seed=seed)
        first_points = obs["scene_points"].copy()
        done = False
        while not done:
            obs, _, te, tr, info = env.step(obs["agent_pos"] + np.array([0.01, 0.0], np.float32))
            done = te or tr
    store = RolloutStore(tmp_path / "r.zarr")
    assert store.num_episodes == 2 and store.num_steps == 12
    assert store.attrs["env_id"] == "PushT4D-v0" and store.attrs["env_kwargs"]["robot"] == "panda_hand"
    np.testing.assert_array_equal(store.episode_seeds, [1, 2])
    ep = store.episode(1)
    np.testing.assert_array_equal(ep["scene_points"][0], first_points)
    # scene_obj_coords + block_pose7 reproduce the block points exactly


    obj = ep["scene_obj_coords"][0]
    block = ~np.isnan(obj[:, 0])
    assert block.any() and np.all(ep["scene_labels"][0][block] == 1)
    T = pose_matrix(ep["block_pose7"][0])
    np.testing.assert_allclose(obj[block] @ T[:3, :3].T + T[:3, 3], ep["scene_points"][0][block], atol=1e-5)


def test_writer_rejects_mismatched_rows_and_existing_store(tmp_path):
    w = RolloutWriter(tmp_path / "s.zarr")
    with pytest.raises(ValueError):
        w.add_episode({"a": np.zeros((3, 2)), "b": np.zeros((2, 2))}, seed=0)
    assert not (tmp_path / "s.zarr").exists()  # created by the first committed episode only
    w.add_episode({"a": np.zeros((3, 2))}, seed=0)
    with pytest.raises(FileExistsError):
        RolloutWriter(tmp_path / "s.zarr")
    with pytest.raises(ValueError, match="lacks"):
        w.add_episode({"b": np.zeros((3, 2))}, seed=1)
    with pytest.raises(ValueError, match="rows have shape"):
        w.add_episode({"a": np.zeros((3, 4))}, seed=1)
    assert RolloutStore(tmp_path / "s.zarr").num_episodes == 1
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "notes.txt").write_text("mine")
    with pytest.raises(FileExistsError, match="not a zarr store"):
        RolloutWriter(tmp_path / "other")


def test_resume_refuses_another_configuration_and_changes_nothing(tmp_path):
    path = tmp_path / "c.zarr"
    attrs = {"env_id": "PushT4D-v0", "env_kwargs": {"robot": "panda", "friction": 0.5}, "policy": {"_target_": "A"}}
    RolloutWriter(path, attrs).add_episode({"a": np.zeros((3, 2))}, seed=0)
    snapshot = {p: p.read_bytes() for p in path.rglob("*") if p.is_file()}
    other = {**attrs, "env_kwargs": {"robot": "panda", "friction": 0.9}, "policy": {"_target_": "B"}}
    with pytest.raises(ValueError) as err:
        RolloutWriter(path, other, resume=True)
    assert "env_kwargs.friction: store 0.5, this run 0.9" in str(err.value)
    assert "policy: store {'_target_': 'A'}, this run {'_target_': 'B'}" in str(err.value)
    assert {p: p.read_bytes() for p in path.rglob("*") if p.is_file()} == snapshot
    w = RolloutWriter(path, {**attrs, "env_kwargs": {"friction": 0.5, "robot": "panda"}}, resume=True)  # key order
    w.add_episode({"a": np.ones((2, 2))}, seed=1)
    assert RolloutStore(path).num_episodes == 2


def test_wrapper_records_resolved_kwargs_images_and_outcomes(make_env, tmp_path):
    with pytest.raises(ValueError, match="obs_mode='rgbd'"):
        RecordRollout(make_env(robot="panda_hand", obs_mode="state"), tmp_path / "x.zarr", record_images=True)
    env = RecordRollout(make_env(robot="panda_hand", obs_mode="rgbd", max_episode_steps=3), tmp_path / "i.zarr")
    obs, _ = env.reset(seed=0)
    for _ in range(3):
        env.step(obs["agent_pos"])
    store = RolloutStore(tmp_path / "i.zarr")
    assert store.attrs["env_kwargs"]["friction"] == 0.5 and store.attrs["env_kwargs"]["obs_mode"] == "rgbd"
    assert store.attrs["fps"] == 10
    assert store.array("rgb").shape[:2] == (3, 2) and store.array("terminated").dtype == bool
    assert store.array("is_success").shape == (3,)


CRASH_SCRIPT = """
import sys, numpy as np
from worldmodel.data.writer import RolloutWriter
w = RolloutWriter(sys.argv[1], resume=True) if __import__('os').path.exists(sys.argv[1]) else RolloutWriter(sys.argv[1])
i = w.num_episodes
while True:
    w.add_episode({"x": np.full((50, 64), i, np.float32), "y": np.arange(50)[:, None] + 50 * i}, seed=i,
                  info={"object_name": f"obj{i}", "randomization": {"scale": 1.0 + i / 100}})
    print(i, flush=True)
    i += 1
"""


def test_kill_9_leaves_committed_episodes_and_resume_appends(tmp_path):
    path = str(tmp_path / "crash.zarr")
    proc = subprocess.Popen([sys.executable, "-c", CRASH_SCRIPT, path], stdout=subprocess.PIPE, text=True)
    for _ in range(4):
        proc.stdout.readline()
    time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    store = RolloutStore(path)
    n = store.num_episodes
    assert n >= 4
    for i in range(n):
        ep = store.episode(i)
        assert np.all(ep["x"] == i) and np.array_equal(ep["y"][:, 0], np.arange(50) + 50 * i)
        assert store.episode_info(i) == {"object_name": f"obj{i}", "randomization": {"scale": 1.0 + i / 100}}
    w = RolloutWriter(path, resume=True)
    w.add_episode({"x": np.full((50, 64), n, np.float32), "y": np.arange(50)[:, None] + 50 * n}, seed=n,
                  info={"object_name": "after"})
    store = RolloutStore(path)
    assert store.num_episodes == n + 1 and np.all(store.episode(n)["x"] == n)
    assert store.episode_info(n) == {"object_name": "after"}
    assert store.episode_info(n - 1)["object_name"] == f"obj{n - 1}"
    assert store.array("x").shape[0] == 50 * (n + 1)


def test_an_end_entry_grown_but_never_written_is_not_committed(tmp_path):
    path = tmp_path / "torn.zarr"
    w = RolloutWriter(path)
    for i in range(2):
        w.add_episode({"x": np.full((5, 3), i, np.float32)}, seed=i)
    ends = w.root["meta/episode_ends"]
    ends.resize((3,))  # a crash between growing episode_ends and writing its entry leaves the fill value
    assert RolloutStore(path).num_episodes == 2
    w = RolloutWriter(path, resume=True)
    assert w.num_episodes == 2 and w.num_rows == 10
    w.add_episode({"x": np.full((4, 3), 7, np.float32)}, seed=7)
    store = RolloutStore(path)
    assert store.num_episodes == 3 and np.all(store.episode(2)["x"] == 7) and len(store.array("x")) == 14


def test_per_episode_info_survives_torn_writes_and_stores_recorded_before_it(tmp_path):
    path = tmp_path / "info.zarr"
    w = RolloutWriter(path)
    w.add_episode({"x": np.zeros((3, 1))}, seed=0, info={"object_name": "T", "randomization": {"mass": 0.5}})
    w.add_episode({"x": np.ones((3, 1))}, seed=1)
    info, info_ends = w.root["meta/episode_info"], w.root["meta/episode_info_ends"]
    info.resize((info.shape[0] + 5,))  # a crash after writing an episode's info bytes and end, before its commit
    info_ends.resize((3,))
    info_ends[2] = info.shape[0]
    store = RolloutStore(path)
    assert store.num_episodes == 2 and store.episode_info(0) == {"object_name": "T", "randomization": {"mass": 0.5}}
    assert store.episode_info(1) == {} and store.episode_info(-2) == store.episode_info(0)
    with pytest.raises(IndexError, match="out of range"):
        store.episode_info(2)
    w = RolloutWriter(path, resume=True)
    w.add_episode({"x": np.ones((2, 1))}, seed=2, info={"object_name": "duck"})
    assert RolloutStore(path).episode_info(2) == {"object_name": "duck"}
    # a store recorded before per-episode info: every old episode reads {}, new ones keep theirs
    old = tmp_path / "old.zarr"
    w = RolloutWriter(old)
    w.add_episode({"x": np.zeros((3, 1))}, seed=0)
    for part in ("episode_info", "episode_info_ends"):
        del w.root["meta"][part]
    assert RolloutStore(old).episode_info(0) == {}
    RolloutWriter(old, resume=True).add_episode({"x": np.zeros((2, 1))}, seed=1, info={"object_name": "mug"})
    store = RolloutStore(old)
    assert [store.episode_info(i) for i in range(2)] == [{}, {"object_name": "mug"}]
