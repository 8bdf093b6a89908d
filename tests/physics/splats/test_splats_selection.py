"""Selecting one object of a capture (strays, crop, opacity, masks, pieces, scenes), its up axis and sim frame."""

from __future__ import annotations

import numpy as np
import pytest

from physics.splats import eval_sh, sphere_splats
from physics.splats.axes import detect_up, ground_plane, parse_up, up_rotation
from physics.splats.frame import SimulationFrame
from physics.splats.selection import gaussian_components, load_mask, select_gaussians


def scene_points(rng: np.random.Generator) -> tuple[np.ndarray, int]:
    """A 1-unit sphere on a 10 x 10 ground, 150 strays up to 300 units away: (points, number of object points)."""
    ball = sphere_splats((0.0, 0.0, 0.0), 0.5, 0.03, rng).positions
    g = np.mgrid[-5:5:0.15, -5:5:0.15].reshape(2, -1).T
    ground = np.c_[g, np.full(len(g), -0.55)]
    return np.concatenate([ball, ground, rng.uniform(-300, 300, (150, 3))]), len(ball)


def test_strays_are_removed_and_an_object_is_not_a_scene():
    rng = np.random.default_rng(0)
    ball = sphere_splats((0.0, 0.0, 0.0), 0.5, 0.03, rng).positions
    x = np.concatenate([ball, rng.uniform(-200, 200, (5, 3))])
    sel = select_gaussians(x, np.full(len(x), 0.9))
    assert sel.num_strays == 5 and np.array_equal(sel.rows, np.arange(len(ball)))
    assert not sel.scene_like and sel.stray_distance > 50 and sel.component_sizes == [len(ball)]


def test_a_whole_scene_is_told_apart():
    rng = np.random.default_rng(1)
    x, _ = scene_points(rng)
    ground = ground_plane(x, rng)
    assert ground is not None and np.array_equal(ground.up, [0.0, 0.0, 1.0]) and ground.extent_ratio > 2
    sel = select_gaussians(x, np.full(len(x), 0.9), ground=ground)
    assert sel.scene_like and "ground plane" in sel.scene_reason and sel.num_strays >= 140
    many = np.concatenate([np.random.default_rng(2).normal(size=(40, 3)) * 0.01 + [3.0 * i, 0, 0] for i in range(20)])
    sel = select_gaussians(many, np.full(len(many), 0.9))
    assert sel.scene_like and "20 separate pieces" in sel.scene_reason
    assert not select_gaussians(many, np.full(len(many), 0.9), component="largest").scene_like  # an explicit choice


def test_crop_opacity_mask_and_component_selection(tmp_path):
    rng = np.random.default_rng(3)
    a = sphere_splats((0.0, 0.0, 0.0), 0.5, 0.05, rng).positions
    b = sphere_splats((3.0, 0.0, 0.0), 0.3, 0.05, rng).positions
    x = np.concatenate([a, b])
    o = np.where(np.arange(len(x)) % 2 == 0, 0.9, 0.05)
    assert np.array_equal(select_gaussians(x, o, component="largest").rows, np.arange(len(a)))
    assert np.array_equal(select_gaussians(x, o, component=1).rows, np.arange(len(a), len(x)))
    assert np.array_equal(select_gaussians(x, o, crop=[[2, -1, -1], [4, 1, 1]]).rows, np.arange(len(a), len(x)))
    assert np.all(o[select_gaussians(x, o, min_opacity=0.5).rows] == 0.9)
    np.save(tmp_path / "idx.npy", np.arange(10, 60))
    np.save(tmp_path / "bool.npy", np.arange(len(x)) >= len(a))
    assert np.array_equal(select_gaussians(x, o, mask=load_mask(tmp_path / "idx.npy", len(x))).rows, np.arange(10, 60))
    assert np.array_equal(select_gaussians(x, o, mask=load_mask(tmp_path / "bool.npy", len(x))).rows,
                          np.arange(len(a), len(x)))
    with pytest.raises(ValueError, match="only 2 pieces"):
        select_gaussians(x, o, component=5)
    with pytest.raises(ValueError, match="component must be"):
        select_gaussians(x, o, component="smallest")
    with pytest.raises(ValueError, match="one entry per Gaussian"):
        load_mask(tmp_path / "bool.npy", len(x) + 1)
    np.save(tmp_path / "bad.npy", np.array([0, len(x)]))
    with pytest.raises(ValueError, match="indices must lie in"):
        load_mask(tmp_path / "bad.npy", len(x))
    with pytest.raises(ValueError, match="crop must be"):
        select_gaussians(x, o, crop=[[1, 1, 1], [0, 0, 0]])
    labels, sizes, link = gaussian_components(x)
    assert sizes.tolist() == [len(a), len(b)] and 0 < link < 1


def test_up_axes_ground_detection_and_rotation():
    rng = np.random.default_rng(4)
    assert parse_up("auto") is None and np.array_equal(parse_up("y"), [0, 1, 0])
    assert np.array_equal(parse_up("-y"), [0, -1, 0]) and np.array_equal(parse_up("+z"), [0, 0, 1])
    with pytest.raises(ValueError, match="up must be one of"):
        parse_up("down")
    x, _ = scene_points(rng)
    y_down = x[:, [0, 2, 1]] * np.array([1.0, -1.0, 1.0])  # the same scene with y pointing down
    assert np.array_equal(detect_up(y_down, rng), [0.0, -1.0, 0.0])
    assert detect_up(sphere_splats((0, 0, 0), 0.5, 0.03, rng).positions, rng) is None  # nothing to tell by
    for name in ("+x", "-x", "+y", "-y", "+z", "-z"):
        R = up_rotation(parse_up(name))
        assert np.allclose(R @ parse_up(name), [0, 0, 1]) and np.allclose(R @ R.T, np.eye(3))
        assert np.linalg.det(R) == pytest.approx(1.0)


def test_simulation_frame_round_trip_keeps_the_gaussians():
    rng = np.random.default_rng(5)
    splats = sphere_splats((1.0, 2.0, 3.0), 0.5, 0.1, rng)
    R = up_rotation(parse_up("-y"))
    turned = splats.positions @ R.T
    frame = SimulationFrame(R, 0.2, turned.min(axis=0), np.array([0.1, 0.1, 0.05]))
    sim = frame.splats_to_sim(splats)
    assert np.allclose(sim.positions.min(axis=0), [0.1, 0.1, 0.05])
    assert np.allclose(sim.positions[:, 2] - 0.05, (-splats.positions[:, 1] + splats.positions[:, 1].max()) * 0.2)
    back = frame.splats_to_file(sim)
    assert np.allclose(back.positions, splats.positions, atol=1e-6)
    assert np.allclose(back.covariances, splats.covariances, atol=1e-9)
    d = rng.normal(size=(len(splats), 3))
    assert np.allclose(eval_sh(back.sh, d), eval_sh(splats.sh, d), atol=1e-5)
    assert np.allclose(frame.to_file(frame.to_sim(splats.positions)), splats.positions)
