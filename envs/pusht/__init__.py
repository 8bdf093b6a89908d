"""PushT4D-v0: Push-T in 3D, with a rigid block (`env.PushT4DEnv`) or an MPM block (`deformable`).

- `env`: the task on the task base (its docstring is the specification); `geometry`: the T, its
  poses, goal, coverage and surface points; `scene`: the rigid engines' scene.
- `deformable`: the MPM block's env (Push4D's MPM object, `envs.push.deformable`, with the T); `mpm_block`: its
  particles and its solver from PushT4D kwargs (replay contract). Imported only for a deformable block
  (they load Warp).
"""

from typing import Any

from ..checks import choice
from .env import BLOCK_MATERIALS, PushT4DEnv

__all__ = ["BLOCK_MATERIALS", "PushT4DEnv", "make_pusht4d"]


def make_pusht4d(**kwargs: Any) -> PushT4DEnv:
    """The entry point of ``PushT4D-v0``: `PushT4DEnv` for the rigid block, the MPM env for the others."""
    if choice("block_material", kwargs.get("block_material", "rigid"), BLOCK_MATERIALS) == "rigid":
        return PushT4DEnv(**kwargs)
    from .deformable import DeformablePushT4DEnv

    return DeformablePushT4DEnv(**kwargs)
