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


def _cat(*parts):
    return GaussianSplats(PlyFile(np.concatenate([p.ply.vertex for p in parts])))


def test_default_run_reports_volume_mass_fill_and_warnings(ball, tmp_path, capsys):
    out = tmp_path / "default"
    assert main(["splat-sim", f"input={ball}", "frames=2", f"out={out}"]) == 0  # every other setting at its default
    summary = json.loads((out / "splat_sim.json").read_text())
    exact = 4.0 / 3.0 * np.pi * 0.1**3  # the 1-unit ball scaled to 0.2 m
    assert summary["simulated_volume_m3"] == pytest.approx(exact, rel=0.03)
    assert summary["mass_kg"] == pytest.approx(1000.0 * exact, rel=0.03)
    assert summary["num_fill_particles"] > 10000
    assert any("up axis guessed" in w for w in summary["warnings"])  # a ball has no ground to tell up by
    assert "up axis guessed" in capsys.readouterr().err
    stills = sorted(p.name for p in out.glob("preview_*.png"))
    assert stills == ["preview_0000.png", "preview_0001.png"]
    assert imageio.imread(out / stills[0]).shape[:2] == (480, 640)
    top = tmp_path / "top"  # a chosen camera: from straight above (elevation 89 deg), 320 x 256
    run_job("splat-sim", [f"input={ball}", "frames=1", f"out={top}", "up=+z",
                          "preview_view={elevation_deg: 89.0, width: 320, height: 256}"])
    image = imageio.imread(top / "preview_0000.png")
    assert image.shape[:2] == (256, 320)
    ball_px = np.any(np.abs(image[..., :3].astype(int) - image[0, 0, :3].astype(int)) > 40, axis=-1)
    rows, cols = np.nonzero(ball_px)  # seen from above, the ball is a disc at the centre of the image
    assert abs(rows.mean() - 128) < 20 and abs(cols.mean() - 160) < 20
    assert 0.6 < np.ptp(rows) / np.ptp(cols) < 1.6
    with pytest.raises(ValueError, match="preview_view has unknown keys"):
        run_job("splat-sim", [f"input={ball}", "frames=1", f"out={tmp_path / 'bad'}", "+preview_view.yaw=3"])


def test_opaque_body_is_filled_to_its_solid_volume(tmp_path):
    from physics.splats.synthetic import volume_splats

    rng = np.random.default_rng(2)
    g = np.mgrid[-0.5:0.51:0.05, -0.5:0.51:0.05, -0.5:0.51:0.05].reshape(3, -1).T
    inner = g[np.linalg.norm(g, axis=1) < 0.475]
    path = tmp_path / "opaque.ply"
    volume_splats(np.concatenate([inner, sphere_splats((0, 0, 0), 0.5, 0.04, rng).positions]), 0.05, rng).save(path)
    out = tmp_path / "opaque"
    run_job("splat-sim", [f"input={path}", "frames=1", f"out={out}", "preview=false", "up=+z"])
    summary = json.loads((out / "splat_sim.json").read_text())
    assert summary["num_fill_particles"] > 10000 and summary["warnings"] == []
    assert summary["simulated_volume_m3"] == pytest.approx(4.0 / 3.0 * np.pi * 0.1**3, rel=0.03)


def test_whole_scene_is_refused_or_warned_about(tmp_path, capsys):
    rng = np.random.default_rng(3)
    obj = sphere_splats((0.0, 0.0, 0.0), 0.5, 0.05, rng)
    g = np.mgrid[-5:5:0.25, -5:5:0.25].reshape(2, -1).T
    ground = np.c_[g, np.full(len(g), -0.55)]
    strays = rng.uniform(-300, 300, (60, 3))
    floor_splats = box_splats((0, 0, 0), (1, 1, 1), 0.5, rng)  # a donor of rows in the same layout
    rows = np.resize(floor_splats.ply.vertex, len(ground) + len(strays))
    rows["x"], rows["y"], rows["z"] = np.concatenate([ground, strays]).T
    path = tmp_path / "scene.ply"
    _cat(obj, GaussianSplats(PlyFile(rows))).save(path)
    assert main(["splat-sim", f"input={path}", "frames=2", f"out={tmp_path / 'a'}", "grid_res=16",
                 "on_scene=refuse"]) == 2
    err = capsys.readouterr().err
    assert "looks like a whole scene" in err and "crop=" in err and "component 0:" in err
    assert not (tmp_path / "a" / "splat_sim.json").exists()
    out = tmp_path / "b"  # the default: simulated, with the warnings in the summary and on stderr
    run_job("splat-sim", [f"input={path}", "frames=2", f"out={out}", "grid_res=16", "preview=false"])
    assert "warning: the input looks like a whole scene" in capsys.readouterr().err
    summary = json.loads((out / "splat_sim.json").read_text())
    assert any("whole scene" in w for w in summary["warnings"])
    assert any("stray" in w for w in summary["warnings"]) and summary["num_strays_removed"] >= 55
    out = tmp_path / "c"  # selecting the object by a crop is fine
    run_job("splat-sim", [f"input={path}", "frames=2", f"out={out}", "grid_res=16", "preview=false",
                          "crop=[[-1,-1,-0.52],[1,1,1]]"])
    summary = json.loads((out / "splat_sim.json").read_text())
    assert summary["num_simulated_gaussians"] == len(obj) and summary["up"] == [0.0, 0.0, 1.0]
    assert summary["up_from"] == "ground plane"


