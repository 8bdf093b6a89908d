"""Push4D-v0: push any object of the library (or the user's own) with any gripper (`env.Push4DEnv`).

- `env`: the task on the task base (its docstring is the specification); `scene`: the object as the
  rigid engines' free body and the pool of objects an env draws from; `factors`: the factors of variation
  (``randomize=``: checked, drawn per reset, reported in ``info["randomization"]``). The objects themselves are
  `envs.objects`; the grippers `robots.grippers`.
"""

from .env import Push4DEnv

__all__ = ["Push4DEnv"]
