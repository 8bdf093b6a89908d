"""Training loop for point-flow models: AdamW, linear warm-up + cosine decay, gradient clipping,
optional EMA, AMP (bfloat16) on GPUs, data parallelism under torchrun, resumable checkpoints,
CSV (and optionally TensorBoard) logs and a tqdm bar.

Rerunning with the same ``out_dir`` resumes from the last checkpoint without losing steps
(files: see `worldmodel.training.checkpoint`). Under torchrun every rank trains on its shard
of each global batch, gradients are averaged by DistributedDataParallel, and rank 0 alone
writes files.
"""

from __future__ import annotations

import csv
import math
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn
from torch.utils.data import DataLoader, Dataset
from tqdm import tqdm

from ..formulation import LOSS_SCALE, heteroscedastic_huber
from . import distributed
from .checkpoint import LEGACY_TRAINER_STATE, TRAINER_STATE, load_trainer_state, load_weights, save_checkpoint
from .evaluation import flow_metrics


@dataclass
class TrainConfig:
    """Optimisation settings; ``steps`` counts optimizer steps, ``batch_size`` is per process.

    ``stop_at`` ends this run at that step while the learning-rate schedule still runs to
    ``steps`` (a staged run: a later call with more data or more steps resumes from there).
    ``ema_decay`` > 0 keeps an exponential moving average of the weights (``ema.safetensors``);
    ``device`` is "auto" (CUDA when available), "cpu" or "cuda[:i]"; ``amp`` autocasts to
    bfloat16 on CUDA (ignored on CPU).
    """

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
    loss_scale: float = LOSS_SCALE
    ema_decay: float = 0.0
    device: str = "auto"
    amp: bool = True
    tensorboard: bool = False
    stop_at: int | None = None

    def __post_init__(self) -> None:
        for name in ("steps", "batch_size", "checkpoint_every", "log_every"):
            if getattr(self, name) <= 0:
                raise ValueError(f"{name} must be a positive integer, got {getattr(self, name)}")
        if self.lr <= 0 or self.warmup_steps < 0 or self.grad_clip <= 0:
            raise ValueError("lr and grad_clip must be positive and warmup_steps non-negative")
        if self.stop_at is not None and self.stop_at <= 0:
            raise ValueError(f"stop_at must be a positive step or None, got {self.stop_at}")
        if not 0.0 <= self.ema_decay < 1.0:
            raise ValueError(f"ema_decay must lie in [0, 1) (0 disables EMA), got {self.ema_decay}")

    def torch_device(self) -> torch.device:
        """The device to train on."""
        if self.device == "auto":
            return torch.device("cuda" if torch.cuda.is_available() else "cpu")
        return torch.device(self.device)


def learning_rate(step: int, cfg: TrainConfig) -> float:
    """Linear warm-up to ``cfg.lr`` over ``warmup_steps``, then cosine decay to 0 at ``steps``."""
    if step < cfg.warmup_steps:
        return cfg.lr * (step + 1) / cfg.warmup_steps
    progress = (step - cfg.warmup_steps) / max(1, cfg.steps - cfg.warmup_steps)
    return 0.5 * cfg.lr * (1.0 + math.cos(math.pi * min(1.0, progress)))


def evaluate(model: torch.nn.Module, dataset: Dataset, batch_size: int = 16, max_batches: int = 20) -> dict[str, list]:
    """Moved/static/all L2 per step of ``model`` (keys moved, static, all) and of the baselines
    (keys prefixed zero_flow_ and constant_velocity_) on up to ``max_batches`` batches of ``dataset``."""
    m = flow_metrics(model, dataset, batch_size, max_batches)
    return {k.removeprefix("model_"): v for k, v in m.items() if not k.endswith("chamfer") and k != "num_samples"}