def test_y_down_file_falls_along_plus_y_onto_the_floor(tmp_path):
    rng = np.random.default_rng(4)
    ball = sphere_splats((0.0, 0.0, 0.0), 0.5, 0.08, rng)
    path = tmp_path / "ydown.ply"
    ball.save(path)
    out = tmp_path / "ydown"
    # the floor 0.1 file units below the ball's lowest point along up = -y (y = +0.5): at y = 0.6
    run_job("splat-sim", [f"input={path}", "up=-y", "floor=-0.6", "units=0.2", "frames=10", f"out={out}",
                          "preview=false"])
    summary = json.loads((out / "splat_sim.json").read_text())
    assert summary["up"] == [0.0, -1.0, 0.0] and summary["scale_to_metres"] == 0.2
    rest = GaussianSplats.load(path)
    frames = [GaussianSplats.load(out / f"frame_{i:04d}.ply").positions for i in range(10)]
    fall = np.array([f.mean(axis=0) - rest.positions.mean(axis=0) for f in frames])
    assert fall[:, 1].max() > 0.08 and np.abs(fall[:, [0, 2]]).max() < 0.02  # falls along +y past the 0.1 gap
    assert max(f[:, 1].max() for f in frames) < 0.6 + 0.03  # and the floor at y = 0.6 stops it (it bounces)
    with pytest.raises(ValueError, match="lies above the object's lowest point"):
        run_job("splat-sim", [f"input={path}", "up=-y", "floor=-0.2", "frames=2", f"out={out}", "preview=false"])


def test_modal_on_separate_pieces_has_no_near_zero_modes_and_flings_nothing(tmp_path, capsys):
    rng = np.random.default_rng(5)
    parts = [box_splats((0.0, 0.0, 0.0), (0.2, 0.2, 0.8), 0.05, rng),
             box_splats((0.6, 0.0, 0.0), (0.8, 0.2, 0.6), 0.05, rng),
             box_splats((0.0, 0.6, 0.2), (0.25, 0.85, 0.45), 0.05, rng)]
    path = tmp_path / "pieces.ply"
    _cat(*parts).save(path)
    out = tmp_path / "modal"
    run_job("splat-sim", [f"input={path}", "engine=modal", "frames=8", f"out={out}", "preview=false", "up=+z",
                          "poke_velocity=[0.1,0,0]"])
    summary = json.loads((out / "splat_sim.json").read_text())
    assert len(summary["modal_pieces"]) == 3 and min(summary["frequencies_hz"]) > 0.5
    assert any("3 separate solid pieces" in w for w in summary["warnings"])
    # the boxes' solid volume (file units 0.032 + 0.024 + 0.015625, scaled to metres) and its mass, although the
    # modes are solved on a coarser, fatter voxel mesh
    exact = (0.2 * 0.2 * 0.8 + 0.2 * 0.2 * 0.6 + 0.25 * 0.25 * 0.25) * summary["scale_to_metres"] ** 3
    assert summary["simulated_volume_m3"] == pytest.approx(exact, rel=0.05)
    assert summary["mass_kg"] == pytest.approx(1000.0 * summary["simulated_volume_m3"], rel=1e-9)
    assert summary["modal_mesh_volume_m3"] > summary["simulated_volume_m3"]
    rest = GaussianSplats.load(path)
    size = float(np.ptp(rest.positions, axis=0).max())
    for i in range(8):
        moved = GaussianSplats.load(out / f"frame_{i:04d}.ply")
        assert np.linalg.norm(moved.positions - rest.positions, axis=1).max() < 0.2 * size
        assert np.all(np.prod(moved.scales, axis=1) / np.prod(rest.scales, axis=1) < 2.0)
    assert main(["splat-sim", f"input={path}", "engine=modal", "frames=2", f"out={tmp_path / 'x'}", "up=+z",
                 "modal_max_pieces=2"]) == 2
    assert "3 separate pieces" in capsys.readouterr().err
