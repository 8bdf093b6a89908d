"""``wm4d export format=lerobot``: a LeRobotDataset v3.0 directory (DESIGN §14) with the store's steps, episodes,
point clouds and camera videos; one export per directory; the standalone ``lerobot-dataset`` package loads it."""

import json
import subprocess
import sysconfig
from pathlib import Path

import imageio.v2 as imageio
import numpy as np
import pyarrow.parquet as pq
import pytest

from worldmodel.cli.main import main
from worldmodel.data import RolloutStore
from worldmodel.data.lerobot import export_lerobot
from worldmodel.data.writer import RolloutWriter

LENGTHS = (4, 6, 5)
H, W = 16, 24


def _store(path: Path, images: bool = True) -> Path:
    """Three episodes of synthetic steps; camera c of episode e is one solid colour (40 e + 100 c)."""
    w = RolloutWriter(path, {"env_id": "Toy-v0", "env_kwargs": {"robot": "panda_hand"}, "fps": 10})
    rng = np.random.default_rng(0)
    for e, T in enumerate(LENGTHS):
        steps = {"action": rng.random((T, 2), np.float32), "agent_pos": rng.random((T, 2), np.float32),
                 "scene_points": rng.random((T, 32, 3), np.float32), "scene_labels": rng.integers(0, 2, (T, 32)),
                 "coverage": rng.random(T), "reward": rng.random(T).astype(np.float32),
                 "terminated": np.arange(T) == T - 1, "is_success": np.zeros(T, bool),
                 "depth": np.ones((T, 2, H, W), np.float32)}
        if images:
            steps["rgb"] = np.stack([np.full((T, H, W, 3), 40 * e + 100 * c, np.uint8) for c in range(2)], axis=1)
        w.add_episode(steps, seed=e)
    return path


def wm4d(capsys, *args: str) -> tuple[int, str]:
    code = main(list(args))
    err = capsys.readouterr().err
    return code, "\n".join(line for line in err.splitlines() if line.startswith(("wm4d", "Traceback")))


def _tree(path: Path) -> dict:
    return {p: p.read_bytes() for p in path.rglob("*") if p.is_file()}


