"""worldmodel4d point-flow world models: data, predictors, training and shipped checkpoints."""

from .pretrained import load_pretrained

__all__ = ["load_pretrained"]
