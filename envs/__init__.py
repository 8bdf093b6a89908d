"""Gymnasium tasks of worldmodel4d. ``import envs`` registers them:

- ``PushT4D-v0``: Push-T in 3D with a URDF robot, RGB-D, fused point clouds and exact point flow
  (`envs.pusht.PushT4DEnv`; its docstring is the task specification; ``block_material`` picks a
  rigid or an MPM block through the entry point `envs.pusht.make_pusht4d`).
- ``Push4D-v0``: push any object (a library shape or mesh, the user's mesh, URDF or polygon) with any
  gripper (`envs.push.Push4DEnv`, imported on demand; objects in `envs.objects`, grippers in
  `robots.grippers`); ``material`` picks a rigid or an MPM object through the entry point `envs.push.make_push4d`.
- ``Poke4D-v0``: poke a flexible object (rod, stem with a head, plate) clamped to the table
  with the URDF gripper; modal physics, the same observation contract and exact surface
  tracks; tasks ``reach`` and ``settle`` (`envs.poke.Poke4DEnv`, imported on demand).

Every task is built on the task base `envs.base.TaskEnv`, which owns the sensors, observation
and render modes, validation and the shared ``info`` keys.
"""

from gymnasium.envs.registration import register, registry

from .pusht import PushT4DEnv, make_pusht4d

ENV_IDS = ("PushT4D-v0", "Push4D-v0", "Poke4D-v0")

if "PushT4D-v0" not in registry:
    register(id="PushT4D-v0", entry_point="envs.pusht:make_pusht4d", max_episode_steps=300)

if "Push4D-v0" not in registry:
    register(id="Push4D-v0", entry_point="envs.push:make_push4d", max_episode_steps=300)

if "Poke4D-v0" not in registry:
    register(id="Poke4D-v0", entry_point="envs.poke:Poke4DEnv", max_episode_steps=100)

__all__ = ["ENV_IDS", "PushT4DEnv", "make_pusht4d"]
