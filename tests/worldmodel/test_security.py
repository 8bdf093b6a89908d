"""Files a user loads are data: checkpoint configs, recipes and run directories can build only the package's
own classes, never call anything else, and nothing is unpickled (issue 18 item 9)."""

import json
import pickle
import shutil
from pathlib import Path

import pytest
import torch
import yaml
from omegaconf import OmegaConf

from worldmodel.cli.main import run_job
from worldmodel.models import PointNetFlow
from worldmodel.pretrained import CHECKPOINTS, available, load_model
from worldmodel.safe_config import allowed_targets, check_config, instantiate_checked, register, targets_in
from worldmodel.training import TrainConfig, train

CONF = Path(__file__).resolve().parents[2] / "worldmodel" / "cli" / "conf"


class _Payload:
    """Unpickling this creates ``path`` (standing in for any shell command)."""

    def __init__(self, path: Path):
        self.path = str(path)

    def __reduce__(self):
        return open, (self.path, "w")


def _checkpoint(tmp_path: Path, model_cfg: dict, name: str = "ckpt") -> Path:
    """A checkpoint directory with real weights and the given ``config.json`` model entry."""
    ckpt = tmp_path / name
    ckpt.mkdir()
    shutil.copy(CHECKPOINTS / "pusht4d-pointflow" / "model.safetensors", ckpt / "model.safetensors")
    (ckpt / "config.json").write_text(json.dumps({"model": model_cfg, "horizon": 10}))
    return ckpt


def test_a_checkpoint_naming_numpy_save_is_refused_and_writes_nothing(tmp_path):
    target = tmp_path / "written.npy"
    ckpt = _checkpoint(tmp_path, {"_target_": "numpy.save", "file": str(target), "arr": [1, 2, 3]})
    with pytest.raises(ValueError, match=r"'numpy\.save' is not allowed") as err:
        load_model(ckpt)
    assert "worldmodel.models.PointNetFlow" in str(err.value)  # the message lists what is allowed
    assert not target.exists()


def test_a_checkpoint_naming_torch_load_on_a_pickle_is_refused_and_runs_nothing(tmp_path):
    marker = tmp_path / "pwned"
    payload = tmp_path / "payload.pkl"
    payload.write_bytes(pickle.dumps(_Payload(marker)))
    ckpt = _checkpoint(tmp_path, {"_target_": "torch.load", "f": str(payload), "weights_only": False})
    with pytest.raises(ValueError, match=r"'torch\.load' is not allowed.*PointFlowTransformer"):
        load_model(ckpt)
    with pytest.raises(ValueError, match="torch.load"):  # the same through the CLI job
        run_job("eval-model", [f"checkpoint={ckpt}", f"data={tmp_path}", f"out={tmp_path / 'ev'}"])
    assert not marker.exists() and not (tmp_path / "ev").exists()


@pytest.mark.parametrize("case", ["kwarg", "args", "list", "partial", "deep", "interpolation", "non_string"])
def test_nested_targets_and_interpolations_are_refused(tmp_path, case):
    target = tmp_path / "written.npy"
    bad = {"_target_": "numpy.save", "file": str(target), "arr": [1]}
    ok = {"_target_": "worldmodel.models.PointNetFlow", "horizon": 10, "width": 128, "anchors": 128}
    model = {
        "kwarg": {**ok, "anchors": bad},
        "args": {**ok, "_args_": [bad]},
        "list": {**ok, "extra": [1, [2, bad]]},
        "partial": {**bad, "_partial_": True},
        "deep": {**ok, "extra": {"a": {"b": [{"c": bad}]}}},
        "interpolation": {**ok, "width": "${oc.decode:'{_target_: numpy.save, file: x, arr: [1]}'}"},
        "non_string": {**ok, "extra": {"_target_": ["numpy", "save"]}},
    }[case]
    with pytest.raises(ValueError, match="interpolations" if case == "interpolation" else "is not allowed"):
        load_model(_checkpoint(tmp_path, model))
    assert not target.exists() and not (Path.cwd() / "x.npy").exists()


def test_check_config_api_and_registry():
    assert "worldmodel.models.PointNetFlow" in allowed_targets("model")
    assert "policies.scripted.RandomPushPolicy" in allowed_targets("policy")
    with pytest.raises(ValueError, match="unknown target registries"):
        allowed_targets("no-such-kind")
    with pytest.raises(ValueError, match=r"os\.system.*allowed here: policies"):
        check_config(OmegaConf.create({"policy": {"_target_": "os.system"}}), "policy")
    check_config(OmegaConf.create({"h": 4, "m": {"_target_": "worldmodel.models.PointNetFlow", "horizon": "${h}"}}),
                 "model")  # a composed config is resolved before the check
    with pytest.raises(ValueError, match="dotted path"):
        register("model", "no..dots")
    register("test-kind", "collections.OrderedDict")  # trusted code may extend a registry
    assert instantiate_checked({"_target_": "collections.OrderedDict"}, "test-kind") == {}


def test_every_target_in_the_package_configs_is_registered():
    groups = {"model": ("model",), "trainer": ("trainer",), "policy": ("policy",), "planner": ("planner",),
              "dynamics": ("dynamics",)}
    seen = 0
    for group, kinds in groups.items():
        for path in (CONF / group).glob("*.yaml"):
            config = yaml.safe_load(path.read_text())
            # planner=heuristic (kind: policy) is a scripted policy run as the baseline
            allowed = ("policy",) if config.get("kind") == "policy" else kinds
            for target in targets_in(config):
                assert target in allowed_targets(*allowed), f"{path}: {target} is not in the {allowed} registry"
                seen += 1
    assert seen >= 14
    assert not targets_in([yaml.safe_load(p.read_text()) for p in (CONF / "env").glob("*.yaml")])
    assert set(targets_in(yaml.safe_load((CONF / "eval.yaml").read_text())["cost"])) <= allowed_targets("cost")
    materials = targets_in(yaml.safe_load((CONF / "splat_sim.yaml").read_text())["materials"])
    assert len(materials) >= 5 and set(materials) <= allowed_targets("material")


