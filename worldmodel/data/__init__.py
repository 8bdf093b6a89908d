"""Reading recorded rollouts (zarr + numpy only), training datasets, and bring-your-own data.

`lifting` (numpy) lifts 2D tracks / 4D reconstructions to 3D tracks; `byo` (open3d, optional
extra ``byo``) turns them into rollout-store episodes; `lerobot` (pyarrow) exports a store as a
LeRobotDataset v3.0 directory. They are imported on demand: ``from worldmodel.data.byo import build_episode``.
"""

from .dataset import FlowSample, PointFlowDataset, exact_displacements, track_displacements
from .rollouts import RolloutStore
from .schema import SCHEMA_VERSION

__all__ = ["SCHEMA_VERSION", "FlowSample", "PointFlowDataset", "RolloutStore", "exact_displacements",
           "track_displacements"]
