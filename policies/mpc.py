"""Receding-horizon control with a dynamics adapter, a sampling planner and a flow cost.

Cost of a candidate (Dream2Flow-style, DESIGN §7): the mean distance between the predicted
block points and their goal positions at the plan's end, plus ``progress_weight`` times that
distance averaged over the plan's steps, ``effort_weight`` times the summed squared moves,
and ``reach_weight`` times the distance from the fingertip's final position to the nearest
predicted block point (so that plans which never touch the block still rank by how close
they bring the hand), and ``uncertainty_weight`` times the model's own estimate of its error on
the block points (`worldmodel.dynamics.Prediction.spread`; a learned model only), which steers
the planner away from pushes the model cannot predict. With a time-aligned ``target_flow``
(T, N, 3) the goal positions are taken per step instead.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
import torch

from worldmodel.dynamics import Prediction, fingertip_path

from .dynamics import Dynamics
from .planners import SamplingPlanner


@dataclass
class FlowCost:
    """Weights of the cost terms (see the module docstring)."""

    progress_weight: float = 0.2
    effort_weight: float = 0.0
    reach_weight: float = 0.2
    uncertainty_weight: float = 0.0

    def __call__(self, pred: Prediction, targets: torch.Tensor, start_xy: torch.Tensor, max_step: float,
                 target_flow: torch.Tensor | None = None) -> torch.Tensor:
        """Costs (K,) of K candidate target sequences (K, T, 2) starting at fingertip ``start_xy`` (2,) or
        (K, 2), with predicted points ``pred``."""
        goal = pred.goal if target_flow is None else target_flow[: pred.points.shape[1]]
        dist = torch.linalg.vector_norm(pred.points - goal, dim=-1).mean(-1)  # (K, T)
        cost = dist[:, -1] + self.progress_weight * dist.mean(1)
        if self.effort_weight:
            moves = torch.diff(targets, dim=1, prepend=start_xy.reshape(-1, 1, 2).expand(len(targets), 1, 2))
            cost = cost + self.effort_weight * moves.pow(2).sum((1, 2))
        if self.uncertainty_weight and pred.spread is not None:
            cost = cost + self.uncertainty_weight * pred.spread
        if self.reach_weight:
            tip = fingertip_path(start_xy, targets, max_step)[:, -1]  # (K, 2)
            gap = torch.linalg.vector_norm(pred.points[:, -1, :, :2] - tip[:, None], dim=-1).amin(-1)
            cost = cost + self.reach_weight * gap
        return cost


class MPCPolicy:
    """Plan with ``planner`` through ``dynamics`` and execute ``execute_steps`` targets per replan.

    ``act(obs, info)`` returns absolute fingertip targets, like the scripted policies;
    ``replan_seconds`` lists the wall time of every replan and ``last_plan`` holds the latest
    plan and its predicted block points (for drawing).
    """

    def __init__(self, dynamics: Dynamics, planner: SamplingPlanner, cost: FlowCost | None = None,
                 execute_steps: int = 2):
        if not 1 <= execute_steps <= planner.cfg.horizon:
            raise ValueError(f"execute_steps must lie in [1, horizon={planner.cfg.horizon}], got {execute_steps}")
        self.dynamics, self.planner, self.cost = dynamics, planner, cost or FlowCost()
        self.execute_steps = execute_steps
        self.replan_seconds: list[float] = []
        self.last_plan: dict[str, np.ndarray] = {}
        self._queue: list[np.ndarray] = []

    def reset(self) -> None:
        """Start a new episode."""
        self.planner.reset()
        self._queue = []
        if hasattr(self.dynamics, "reset"):
            self.dynamics.reset()

    def act(self, obs: dict, info: dict) -> np.ndarray:
        """The next fingertip target, replanning when the executed part of the last plan is used up."""
        if hasattr(self.dynamics, "observe"):
            self.dynamics.observe(obs, info)
        if not self._queue:
            t0 = time.perf_counter()
            start = torch.as_tensor(obs["agent_pos"], dtype=torch.float32)
            max_step = self.planner.cfg.max_step

            def cost_fn(targets: torch.Tensor) -> torch.Tensor:
                return self.cost(self.dynamics.rollout(obs, info, targets), targets, start, max_step)

            plan, cost = self.planner.plan(start, cost_fn)
            pred = self.dynamics.rollout(obs, info, plan[None])
            self.last_plan = {"targets": plan.numpy(), "points": pred.points[0].numpy(),
                              "goal": pred.goal.numpy(), "cost": np.float32(cost)}
            self._queue = [p.numpy().astype(np.float32) for p in plan[: self.execute_steps]]
            self.planner.shift(self.execute_steps)
            self.replan_seconds.append(time.perf_counter() - t0)
        return self._queue.pop(0)
