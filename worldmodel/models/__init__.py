"""Point-flow predictors behind one interface: ``model(batch) -> (displacements (B, H, Ns, 3), log_var (B, H, Ns))``."""

from .point_transformer import PointFlowTransformer
from .pointnet_flow import PointNetFlow
from .rotation_averaging import RotationAveraged

__all__ = ["PointFlowTransformer", "PointNetFlow", "RotationAveraged"]
