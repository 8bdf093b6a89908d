"""Reading recorded rollouts (zarr + numpy only) and, later, training datasets."""

from .dataset import FlowSample, PointFlowDataset, exact_displacements
from .rollouts import SCHEMA_VERSION, RolloutStore

__all__ = ["SCHEMA_VERSION", "FlowSample", "PointFlowDataset", "RolloutStore", "exact_displacements"]
