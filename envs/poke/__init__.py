"""Poke4D-v0: poke a flexible object clamped to the table (modal physics).

- `env`: the task on the task base (`Poke4DEnv`; its docstring is the specification).
- `object`: the task's shapes, their materials and cached modal objects.
- `scene`: the table, the kinematic robot and the cameras, rendered by splatting.
"""

from .env import Poke4DEnv

__all__ = ["Poke4DEnv"]