@pytest.mark.parametrize("name", available())
def test_the_shipped_checkpoints_still_load(name):
    model, config = load_model(name)
    bare = getattr(model, "model", model)  # inside test-time rotation averaging where the config asks for it
    assert isinstance(bare, PointNetFlow) and not model.training and config["model"]["_target_"]
    assert getattr(model, "rotations", 1) == (config.get("inference") or {}).get("rotations", 1)


@pytest.fixture(scope="module")
def trained(tmp_path_factory, collect_small_store) -> Path:
    """A ``wm4d train`` run directory (tiny model, 4 steps)."""
    tmp = tmp_path_factory.mktemp("security")
    store = collect_small_store(tmp / "d.zarr", seed=11, episodes=2, max_steps=16)
    out = tmp / "run"
    run_job("train", [f"data={store}", "horizon=4", "model.width=16", "trainer.steps=4", "trainer.batch_size=4",
                      "trainer.warmup_steps=1", "trainer.num_workers=0", "val_fraction=0", f"out={out}"])
    return out


def test_a_trained_checkpoint_still_loads_and_holds_no_pickle(trained):
    model, config = load_model(trained)
    assert isinstance(model, PointNetFlow) and model.horizon == 4 and config["model"]["width"] == 16
    assert (trained / "trainer_state.safetensors").exists() and not list(trained.glob("*.pt"))


def test_a_pickled_trainer_state_is_refused_not_loaded(tmp_path):
    marker = tmp_path / "pwned"
    out = tmp_path / "run"
    out.mkdir()
    shutil.copy(CHECKPOINTS / "pusht4d-pointflow" / "model.safetensors", out / "model.safetensors")
    (out / "trainer_state.pt").write_bytes(pickle.dumps(_Payload(marker)))
    with pytest.raises(ValueError, match="pickled trainer_state.pt"):
        train(PointNetFlow(), [], TrainConfig(steps=1), out)
    assert not marker.exists()


def test_train_refuses_foreign_targets_before_reading_anything(tmp_path):
    target = tmp_path / "written.npy"
    with pytest.raises(ValueError, match=r"'numpy\.save' is not allowed"):
        run_job("train", [f"data={tmp_path / 'none.zarr'}", "model._target_=numpy.save", f"+model.file={target}",
                          "+model.arr=[1]", f"out={tmp_path / 'run'}"])
    with pytest.raises(ValueError, match=r"'os\.system' is not allowed"):
        run_job("train", [f"data={tmp_path / 'none.zarr'}", "trainer._target_=os.system", f"out={tmp_path / 'run'}"])
    assert not target.exists() and not (tmp_path / "run").exists()


def _recipe(tmp_path: Path, **changes) -> Path:
    """A checkpoint directory whose recipe is the shipped one with ``changes`` applied to its stages."""
    recipe = yaml.safe_load((CHECKPOINTS / "pusht4d-pointflow" / "recipe.yaml").read_text())
    recipe.update(changes)
    ckpt = _checkpoint(tmp_path, {"_target_": "worldmodel.models.PointNetFlow"}, name="downloaded")
    (ckpt / "recipe.yaml").write_text(yaml.safe_dump(recipe))
    return ckpt


@pytest.mark.parametrize("attack, message", [
    ({"collect": [["policy._target_=builtins.open", "+policy.file={out}/../pwned", "+policy.mode=w",
                   "out={out}/a.zarr"]]}, r"'builtins\.open' is not allowed"),
    ({"collect": [["+policy.extra={_target_: builtins.open, file: pwned, mode: w}", "out={out}/a.zarr"]]},
     "is not allowed"),
    ({"train": ["model._target_=numpy.save", "out={out}/train"]}, r"'numpy\.save' is not allowed"),
    ({"eval": ["checkpoint={out}/train", "data={out}/e.zarr", "out={out}/../../elsewhere"]}, "outside this run"),
    ({"collect": [["seed=${oc.env:HOME}", "out={out}/a.zarr"]]}, "interpolations"),
    ({"collect": [["hydra.searchpath=[file:///tmp]", "out={out}/a.zarr"]]}, "hydra's settings"),
    ({"collect": "policy=random_push"}, "lists of commands"),
])
def test_a_recipe_runs_only_the_package_jobs_and_classes(tmp_path, attack, message):
    ckpt = _recipe(tmp_path, **attack)
    out = tmp_path / "repro"
    with pytest.raises(ValueError, match=message):
        run_job("reproduce", [f"name={ckpt}", f"out={out}"])
    assert not out.exists() and not (tmp_path / "pwned").exists() and not (Path.cwd() / "pwned").exists()


def test_a_trained_model_predicts_after_loading(trained):
    model, _ = load_model(trained)
    g = torch.Generator().manual_seed(0)
    batch = {k: torch.rand(1, *s, generator=g) for k, s in {
        "scene_points": (64, 3), "scene_colors": (64, 3), "scene_normals": (64, 3), "gripper_points": (5, 8, 3),
        "gripper_velocity": (5, 8, 3), "gripper_acceleration": (5, 8, 3), "previous_displacement": (64, 3)}.items()}
    with torch.no_grad():
        flow, _ = model(batch)
    assert flow.shape == (1, 4, 64, 3) and torch.isfinite(flow).all()
