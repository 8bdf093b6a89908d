"""Training loop: schedule, checkpoints (atomic, strict loading), resume after interruption."""

import csv

import pytest
import torch

from worldmodel.cli.main import run_job
from worldmodel.data import PointFlowDataset
from worldmodel.models import PointNetFlow
from worldmodel.training import TrainConfig, learning_rate, load_weights, train


@pytest.fixture(scope="module")
def store(tmp_path_factory, collect_small_store) -> str:
    return collect_small_store(tmp_path_factory.mktemp("train") / "push.zarr", seed=5)


@pytest.fixture(scope="module")
def data(store):
    return PointFlowDataset(store, horizon=4, split="all")


def test_learning_rate_schedule():
    cfg = TrainConfig(steps=100, warmup_steps=10, lr=1e-3)
    assert learning_rate(0, cfg) == pytest.approx(1e-4)
    assert learning_rate(9, cfg) == pytest.approx(1e-3)
    assert learning_rate(55, cfg) == pytest.approx(0.5e-3)
    assert learning_rate(100, cfg) == pytest.approx(0.0, abs=1e-12)
    with pytest.raises(ValueError, match="steps"):
        TrainConfig(steps=0)


def test_resume_continues_from_the_last_checkpoint(data, tmp_path):
    out = tmp_path / "run"
    cfg = TrainConfig(steps=12, batch_size=4, checkpoint_every=6, log_every=3, warmup_steps=2)
    torch.manual_seed(0)
    model = PointNetFlow(horizon=4, width=16)
    first = train(model, data, TrainConfig(**{**cfg.__dict__, "steps": 6}), out)
    assert first["steps"] == 6 and (out / "model.safetensors").exists()
    torch.manual_seed(1)
    resumed = PointNetFlow(horizon=4, width=16)
    result = train(resumed, data, cfg, out, val_set=data)
    assert result["steps"] == 12
    rows = list(csv.DictReader(open(out / "metrics.csv")))
    assert [int(r["step"]) for r in rows] == [3, 6, 9, 12]  # nothing lost, nothing repeated
    assert len(result["val"]["moved"]) == 4 and len(result["val"]["zero_flow_moved"]) == 4
    again = PointNetFlow(horizon=4, width=16)
    assert load_weights(again, out / "model.safetensors") == 12
    for a, b in zip(again.state_dict().values(), resumed.state_dict().values(), strict=True):
        torch.testing.assert_close(a, b)


def test_stop_at_ends_a_run_early_on_the_full_schedule(data, tmp_path):
    cfg = TrainConfig(steps=8, batch_size=4, checkpoint_every=100, log_every=2, warmup_steps=2, num_workers=0)
    torch.manual_seed(0)
    model = PointNetFlow(horizon=4, width=16)
    out = tmp_path / "staged"
    assert train(model, data, TrainConfig(**{**cfg.__dict__, "stop_at": 3}), out)["steps"] == 3
    assert load_weights(PointNetFlow(horizon=4, width=16), out / "model.safetensors") == 3  # saved at the stop
    assert train(model, data, cfg, out)["steps"] == 8  # the next stage resumes
    rows = list(csv.DictReader(open(out / "metrics.csv")))
    assert [int(r["step"]) for r in rows] == [2, 3, 4, 6, 8]
    for r in rows:  # the learning rate followed the 8-step schedule throughout
        assert float(r["lr"]) == pytest.approx(learning_rate(int(r["step"]) - 1, cfg))
    with pytest.raises(ValueError, match="stop_at"):
        TrainConfig(stop_at=0)


