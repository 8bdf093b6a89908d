"""Rollout stores on disk: zarr format 2 that zarr-python 2.x (Diffusion Policy's pin) reads; format-3 stores
of schema 3 and older still read."""

import json
import subprocess

import numpy as np
import pytest
import zarr

from worldmodel.data import RolloutStore
from worldmodel.data.schema import SCHEMA_VERSION
from worldmodel.data.writer import RolloutWriter


def _episode(i: int, T: int = 4) -> dict[str, np.ndarray]:
    return {"action": np.full((T, 2), i, np.float32), "scene_points": np.random.default_rng(i).random((T, 8, 3)),
            "terminated": np.arange(T) == T - 1, "rgb": np.full((T, 2, 4, 6, 3), i, np.uint8)}


def test_new_stores_are_zarr_format_2_with_blosc(tmp_path):
    path = tmp_path / "s.zarr"
    w = RolloutWriter(path, {"env_id": "X", "fps": 10})
    for i in range(2):
        w.add_episode(_episode(i), seed=i)
    assert SCHEMA_VERSION == 4
    assert not list(path.rglob("zarr.json"))
    assert json.loads((path / ".zgroup").read_text())["zarr_format"] == 2
    assert json.loads((path / ".zattrs").read_text())["schema_version"] == 4
    for name in ("data/action", "data/terminated", "data/rgb", "meta/episode_ends", "meta/episode_seeds"):
        meta = json.loads((path / name / ".zarray").read_text())
        assert meta["zarr_format"] == 2 and meta["compressor"]["id"] == "blosc", name
        assert meta["fill_value"] in (0, False), name
    store = RolloutStore(path)
    assert store.num_episodes == 2 and store.num_steps == 8
    np.testing.assert_array_equal(store.array("action")[4:], 1)
    assert store.array("terminated").dtype == bool and store.episode(1)["rgb"].shape == (4, 2, 4, 6, 3)
    w = RolloutWriter(path, {"env_id": "X", "fps": 10}, resume=True)  # resuming appends in format 2
    w.add_episode(_episode(2), seed=2)
    assert RolloutStore(path).num_episodes == 3 and not list(path.rglob("zarr.json"))


def _format3_store(path) -> None:
    """A schema-3 store as the writer made them before schema 4 (zarr format 3, zarr's default codecs)."""
    root = zarr.open_group(str(path), mode="w", zarr_format=3)
    root.attrs.update({"schema_version": 3, "package_version": "0.1.0", "env_id": "X", "fps": 10})
    data, meta = root.create_group("data"), root.create_group("meta")
    arrays = {"action": np.arange(12, dtype=np.float32).reshape(6, 2), "reward": np.ones(6, np.float32)}
    for key, value in arrays.items():
        data.create_array(key, shape=value.shape, chunks=(4,) + value.shape[1:], dtype=value.dtype)[:] = value
    meta.create_array("episode_ends", shape=(2,), chunks=(4096,), dtype=np.int64)[:] = [2, 6]
    meta.create_array("episode_seeds", shape=(2,), chunks=(4096,), dtype=np.int64)[:] = [5, 6]


def test_format_3_stores_of_schema_3_still_read_and_are_not_resumed(tmp_path):
    path = tmp_path / "old.zarr"
    _format3_store(path)
    store = RolloutStore(path)
    assert store.attrs["schema_version"] == 3 and store.num_episodes == 2
    np.testing.assert_array_equal(store.episode(1)["action"], np.arange(4, 12).reshape(4, 2))
    np.testing.assert_array_equal(store.episode_seeds, [5, 6])
    before = {p: p.read_bytes() for p in path.rglob("*") if p.is_file()}
    with pytest.raises(ValueError, match="schema_version: store 3, this run 4"):
        RolloutWriter(path, {"env_id": "X", "fps": 10}, resume=True)
    assert {p: p.read_bytes() for p in path.rglob("*") if p.is_file()} == before


# Diffusion Policy's ReplayBuffer.create_from_path / copy_from_path: zarr.open(path, 'r'), every data array's
# length is meta/episode_ends[-1]; training reads root['data'][key][:] and root['meta']['episode_ends'][:].
REPLAY_BUFFER_READ = """
import sys, numpy as np, zarr
assert int(zarr.__version__.split('.')[0]) == 2, zarr.__version__
root = zarr.open(sys.argv[1], 'r')
assert 'data' in root and 'meta' in root and 'episode_ends' in root['meta']
ends = root['meta']['episode_ends'][:]
expected = np.load(sys.argv[2])
for key, value in root['data'].items():
    assert value.shape[0] == ends[-1], key
    np.testing.assert_array_equal(value[:], expected[key], err_msg=key)
np.testing.assert_array_equal(root['data']['action'][:], expected['action'])
np.testing.assert_array_equal(ends, expected['__episode_ends'])
src_root = zarr.group(root.store)  # ReplayBuffer.copy_from_store, numpy backend
meta = {key: value[:] for key, value in src_root['meta'].items()}
np.testing.assert_array_equal(meta['episode_ends'], ends)
assert root.attrs['schema_version'] == 4
print('zarr', zarr.__version__, 'read', len(ends), 'episodes', sorted(root['data'].keys()))
"""


@pytest.mark.slow
def test_zarr_2_reads_a_recorded_store_as_diffusion_policy_does(tmp_path, collect_small_store, throwaway_venv):
    python = throwaway_venv("zarr<3", "numpy")
    path = collect_small_store(tmp_path / "push.zarr", seed=1, episodes=2, max_steps=4)
    store = RolloutStore(path)
    np.savez(tmp_path / "expected.npz", __episode_ends=store.episode_ends,
             **{k: store.array(k) for k in store.keys})
    done = subprocess.run([python, "-c", REPLAY_BUFFER_READ, str(path), str(tmp_path / "expected.npz")],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert "read 2 episodes" in done.stdout and "'action'" in done.stdout and "'scene_points'" in done.stdout
