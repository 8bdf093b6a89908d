"""The point-flow formulation, stated once (PointWorld-style chunking, DESIGN §6).

Input: the scene's points at time t (Ns, with colour and normal; optionally each point's
``previous_displacement`` x_t - x_{t-1}, its motion over the last control period, which
a single snapshot cannot show: a block kicked at 0.5 m/s slides on after the hand stops;
and its ``earlier_displacement`` x_{t-1} - x_{t-2}: with both, a vibrating point's phase and
amplitude follow without knowing its rest position; further back, ``displacement_lag3`` ..
x_{t-k+1} - x_{t-k} up to ``MAX_HISTORY`` periods, and ``start_displacement`` x_t - x_0, its
displacement since the episode's first row: for an object anchored in place that starts at
rest, how far it is deflected)
and the gripper points of rows t..t+H (H + 1, Nr, 3) with their velocity and acceleration. Output: the displacement
of every scene point at t+1..t+H relative to t, (H, Ns, 3), and a per-point log-variance
(H, Ns). Control at 10 Hz, H = 10 by default.

Loss: heteroscedastic Huber, 0.5 * (huber(|err| / s) / var + log var) with s the
displacement scale, averaged over points and steps, each term weighted by stopgrad(var)^beta
(beta-NLL, Seitzer et al. 2022). With beta = 1 (default) the displacement gets exactly the
gradient of the plain Huber loss, so hard points (the block's, a minority among static
ones) cannot be written off with a large variance, while the variance still converges to
the expected Huber error. Metrics (metres): L2 error per
horizon step on moved points (true displacement from t above 5 mm at that step), on static
points (true displacement below 1 mm over the whole horizon) and on all points; and the gain on
moved points, sum(pred . true) / sum(|true|^2) per step: the least-squares factor of the predicted
displacement along the true one (1: calibrated; below 1 the model predicts points moving less far
than they do, and a planner picks pushes too long).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

HORIZON = 10
LOSS_SCALE = 0.01  # m: the displacement scale s of the loss (the default of wm4d train's trainer.loss_scale)
MOVED_THRESHOLD = 0.005
STATIC_THRESHOLD = 0.001
MAX_HISTORY = 6  # past per-point displacements a sample carries (lags 1 .. MAX_HISTORY)
START_KEY = "start_displacement"  # x_t - x_0 per scene point (rows before t: the episode's first)


def past_key(lag: int) -> str:
    """The batch key of each point's motion x_{t-lag+1} - x_{t-lag} (lag 1 .. ``MAX_HISTORY``)."""
    if not 1 <= lag <= MAX_HISTORY:
        raise ValueError(f"lag must lie in [1, {MAX_HISTORY}], got {lag!r}")
    return {1: "previous_displacement", 2: "earlier_displacement"}.get(lag, f"displacement_lag{lag}")


PAST_KEYS = tuple(past_key(lag) for lag in range(1, MAX_HISTORY + 1))
BATCH_KEYS = ("scene_points", "scene_colors", "scene_normals", "gripper_points", "gripper_velocity",
              "gripper_acceleration")


def check_batch(batch: dict[str, torch.Tensor], horizon: int, extra: tuple[str, ...] = ()) -> tuple[int, int, int]:
    """(B, Ns, Nr) of a model input batch; ValueError names any key or shape that is wrong. ``extra``
    names further per-point (B, Ns, 3) inputs the model needs (e.g. "previous_displacement")."""
    missing = [k for k in (*BATCH_KEYS, *extra) if k not in batch]
    if missing:
        raise ValueError(f"batch lacks {missing}; a batch needs {[*BATCH_KEYS, *extra]}")
    B, N, _ = batch["scene_points"].shape
    Nr = batch["gripper_points"].shape[2]
    expected = {"scene_points": (B, N, 3), "scene_colors": (B, N, 3), "scene_normals": (B, N, 3),
                "gripper_points": (B, horizon + 1, Nr, 3), "gripper_velocity": (B, horizon + 1, Nr, 3),
                "gripper_acceleration": (B, horizon + 1, Nr, 3), **{k: (B, N, 3) for k in extra}}
    for k, shape in expected.items():
        t = batch[k]
        if tuple(t.shape) != shape or not t.is_floating_point():
            raise ValueError(f"{k} must be a float tensor of shape {shape} (B, Ns, Nr, H = {B}, {N}, {Nr}, {horizon}), "
                             f"got {t.dtype} {tuple(t.shape)}")
    return B, N, Nr


def heteroscedastic_huber(pred: torch.Tensor, log_var: torch.Tensor, target: torch.Tensor, scale: float = LOSS_SCALE,
                          delta: float = 1.0, beta: float = 1.0) -> torch.Tensor:
    """Mean over steps and points of stopgrad(var)^beta * 0.5 * (huber(|pred - target| / scale) / var + log var)."""
    err = torch.linalg.vector_norm(pred - target, dim=-1) / scale
    huber = F.huber_loss(err, torch.zeros_like(err), delta=delta, reduction="none")
    nll = 0.5 * (huber * torch.exp(-log_var) + log_var)
    if beta:
        nll = nll * torch.exp(beta * log_var.detach())
    return nll.mean()


def l2_sums_per_step(pred: torch.Tensor, target: torch.Tensor) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    """(sum of L2 errors (H,), number of points (H,)) per horizon step on moved, static and all points
    of a batch (B, H, Ns, 3): sums over batches combine exactly into means."""
    err = torch.linalg.vector_norm(pred - target, dim=-1)  # (B, H, N)
    true = torch.linalg.vector_norm(target, dim=-1)
    masks = {"moved": true > MOVED_THRESHOLD,
             "static": (true.amax(dim=1, keepdim=True) < STATIC_THRESHOLD).expand_as(true),
             "all": torch.ones_like(true, dtype=torch.bool)}
    return {k: ((err * m).sum(dim=(0, 2)), m.sum(dim=(0, 2)).to(err.dtype)) for k, m in masks.items()}


def moved_gain_sums(pred: torch.Tensor, target: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(sum of pred . true (H,), sum of |true|^2 (H,)) over the moved points of a batch (B, H, Ns, 3); their
    ratio is the gain (module docstring), and sums over batches combine exactly."""
    moved = (torch.linalg.vector_norm(target, dim=-1) > MOVED_THRESHOLD).to(pred.dtype)  # (B, H, N)
    return ((pred * target).sum(-1) * moved).sum(dim=(0, 2)), ((target * target).sum(-1) * moved).sum(dim=(0, 2))


def l2_per_step(pred: torch.Tensor, target: torch.Tensor) -> dict[str, torch.Tensor]:
    """Mean L2 error (H,) per horizon step on moved, static and all points of a batch (B, H, Ns, 3)."""
    return {k: s / n.clamp(min=1) for k, (s, n) in l2_sums_per_step(pred, target).items()}


def constant_velocity_flow(previous_displacement: torch.Tensor, horizon: int) -> torch.Tensor:
    """Baseline flow (B, H, Ns, 3): every point keeps its last motion, (h + 1) x (x_t - x_{t-1}) at step h."""
    steps = torch.arange(1, horizon + 1, dtype=previous_displacement.dtype, device=previous_displacement.device)
    return steps.view(1, -1, 1, 1) * previous_displacement[:, None]