class _Log:
    """Appends rows to metrics.csv (and TensorBoard when asked) on rank 0."""

    def __init__(self, out: Path, tensorboard: bool, active: bool):
        self.path, self.active, self.writer = out / "metrics.csv", active, None
        if tensorboard and active:
            try:
                from torch.utils.tensorboard import SummaryWriter
            except ImportError as err:
                raise ValueError("trainer.tensorboard=true needs the tensorboard package "
                                 "(pip install tensorboard)") from err
            self.writer = SummaryWriter(str(out / "tensorboard"))

    def write(self, row: dict[str, float]) -> None:
        if not self.active:
            return
        new = not self.path.exists()
        with open(self.path, "a", newline="") as f:
            w = csv.DictWriter(f, fieldnames=list(row))
            if new:
                w.writeheader()
            w.writerow(row)
        if self.writer is not None:
            for k, v in row.items():
                if k != "step":
                    self.writer.add_scalar(k, v, int(row["step"]))
            self.writer.flush()


def train(model: torch.nn.Module, train_set: Dataset, cfg: TrainConfig, out_dir: str | os.PathLike,
          val_set: Dataset | None = None, config: dict[str, Any] | None = None) -> dict[str, Any]:
    """Train ``model`` for ``cfg.steps`` steps (resuming from ``out_dir`` if it holds a checkpoint)."""
    out = Path(out_dir)
    device = cfg.torch_device()
    is_ddp = distributed.init_from_env(device)
    rank, size = distributed.world()
    if device.type == "cuda" and is_ddp:
        device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
    model.to(device)
    rng = torch.Generator().manual_seed(cfg.seed)
    optimizer = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    ema = AveragedModel(model, multi_avg_fn=get_ema_multi_avg_fn(cfg.ema_decay), use_buffers=True) \
        if cfg.ema_decay > 0 else None
    step = 0
    if (out / LEGACY_TRAINER_STATE).exists() and not (out / TRAINER_STATE).exists():
        raise ValueError(f"{out} holds a pickled {LEGACY_TRAINER_STATE} from an older version, which is not loaded "
                         f"(a pickle can run code); delete it to restart training there, or train into a new out=")
    if (out / "model.safetensors").exists() and (out / TRAINER_STATE).exists():
        load_weights(model, out / "model.safetensors")
        if ema is not None and (out / "ema.safetensors").exists():
            load_weights(ema.module, out / "ema.safetensors")
        step = load_trainer_state(out / TRAINER_STATE, optimizer, rng)
    net = torch.nn.parallel.DistributedDataParallel(model) if is_ddp else model  # broadcasts rank 0's weights
    full_config = {"train": asdict(cfg), "world_size": size, **(config or {})}
    out.mkdir(parents=True, exist_ok=True)
    log = _Log(out, cfg.tensorboard, rank == 0)
    autocast = torch.autocast("cuda", dtype=torch.bfloat16, enabled=cfg.amp and device.type == "cuda")
    end = cfg.steps if cfg.stop_at is None else min(cfg.steps, cfg.stop_at)
    bar = tqdm(total=end, initial=min(step, end), desc="train", unit="step", disable=rank != 0)
    last: dict[str, Any] = {}
    while step < end:
        if hasattr(train_set, "set_epoch"):
            train_set.set_epoch(step)
        sampler = distributed.ShardedRandomSampler(len(train_set), rng)
        loader = DataLoader(train_set, batch_size=cfg.batch_size, sampler=sampler, num_workers=cfg.num_workers,
                            drop_last=len(sampler) >= cfg.batch_size, persistent_workers=False)
        for batch in loader:
            batch = {k: v.to(device, non_blocking=True) for k, v in batch.items()}
            for group in optimizer.param_groups:
                group["lr"] = learning_rate(step, cfg)
            with autocast:
                pred, log_var = net(batch)
            loss = heteroscedastic_huber(pred.float(), log_var.float(), batch["target"], scale=cfg.loss_scale)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
            optimizer.step()
            if ema is not None:
                ema.update_parameters(model)
            step += 1
            bar.update(1)
            if step % cfg.log_every == 0 or step == end:
                last = {"step": step, "lr": learning_rate(step - 1, cfg), "loss": loss.item()}
                bar.set_postfix(loss=f"{loss.item():.3f}")
                log.write(last)
            if rank == 0 and (step % cfg.checkpoint_every == 0 or step == end):
                save_checkpoint(out, model, optimizer, step, full_config, rng,
                                ema.module if ema is not None else None)
            if step >= end:
                break
    bar.close()
    result = {**last, "steps": step}
    if val_set is not None and rank == 0:
        result["val"] = evaluate(ema.module if ema is not None else model, val_set, cfg.batch_size)
    return result
