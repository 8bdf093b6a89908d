"""Sampling-based model-predictive control over fingertip-target sequences: CEM and MPPI.

A plan is T absolute fingertip xy targets, one per control step, parametrised by per-step
moves of at most ``max_step`` metres (the hand's speed limit times the control period).
Candidates are the mean plan plus time-correlated Gaussian noise (AR(1) with coefficient
``smoothness``: smooth pushes rather than jitter); the first candidate is always the mean
itself, so an iteration never loses the best plan found so far. After executing ``n``
steps, `shift` warm-starts the next plan with the rest of the previous one.

- CEM: the mean and std of the ``elites`` lowest-cost candidates become the next sampling
  distribution (blended with the old one by ``momentum``).
- MPPI: the next mean is the softmax(-cost / ``temperature``)-weighted average of the
  candidates (costs normalised to [0, 1] per iteration), the std stays fixed.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch

CostFn = Callable[[torch.Tensor], torch.Tensor]  # targets (K, T, 2) -> costs (K,)


@dataclass
class PlannerConfig:
    """Settings shared by CEM and MPPI (lengths in metres, ``horizon`` in control steps)."""

    horizon: int = 10
    samples: int = 64
    iterations: int = 3
    elites: int = 8
    init_std: float = 0.02
    min_std: float = 0.002
    smoothness: float = 0.7
    momentum: float = 0.1
    temperature: float = 0.05
    max_step: float = 0.05
    workspace: float = 0.4265

    def __post_init__(self) -> None:
        for name in ("horizon", "samples", "iterations", "elites"):
            if getattr(self, name) <= 0:
                raise ValueError(f"{name} must be a positive integer, got {getattr(self, name)}")
        if self.elites > self.samples:
            raise ValueError(f"elites ({self.elites}) cannot exceed samples ({self.samples})")
        if not (0 <= self.smoothness < 1 and 0 <= self.momentum < 1):
            raise ValueError("smoothness and momentum must lie in [0, 1)")
        if min(self.init_std, self.min_std, self.temperature, self.max_step, self.workspace) <= 0:
            raise ValueError("init_std, min_std, temperature, max_step and workspace must be positive")


class SamplingPlanner:
    """Base of CEM and MPPI: sampling, the move parametrisation and warm starts."""

    def __init__(self, cfg: PlannerConfig | None = None, generator: torch.Generator | None = None):
        self.cfg = cfg or PlannerConfig()
        self.generator = generator or torch.Generator().manual_seed(0)
        self.mean = torch.zeros(self.cfg.horizon, 2)

    def reset(self) -> None:
        """Forget the warm start (new episode)."""
        self.mean = torch.zeros(self.cfg.horizon, 2)

    def shift(self, steps: int) -> None:
        """Warm start: drop the first ``steps`` moves of the plan and hold still at its end."""
        steps = min(int(steps), self.cfg.horizon)
        self.mean = torch.cat([self.mean[steps:], torch.zeros(steps, 2)])

    def targets(self, start_xy: torch.Tensor, moves: torch.Tensor) -> torch.Tensor:
        """Absolute targets (K, T, 2) from per-step moves (K, T, 2), clipped to the workspace."""
        return (start_xy + moves.cumsum(dim=1)).clamp(-self.cfg.workspace, self.cfg.workspace)

    def sample(self, std: torch.Tensor) -> torch.Tensor:
        """Candidate moves (K, T, 2): the mean, then mean + AR(1)-correlated noise, each move capped."""
        c = self.cfg
        white = torch.randn(c.samples, c.horizon, 2, generator=self.generator)
        noise = torch.empty_like(white)
        noise[:, 0] = white[:, 0]
        scale = (1 - c.smoothness**2) ** 0.5
        for t in range(1, c.horizon):
            noise[:, t] = c.smoothness * noise[:, t - 1] + scale * white[:, t]
        moves = self.mean + std * noise
        moves[0] = self.mean
        norm = torch.linalg.vector_norm(moves, dim=-1, keepdim=True).clamp(min=1e-12)
        return moves * torch.clamp(c.max_step / norm, max=1.0)

    def update(self, moves: torch.Tensor, costs: torch.Tensor, std: torch.Tensor) -> torch.Tensor:
        """New mean (set on ``self``) and std from scored candidates; defined by CEM and MPPI."""
        raise NotImplementedError

    def plan(self, start_xy, cost_fn: CostFn) -> tuple[torch.Tensor, float]:
        """Optimise the plan from fingertip position ``start_xy``; returns targets (T, 2) and their cost."""
        start = torch.as_tensor(start_xy, dtype=torch.float32)
        std = torch.full((self.cfg.horizon, 2), self.cfg.init_std)
        best, best_cost = None, float("inf")
        for _ in range(self.cfg.iterations):
            moves = self.sample(std)
            costs = cost_fn(self.targets(start, moves))
            if not torch.isfinite(costs).all():
                raise ValueError("the cost function returned NaN/inf for some candidates")
            i = int(costs.argmin())
            if costs[i] < best_cost:
                best, best_cost = moves[i].clone(), float(costs[i])
            std = self.update(moves, costs, std)
        self.mean = best
        return self.targets(start, best[None])[0], best_cost


class CEM(SamplingPlanner):
    """Cross-entropy method (see the module docstring)."""

    def update(self, moves: torch.Tensor, costs: torch.Tensor, std: torch.Tensor) -> torch.Tensor:
        """Refit mean and std to the elites."""
        elite = moves[costs.argsort()[: self.cfg.elites]]
        m = self.cfg.momentum
        self.mean = m * self.mean + (1 - m) * elite.mean(0)
        return (m * std + (1 - m) * elite.std(0, unbiased=False)).clamp(min=self.cfg.min_std)


class MPPI(SamplingPlanner):
    """Model-predictive path integral control (see the module docstring)."""

    def update(self, moves: torch.Tensor, costs: torch.Tensor, std: torch.Tensor) -> torch.Tensor:
        """Softmax-weighted mean; the exploration std is kept."""
        span = (costs.max() - costs.min()).clamp(min=1e-12)
        w = torch.softmax(-(costs - costs.min()) / span / self.cfg.temperature, dim=0)
        self.mean = (w[:, None, None] * moves).sum(0)
        return std


PLANNERS = {"cem": CEM, "mppi": MPPI}
