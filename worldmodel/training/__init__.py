"""Training and evaluation loops for point-flow models."""

from .trainer import TrainConfig, evaluate, learning_rate, load_weights, save_checkpoint, train

__all__ = ["TrainConfig", "evaluate", "learning_rate", "load_weights", "save_checkpoint", "train"]
