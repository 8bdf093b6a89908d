"""Point-flow metrics of a model next to the zero-flow and constant-velocity baselines (DESIGN §11).

For each predictor: L2 per horizon step on moved, static and all points (see
`worldmodel.formulation.l2_per_step`) and the Chamfer distance between predicted and true
scene points at t+H, averaged over samples.
"""

from __future__ import annotations

import torch
from torch.utils.data import DataLoader, Dataset
from tqdm import tqdm

from ..formulation import constant_velocity_flow, l2_sums_per_step

BASELINES = ("zero_flow", "constant_velocity")


def chamfer(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Symmetric mean nearest-neighbour distance between point sets (B, N, 3) and (B, M, 3), per batch item."""
    d = torch.cdist(a, b)
    return 0.5 * (d.amin(dim=2).mean(dim=1) + d.amin(dim=1).mean(dim=1))


def _add(sums: dict, key: str, total: torch.Tensor, count) -> None:
    s, c = sums.get(key, (0.0, 0.0))
    sums[key] = (s + total, c + torch.as_tensor(count, dtype=total.dtype, device=total.device))


def flow_metrics(model: torch.nn.Module, dataset: Dataset, batch_size: int = 16, max_batches: int | None = None,
                 progress: bool = False) -> dict[str, list[float] | float | int]:
    """Metrics of ``model`` and the baselines on ``dataset``: keys ``{name}_{moved|static|all}`` (per-step
    lists), ``{name}_chamfer`` with name in ("model", "zero_flow", "constant_velocity"), and ``num_samples``."""
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    sums: dict[str, torch.Tensor] = {}
    counts = 0
    loader = DataLoader(dataset, batch_size=batch_size)
    total = len(loader) if max_batches is None else min(len(loader), max_batches)
    with torch.no_grad():
        for i, batch in enumerate(tqdm(loader, total=total, desc="eval", unit="batch", disable=not progress)):
            if max_batches is not None and i >= max_batches:
                break
            batch = {k: v.to(device) for k, v in batch.items()}
            pred, _ = model(batch)
            target, pts = batch["target"], batch["scene_points"]
            flows = {"model": pred, "zero_flow": torch.zeros_like(pred),
                     "constant_velocity": constant_velocity_flow(batch["previous_displacement"], pred.shape[1])}
            n = len(pts)
            for name, flow in flows.items():
                for k, (s, c) in l2_sums_per_step(flow, target).items():
                    _add(sums, f"{name}_{k}", s, c)
                _add(sums, f"{name}_chamfer", chamfer(pts + flow[:, -1], pts + target[:, -1]).sum(), n)
            counts += n
    model.train(was_training)
    out: dict[str, list[float] | float | int] = {}
    for k, (s, c) in sums.items():
        v = (s / c.clamp(min=1)).cpu()
        out[k] = float(v) if v.ndim == 0 else v.tolist()
    out["num_samples"] = counts
    return out
