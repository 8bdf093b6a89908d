"""Training and evaluation loops for point-flow models."""

from .checkpoint import load_weights, save_checkpoint
from .evaluation import flow_metrics
from .trainer import TrainConfig, evaluate, learning_rate, train

__all__ = ["TrainConfig", "evaluate", "flow_metrics", "learning_rate", "load_weights", "save_checkpoint", "train"]
