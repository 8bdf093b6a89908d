"""Push4D-v0: push any object of the library (or the user's own) with any gripper (`env.Push4DEnv`).

- `env`: the task on the task base (its docstring is the specification); `scene`: the object as the
  rigid engines' free body and the pool of objects an env draws from; `factors`: the factors of variation
  (``randomize=``: checked, drawn per reset, reported in ``info["randomization"]``). The objects themselves are
  `envs.objects`; the grippers `robots.grippers`.
- `deformable`: the env of an MPM object (``material`` != "rigid") and the MPM object both push tasks share;
  `mpm_object`: its particles, material, solver, colliders and replay; `particle_footprint`: coverage of a
  deformed object. Imported only for a deformable object (they load Warp).
"""

from typing import Any

from ..checks import choice
from .env import MATERIALS, Push4DEnv

__all__ = ["MATERIALS", "Push4DEnv", "make_push4d"]


def make_push4d(**kwargs: Any) -> Push4DEnv:
    """The entry point of ``Push4D-v0``: `Push4DEnv` for a rigid object, the MPM env for the other materials."""
    if choice("material", kwargs.get("material", "rigid"), MATERIALS) == "rigid":
        return Push4DEnv(**kwargs)
    from .deformable import DeformablePush4DEnv

    return DeformablePush4DEnv(**kwargs)
