"""Policies for the pushing tasks (PushT4D-v0, Push4D-v0 with any footprint): scripted pushers (exploration data,
a goal-directed heuristic); their geometry in `policies.footprint` and `policies.hand`."""

from .rewards import FlowReward, ModelReward
from .scripted import HeuristicPushPolicy, PushPolicy, RandomPushPolicy

POLICIES = {"random_push": RandomPushPolicy, "heuristic": HeuristicPushPolicy}


def make_policy(name: str, rng, **kwargs) -> PushPolicy:
    """The scripted policy ``name`` ("random_push" or "heuristic") drawing from ``rng``."""
    if name not in POLICIES:
        raise ValueError(f"unknown policy {name!r}; allowed: {sorted(POLICIES)}")
    return POLICIES[name](rng, **kwargs)


__all__ = ["FlowReward", "HeuristicPushPolicy", "ModelReward", "POLICIES", "PushPolicy", "RandomPushPolicy",
           "make_policy"]
