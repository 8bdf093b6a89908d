"""``wm4d splat-sim``: a 3DGS PLY simulated by MPM, written back frame by frame."""

from __future__ import annotations

import json

import imageio.v2 as imageio
import numpy as np
import pytest

from physics.splats import GaussianSplats, PlyFile, box_splats, eval_sh, read_ply, sphere_splats
from worldmodel.cli.jobs.splat_sim import validate
from worldmodel.cli.main import compose_config, main, run_job


@pytest.fixture(scope="module")
def ball(tmp_path_factory):
    """A 0.5-unit sphere of splats (degree 3) with an extra property, as a PLY file."""
    splats = sphere_splats((1.0, -2.0, 3.0), 0.5, 0.08, np.random.default_rng(0))
    v = splats.ply.vertex
    extra = np.zeros(len(v), dtype=v.dtype.descr + [("segment", "<f4")])
    for name in v.dtype.names:
        extra[name] = v[name]
    extra["segment"] = np.arange(len(v))
    path = tmp_path_factory.mktemp("splat") / "ball.ply"
    GaussianSplats(PlyFile(extra)).save(path)
    return path


def test_splat_sim_writes_deformed_frames_and_a_preview(ball, tmp_path):
    out = tmp_path / "sim"
    out.mkdir()
    (out / "frame_0007.ply").write_bytes(b"from an earlier, longer run")
    assert main(["splat-sim", f"input={ball}", "material=jelly", "frames=4", f"out={out}", "grid_res=16",
                 "poke_velocity=[0.5,0,0]"]) == 0
    frames = sorted(out.glob("frame_*.ply"))
    assert [f.name for f in frames] == [f"frame_{i:04d}.ply" for i in range(4)]
    assert frames[0].read_bytes() == ball.read_bytes()  # frame 0 is the input at rest
    rest = GaussianSplats.load(ball)
    last = GaussianSplats(read_ply(frames[-1]))
    assert last.ply.names == rest.ply.names and len(last) == len(rest)  # fill particles are not written
    assert np.array_equal(last.ply.vertex["segment"], rest.ply.vertex["segment"])
    assert np.array_equal(last.ply.vertex["opacity"], rest.ply.vertex["opacity"])
    drop = rest.positions[:, 2].mean() - last.positions[:, 2].mean()
    assert drop > 0.01  # falls under gravity (file units: 0.5 = 0.1 m)
    assert np.mean(last.positions[:, 0] - rest.positions[:, 0]) > 0.0  # poked towards +x
    ratio = np.sort(last.scales, axis=1) / np.sort(rest.scales, axis=1)
    # most shapes kept (the floor squashes a few)
    assert np.all(np.isfinite(ratio)) and np.median(np.abs(np.log(ratio))) < 0.1
    dirs = np.tile([0.0, 0.0, 1.0], (len(rest), 1))
    assert np.all(np.isfinite(eval_sh(last.sh, dirs)))
    with imageio.get_reader(out / "splat_sim.mp4") as reader:
        images = [image for image in reader]
    assert len(images) == 4 and images[0].std() > 0
    summary = json.loads((out / "splat_sim.json").read_text())
    assert summary["num_gaussians"] == len(rest) and summary["num_fill_particles"] > 100
    assert summary["gaussian_frames_per_second"] > 0


def test_splat_sim_moves_only_the_cropped_gaussians(ball, tmp_path):
    out = tmp_path / "crop"
    run_job("splat-sim", [f"input={ball}", "material=sand", "frames=2", f"out={out}", "grid_res=12", "preview=false",
                          "crop=[[0.4,-3.0,2.4],[1.6,-1.0,3.2]]"])
    rest, moved = GaussianSplats.load(ball), GaussianSplats.load(out / "frame_0001.ply")
    kept = rest.positions[:, 2] > 3.2 + 1e-6
    assert kept.sum() > 10
    assert np.array_equal(moved.ply.vertex[kept], rest.ply.vertex[kept])  # outside the crop: bit for bit
    assert not np.array_equal(moved.positions[~kept], rest.positions[~kept])
    assert not (out / "splat_sim.mp4").exists()


