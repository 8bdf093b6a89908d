"""Model-predictive control over push primitives: the scripted pushes, chosen by a dynamics model.

A free-form target sequence lets a sampling planner find hand motions no dataset contains
(sweeps through the block, fast jabs), and a learned model is most wrong exactly there:
the planner then exploits the model's errors. Here the action space is the one the data
were collected in (`policies.scripted`): a push is a contact on the object's outline (any footprint:
`policies.footprint`), a
direction within ``max_angle_deg`` of the inward normal and a length; the hand travels
around the object until its front (the part of the gripper that reaches furthest along the push, at the
object's height) is ``standoff`` behind the contact and pushes its front ``length`` past it. Measured from
the front rather than the fingertip centre, a short push moves the block by millimetres: the Panda
hand's fingers reach 1-3 cm ahead of the centre, so a centre-referenced push could not move the block
less than that, and near the goal every push overshot.

Every replan (when the previous push is done) proposes ``samples`` uniformly random pushes (and,
optionally, ``prior_samples`` best-ranked pushes of the quasi-static model of
`HeuristicPushPolicy`; none by default: the model plans alone), predicts the block's points over
each push plus ``settle_steps`` with the hand at rest (for a learned model from where the hand's
front is about to reach the block: the approach through free space before that moves nothing),
and scores them with the flow cost (DESIGN §7) plus ``travel_weight`` times the travel distance;
then ``rounds`` CEM rounds each draw ``refine`` more pushes around the ``elites`` best so far
(contact, angle and log-length). The best push is executed whole (``commit_steps=0``), or its first
``commit_steps`` steps from where the hand's front reaches the block; then the planner replans.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

import numpy as np
import torch

from .dynamics import Dynamics
from .mpc import FlowCost
from .scripted import HeuristicPushPolicy, PushPolicy, push_direction

REFINE_INDEX_STD = 1.5  # outline points: std of the refined pushes' contact around an elite's
REFINE_ANGLE_STD_DEG = 8  # deg: std of their angle around an elite's
REFINE_LOG_LENGTH_STD = 0.3  # std of their log length (a factor exp(0.3) ~ 1.35) around an elite's
BLOCK_TOP_MARGIN = 0.005  # m: gripper points up to this far above the block's top can reach it
LEAD_MARGIN = 0.005  # m: added to the hand's reach ahead of the fingertips
ON_PATH_TOLERANCE = 0.005  # m: a hand this close to a push's line, short of its contact, pushes on in place


@dataclass
class PrimitiveConfig:
    """Sampling settings of `PrimitiveMPC` (lengths in metres)."""

    samples: int = 64
    prior_samples: int = 0
    refine: int = 32
    rounds: int = 2
    elites: int = 8
    max_angle_deg: float = 30.0
    min_length: float = 0.002
    max_length: float = 0.10
    settle_steps: int = 2
    travel_weight: float = 0.02
    commit_steps: int = 0

    def __post_init__(self) -> None:
        total = self.samples + self.prior_samples
        if min(self.samples, self.prior_samples, self.refine, self.rounds) < 0 or not 0 < self.elites <= total:
            raise ValueError(f"need samples, prior_samples, refine, rounds >= 0 and 0 < elites <= samples + "
                             f"prior_samples; got samples={self.samples}, prior_samples={self.prior_samples}, "
                             f"refine={self.refine}, rounds={self.rounds}, elites={self.elites}")
        if not 0 < self.min_length <= self.max_length:
            raise ValueError(f"need 0 < min_length <= max_length, got {self.min_length}, {self.max_length}")
        if not 0 <= self.max_angle_deg < 90 or min(self.settle_steps, self.commit_steps) < 0 or self.travel_weight < 0:
            raise ValueError("max_angle_deg must lie in [0, 90); settle_steps, commit_steps and travel_weight must be "
                             ">= 0")


class PrimitiveMPC(PushPolicy):
    """Push-primitive MPC (see the module docstring) with any `Dynamics` adapter.

    ``act(obs, info)`` returns absolute fingertip targets; ``replan_seconds`` lists the wall
    time of every replan and ``last_plan`` holds the chosen push and its predicted block points.
    """

    def __init__(self, dynamics: Dynamics, rng: np.random.Generator, cfg: PrimitiveConfig | None = None,
                 cost: FlowCost | None = None, **kw):
        super().__init__(rng, **kw)
        self.dynamics, self.cfg, self.cost = dynamics, cfg or PrimitiveConfig(), cost or FlowCost()
        self.prior = HeuristicPushPolicy(rng, **kw)
        self.replan_seconds: list[float] = []
        self.last_plan: dict[str, np.ndarray] = {}
        self._context: tuple[dict, dict] | None = None

    def reset(self, rng: np.random.Generator | None = None) -> None:
        """Start a new episode."""
        super().reset(rng)
        self.prior.reset(rng)
        if hasattr(self.dynamics, "reset"):
            self.dynamics.reset()

    def act(self, obs: dict, info: dict | None = None) -> np.ndarray:
        """The next fingertip target; a new push is planned when the previous one is done."""
        if info is None:
            raise ValueError("PrimitiveMPC.act needs the env's info dict (goal and block points)")
        if hasattr(self.dynamics, "observe"):
            self.dynamics.observe(obs, info)
        self._context = (obs, info)
        if not self._queue:
            self.prior.observe(info, obs)
        return super().act(obs, info)

    def choose_push(self, pose: np.ndarray, ee: np.ndarray) -> tuple[int, np.ndarray, float]:
        """The sampled push of least predicted cost."""
        t0 = time.perf_counter()
        c, M = self.cfg, len(self.contact_geometry(pose).outline)
        idx = self.rng.integers(M, size=c.samples)
        ang = self.rng.uniform(-1, 1, c.samples) * math.radians(c.max_angle_deg)
        log_len = self.rng.uniform(math.log(c.min_length), math.log(c.max_length), c.samples)
        if c.prior_samples:
            p_idx, p_ang, p_len, p_cost = self.prior.ranked_pushes(pose, ee, c.prior_samples)
            ok = np.isfinite(p_cost)
            idx, ang = np.concatenate([p_idx[ok], idx]), np.concatenate([p_ang[ok], ang])
            log_len = np.concatenate([np.log(p_len[ok]), log_len])
        if not len(idx):  # no random samples and no sticking push: the heuristic's fallback
            return self.prior.choose_push(pose, ee)
        cost, final, goal = self._score(pose, ee, idx, ang, log_len)
        for _ in range(c.rounds if c.refine else 0):
            best = np.argsort(cost)[: c.elites]
            pick = best[self.rng.integers(len(best), size=c.refine)]
            idx2 = (idx[pick] + np.rint(self.rng.normal(0, REFINE_INDEX_STD, c.refine)).astype(int)) % M
            lim = math.radians(c.max_angle_deg)
            ang2 = np.clip(ang[pick] + self.rng.normal(0, math.radians(REFINE_ANGLE_STD_DEG), c.refine), -lim, lim)
            len2 = np.clip(log_len[pick] + self.rng.normal(0, REFINE_LOG_LENGTH_STD, c.refine), math.log(c.min_length),
                           math.log(c.max_length))
            cost2, final2, goal2 = self._score(pose, ee, idx2, ang2, len2)
            goal = goal if goal is not None else goal2
            idx, ang, log_len = (np.concatenate(p) for p in ((idx, idx2), (ang, ang2), (log_len, len2)))
            cost, final = np.concatenate([cost, cost2]), final + final2
        if not np.isfinite(cost).any():  # no approachable push sampled: the heuristic's choice
            return self.prior.choose_push(pose, ee)
        k = int(np.argmin(cost))
        u = push_direction(pose, self.contact_geometry(pose).normals[idx[k : k + 1]], ang[k : k + 1])[0]
        pre, push = self.push_path(pose, int(idx[k]), u, math.exp(log_len[k]))
        self.last_plan = {"targets": np.asarray(push, np.float32), "points": final[k][None],
                          "goal": goal, "cost": np.float32(cost[k])}
        self.replan_seconds.append(time.perf_counter() - t0)
        return int(idx[k]), u, math.exp(log_len[k])

    def _score(self, pose: np.ndarray, ee: np.ndarray, idx: np.ndarray, ang: np.ndarray,
               log_len: np.ndarray) -> tuple[np.ndarray, list, np.ndarray | None]:
        """Costs (K,), predicted final block points (K lists of (N, 3); inf / None for pushes whose
        approach would touch the block or whose contact the hand cannot reach) and those points' goal
        positions (None if no push was approachable); pushes are batched by how many model chunks they
        need (all at once for models without a horizon)."""
        obs, info = self._context
        g = self.contact_geometry(pose)
        u = push_direction(pose, g.normals[idx], ang)
        cost, final, goal = np.full(len(idx), np.inf), [None] * len(idx), None
        clear = np.flatnonzero(self.clear_approach(pose, idx, u) & g.reachable(pose, ee)[idx])
        if len(clear):
            cost[clear], pts, goal = self._predict(pose, ee, idx[clear], u[clear], log_len[clear])
            for j, k in enumerate(clear):
                final[k] = pts[j]
        return cost, final, goal

    def push_path(self, pose: np.ndarray, i: int, u: np.ndarray, length: float) -> tuple[np.ndarray, list[np.ndarray]]:
        """The pre-push fingertip point (the hand's front ``standoff`` behind outline contact ``i``) and the
        targets that take the front ``length`` past the contact along ``u``; the front is measured on the
        gripper points of the last observation (none seen yet: the fingertip centre)."""
        obs = self._context[0] if self._context is not None else {}
        if self.contact_geometry(pose).hand is not None:  # the candidates already hold the hand's front
            return super().push_path(pose, i, u, length)
        front = max(float(self._hand_lead(obs, u[None])[0]) - LEAD_MARGIN, 0.0)
        return super().push_path(pose, i, u, length, front=front)

    def _hand_lead(self, obs: dict, u: np.ndarray) -> np.ndarray:
        """How far (K,) the hand reaches ahead of the fingertip centre along each direction ``u`` (K, 2), from
        the gripper points below the top of the block (BLOCK_TOP_MARGIN margin); 0 without gripper points."""
        grip = np.asarray(obs.get("gripper_points", np.zeros((0, 3))), np.float64)
        if "scene_points" in obs and len(grip):
            block = np.asarray(obs["scene_points"])[np.asarray(obs["scene_labels"]) == 1]
            top = block[:, 2].max() if len(block) else np.inf
            grip = grip[grip[:, 2] < top + BLOCK_TOP_MARGIN]
        if not len(grip):
            return np.zeros(len(u))
        ahead = (grip[:, :2] - np.asarray(obs["agent_pos"], np.float64)) @ u.T  # (Nr, K)
        return np.maximum(ahead.max(0), 0.0) + LEAD_MARGIN

    def plan(self, pose: np.ndarray, ee: np.ndarray) -> None:
        """Queue the travel to the chosen push and the push, cut after ``commit_steps`` steps from where the hand's
        front reaches the block (all of it with ``commit_steps=0``). With ``commit_steps`` > 0, a hand already on
        the push's path (within ``ON_PATH_TOLERANCE`` of its line, between the pre-push point and the contact)
        skips the travel and the targets behind it."""
        i, u, length = self.choose_push(pose, ee)
        pre, push = self.push_path(pose, i, u, length)
        travel = self.contact_geometry(pose).travel(pose, ee, pre, self.step)
        if self.cfg.commit_steps:
            along = float((ee - pre) @ u)
            if abs(float(np.cross(u, ee - pre))) < ON_PATH_TOLERANCE and 0.0 <= along <= self.standoff + \
                    ON_PATH_TOLERANCE:
                travel = []  # the hand is on the path, not past the contact (a cut push goes on): it pushes on
                push = [p for p in push if float((p - pre) @ u) > along + 1e-6]
            push = push[: self._contact_index(pre, push, u) + self.cfg.commit_steps]
        self._queue.extend(travel)
        self._queue.extend(push)

    def _contact_index(self, pre: np.ndarray, push: list[np.ndarray], u: np.ndarray) -> int:
        """Index of the first push target at which the hand's front has come within ``LEAD_MARGIN`` of the
        contact (the targets before it move the hand through free space)."""
        free = self.standoff - LEAD_MARGIN
        k = 0
        while k < len(push) - 1 and float((push[k] - pre) @ u) < free:
            k += 1
        return k

    def _scored_part(self, pose: np.ndarray, i: int, u: np.ndarray,
                     length: float) -> tuple[np.ndarray, list[np.ndarray]]:
        """Start and targets of the part of a push that can move the block: the approach targets
        before the hand's front comes within ``LEAD_MARGIN`` of the contact are dropped, the hand
        moving through free space there (fewer steps to predict)."""
        pre, push = self.push_path(pose, i, u, length)
        k = self._contact_index(pre, push, u)
        return (pre if k == 0 else push[k - 1]), push[k:]

    def _predict(self, pose: np.ndarray, ee: np.ndarray, idx: np.ndarray, u: np.ndarray,
                 log_len: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Costs (K,), predicted final block points (K, N, 3) of K approachable pushes and the goal
        positions of those points (N, 3)."""
        obs, info = self._context
        H = getattr(self.dynamics, "horizon", None)  # a model (the simulator replays the whole approach)
        paths = (self._scored_part if H else self.push_path)
        pres, pushes = zip(*(paths(pose, int(i), d, math.exp(L)) for i, d, L in zip(idx, u, log_len, strict=True)),
                           strict=True)
        steps = np.array([len(p) for p in pushes]) + self.cfg.settle_steps
        span = np.ceil(steps / H).astype(int) * H if H else np.full(len(steps), steps.max())
        cost, final = np.empty(len(idx)), [None] * len(idx)
        for T in np.unique(span):
            group = np.flatnonzero(span == T)
            targets = np.stack([np.concatenate([pushes[g], np.repeat(pushes[g][-1:], T - len(pushes[g]), 0)])
                                for g in group])
            start = torch.as_tensor(np.stack([pres[g] for g in group]), dtype=torch.float32)
            targets = torch.as_tensor(targets, dtype=torch.float32)
            pred = self.dynamics.rollout(obs, info, targets, start_xy=start)
            c = self.cost(pred, targets, start, float(getattr(self.dynamics, "max_step", self.step)))
            travel = np.linalg.norm(np.stack([pres[g] for g in group]) - ee, axis=1)
            cost[group] = c.numpy() + self.cfg.travel_weight * travel
            for j, g in enumerate(group):
                final[g] = pred.points[j, -1].numpy()
        return cost, np.stack(final), pred.goal.numpy()

