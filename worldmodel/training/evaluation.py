"""Point-flow metrics of a model next to the zero-flow and constant-velocity baselines (DESIGN §11).

For each predictor: L2 per horizon step on moved, static and all points (see
`worldmodel.formulation.l2_per_step`) and the Chamfer distance between predicted and true
scene points at t+H, averaged over samples; for the model also the gain on moved points per step
(`worldmodel.formulation.moved_gain_sums`).
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset
from tqdm import tqdm

from ..formulation import constant_velocity_flow, l2_sums_per_step, moved_gain_sums

BASELINES = ("zero_flow", "constant_velocity")


def chamfer(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Symmetric mean nearest-neighbour distance between point sets (B, N, 3) and (B, M, 3), per batch item."""
    d = torch.cdist(a, b)
    return 0.5 * (d.amin(dim=2).mean(dim=1) + d.amin(dim=1).mean(dim=1))


def _add(sums: dict, key: str, total: torch.Tensor, count) -> None:
    s, c = sums.get(key, (0.0, 0.0))
    sums[key] = (s + total, c + torch.as_tensor(count, dtype=total.dtype, device=total.device))


def _merge(parts: list[dict]) -> dict:
    """Sums of several groups of samples added into one."""
    out: dict = {}
    for part in parts:
        for key, (s, c) in part.items():
            _add(out, key, s, c)
    return out


def _means(sums: dict) -> dict[str, list[float] | float | int]:
    out: dict[str, list[float] | float | int] = {}
    for k, (s, c) in sums.items():
        if k == "num_samples":
            out[k] = int(s)
            continue
        v = torch.where(c > 0, s / c.clamp(min=torch.finfo(c.dtype).tiny), 0.0).cpu()  # 0 where nothing was summed
        out[k] = float(v) if v.ndim == 0 else v.tolist()
    return out


def flow_metrics(model: torch.nn.Module, dataset: Dataset, batch_size: int = 16, max_batches: int | None = None,
                 progress: bool = False, labels: dict[str, Sequence[str]] | None = None) -> dict:
    """Metrics of ``model`` and the baselines on ``dataset``: keys ``{name}_{moved|static|all}`` (per-step
    lists), ``{name}_chamfer`` with name in ("model", "zero_flow", "constant_velocity"), ``model_moved_gain``
    (per-step list) and ``num_samples``.

    ``labels`` maps a breakdown (e.g. ``"per_policy"``) to one label per sample of ``dataset``; the result then
    also holds, under each breakdown, the same metrics of every label's samples (one pass over the data).
    """
    labels = labels or {}
    names = list(labels)
    rows = np.array([list(map(str, labels[n])) for n in names], dtype=object).T if names else None
    if rows is not None and len(rows) != len(dataset):
        raise ValueError(f"labels need one entry per sample ({len(dataset)}), got {len(rows)}")
    combos, group = (np.unique(rows.astype(str), axis=0, return_inverse=True) if rows is not None
                     else (np.zeros((1, 0), str), np.zeros(len(dataset), np.int64)))
    group = np.asarray(group).reshape(-1)
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    sums: list[dict] = [{} for _ in range(len(combos))]
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
            ids = group[i * batch_size : i * batch_size + len(pts)]
            for g in np.unique(ids):
                m = torch.as_tensor(ids == g, device=device)
                acc = sums[int(g)]
                for name, flow in flows.items():
                    for k, (s, c) in l2_sums_per_step(flow[m], target[m]).items():
                        _add(acc, f"{name}_{k}", s, c)
                    _add(acc, f"{name}_chamfer", chamfer(pts[m] + flow[m][:, -1], pts[m] + target[m][:, -1]).sum(),
                         int(m.sum()))
                _add(acc, "model_moved_gain", *moved_gain_sums(pred[m], target[m]))
                _add(acc, "num_samples", torch.tensor(float(m.sum())), 1)
    model.train(was_training)
    out = _means(_merge(sums))
    out.setdefault("num_samples", 0)
    for j, name in enumerate(names):
        merged = {value: _merge([sums[g] for g in np.flatnonzero(combos[:, j] == value)])
                  for value in sorted(set(combos[:, j]))}
        out[name] = {value: _means(m) for value, m in merged.items() if m}  # labels of evaluated samples only
    return out