def test_splat_sim_modal_engine_sways_a_clamped_post(tmp_path):
    post = tmp_path / "post.ply"
    box_splats((0.0, 0.0, 0.0), (0.3, 0.3, 1.2), 0.06, np.random.default_rng(1)).save(post)
    out = tmp_path / "modal"
    run_job("splat-sim", [f"input={post}", "engine=modal", "frames=6", f"out={out}", "grid_res=20", "num_modes=6",
                          "preview=false", "poke_velocity=[0.3,0,0]"])
    rest = GaussianSplats.load(post)
    moved = GaussianSplats.load(out / "frame_0005.ply")
    u = moved.positions - rest.positions
    bottom, top = rest.positions[:, 2] < 1e-6, rest.positions[:, 2] > 1.2 - 1e-6
    assert u[top, 0].mean() > 0.05  # the tip swings towards the poke (file units: the post is 1.2 tall)
    assert np.abs(u[bottom]).max() < 0.1 * u[top, 0].mean()  # clamped at the base (half a voxel below the splats)
    assert np.all(np.abs(u[top, 0] - u[top, 0].mean()) < 0.5 * u[top, 0].mean())  # the tip moves as a whole
    summary = json.loads((out / "splat_sim.json").read_text())
    assert summary["engine"] == "modal" and len(summary["frequencies_hz"]) == 6
    f = summary["frequencies_hz"]
    assert f[0] == pytest.approx(f[1], rel=0.1)  # square post: two equal first bending modes


def test_every_configured_material_instantiates(ball):
    cfg = compose_config("splat-sim", [f"input={ball}"])
    for name in cfg.materials:
        assert validate(compose_config("splat-sim", [f"input={ball}", f"material={name}"]))[1] is not None


@pytest.mark.parametrize(
    "overrides, message",
    [
        (["input=/no/such/file.ply"], "does not exist"),
        ([], "input=PATH.ply is required"),
        (["material=cheese"], "unknown material 'cheese'; available: fluid, jelly, metal"),
        (["frames=0"], "frames must be a positive integer"),
        (["frames=-3"], "frames must be a positive integer"),
        (["crop=[[0,0,0],[0.1,0.1,0.1]]"], "only 0 Gaussians to simulate"),
        (["engine=fem"], "unknown engine 'fem'; allowed: mpm, modal"),
        (["materials.jelly.youngs_modulus=-5"], "materials.jelly cannot be built: youngs_modulus must be > 0"),
        (["engine=modal", "material=sand"], "engine=modal needs an elastic material"),
    ],
)
def test_splat_sim_rejects_bad_config(ball, tmp_path, capsys, overrides, message):
    args = ([f"input={ball}"]
            if not any(o.startswith("input=") for o in overrides) and message != "input=PATH.ply is required" else [])
    assert main(["splat-sim", *args, *overrides, f"out={tmp_path}"]) == 2
    assert message in capsys.readouterr().err
    assert not list(tmp_path.glob("frame_*.ply"))


def test_splat_sim_appends_point_track_episodes_for_training(ball, tmp_path):
    from worldmodel.data import PointFlowDataset
    from worldmodel.data.rollouts import RolloutStore

    store = tmp_path / "splats.zarr"
    for seed in (0, 1):  # two runs append two episodes
        run_job("splat-sim", [f"input={ball}", "material=jelly", "frames=6", f"out={tmp_path / 'sim'}", "grid_res=12",
                              "preview=false", f"dataset={store}", "dataset_tracks=300", "dataset_scene_points=128",
                              f"seed={seed}"])
    s = RolloutStore(store)
    assert s.num_episodes == 2 and s.has_tracks
    ep = s.episode(0)
    assert ep["tracks"].shape == (6, 300, 3) and ep["scene_points"].shape == (6, 128, 3)
    ids = ep["scene_track_ids"]
    assert np.all(ids >= 0) and np.allclose(ep["scene_points"], ep["tracks"][np.arange(6)[:, None], ids])
    fall = ep["tracks"][0, :, 2].mean() - ep["tracks"][-1, :, 2].mean()
    assert 0.002 < fall < 0.2  # metres: the ball (0.1 m across) falls under gravity
    sample = PointFlowDataset(store, horizon=3, split="all", augment=False).sample(0)
    expect = ep["tracks"][1:4, ids[0]] - ep["tracks"][0, ids[0]]
    assert np.allclose(sample.target, expect, atol=1e-6)
    with pytest.raises(ValueError, match="dataset_tracks"):
        run_job("splat-sim", [f"input={ball}", "frames=2", f"out={tmp_path / 'x'}", f"dataset={store}",
                              "dataset_tracks=0"])
