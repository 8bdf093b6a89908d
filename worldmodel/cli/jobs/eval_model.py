"""``wm4d eval-model``: DESIGN §11 metrics of a checkpoint on rollouts -> ``DIR/metrics.json`` and a PNG.

L2 per horizon step on moved, static and all points next to the zero-flow baseline, and the
Chamfer distance between predicted and true scene points at t+H (metres).
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf
from torch.utils.data import DataLoader
from tqdm import tqdm


def chamfer(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Symmetric mean nearest-neighbour distance between point sets (B, N, 3) and (B, M, 3), per batch item."""
    d = torch.cdist(a, b)
    return 0.5 * (d.amin(dim=2).mean(dim=1) + d.amin(dim=1).mean(dim=1))


def load_model(checkpoint: str | Path) -> tuple[torch.nn.Module, dict]:
    """The model of a ``wm4d train`` directory and its saved config."""
    from worldmodel.training import load_weights

    ckpt = Path(checkpoint)
    if not (ckpt / "config.json").exists() or not (ckpt / "model.safetensors").exists():
        raise ValueError(f"{ckpt} is not a checkpoint directory (needs config.json and model.safetensors)")
    config = json.loads((ckpt / "config.json").read_text())
    model = instantiate(config["model"])
    load_weights(model, ckpt / "model.safetensors")
    return model.eval(), config


def run(cfg: DictConfig) -> None:
    """Evaluate ``cfg.checkpoint`` on ``cfg.data`` and write ``cfg.out``/metrics.json and error_vs_horizon.png."""
    from worldmodel.data import PointFlowDataset
    from worldmodel.formulation import l2_per_step

    model, config = load_model(cfg.checkpoint)
    horizon = int(config["horizon"])
    paths = list(cfg.data) if OmegaConf.is_list(cfg.data) else [str(cfg.data)]
    dataset = PointFlowDataset(paths, horizon=horizon, split="all")
    sums: dict[str, torch.Tensor] = {}
    chamfers, n_batches, n_samples = [], 0, 0
    with torch.no_grad():
        for i, batch in enumerate(tqdm(DataLoader(dataset, batch_size=int(cfg.batch_size)), desc="eval", unit="batch")):
            if cfg.max_batches is not None and i >= int(cfg.max_batches):
                break
            pred, _ = model(batch)
            for prefix, p in (("", pred), ("zero_flow_", torch.zeros_like(pred))):
                for k, v in l2_per_step(p, batch["target"]).items():
                    sums[prefix + k] = sums.get(prefix + k, 0) + v
            pts = batch["scene_points"]
            chamfers.append(chamfer(pts + pred[:, -1], pts + batch["target"][:, -1]))
            n_batches += 1
            n_samples += len(pts)
    mean = {k: (v / n_batches).tolist() for k, v in sums.items()}
    metrics = {
        "horizon": horizon,
        "l2_moved_per_step": mean["moved"],
        "l2_static_per_step": mean["static"],
        "l2_all_per_step": mean["all"],
        "zero_flow_l2_moved_per_step": mean["zero_flow_moved"],
        "zero_flow_l2_all_per_step": mean["zero_flow_all"],
        "chamfer": float(torch.cat(chamfers).mean()),
        "num_samples": n_samples,
        "checkpoint": str(cfg.checkpoint),
        "data": paths,
    }
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "metrics.json").write_text(json.dumps(metrics, indent=2))
    _plot(out / "error_vs_horizon.png", metrics)
    print(json.dumps({k: metrics[k] for k in ("horizon", "chamfer", "num_samples")}))


def _plot(path: Path, m: dict) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    steps = range(1, m["horizon"] + 1)
    fig, ax = plt.subplots(figsize=(5, 3.5))
    ax.plot(steps, [1000 * v for v in m["l2_moved_per_step"]], "o-", label="model, moved points")
    ax.plot(steps, [1000 * v for v in m["zero_flow_l2_moved_per_step"]], "s--", label="zero flow, moved points")
    ax.plot(steps, [1000 * v for v in m["l2_static_per_step"]], "^-", label="model, static points")
    ax.set_xlabel("horizon step"), ax.set_ylabel("L2 error (mm)"), ax.legend(), ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
