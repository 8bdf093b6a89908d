"""``wm4d train``: fit a point-flow model on rollout stores; rerunning the same command resumes."""

from __future__ import annotations

import json
from pathlib import Path

import torch
from omegaconf import DictConfig, OmegaConf


def run(cfg: DictConfig) -> None:
    """Build the datasets and model from ``cfg`` (normalisation from the data), or start from the checkpoint
    ``cfg.init`` (fine-tuning: its model, weights and normalisation), and train."""
    from worldmodel.data import PointFlowDataset
    from worldmodel.safe_config import check_config, instantiate_checked
    from worldmodel.training import train
    from worldmodel.training.checkpoint import atomic_write

    check_config(cfg.model, "model", "model")  # fail now rather than write a checkpoint load_model refuses
    check_config(cfg.trainer, "trainer", "trainer")
    inference = inference_config(cfg)  # checked before any data is read
    paths = list(cfg.data) if OmegaConf.is_list(cfg.data) else [str(cfg.data)]
    common = {"horizon": int(cfg.horizon), "val_fraction": float(cfg.val_fraction)}
    subsets = {"num_points": cfg.num_points, "num_gripper_points": cfg.num_gripper_points}
    train_set = PointFlowDataset(paths, split="train", augment=bool(cfg.augment),
                                 max_shift=float(cfg.max_shift), seed=int(cfg.trainer.seed),
                                 **subsets, **common)
    val_set = PointFlowDataset(paths, split="val", **common) if cfg.val_fraction > 0 else None
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    stats_path = out / "stats.json"
    stats = json.loads(stats_path.read_text()) if stats_path.exists() else train_set.statistics()
    atomic_write(stats_path, lambda p: p.write_text(json.dumps(stats, indent=2)))
    torch.manual_seed(int(cfg.trainer.seed))
    if cfg.init is None:
        model_cfg = OmegaConf.to_container(cfg.model, resolve=True)
        model = instantiate_checked(cfg.model, "model", "model")
        with torch.no_grad():  # normalisation from the training data, stored with the weights
            model.position_mean.copy_(torch.tensor(stats["scene_mean"]))
            model.position_scale.fill_(float(torch.tensor(stats["scene_std"])[:2].mean()))
            model.displacement_scale.fill_(float(torch.tensor(stats["displacement_std"]).norm()))
    else:
        model, model_cfg = initial_model(str(cfg.init), int(cfg.horizon))
    trainer_cfg = instantiate_checked(cfg.trainer, "trainer", "trainer")
    config = {"model": model_cfg, "data": paths, "horizon": int(cfg.horizon),
              **({} if cfg.init is None else {"init": str(cfg.init)}), **inference}
    result = train(model, train_set, trainer_cfg, out, val_set=val_set, config=config)
    (out / "result.json").write_text(json.dumps(result, indent=2))
    print(json.dumps({k: v for k, v in result.items() if k != "val"}))


def initial_model(checkpoint: str, horizon: int) -> tuple[torch.nn.Module, dict]:
    """The model of ``checkpoint`` (a shipped name or a ``wm4d train`` directory; its EMA weights) to fine-tune,
    in training mode, and its model config; its normalisation is kept. ValueError if its horizon differs."""
    from worldmodel.pretrained import load_model

    model, config = load_model(checkpoint, rotations=1)
    if int(config.get("horizon", horizon)) != horizon:
        raise ValueError(f"init={checkpoint} predicts {config['horizon']} steps, but this run has horizon={horizon}; "
                         f"set horizon={config['horizon']} to fine-tune it")
    return model.train(), config["model"]


def inference_config(cfg: DictConfig) -> dict:
    """The checkpoint's inference settings: ``{"inference": {"rotations": K}}`` for test-time averaging over K
    turns about z (`worldmodel.models.RotationAveraged`), which needs training with rotation augmentation."""
    from worldmodel.models.rotation_averaging import check_rotations

    rotations = check_rotations(cfg.get("rotations", 1))
    if rotations > 1 and not cfg.augment:
        raise ValueError(f"rotations={rotations} averages over turns about z, which only a model trained with "
                         "augment=true has seen; set augment=true or rotations=1")
    return {"inference": {"rotations": rotations}} if rotations > 1 else {}
