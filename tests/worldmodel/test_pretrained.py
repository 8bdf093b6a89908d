"""The shipped checkpoint: loads by name, predicts held-out pushes far better than zero flow, and its
recipe consists of valid wm4d commands."""

import json

import pytest
import torch
import yaml

from worldmodel.cli.jobs.reproduce import available_recipes, check_command, find_recipe, recipe_commands
from worldmodel.cli.main import compose_config, run_job
from worldmodel.data import PointFlowDataset
from worldmodel.pretrained import CHECKPOINTS, available, load_pretrained
from worldmodel.training import flow_metrics

NAME = "pusht4d-pointflow"


def test_the_shipped_checkpoint_is_complete_and_small():
    assert NAME in available()
    files = {p.name: p.stat().st_size for p in (CHECKPOINTS / NAME).iterdir()}
    for f in ("model.safetensors", "config.json", "stats.json", "metrics.json", "recipe.yaml"):
        assert f in files
    assert sum(files.values()) <= 20 * 2**20
    m = json.loads((CHECKPOINTS / NAME / "metrics.json").read_text())
    assert m["moved_l2_ratio_to_zero_flow_at_H"] <= 0.3 and max(m["l2_static_per_step"]) <= 0.002
    assert m["l2_moved_per_step"][-1] < m["constant_velocity_l2_moved_per_step"][-1]


@pytest.mark.parametrize("name", available_recipes())
def test_recipe_commands_are_valid_wm4d_configs(tmp_path, name):
    path, ckpt = find_recipe(name)
    assert ckpt is None or ckpt.name == name
    recipe = yaml.safe_load(path.read_text())
    commands = recipe_commands(recipe, str(tmp_path))
    assert len(commands["train"]) >= 1 and len(commands["eval"]) == 1 and len(commands["collect"]) >= 2
    outs = [arg for _, args in commands["train"] for arg in args if arg.startswith("out=")]
    assert set(outs) <= {f"out={tmp_path}/train", f"out={tmp_path}/finetune"}  # stages resume these run directories
    assert f"checkpoint={outs[-1][4:]}" in commands["eval"][0][1]  # the last stage's model is the one evaluated
    flat = {"collect": [], "train": ["model=pointnet", "out={out}/t"], "eval_collect": [], "eval": []}
    assert recipe_commands(flat, "X")["train"] == [("train", ["model=pointnet", "out=X/t"])]  # one stage, unnested
    for stage in commands.values():
        for job, overrides in stage:
            cfg = compose_config(job, overrides)  # unknown keys or groups raise here
            assert str(tmp_path) in str(cfg.out)
            check_command(job, overrides, tmp_path)  # only the package's classes, writing inside the run
    with pytest.raises(ValueError, match="recipe lacks"):
        recipe_commands({"collect": []}, str(tmp_path))
    with pytest.raises(ValueError, match="no recipe named"):
        find_recipe("no-such-recipe")


def test_pretrained_model_predicts_held_out_pushes(tmp_path):
    path = tmp_path / "held_out.zarr"
    run_job("collect", ["policy=random_push", "episodes=3", "max_steps=40", "seed=424242", f"out={path}"])
    model = load_pretrained(NAME)
    assert not model.training
    m = flow_metrics(model, PointFlowDataset(path, horizon=model.horizon, split="all"), batch_size=8)
    assert m["zero_flow_moved"][-1] > 0.01  # the pushes moved the block
    assert m["model_moved"][-1] < 0.6 * m["zero_flow_moved"][-1]
    assert m["model_static"][-1] < 0.002
    with torch.no_grad(), pytest.raises(ValueError, match="gripper_points must be"):
        model({k: torch.zeros(1, 8, 3) for k in ("scene_points", "scene_colors", "scene_normals", "gripper_points",
                                                 "gripper_velocity", "gripper_acceleration", "previous_displacement")})


def test_poke4d_checkpoint_predicts_held_out_pokes_of_the_ringing_rod(tmp_path):
    """The vibrating-rod checkpoint: complete, and on fresh random pokes (a seed not in its data) it predicts
    the moved points at step H far better than zero flow."""
    name = "poke4d-pointflow"
    assert name in available()
    m = json.loads((CHECKPOINTS / name / "metrics.json").read_text())
    assert m["moved_l2_ratio_to_zero_flow_at_H"] <= 0.4
    path = tmp_path / "pokes.zarr"
    run_job("collect", ["env_id=Poke4D-v0", "policy=random_poke", "policy.retreat=0.06", "policy.rest_range=[4,12]",
                        "episodes=4", "max_steps=100", "seed=777777", f"out={path}"])
    model = load_pretrained(name)
    assert model.inputs == ("previous_displacement", "earlier_displacement", "displacement_lag3",
                            "displacement_lag4", "start_displacement")
    m = flow_metrics(model, PointFlowDataset(path, horizon=model.horizon, split="all"), batch_size=8)
    assert m["zero_flow_moved"][-1] > 0.01  # the pokes and the ringing moved the rod
    assert m["model_moved"][-1] < 0.7 * m["zero_flow_moved"][-1]
    assert m["model_static"][-1] < 0.003


def test_generalist_checkpoint_predicts_pushes_of_an_object_and_gripper_it_never_saw(tmp_path):
    """push4d-pointflow: complete and small, its protocol groups in metrics.json, and on fresh random pushes of
    an object outside its training split (a polygon written here) by an unseen gripper it beats zero flow."""
    name = "push4d-pointflow"
    assert name in available()
    files = {p.name: p.stat().st_size for p in (CHECKPOINTS / name).iterdir()}
    assert {"model.safetensors", "config.json", "stats.json", "metrics.json", "recipe.yaml"} <= set(files)
    assert sum(files.values()) <= 20 * 2**20
    m = json.loads((CHECKPOINTS / name / "metrics.json").read_text())
    groups = m["per_group"]
    assert {"seen", "unseen_objects", "unseen_family", "unseen_gripper", "nominal", "camera"} <= set(groups)
    assert groups["unseen_objects"]["moved_l2_ratio_to_zero_flow_at_H"] < 0.6
    path = tmp_path / "unseen.zarr"
    arrow = "{polygon: [[0, 0], [0.1, 0], [0.1, 0.03], [0.05, 0.07], [0, 0.03]], height: 0.04}"
    run_job("collect", ["env_id=Push4D-v0", f"env.object={arrow}", "env.gripper=xarm_gripper", "policy=random_push",
                        "episodes=2", "max_steps=40", "seed=515151", f"out={path}"])
    model = load_pretrained(name)
    m = flow_metrics(model, PointFlowDataset(path, horizon=model.horizon, split="all"), batch_size=8)
    assert m["zero_flow_moved"][-1] > 0.01  # the pushes moved the object
    assert m["model_moved"][-1] < 0.8 * m["zero_flow_moved"][-1]
    assert m["model_static"][-1] < 0.003
