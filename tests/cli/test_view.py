"""``wm4d view``: a recorded episode becomes a rerun recording that rerun loads back with every entity."""

import sys

import numpy as np
import pytest

from worldmodel.cli.main import main

pytest.importorskip("rerun")


def rrd_entities(path) -> set[str]:
    """Entity paths of a .rrd file, read back by rerun itself (`rerun.chunk.RrdReader`)."""
    chunk = pytest.importorskip("rerun.chunk", reason="this rerun-sdk cannot read .rrd files back")
    return set(chunk.RrdReader(str(path)).store().schema().entity_paths())


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    out = tmp_path_factory.mktemp("view") / "s.zarr"
    assert main(["collect", "env.robot=panda_hand", "env.obs_mode=all", "env.image_size=48", "episodes=2",
                 "max_steps=13", f"out={out}"]) == 0
    return out


def test_view_writes_a_recording_rerun_loads_back(store, tmp_path):
    out = tmp_path / "ep.rrd"
    assert main(["view", f"data={store}", "episode=1", f"out={out}", "checkpoint=pretrained"]) == 0
    assert out.stat().st_size > 50_000
    entities = rrd_entities(out)
    expected = {"/world/scene", "/world/gripper", "/world/object/points", "/world/object/tracks",
                "/world/flow/ground_truth", "/world/flow/predicted", "/world/goal", "/metrics/coverage",
                "/metrics/reward", "/world/cameras/cam0", "/world/cameras/cam0/image",
                "/world/cameras/cam0/image/rgb", "/world/cameras/cam1/image/depth"}
    assert expected <= entities, expected - entities


def test_predicted_flow_uses_the_rows_of_the_chosen_episode(store):
    from worldmodel.cli.jobs.view import ground_truth_flow, predicted_flow
    from worldmodel.data import PointFlowDataset, RolloutStore

    s = RolloutStore(store)
    lengths = [b - a for a, b in (s.episode_bounds(i) for i in range(s.num_episodes))]
    horizon, pred = predicted_flow("pretrained", str(store), 1, lengths)
    assert sorted(pred) == list(range(lengths[1] - horizon))
    ep = s.episode(1)
    dataset = PointFlowDataset([store], horizon=horizon, split="all")
    t = max(pred)
    sample = dataset.sample(len(dataset) - 1)  # the last sample is the last row of episode 1
    np.testing.assert_array_equal(sample.scene_points, ep["scene_points"][t].astype(np.float32))
    np.testing.assert_allclose(ground_truth_flow(ep, t, horizon), sample.target[-1], atol=1e-6)
    assert pred[t].shape == ep["scene_points"][t].shape


@pytest.mark.parametrize("args, expected", [
    (["episode=7"], "episode=7 is out of range"),
    (["out={tmp}/ep.txt"], "out must be a .rrd file"),
    (["spawn=true"], "no display"),
])
def test_view_refuses_bad_options_and_leaves_nothing(store, tmp_path, capsys, monkeypatch, args, expected):
    if "spawn=true" in args and sys.platform in ("darwin", "win32"):
        pytest.skip("macOS and Windows always have a display")
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    args = [a.format(tmp=tmp_path) for a in args]
    code = main(["view", f"data={store}", f"out={tmp_path / 'ep.rrd'}", *args])
    assert code == 2 and expected in capsys.readouterr().err
    assert not any(tmp_path.iterdir())
