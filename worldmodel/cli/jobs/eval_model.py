"""``wm4d eval-model``: DESIGN §11 metrics of a checkpoint on rollouts -> ``DIR/metrics.json`` and PNGs.

L2 per horizon step on moved, static and all points and the Chamfer distance at t+H, each
next to the zero-flow and constant-velocity baselines (`worldmodel.training.flow_metrics`), overall
and per push source (``per_policy``), robot (``per_gripper``), both (``per_policy_gripper``, e.g.
``random_push/panda``), object (``per_object``) and randomised factors (``per_factor``: "nominal", "scale",
...) where the stores record them, and with ``groups={name: [stores], ...}`` per group of stores (``per_group``:
the generalisation protocol's seen and unseen objects, unseen gripper, each factor alone, ...; ``data`` then
defaults to all their stores; ``protocol.md`` tabulates them next to zero flow and constant velocity);
``error_vs_horizon.png`` plots them, ``flow.png`` draws predicted against true flow on the
point clouds of a few samples.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch
from omegaconf import DictConfig, OmegaConf


def run(cfg: DictConfig) -> None:
    """Evaluate ``cfg.checkpoint`` on ``cfg.data`` and write ``cfg.out``/metrics.json and the PNGs."""
    from worldmodel.data import PointFlowDataset
    from worldmodel.pretrained import load_model
    from worldmodel.training import flow_metrics

    groups = protocol_groups(cfg.get("groups"))
    if cfg.data is None and not groups:
        raise ValueError("give data=PATH.zarr or [A.zarr, B.zarr], or groups={name: [stores], ...}")
    paths = [p for ps in groups.values() for p in ps] if cfg.data is None else \
        (list(cfg.data) if OmegaConf.is_list(cfg.data) else [str(cfg.data)])
    outside = [p for p in paths if groups and not any(p in ps for ps in groups.values())]
    if outside:
        raise ValueError(f"with groups= every store of data= belongs to a group; {outside} belong to none")
    rotations = None if cfg.get("rotations") is None else int(cfg.rotations)
    model, config = load_model(cfg.checkpoint, rotations=rotations)
    horizon = int(config["horizon"])
    dataset = PointFlowDataset(paths, horizon=horizon, split="all")
    max_batches = None if cfg.max_batches is None else int(cfg.max_batches)
    labels = {name: dataset.sample_labels(key) for name, key in BREAKDOWNS.items()}
    labels = {name: v for name, v in labels.items() if any(v)}  # the sources the stores record
    if {"per_policy", "per_gripper"} <= set(labels):  # each push source of each robot
        labels["per_policy_gripper"] = np.array([f"{p}/{g}" for p, g in zip(labels["per_policy"],
                                                                            labels["per_gripper"], strict=True)])
    if groups:  # the protocol's groups of stores (DESIGN §13: seen/unseen objects, an unseen gripper, ...)
        group_of = {p: name for name, ps in groups.items() for p in ps}
        labels["per_group"] = np.array([group_of[s] for s in dataset.sample_labels("store")])
    m = flow_metrics(model, dataset, int(cfg.batch_size), max_batches, progress=True, labels=labels)
    metrics = {"horizon": horizon, **metric_block(m)}
    for name in labels:
        metrics[name] = {value: metric_block(group) for value, group in m[name].items()}
    metrics.update(checkpoint=str(cfg.checkpoint), data=paths, rotations=getattr(model, "rotations", 1))
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "metrics.json").write_text(json.dumps(metrics, indent=2))
    if groups:
        (out / "protocol.md").write_text(protocol_table(metrics))
    _plot_errors(out / "error_vs_horizon.png", metrics)
    _plot_flow(out / "flow.png", model, dataset, int(cfg.flow_samples))
    print(json.dumps({**{k: metrics[k] for k in ("horizon", "chamfer", "moved_l2_ratio_to_zero_flow_at_H")},
                      "moved_gain_at_H": metrics["moved_gain_per_step"][-1], "num_samples": metrics["num_samples"]}))
    for name in labels:
        for value, block in metrics[name].items():
            print(f"{name} {value}: moved L2 at H {1000 * block['l2_moved_per_step'][-1]:.1f} mm = "
                  f"{block['moved_l2_ratio_to_zero_flow_at_H']:.3f}x zero flow, "
                  f"gain {block['moved_gain_per_step'][-1]:.2f}, static "
                  f"{1000 * block['l2_static_per_step'][-1]:.2f} mm ({block['num_samples']} samples)")


def protocol_groups(groups) -> dict[str, list[str]]:
    """``groups=`` as {name: [store paths]} ({} for None); ValueError for anything but a mapping of names to
    non-empty lists of paths, or a store in two groups."""
    if groups is None:
        return {}
    plain = OmegaConf.to_container(groups) if OmegaConf.is_config(groups) else groups
    if not isinstance(plain, dict) or not plain or not all(
            isinstance(v, list) and v and all(isinstance(p, str) for p in v) for v in plain.values()):
        raise ValueError(f"groups must map group names to lists of stores, e.g. {{seen: [a.zarr], unseen: "
                         f"[b.zarr]}}, got {plain!r}")
    seen: dict[str, str] = {}
    for name, paths in plain.items():
        for p in paths:
            if p in seen:
                raise ValueError(f"store {p} is in two groups ({seen[p]!r} and {name!r}); a store belongs to one")
            seen[p] = str(name)
    return {str(k): list(v) for k, v in plain.items()}


def protocol_table(metrics: dict) -> str:
    """A markdown table of ``metrics["per_group"]`` (and the whole): moved-point L2 at step H for the model, zero
    flow and constant velocity, the model's ratio to zero flow, its gain at H, static-point L2 and the number of
    samples."""
    lines = ["| group | model, moved L2 at H (mm) | / zero flow | zero flow (mm) | constant velocity (mm) "
             "| gain at H | static L2 at H (mm) | samples |", "|---|---|---|---|---|---|---|---|"]
    for name, m in [*metrics["per_group"].items(), ("all", metrics)]:
        lines.append(f"| {name} | {1000 * m['l2_moved_per_step'][-1]:.1f} "
                     f"| {m['moved_l2_ratio_to_zero_flow_at_H']:.2f}x "
                     f"| {1000 * m['zero_flow_l2_moved_per_step'][-1]:.1f} "
                     f"| {1000 * m['constant_velocity_l2_moved_per_step'][-1]:.1f} "
                     f"| {m['moved_gain_per_step'][-1]:.2f} "
                     f"| {1000 * m['l2_static_per_step'][-1]:.2f} | {m['num_samples']} |")
    return "\n".join(lines) + "\n"


# metrics.json breakdowns (DESIGN §13) and the episode source each groups samples by
BREAKDOWNS = {"per_policy": "policy", "per_gripper": "robot", "per_object": "object", "per_factor": "factor"}


def metric_block(m: dict) -> dict:
    """DESIGN §11's metric names of a `worldmodel.training.flow_metrics` result (overall or one group's): L2 per
    step on moved/static/all points and Chamfer for the model and the baselines, the moved-point ratio to zero
    flow at step H, the moved-point gain per step (`worldmodel.formulation.moved_gain_sums`) and
    ``num_samples``."""
    out: dict = {}
    for name in ("model", "zero_flow", "constant_velocity"):
        prefix = "" if name == "model" else name + "_"
        for kind in ("moved", "static", "all"):
            out[f"{prefix}l2_{kind}_per_step"] = m[f"{name}_{kind}"]
        out[f"{prefix}chamfer"] = m[f"{name}_chamfer"]
    out["moved_l2_ratio_to_zero_flow_at_H"] = m["model_moved"][-1] / max(m["zero_flow_moved"][-1], 1e-12)
    out["moved_gain_per_step"] = m["model_moved_gain"]
    out["num_samples"] = m["num_samples"]
    return out


def _plot_errors(path: Path, m: dict) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    steps = range(1, m["horizon"] + 1)
    fig, ax = plt.subplots(figsize=(5.5, 3.8))
    mm = lambda key: [1000 * v for v in m[key]]  # noqa: E731
    ax.plot(steps, mm("l2_moved_per_step"), "o-", color="C0", label="model, moved points")
    ax.plot(steps, mm("zero_flow_l2_moved_per_step"), "s--", color="C1", label="zero flow, moved")
    ax.plot(steps, mm("constant_velocity_l2_moved_per_step"), "d:", color="C2", label="constant velocity, moved")
    ax.plot(steps, mm("l2_static_per_step"), "^-", color="C3", label="model, static points")
    ax.set_xlabel("horizon step"), ax.set_ylabel("L2 error (mm)"), ax.legend(fontsize=8), ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def _plot_flow(path: Path, model: torch.nn.Module, dataset, count: int) -> None:
    """Top views of the samples whose block moves most: true flow to t+H in green, predicted in red."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    probe = np.linspace(0, len(dataset) - 1, min(len(dataset), 20 * count)).astype(int)
    motion = [float(np.abs(dataset.sample(int(i)).target[-1]).max()) for i in probe]
    chosen = probe[np.argsort(motion)[::-1][:count]]
    fig, axes = plt.subplots(1, len(chosen), figsize=(4 * len(chosen), 4), squeeze=False)
    for ax, i in zip(axes[0], chosen, strict=True):
        s = dataset[int(i)]
        with torch.no_grad():
            pred, _ = model({k: v[None] for k, v in s.items()})
        p, t, f = s["scene_points"].numpy(), s["target"][-1].numpy(), pred[0, -1].numpy()
        g = s["gripper_points"].numpy()
        ax.scatter(p[:, 0], p[:, 1], s=2, c=s["scene_colors"].numpy().clip(0, 1))
        ax.plot(g[:, :, 0].mean(1), g[:, :, 1].mean(1), "k.-", lw=1, ms=3, label="gripper t..t+H")
        moving = np.linalg.norm(t, axis=1) > 1e-4
        kw = dict(angles="xy", scale_units="xy", scale=1, width=0.004)
        ax.quiver(p[moving, 0], p[moving, 1], t[moving, 0], t[moving, 1], color="tab:green", **kw, label="true")
        ax.quiver(p[moving, 0], p[moving, 1], f[moving, 0], f[moving, 1], color="tab:red", alpha=0.7, **kw,
                  label="predicted")
        ax.set_aspect("equal"), ax.set_title(f"sample {int(i)}: flow to t+H", fontsize=9)
        ax.legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
