"""Reading recorded rollouts (zarr + numpy only) and, later, training datasets."""

from .rollouts import SCHEMA_VERSION, RolloutStore

__all__ = ["SCHEMA_VERSION", "RolloutStore"]