def test_export_is_a_lerobot_v3_directory_with_the_stores_steps(tmp_path, capsys):
    data, out = _store(tmp_path / "s.zarr"), tmp_path / "lr"
    assert wm4d(capsys, "export", "format=lerobot", f"data={data}", f"out={out}", "progress=false")[0] == 0
    store, total = RolloutStore(data), sum(LENGTHS)
    info = json.loads((out / "meta/info.json").read_text())
    assert info["codebase_version"] == "v3.0" and info["fps"] == 10 and info["robot_type"] == "panda_hand"
    assert info["total_episodes"] == 3 and info["total_frames"] == total and info["total_tasks"] == 1
    assert info["data_path"] == "data/chunk-{chunk_index:03d}/file-{file_index:03d}.parquet"
    assert info["video_path"] == "videos/{video_key}/chunk-{chunk_index:03d}/file-{file_index:03d}.mp4"
    assert info["chunks_size"] == 1000 and info["splits"] == {"train": "0:3"}
    f = info["features"]
    assert f["action"] == {"dtype": "float32", "shape": [2], "names": ["action_0", "action_1"]}
    assert f["observation.state"]["shape"] == [2] and f["next.reward"]["shape"] == [1]
    assert f["next.done"]["dtype"] == "bool" and f["next.success"]["dtype"] == "bool"
    assert f["observation.scene_points"] == {"dtype": "float32", "shape": [32, 3], "names": ["point", "xyz"]}
    assert f["observation.scene_labels"]["shape"] == [32] and f["observation.coverage"]["dtype"] == "float64"
    for key in ("timestamp", "frame_index", "episode_index", "index", "task_index"):
        assert f[key]["shape"] == [1]
    cams = [k for k, v in f.items() if v["dtype"] == "video"]
    assert cams == ["observation.images.cam0", "observation.images.cam1"]
    cam0 = f["observation.images.cam0"]
    assert cam0["shape"] == [H, W, 3] and cam0["info"]["video.fps"] == 10 and cam0["info"]["video.codec"] == "h264"
    assert not any("depth" in k or k == "observation.agent_pos" for k in f)

    rows = pq.read_table(out / "data/chunk-000/file-000.parquet")
    assert set(rows.column_names) == {k for k, v in f.items() if v["dtype"] != "video"}
    assert rows.num_rows == total and pq.ParquetFile(out / "data/chunk-000/file-000.parquet").num_row_groups == 3
    col = {k: rows.column(k).to_pylist() for k in ("episode_index", "frame_index", "index", "timestamp")}
    np.testing.assert_array_equal(col["index"], np.arange(total))
    np.testing.assert_allclose(col["timestamp"], np.asarray(col["frame_index"]) / 10, atol=1e-6)
    for e in range(3):
        start, end = store.episode_bounds(e)
        np.testing.assert_array_equal(col["episode_index"][start:end], e)
        np.testing.assert_array_equal(col["frame_index"][start:end], np.arange(end - start))
    np.testing.assert_array_equal(np.array(rows.column("action").to_pylist(), np.float32), store.array("action"))
    np.testing.assert_array_equal(np.array(rows.column("observation.state").to_pylist(), np.float32),
                                  store.array("agent_pos"))
    np.testing.assert_array_equal(np.array(rows.column("observation.scene_points").to_pylist(), np.float32),
                                  store.array("scene_points"))
    np.testing.assert_array_equal(rows.column("next.done").to_pylist(), store.array("terminated"))
    np.testing.assert_array_equal(rows.column("next.reward").to_pylist(), store.array("reward"))

    episodes = pq.read_table(out / "meta/episodes/chunk-000/file-000.parquet").to_pylist()
    assert [e["length"] for e in episodes] == list(LENGTHS) and [e["tasks"] for e in episodes] == [["Toy-v0"]] * 3
    assert [(e["dataset_from_index"], e["dataset_to_index"]) for e in episodes] == \
        [store.episode_bounds(i) for i in range(3)]
    cam = "videos/observation.images.cam1"
    assert [(e[f"{cam}/from_timestamp"], e[f"{cam}/to_timestamp"]) for e in episodes] == \
        [(0.0, 0.4), (0.4, 1.0), (1.0, 1.5)]
    tasks = pq.read_table(out / "meta/tasks.parquet")
    assert tasks.to_pylist() == [{"task_index": 0, "task": "Toy-v0"}]
    assert json.loads(tasks.schema.metadata[b"pandas"])["index_columns"] == ["task"]  # pandas: index "task"
    stats = json.loads((out / "meta/stats.json").read_text())
    np.testing.assert_allclose(stats["action"]["mean"], store.array("action").mean(0), rtol=1e-5)
    assert stats["action"]["count"] == [total] and len(stats["observation.images.cam0"]["mean"]) == 3
    np.testing.assert_allclose(stats["observation.scene_points"]["mean"],  # per coordinate: (3,) for (N, 3)
                               store.array("scene_points").reshape(-1, 3).mean(0), rtol=1e-5)

    for c in range(2):
        video = out / f"videos/observation.images.cam{c}/chunk-000/file-000.mp4"
        frames = np.stack(imageio.mimread(video, memtest=False))
        assert frames.shape == (total, H, W, 3)  # one frame per step
        expected = np.repeat([40 * e + 100 * c for e in range(3)], LENGTHS)
        np.testing.assert_allclose(frames.reshape(total, -1).mean(1), expected, atol=3)


def test_one_export_per_directory_and_failures_leave_nothing(tmp_path, capsys):
    data, out = _store(tmp_path / "s.zarr", images=False), tmp_path / "lr"
    args = ["export", f"data={data}", f"out={out}", "progress=false"]
    assert wm4d(capsys, *args)[0] == 0
    assert not (out / "videos").exists() and json.loads((out / "meta/info.json").read_text())["video_path"] is None
    before = _tree(out)
    assert wm4d(capsys, *args)[0] == 0  # the same export again: nothing to do
    code, err = wm4d(capsys, *args, "fps=5", "task=push")
    assert code == 2 and "fps: store 10, this run 5" in err and "task: store 'Toy-v0', this run 'push'" in err
    assert _tree(out) == before
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("x")
    code, err = wm4d(capsys, "export", f"data={data}", f"out={tmp_path / 'mine'}")
    assert code == 2 and "not a finished wm4d export" in err
    assert [p.name for p in (tmp_path / "mine").iterdir()] == ["notes.txt"]
    for bad, message in ((["format=rlds", f"data={data}"], "format=rlds is not supported"),
                         ([f"data={tmp_path / 'missing.zarr'}"], "no rollout store"),
                         ([f"data={data}", "fps=2.5"], "fps must be a positive whole number")):
        code, err = wm4d(capsys, "export", *bad, f"out={tmp_path / 'new'}")
        assert code == 2 and message in err and len(err.splitlines()) == 1, err
        assert not (tmp_path / "new").exists()


