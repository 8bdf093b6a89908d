"""Gymnasium tasks of worldmodel4d. ``import envs`` registers them:

- ``PushT4D-v0``: Push-T in 3D with a URDF robot, RGB-D, fused point clouds and exact
  point flow (`envs.pusht.PushT4DEnv`; its docstring is the task specification).
- ``Poke4D-v0``: poke a flexible object (rod, stem with a head, plate) clamped to the table
  with the URDF gripper; modal physics, the same observation contract and exact surface
  tracks; tasks ``reach`` and ``settle`` (`envs.poke.Poke4DEnv`, imported on demand).
"""

from typing import Any

from gymnasium.envs.registration import register, registry

from .checks import choice
from .pusht import BLOCK_MATERIALS, PushT4DEnv


def make_pusht4d(**kwargs: Any) -> PushT4DEnv:
    """The entry point of ``PushT4D-v0``: `PushT4DEnv` for the rigid block, the MPM env for the others."""
    if choice("block_material", kwargs.get("block_material", "rigid"), BLOCK_MATERIALS) == "rigid":
        return PushT4DEnv(**kwargs)
    from .deformable_env import DeformablePushT4DEnv

    return DeformablePushT4DEnv(**kwargs)


ENV_IDS = ("PushT4D-v0", "Poke4D-v0")

if "PushT4D-v0" not in registry:
    register(id="PushT4D-v0", entry_point="envs:make_pusht4d", max_episode_steps=300)

if "Poke4D-v0" not in registry:
    register(id="Poke4D-v0", entry_point="envs.poke:Poke4DEnv", max_episode_steps=100)

__all__ = ["ENV_IDS", "PushT4DEnv", "make_pusht4d"]
