"""Point-flow samples: exact targets, static points, augmentation consistency, episode splits, bad stores."""

import numpy as np
import pytest

from worldmodel.cli.main import run_job
from worldmodel.data import PointFlowDataset, RolloutStore, track_displacements
from worldmodel.data.dataset import track_history
from worldmodel.formulation import MAX_HISTORY, PAST_KEYS

H = 5


@pytest.fixture(scope="module")
def store(tmp_path_factory, collect_small_store) -> str:
    return collect_small_store(tmp_path_factory.mktemp("data") / "push.zarr", seed=3, scene_points=256,
                               gripper_points=64, episodes=4, max_steps=25)


def kabsch(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Rotation R and translation t with b ~ a @ R.T + t."""
    ca, cb = a.mean(0), b.mean(0)
    U, _, Vt = np.linalg.svd((a - ca).T @ (b - cb))
    D = np.diag([1, 1, np.sign(np.linalg.det(Vt.T @ U.T))])
    R = Vt.T @ D @ U.T
    return R, cb - ca @ R.T


def test_targets_follow_the_recorded_object_tracks(store):
    ds = PointFlowDataset(store, horizon=H, split="all")
    raw = RolloutStore(store)
    checked = 0
    for i in range(0, len(ds), 7):
        s = ds.sample(i)
        e, t = ds.index[i]
        ep = raw.episode(int(e), ["object_points"])
        block = s.scene_labels == 1
        assert np.all(s.target[:, ~block] == 0.0)
        for h in range(H):  # the block's rigid motion t -> t+h+1 from its independent surface tracks
            R, tr = kabsch(ep["object_points"][t].astype(float), ep["object_points"][t + h + 1].astype(float))
            expected = s.scene_points[block] @ R.T + tr - s.scene_points[block]
            np.testing.assert_allclose(s.target[h, block], expected, atol=2e-4)
        if t > 0:  # the motion t-1 -> t, inverted
            R, tr = kabsch(ep["object_points"][t].astype(float), ep["object_points"][t - 1].astype(float))
            expected = -(s.scene_points[block] @ R.T + tr - s.scene_points[block])
            np.testing.assert_allclose(s.previous_displacement[block], expected, atol=2e-4)
        if t > 1:  # the motion t-2 -> t-1, for the same points (where they were at t-1 and t-2)
            R1, tr1 = kabsch(ep["object_points"][t].astype(float), ep["object_points"][t - 1].astype(float))
            R2, tr2 = kabsch(ep["object_points"][t].astype(float), ep["object_points"][t - 2].astype(float))
            at1, at2 = s.scene_points[block] @ R1.T + tr1, s.scene_points[block] @ R2.T + tr2
            np.testing.assert_allclose(s.earlier_displacement[block], at1 - at2, atol=2e-4)
        assert np.all(s.previous_displacement[~block] == 0.0) and np.all(s.earlier_displacement[~block] == 0.0)
        checked += int(block.any())
    assert checked > 3
    assert max(np.abs(ds.sample(i).target).max() for i in range(len(ds))) > 0.005  # the pushes moved the block


def test_augmentation_is_a_rigid_motion_of_the_whole_sample(store):
    plain = PointFlowDataset(store, horizon=H, split="all")
    aug = PointFlowDataset(store, horizon=H, split="all", augment=True, seed=1)
    for i in (0, len(plain) // 2):
        a, b = plain.sample(i), aug.sample(i)
        R, t = kabsch(a.scene_points.astype(float), b.scene_points.astype(float))
        assert abs(R[2, 2] - 1) < 1e-6 and abs(t[2]) < 1e-5  # rotation about z, horizontal shift
        np.testing.assert_allclose(a.scene_points @ R.T + t, b.scene_points, atol=1e-5)
        np.testing.assert_allclose(a.gripper_points @ R.T + t, b.gripper_points, atol=1e-5)
        for field in ("scene_normals", "gripper_velocity", "gripper_acceleration", "target", "previous_displacement",
                      "earlier_displacement", "older_displacements", "start_displacement"):
            np.testing.assert_allclose(getattr(a, field) @ R.T, getattr(b, field), atol=1e-5, err_msg=field)
    first = aug.sample(0).scene_points
    aug.set_epoch(1)
    assert not np.allclose(first, aug.sample(0).scene_points)


def test_split_by_episode_and_batches(store):
    train = PointFlowDataset(store, horizon=H, split="train", val_fraction=0.25)
    val = PointFlowDataset(store, horizon=H, split="val", val_fraction=0.25)
    assert len(train) == 3 * (25 - H) and len(val) == 25 - H
    seeds = {tuple(ep["block_pose7"][0]) for ep in train._episodes}
    assert not seeds & {tuple(ep["block_pose7"][0]) for ep in val._episodes}
    from torch.utils.data import DataLoader

    batch = next(iter(DataLoader(train, batch_size=4, shuffle=False)))
    assert batch["scene_points"].shape == (4, 256, 3) and batch["target"].shape == (4, H, 256, 3)
    assert batch["gripper_points"].shape == (4, H + 1, 64, 3)
    stats = train.statistics(max_samples=20)
    assert len(stats["scene_mean"]) == 3 and min(stats["displacement_std"]) > 0


def test_point_subsets_keep_points_and_targets_together(store):
    full = PointFlowDataset(store, horizon=H, split="all")
    sub = PointFlowDataset(store, horizon=H, split="all", num_points=100, num_gripper_points=16, seed=2)
    i = len(full) // 2
    a, b = full.sample(i), sub.sample(i)
    assert b.scene_points.shape == (100, 3) and b.target.shape == (H, 100, 3)
    assert b.gripper_points.shape == (H + 1, 16, 3) and b.gripper_velocity.shape == (H + 1, 16, 3)
    rows = [int(np.flatnonzero((a.scene_points == p).all(1))[0]) for p in b.scene_points]
    assert len(set(rows)) == 100  # a subset, without repeats
    np.testing.assert_array_equal(b.target, a.target[:, rows])
    np.testing.assert_array_equal(b.scene_labels, a.scene_labels[rows])
    np.testing.assert_array_equal(b.previous_displacement, a.previous_displacement[rows])
    cols = [int(np.flatnonzero((a.gripper_points[0] == p).all(1))[0]) for p in b.gripper_points[0]]
    np.testing.assert_array_equal(b.gripper_acceleration, a.gripper_acceleration[:, cols])
    with pytest.raises(ValueError, match="num_points"):
        PointFlowDataset(store, horizon=H, num_points=0)


def test_bad_stores_and_arguments_are_refused(store, tmp_path):
    state_only = str(tmp_path / "state.zarr")
    run_job("collect", ["env.robot=panda_hand", "env.obs_mode=state", "episodes=1", "max_steps=8", f"out={state_only}"])
    with pytest.raises(ValueError, match="lacks keys"):
        PointFlowDataset(state_only)
    with pytest.raises(ValueError, match="horizon"):
        PointFlowDataset(store, horizon=0)
    with pytest.raises(ValueError, match="longer than the horizon"):
        PointFlowDataset(store, horizon=40)


def test_track_targets_index_the_tracks():
    tracks = np.random.default_rng(0).normal(size=(8, 5, 3))
    ids = np.array([2, -1, 0, 4])
    target, prev, earlier = track_displacements(tracks, ids, 3, 2)
    for i, k in enumerate(ids):
        for h in range(2):
            expected = tracks[3 + h + 1, k] - tracks[3, k] if k >= 0 else np.zeros(3)
            np.testing.assert_allclose(target[h, i], expected)
        np.testing.assert_allclose(prev[i], tracks[3, k] - tracks[2, k] if k >= 0 else np.zeros(3))
        np.testing.assert_allclose(earlier[i], tracks[2, k] - tracks[1, k] if k >= 0 else np.zeros(3))
    target0, prev0, earlier0 = track_displacements(tracks, ids, 0, 7)
    assert target0.shape == (7, 4, 3) and np.all(prev0 == 0) and np.all(earlier0 == 0)
    _, prev1, earlier1 = track_displacements(tracks, ids, 1, 2)  # no row before 0: no earlier motion
    np.testing.assert_allclose(prev1[0], tracks[1, 2] - tracks[0, 2])
    assert np.all(earlier1 == 0)
    np.testing.assert_allclose(target0[-1, 0], tracks[7, 2] - tracks[0, 2])


def test_older_motions_and_the_displacement_since_the_start_follow_the_object(store):
    ds = PointFlowDataset(store, horizon=H, split="all")
    raw = RolloutStore(store)
    checked = 0
    for i in range(0, len(ds), 5):
        s = ds.sample(i)
        e, t = ds.index[i]
        ep = raw.episode(int(e), ["object_points"])
        block = s.scene_labels == 1
        obj = ep["object_points"].astype(float)

        def where(row: int, obj=obj, t=t, s=s, block=block) -> np.ndarray:  # block points (as at t) at ``row``
            R, tr = kabsch(obj[t], obj[max(row, 0)])
            return s.scene_points[block] @ R.T + tr

        for lag in range(3, MAX_HISTORY + 1):
            np.testing.assert_allclose(s.older_displacements[lag - 3][block], where(t - lag + 1) - where(t - lag),
                                       atol=2e-4)
        np.testing.assert_allclose(s.start_displacement[block], s.scene_points[block] - where(0), atol=2e-4)
        assert np.all(s.older_displacements[:, ~block] == 0.0) and np.all(s.start_displacement[~block] == 0.0)
        checked += int(block.any() and t > MAX_HISTORY)
    assert checked > 2
    batch = ds[len(ds) - 1]
    assert all(batch[k].shape == batch["scene_points"].shape for k in (*PAST_KEYS, "start_displacement"))


def test_track_history_indexes_the_tracks():
    tracks = np.random.default_rng(1).normal(size=(9, 5, 3))
    ids = np.array([2, -1, 0, 4])
    past, start = track_history(tracks, ids, 5, 4)
    assert past.shape == (4, 4, 3) and start.shape == (4, 3)
    for i, k in enumerate(ids):
        for lag in range(1, 5):
            expected = tracks[max(5 - lag + 1, 0), k] - tracks[max(5 - lag, 0), k] if k >= 0 else np.zeros(3)
            np.testing.assert_allclose(past[lag - 1, i], expected)
        np.testing.assert_allclose(start[i], tracks[5, k] - tracks[0, k] if k >= 0 else np.zeros(3))
    _, prev, earlier = track_displacements(tracks, ids, 5, 2)
    np.testing.assert_allclose(past[0], prev)
    np.testing.assert_allclose(past[1], earlier)
    past1, start0 = track_history(tracks, ids, 1, 4)  # rows before 0: no motion
    assert np.all(past1[1:] == 0) and np.any(past1[0] != 0)
    assert np.all(track_history(tracks, ids, 0, 4)[1] == 0)