def test_truncated_or_foreign_checkpoints_are_refused(data, tmp_path):
    out = tmp_path / "run"
    train(PointNetFlow(horizon=4, width=16), data, TrainConfig(steps=2, batch_size=4, warmup_steps=1), out)
    blob = (out / "model.safetensors").read_bytes()
    (tmp_path / "cut.safetensors").write_bytes(blob[: len(blob) // 2])
    with pytest.raises(ValueError, match="not a readable safetensors checkpoint"):
        load_weights(PointNetFlow(horizon=4, width=16), tmp_path / "cut.safetensors")
    with pytest.raises(ValueError, match="does not fit"):
        load_weights(PointNetFlow(horizon=4, width=32), out / "model.safetensors")


def test_wm4d_train_job_writes_a_loadable_checkpoint(tmp_path, collect_small_store):
    out = tmp_path / "job"
    path = tmp_path / "d.zarr"
    collect_small_store(path, seed=6)
    run_job("train", [f"data={path}", "horizon=4", "model.width=16", "trainer.steps=4", "trainer.batch_size=4",
                      "trainer.warmup_steps=1", "trainer.num_workers=0", "val_fraction=0.34", "rotations=3",
                      f"out={out}"])
    import json

    cfg = json.loads((out / "config.json").read_text())
    assert cfg["model"]["width"] == 16 and cfg["train"]["steps"] == 4
    assert cfg["inference"] == {"rotations": 3}  # test-time rotation averaging, for load_model
    from worldmodel.models import RotationAveraged
    from worldmodel.pretrained import load_model

    assert load_model(out)[0].rotations == 3 and not isinstance(load_model(out, rotations=1)[0], RotationAveraged)
    with pytest.raises(ValueError, match="only a model trained with augment=true"):
        run_job("train", [f"data={path}", "augment=false", "rotations=2", f"out={tmp_path / 'no'}"])
    model = PointNetFlow(horizon=4, width=16, use_velocity=True)  # model/pointnet.yaml
    assert load_weights(model, out / "model.safetensors") == 4
    stats = json.loads((out / "stats.json").read_text())
    torch.testing.assert_close(model.position_mean, torch.tensor(stats["scene_mean"]))
    assert "zero_flow_moved" in json.loads((out / "result.json").read_text())["val"]


def test_wm4d_eval_model_writes_the_design_metrics(data, store, tmp_path):
    import json

    out = tmp_path / "run"
    train(PointNetFlow(horizon=4, width=16), data, TrainConfig(steps=3, batch_size=4, warmup_steps=1), out,
          config={"model": {"_target_": "worldmodel.models.PointNetFlow", "horizon": 4, "width": 16}, "horizon": 4})
    run_job("eval-model", [f"checkpoint={out}", f"data={store}", f"out={tmp_path / 'ev'}"])
    m = json.loads((tmp_path / "ev" / "metrics.json").read_text())
    run_job("eval-model", [f"checkpoint={out}", f"data={store}", "rotations=4", f"out={tmp_path / 'ev4'}"])
    m4 = json.loads((tmp_path / "ev4" / "metrics.json").read_text())
    assert m["rotations"] == 1 and m4["rotations"] == 4 and m4["num_samples"] == m["num_samples"]
    assert m4["l2_moved_per_step"] != m["l2_moved_per_step"]  # another (averaged) prediction
    for key in ("horizon", "l2_moved_per_step", "l2_static_per_step", "l2_all_per_step",
                "zero_flow_l2_moved_per_step", "chamfer", "num_samples", "constant_velocity_l2_moved_per_step",
                "zero_flow_chamfer", "constant_velocity_chamfer", "moved_l2_ratio_to_zero_flow_at_H"):
        assert key in m
    assert m["horizon"] == 4 and len(m["l2_moved_per_step"]) == 4 and m["num_samples"] == len(data)
    assert m["zero_flow_l2_moved_per_step"][-1] > 0.005  # the recorded pushes moved block points
    assert m["chamfer"] >= 0.0
    assert (tmp_path / "ev" / "error_vs_horizon.png").exists() and (tmp_path / "ev" / "flow.png").exists()
    # static points move < 1 mm over the horizon, so zero flow errs below that there
    assert all(0.0 <= v < 1e-3 for v in m["zero_flow_l2_static_per_step"])
    with pytest.raises(ValueError, match="not a checkpoint directory"):
        run_job("eval-model", [f"checkpoint={tmp_path}", f"data={store}", f"out={tmp_path / 'ev2'}"])


def test_constant_velocity_baseline_extrapolates_the_last_motion():
    from worldmodel.formulation import constant_velocity_flow

    prev = torch.tensor([[[0.01, 0.0, 0.0], [0.0, -0.002, 0.0]]])
    flow = constant_velocity_flow(prev, 3)
    assert flow.shape == (1, 3, 2, 3)
    torch.testing.assert_close(flow[0, :, 0, 0], torch.tensor([0.01, 0.02, 0.03]))
    torch.testing.assert_close(flow[0, 2, 1], torch.tensor([0.0, -0.006, 0.0]))


def test_load_model_prefers_ema_weights_and_refuses_unknown_names(data, tmp_path):
    from worldmodel.pretrained import load_model, load_pretrained

    out = tmp_path / "ema"
    cfg = TrainConfig(steps=4, batch_size=4, warmup_steps=1, ema_decay=0.5, device="cpu")
    model = PointNetFlow(horizon=4, width=16)
    train(model, data, cfg, out, config={"model": {"_target_": "worldmodel.models.PointNetFlow", "horizon": 4,
                                                   "width": 16}, "horizon": 4})
    loaded, config = load_model(out)
    ema = PointNetFlow(horizon=4, width=16)
    load_weights(ema, out / "ema.safetensors")
    for k, v in loaded.state_dict().items():
        torch.testing.assert_close(v, ema.state_dict()[k])
    assert not all(torch.equal(v, model.state_dict()[k]) for k, v in ema.state_dict().items())
    assert not loaded.training and config["train"]["ema_decay"] == 0.5
    with pytest.raises(ValueError, match="no shipped checkpoint"):
        load_pretrained("no-such-model")
    with pytest.raises(ValueError, match="neither a checkpoint directory"):
        load_model(tmp_path / "missing")


def test_trainer_state_round_trips_through_safetensors_without_pickle(tmp_path):
    from safetensors import safe_open

    from worldmodel.training.checkpoint import load_trainer_state, save_trainer_state

    torch.manual_seed(0)
    model = PointNetFlow(horizon=2, width=16)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3, betas=(0.8, 0.95))
    for _ in range(2):
        opt.zero_grad()
        sum(p.square().sum() for p in model.parameters()).backward()
        opt.step()
    rng = torch.Generator().manual_seed(7)
    torch.rand(3, generator=rng)
    save_trainer_state(tmp_path / "state.safetensors", opt, 2, rng)
    with safe_open(str(tmp_path / "state.safetensors"), framework="pt") as f:
        assert "rng" in f.keys() and f.metadata()["step"] == "2"
    fresh = torch.optim.AdamW(model.parameters(), lr=5.0)
    rng2 = torch.Generator()
    assert load_trainer_state(tmp_path / "state.safetensors", fresh, rng2) == 2
    a, b = opt.state_dict(), fresh.state_dict()
    assert a["param_groups"] == b["param_groups"] and b["param_groups"][0]["betas"] == (0.8, 0.95)
    for i, entry in a["state"].items():
        for k, v in entry.items():
            torch.testing.assert_close(b["state"][i][k], v)
    torch.testing.assert_close(torch.rand(4, generator=rng2), torch.rand(4, generator=rng))
    with pytest.raises(ValueError, match="does not fit this optimizer"):
        load_trainer_state(tmp_path / "state.safetensors", torch.optim.AdamW(list(model.parameters())[:1]), rng2)
    (tmp_path / "cut.safetensors").write_bytes(b"\x00" * 16)
    with pytest.raises(ValueError, match="not a readable trainer state"):
        load_trainer_state(tmp_path / "cut.safetensors", fresh, rng2)
