"""Training loop for point-flow models: AdamW, linear warm-up + cosine decay, gradient clipping,
resumable checkpoints, CSV log and a tqdm bar.

Checkpoint directory layout (every file written atomically: temp file, then rename):
``model.safetensors`` (weights and normalisation buffers), ``trainer_state.pt`` (optimizer,
step, RNG states), ``config.json`` (the model and trainer config), ``metrics.csv``.
Rerunning with the same ``out_dir`` resumes from the last checkpoint without losing steps.
"""

from __future__ import annotations

import csv
import json
import math
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file
from torch.utils.data import DataLoader, Dataset, RandomSampler
from tqdm import tqdm

from ..formulation import heteroscedastic_huber, l2_per_step


@dataclass
class TrainConfig:
    """Optimisation settings; ``steps`` counts optimizer steps."""

    steps: int = 2000
    batch_size: int = 16
    lr: float = 1e-3
    weight_decay: float = 1e-4
    warmup_steps: int = 100
    grad_clip: float = 1.0
    num_workers: int = 0
    seed: int = 0
    checkpoint_every: int = 200
    log_every: int = 20
    loss_scale: float = 0.01

    def __post_init__(self) -> None:
        for name in ("steps", "batch_size", "checkpoint_every", "log_every"):
            if getattr(self, name) <= 0:
                raise ValueError(f"{name} must be a positive integer, got {getattr(self, name)}")
        if self.lr <= 0 or self.warmup_steps < 0 or self.grad_clip <= 0:
            raise ValueError("lr and grad_clip must be positive and warmup_steps non-negative")


def learning_rate(step: int, cfg: TrainConfig) -> float:
    """Linear warm-up to ``cfg.lr`` over ``warmup_steps``, then cosine decay to 0 at ``steps``."""
    if step < cfg.warmup_steps:
        return cfg.lr * (step + 1) / cfg.warmup_steps
    progress = (step - cfg.warmup_steps) / max(1, cfg.steps - cfg.warmup_steps)
    return 0.5 * cfg.lr * (1.0 + math.cos(math.pi * min(1.0, progress)))


def _atomic(path: Path, write) -> None:
    tmp = path.with_name(path.name + ".tmp")
    write(tmp)
    os.replace(tmp, path)


def save_checkpoint(out_dir: str | os.PathLike, model: torch.nn.Module, optimizer: torch.optim.Optimizer,
                    step: int, config: dict[str, Any], rng: torch.Generator) -> None:
    """Write the checkpoint files of ``out_dir`` (see the module docstring)."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    weights = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    _atomic(out / "model.safetensors", lambda p: save_file(weights, str(p), metadata={"step": str(step)}))
    state = {"optimizer": optimizer.state_dict(), "step": step, "rng": rng.get_state()}
    _atomic(out / "trainer_state.pt", lambda p: torch.save(state, p))
    _atomic(out / "config.json", lambda p: p.write_text(json.dumps(config, indent=2)))


def load_weights(model: torch.nn.Module, path: str | os.PathLike) -> int:
    """Load ``model.safetensors`` into ``model`` (every key must match); returns the saved step."""
    path = Path(path)
    try:
        weights = load_file(str(path))
        from safetensors import safe_open

        with safe_open(str(path), framework="pt") as f:
            step = int((f.metadata() or {}).get("step", 0))
    except Exception as err:
        raise ValueError(f"{path} is not a readable safetensors checkpoint: {err}") from err
    own = model.state_dict()
    missing, extra = sorted(set(own) - set(weights)), sorted(set(weights) - set(own))
    bad = [k for k in own if k in weights and own[k].shape != weights[k].shape]
    if missing or extra or bad:
        raise ValueError(f"{path} does not fit {type(model).__name__}: missing {missing}, unexpected {extra}, "
                         f"wrong shapes {bad}")
    model.load_state_dict(weights)
    return step


def evaluate(model: torch.nn.Module, dataset: Dataset, batch_size: int = 16, max_batches: int = 20) -> dict[str, list]:
    """Moved/static/all L2 per step of ``model`` and of the zero-flow baseline on ``dataset``."""
    model.eval()
    sums: dict[str, torch.Tensor] = {}
    n = 0
    with torch.no_grad():
        for i, batch in enumerate(DataLoader(dataset, batch_size=batch_size)):
            if i >= max_batches:
                break
            pred, _ = model(batch)
            for prefix, p in (("", pred), ("zero_flow_", torch.zeros_like(pred))):
                for k, v in l2_per_step(p, batch["target"]).items():
                    sums[prefix + k] = sums.get(prefix + k, 0) + v
            n += 1
    model.train()
    return {k: (v / max(n, 1)).tolist() for k, v in sums.items()}


def train(model: torch.nn.Module, train_set: Dataset, cfg: TrainConfig, out_dir: str | os.PathLike,
          val_set: Dataset | None = None, config: dict[str, Any] | None = None) -> dict[str, Any]:
    """Train ``model`` for ``cfg.steps`` steps (resuming from ``out_dir`` if it holds a checkpoint)."""
    out = Path(out_dir)
    torch.manual_seed(cfg.seed)  # parameter init of layers created later, if any
    rng = torch.Generator().manual_seed(cfg.seed)
    optimizer = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    step = 0
    if (out / "model.safetensors").exists() and (out / "trainer_state.pt").exists():
        step = load_weights(model, out / "model.safetensors")
        state = torch.load(out / "trainer_state.pt", weights_only=False)
        optimizer.load_state_dict(state["optimizer"])
        rng.set_state(state["rng"])
        step = int(state["step"])
    full_config = {"train": asdict(cfg), **(config or {})}
    log_path = out / "metrics.csv"
    out.mkdir(parents=True, exist_ok=True)
    bar = tqdm(total=cfg.steps, initial=step, desc="train", unit="step")
    last = {}
    while step < cfg.steps:
        if hasattr(train_set, "set_epoch"):
            train_set.set_epoch(step)
        sampler = RandomSampler(train_set, generator=rng)
        loader = DataLoader(train_set, batch_size=cfg.batch_size, sampler=sampler, num_workers=cfg.num_workers,
                            drop_last=len(train_set) >= cfg.batch_size)
        for batch in loader:
            for group in optimizer.param_groups:
                group["lr"] = learning_rate(step, cfg)
            pred, log_var = model(batch)
            loss = heteroscedastic_huber(pred, log_var, batch["target"], scale=cfg.loss_scale)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
            optimizer.step()
            step += 1
            bar.update(1)
            if step % cfg.log_every == 0 or step == cfg.steps:
                last = {"step": step, "lr": learning_rate(step - 1, cfg), "loss": loss.item()}
                bar.set_postfix(loss=f"{loss.item():.3f}")
                new = not log_path.exists()
                with open(log_path, "a", newline="") as f:
                    w = csv.DictWriter(f, fieldnames=list(last))
                    if new:
                        w.writeheader()
                    w.writerow(last)
            if step % cfg.checkpoint_every == 0 or step == cfg.steps:
                save_checkpoint(out, model, optimizer, step, full_config, rng)
            if step >= cfg.steps:
                break
    bar.close()
    result = {**last, "steps": step}
    if val_set is not None:
        result["val"] = evaluate(model, val_set, cfg.batch_size)
    return result
