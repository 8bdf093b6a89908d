"""Honest evaluation: metrics per push source, robot and object, and fine-tuning from a checkpoint."""

import json

import numpy as np
import pytest
import torch
from torch.utils.data import Subset

from worldmodel.cli.main import run_job
from worldmodel.data import PointFlowDataset
from worldmodel.data.dataset import episode_source
from worldmodel.models import PointNetFlow
from worldmodel.training import TrainConfig, flow_metrics, load_weights, train


@pytest.fixture(scope="module")
def stores(tmp_path_factory, collect_small_store):
    """A random-push store of the floating hand and a heuristic store of the arm (48 px, 128 scene points)."""
    root = tmp_path_factory.mktemp("sources")
    random_hand = collect_small_store(root / "random_hand.zarr", seed=31)
    heuristic_arm = root / "heuristic_arm.zarr"
    run_job("collect", ["policy=heuristic", "env.robot=panda", "env.image_size=48", "env.num_scene_points=128",
                        "env.num_gripper_points=32", "episodes=2", "max_steps=20", "seed=32", f"out={heuristic_arm}"])
    return random_hand, str(heuristic_arm)


def test_episode_sources_name_the_policy_robot_and_object():
    attrs = {"policy": {"_target_": "policies.scripted.HeuristicPushPolicy", "explore_top_k": 8},
             "env_kwargs": {"robot": "panda_hand", "block_material": "jelly"}}
    assert episode_source(attrs) == {"policy": "heuristic_push_top8", "robot": "panda_hand", "object": "jelly"}
    assert episode_source({"policy": {"_target_": "policies.poke.RandomPokePolicy"},
                           "env_kwargs": {"shape": "rod"}}) == {"policy": "random_poke", "object": "rod"}
    assert episode_source({}) == {}  # bring-your-own data records no source


def test_group_metrics_equal_the_metrics_of_each_groups_samples(stores):
    data = PointFlowDataset(list(stores), horizon=4, split="all")
    labels = data.sample_labels("policy")
    assert set(labels) == {"random_push", "heuristic_push"}
    assert list(data.sample_labels("robot")) == ["panda_hand" if p == "random_push" else "panda" for p in labels]
    torch.manual_seed(0)
    model = PointNetFlow(horizon=4, width=16)
    m = flow_metrics(model, data, batch_size=5, labels={"per_policy": labels})
    assert sum(g["num_samples"] for g in m["per_policy"].values()) == m["num_samples"] == len(data)
    for value, group in m["per_policy"].items():
        alone = flow_metrics(model, Subset(data, np.flatnonzero(labels == value)), batch_size=5)
        for key in ("model_moved", "zero_flow_moved", "model_static", "model_chamfer", "num_samples"):
            np.testing.assert_allclose(group[key], alone[key], rtol=1e-5, err_msg=f"{value} {key}")
    with pytest.raises(ValueError, match="one entry per sample"):
        flow_metrics(model, data, labels={"per_policy": labels[:-1]})


class ScaledTruth(torch.nn.Module):
    """A "model" predicting ``gain`` times the true displacement (it reads the batch's target)."""

    def __init__(self, gain: float):
        super().__init__()
        self.gain = torch.nn.Parameter(torch.tensor(gain))

    def forward(self, batch: dict) -> tuple[torch.Tensor, torch.Tensor]:
        target = batch["target"]
        return self.gain * target, torch.zeros(target.shape[:-1])


@pytest.mark.parametrize("gain", [0.0, 0.5, 1.0, 1.3])
def test_the_moved_point_gain_is_the_factor_a_model_scales_true_motion_by(stores, gain):
    data = PointFlowDataset(list(stores), horizon=4, split="all")
    labels = data.sample_labels("policy")
    m = flow_metrics(ScaledTruth(gain), data, batch_size=5, labels={"per_policy": labels})
    for block in (m, *m["per_policy"].values()):
        moved = np.array(block["zero_flow_moved"]) > 0  # steps with moved points
        assert moved.any()
        np.testing.assert_allclose(np.array(block["model_moved_gain"])[moved], gain, rtol=1e-5, atol=1e-6)
        # and the moved-point L2 is |1 - gain| times zero flow's (zero flow errs by the true displacement)
        np.testing.assert_allclose(block["model_moved"], abs(1 - gain) * np.array(block["zero_flow_moved"]),
                                   rtol=1e-4, atol=1e-7)