def test_files_split_by_size_keep_episodes_whole(tmp_path):
    data = _store(tmp_path / "s.zarr")
    from worldmodel.data.lerobot import VideoOptions

    info, wrote = export_lerobot(data, tmp_path / "lr", video=VideoOptions(file_size_mb=0), data_file_size_mb=0)
    assert wrote and info["total_frames"] == sum(LENGTHS)
    episodes = pq.read_table(tmp_path / "lr/meta/episodes/chunk-000/file-000.parquet").to_pylist()
    frames_in: dict[int, int] = {}
    for e, row in enumerate(episodes):  # every data file passes 0 MB: each episode gets its own
        assert row["data/file_index"] == e
        assert pq.read_table(tmp_path / f"lr/data/chunk-000/file-{e:03d}.parquet").num_rows == LENGTHS[e]
        # a video file's size shows once ffmpeg has written it: it may take another episode before it closes
        key = "videos/observation.images.cam0"
        file = row[f"{key}/file_index"]
        assert row[f"{key}/from_timestamp"] == frames_in.get(file, 0) / 10
        frames_in[file] = frames_in.get(file, 0) + LENGTHS[e]
        assert row[f"{key}/to_timestamp"] == frames_in[file] / 10
    for file, count in frames_in.items():
        video = tmp_path / f"lr/videos/observation.images.cam0/chunk-000/file-{file:03d}.mp4"
        assert np.stack(imageio.mimread(video, memtest=False)).shape[0] == count


# Runs in a virtualenv with the standalone lerobot-dataset package (LeRobot's LeRobotDataset without its torch
# pin; torch comes from this environment). torchvision's PyPI wheels need a CUDA torch, so a stub stands in for
# the two names the loader imports, and frames are decoded with PyAV at the times LeRobot asks for, within its
# tolerance (LeRobot's pyav backend goes through torchvision).
LEROBOT_LOAD = """
import json, sys
import av, numpy as np, torch
import ledataset.datasets.lerobot_dataset as lds

def decode(path, timestamps, tolerance_s, backend=None):
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        frames = [(float(f.pts * stream.time_base), f.to_ndarray(format="rgb24")) for f in container.decode(stream)]
    times = np.array([t for t, _ in frames])
    picked = []
    for t in timestamps:
        i = int(np.argmin(abs(times - t)))
        assert abs(times[i] - t) < tolerance_s, (path, t, times)
        picked.append(frames[i][1])
    return torch.from_numpy(np.stack(picked)).permute(0, 3, 1, 2).float() / 255

lds.decode_video_frames = decode
expected = np.load(sys.argv[2])
ds = lds.LeRobotDataset("wm4d/export", root=sys.argv[1])
assert len(ds) == len(expected["action"]) and ds.num_episodes == 3 and ds.fps == 10, (len(ds), ds.num_episodes)
assert ds.meta.video_keys == ["observation.images.cam0", "observation.images.cam1"] and ds.meta.stats is not None
for i in range(len(ds)):
    item = ds[i]
    assert item["task"] == "Toy-v0" and int(item["index"]) == i
    np.testing.assert_allclose(item["action"].numpy(), expected["action"][i])
    np.testing.assert_allclose(item["observation.state"].numpy(), expected["agent_pos"][i])
    np.testing.assert_allclose(item["observation.scene_points"].numpy(), expected["scene_points"][i])
    assert item["observation.images.cam1"].shape == (3, 16, 24)
    assert abs(float(item["observation.images.cam1"].mean()) * 255 - expected["cam1"][i]) < 3
windowed = lds.LeRobotDataset("wm4d/export", root=sys.argv[1],
                              delta_timestamps={"action": [0.0, 0.1, 0.2], "observation.images.cam0": [-0.1, 0.0]})
item = windowed[5]
assert item["action"].shape == (3, 2) and item["observation.images.cam0"].shape == (2, 3, 16, 24)
print("lerobot-dataset loaded", len(ds), "frames of", ds.num_episodes, "episodes")
"""


@pytest.mark.slow
def test_standalone_lerobot_dataset_loads_the_export(tmp_path, throwaway_venv):
    python = throwaway_venv("lerobot-dataset==0.4.4", site=sysconfig.get_paths()["purelib"])
    data, out = _store(tmp_path / "s.zarr"), tmp_path / "lr"
    export_lerobot(data, out)
    store = RolloutStore(data)
    np.savez(tmp_path / "expected.npz", action=store.array("action"), agent_pos=store.array("agent_pos"),
             scene_points=store.array("scene_points"), cam1=np.repeat([40 * e + 100 for e in range(3)], LENGTHS))
    stub = tmp_path / "stub" / "torchvision"
    (stub / "transforms").mkdir(parents=True)
    (stub / "__init__.py").write_text("from . import transforms\n\n\ndef set_video_backend(backend):\n    pass\n")
    (stub / "transforms" / "__init__.py").write_text("")
    done = subprocess.run([python, "-c", LEROBOT_LOAD, str(out), str(tmp_path / "expected.npz")],
                          capture_output=True, text=True, timeout=600, env={"PYTHONPATH": str(stub.parent),
                                                                             "HOME": str(tmp_path)})
    assert done.returncode == 0, done.stderr[-3000:]
    assert f"loaded {sum(LENGTHS)} frames of 3 episodes" in done.stdout
