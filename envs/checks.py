"""Argument checks shared by the tasks: each raises ValueError naming what was wrong and what is allowed."""

from __future__ import annotations

from typing import Any

import numpy as np
from gymnasium import spaces


def positive_int(name: str, value: Any) -> int:
    """``value`` as an int, or ValueError unless it is a positive integer."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value <= 0:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
    return int(value)


def positive_float(name: str, value: Any) -> float:
    """``value`` as a float, or ValueError unless it is a positive finite number."""
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)) \
            or not np.isfinite(value) or value <= 0:
        raise ValueError(f"{name} must be a positive finite number, got {value!r}")
    return float(value)


def choice(name: str, value: Any, allowed: tuple) -> Any:
    """``value``, or ValueError unless it is one of ``allowed``."""
    if value not in allowed:
        raise ValueError(f"unknown {name} {value!r}; allowed: {allowed}")
    return value


def option_vector(options: dict, key: str, size: int) -> np.ndarray | None:
    """``options[key]`` as ``size`` finite floats, None when absent, ValueError otherwise."""
    if key not in options:
        return None
    v = np.asarray(options[key], dtype=float)
    if v.shape != (size,) or not np.all(np.isfinite(v)):
        raise ValueError(f"options[{key!r}] must be {size} finite numbers, got {options[key]!r}")
    return v


def checked_action(action: Any, space: spaces.Box, meaning: str) -> np.ndarray:
    """``action`` clipped to ``space``; ValueError if its shape differs (``meaning`` says what it is) or it is not finite."""
    a = np.asarray(action, dtype=np.float64)
    if a.shape != space.shape:
        raise ValueError(f"action must have shape {space.shape} ({meaning}), got shape {a.shape}")
    if not np.all(np.isfinite(a)):
        raise ValueError(f"action must be finite, got {a.tolist()}")
    return np.clip(a, space.low, space.high)