def test_eval_model_reports_each_push_source_and_robot(stores, tmp_path):
    run_dir = tmp_path / "run"
    train(PointNetFlow(horizon=4, width=16), PointFlowDataset(stores[0], horizon=4),
          TrainConfig(steps=2, batch_size=4, warmup_steps=1), run_dir,
          config={"model": {"_target_": "worldmodel.models.PointNetFlow", "horizon": 4, "width": 16}, "horizon": 4})
    run_job("eval-model", [f"checkpoint={run_dir}", f"data=[{stores[0]},{stores[1]}]", f"out={tmp_path / 'ev'}"])
    m = json.loads((tmp_path / "ev" / "metrics.json").read_text())
    assert set(m["per_policy"]) == {"random_push", "heuristic_push"}
    assert set(m["per_gripper"]) == {"panda", "panda_hand"} and set(m["per_object"]) == {"rigid"}
    assert set(m["per_policy_gripper"]) == {"random_push/panda_hand", "heuristic_push/panda"}
    for block in m["per_policy"].values():
        assert len(block["l2_moved_per_step"]) == 4 and block["moved_l2_ratio_to_zero_flow_at_H"] >= 0
        assert len(block["moved_gain_per_step"]) == 4 and np.isfinite(block["moved_gain_per_step"]).all()
    assert m["per_object"]["rigid"]["l2_all_per_step"] == pytest.approx(m["l2_all_per_step"])
    # groups of stores (the generalisation protocol's): here one store each, so each group is that store's policy
    run_job("eval-model", [f"checkpoint={run_dir}", f"groups={{hand: [{stores[0]}], arm: [{stores[1]}]}}",
                           f"out={tmp_path / 'ev2'}"])
    g = json.loads((tmp_path / "ev2" / "metrics.json").read_text())
    assert g["per_group"]["hand"] == m["per_policy"]["random_push"]
    assert g["per_group"]["arm"] == m["per_policy"]["heuristic_push"]
    table = (tmp_path / "ev2" / "protocol.md").read_text().splitlines()
    rows = {row.split("|")[1].strip(): row for row in table[2:]}
    assert list(rows) in (["hand", "arm", "all"], ["arm", "hand", "all"])
    assert f"| {g['per_group']['arm']['moved_l2_ratio_to_zero_flow_at_H']:.2f}x |" in rows["arm"]
    assert f"| {g['per_group']['arm']['moved_gain_per_step'][-1]:.2f} |" in rows["arm"]
    with pytest.raises(ValueError, match="two groups"):
        run_job("eval-model", [f"checkpoint={run_dir}", f"groups={{a: [{stores[0]}], b: [{stores[0]}]}}",
                               f"out={tmp_path / 'ev3'}"])
    with pytest.raises(ValueError, match="belong to none"):
        run_job("eval-model", [f"checkpoint={run_dir}", f"data=[{stores[0]},{stores[1]}]",
                               f"groups={{a: [{stores[0]}]}}", f"out={tmp_path / 'ev4'}"])


def test_train_init_fine_tunes_a_checkpoint_with_its_model_and_normalisation(stores, tmp_path):
    base = tmp_path / "base"
    run_job("train", [f"data={stores[0]}", "horizon=4", "model.width=16", "trainer.steps=2", "trainer.batch_size=4",
                      "trainer.warmup_steps=1", "trainer.num_workers=0", "val_fraction=0", f"out={base}"])
    tuned = tmp_path / "tuned"
    run_job("train", [f"data={stores[1]}", "horizon=4", f"init={base}", "model.width=64", "trainer.steps=1",
                      "trainer.lr=1e-12", "trainer.warmup_steps=0", "trainer.num_workers=0", "val_fraction=0",
                      f"out={tuned}"])
    cfg = json.loads((tuned / "config.json").read_text())
    assert cfg["init"] == str(base) and cfg["model"]["width"] == 16  # the checkpoint's model, not model=
    start, after = PointNetFlow(horizon=4, width=16, use_velocity=True), PointNetFlow(horizon=4, width=16,
                                                                                       use_velocity=True)
    load_weights(start, base / "model.safetensors")
    load_weights(after, tuned / "model.safetensors")
    torch.testing.assert_close(after.position_mean, start.position_mean)  # normalisation kept
    for a, b in zip(after.parameters(), start.parameters(), strict=True):
        torch.testing.assert_close(a, b, atol=1e-6, rtol=0)  # one step at lr 1e-12 from the checkpoint's weights
    with pytest.raises(ValueError, match="horizon"):
        run_job("train", [f"data={stores[1]}", "horizon=6", f"init={base}", "trainer.steps=1",
                          "trainer.num_workers=0", "val_fraction=0", f"out={tmp_path / 'bad'}"])


def test_push4d_stores_keep_each_episodes_object_and_factors_and_eval_model_groups_by_them(tmp_path):
    import gymnasium as gym

    from worldmodel.cli.jobs.collect import episode_seeds
    from worldmodel.data import RolloutStore

    out = tmp_path / "mix.zarr"
    small = ["env.image_size=48", "env.num_scene_points=128", "env.num_gripper_points=32"]
    run_job("collect", ["env_id=Push4D-v0", "env.object=[L, disk]", "+env.randomize={scale: [0.8, 1.2], "
                        "gripper: [stick, panda_hand]}", "policy=random_push", "episodes=4", "max_steps=8", "seed=5",
                        *small, f"out={out}"])
    store = RolloutStore(out)
    env = gym.make("Push4D-v0", **store.attrs["env_kwargs"])
    for i, seed in enumerate(episode_seeds(5, 4)):  # what the env drew at each episode's reset, as recorded
        _, info = env.reset(seed=seed)
        assert store.episode_info(i) == {"object_name": info["object_name"],
                                         "randomization": info["randomization"]}, i
    env.close()
    names = {store.episode_info(i)["object_name"] for i in range(4)}
    assert names <= {"L", "disk"}
    data = PointFlowDataset(out, horizon=3, split="all")
    assert set(data.sample_labels("factor")) == {"gripper+scale"}
    assert set(data.sample_labels("object")) == names
    run_dir = tmp_path / "run"
    train(PointNetFlow(horizon=3, width=16), data, TrainConfig(steps=1, batch_size=4, warmup_steps=1), run_dir,
          config={"model": {"_target_": "worldmodel.models.PointNetFlow", "horizon": 3, "width": 16}, "horizon": 3})
    run_job("eval-model", [f"checkpoint={run_dir}", f"data=[{out}]", f"out={tmp_path / 'ev'}"])
    m = json.loads((tmp_path / "ev" / "metrics.json").read_text())
    assert set(m["per_object"]) == names and set(m["per_factor"]) == {"gripper+scale"}
    grippers = {store.episode_info(i)["randomization"]["gripper"] for i in range(4)}
    assert set(m["per_gripper"]) == grippers
    assert sum(b["num_samples"] for b in m["per_object"].values()) == m["num_samples"] == len(data)
