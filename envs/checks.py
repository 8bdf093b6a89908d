"""Argument checks shared by the tasks: each raises ValueError naming the argument, the value and what is allowed.

Numbers must be real numbers of the right kind: booleans, strings, complex numbers and None are
refused rather than coerced (``True`` is not a speed, ``"0.1"`` is not a coordinate).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
from gymnasium import spaces

MAX_IMAGE_SIDE = 2048  # pixels per image side (offscreen buffers beyond this fail on some GL drivers)
MAX_POINTS = 1_000_000  # per point count (scene, gripper, object points): beyond it memory, not the task, is the limit
_REAL = (int, float, np.integer, np.floating)


def _is_real(value: Any) -> bool:
    return isinstance(value, _REAL) and not isinstance(value, (bool, np.bool_))


def _real_leaves(value: Any) -> bool:
    """Whether every entry of a (nested) list or tuple is a real number (numpy turns ``[0.1, True]`` into floats)."""
    if isinstance(value, (list, tuple)):
        return all(_real_leaves(v) for v in value)
    if isinstance(value, np.generic):
        return value.dtype.kind in "iuf"
    return _is_real(value) or hasattr(value, "__array__")  # arrays and tensors: their dtype was checked


def positive_int(name: str, value: Any, maximum: int | None = None) -> int:
    """``value`` as an int, or ValueError unless it is an integer in [1, ``maximum``]."""
    if not isinstance(value, (int, np.integer)) or isinstance(value, (bool, np.bool_)) or value <= 0 \
            or (maximum is not None and value > maximum):
        upto = "" if maximum is None else f" no greater than {maximum}"
        raise ValueError(f"{name} must be a positive integer{upto}, got {value!r}")
    return int(value)


def nonnegative_int(name: str, value: Any) -> int:
    """``value`` as an int, or ValueError unless it is an integer >= 0."""
    if not isinstance(value, (int, np.integer)) or isinstance(value, (bool, np.bool_)) or value < 0:
        raise ValueError(f"{name} must be a non-negative integer, got {value!r}")
    return int(value)


def positive_float(name: str, value: Any, maximum: float | None = None, unit: str = "") -> float:
    """``value`` as a float, or ValueError unless it is a finite number in (0, ``maximum``] (``unit``: its unit)."""
    if not _is_real(value) or not np.isfinite(value) or value <= 0 or (maximum is not None and value > maximum):
        upto = "" if maximum is None else f" no greater than {maximum:g}{unit}"
        raise ValueError(f"{name} must be a positive finite number{upto}, got {value!r}")
    return float(value)


def nonnegative_float(name: str, value: Any) -> float:
    """``value`` as a float, or ValueError unless it is a finite number >= 0."""
    if not _is_real(value) or not np.isfinite(value) or value < 0:
        raise ValueError(f"{name} must be a finite number >= 0, got {value!r}")
    return float(value)


def fraction(name: str, value: Any) -> float:
    """``value`` as a float, or ValueError unless it is a number in [0, 1]."""
    if not _is_real(value) or not 0.0 <= value <= 1.0:
        raise ValueError(f"{name} must be a number in [0, 1], got {value!r}")
    return float(value)


def choice(name: str, value: Any, allowed: tuple) -> Any:
    """``value``, or ValueError unless it is one of ``allowed`` (compared with its type: ``1`` is not ``True``)."""
    if not any(isinstance(value, type(a)) and value == a for a in allowed):
        raise ValueError(f"unknown {name} {value!r}; allowed: {allowed}")
    return value


def image_size_pair(value: Any, maximum: int = MAX_IMAGE_SIDE, name: str = "image_size") -> tuple[int, int]:
    """(width, height) of ``value``: one positive integer for square images or a (width, height) pair."""
    try:
        pair = (value, value) if isinstance(value, (str, bytes)) or np.ndim(value) == 0 else tuple(value)
    except (ValueError, TypeError):  # ragged nesting
        pair = (value,)
    try:
        w, h = (positive_int(name, v, maximum) for v in pair)
    except ValueError:
        raise ValueError(f"{name} must be a positive integer no greater than {maximum} or a (width, height) "
                         f"pair of them, got {value!r}") from None
    return w, h


def real_array(name: str, value: Any, shape: tuple[int, ...], meaning: str) -> np.ndarray:
    """``value`` as a float64 array of ``shape`` with finite entries, or ValueError naming ``name``.

    Only integer and floating-point numbers are accepted: booleans, strings, complex numbers,
    None and ragged sequences are refused.
    """
    try:
        raw = np.asarray(value)
    except (ValueError, TypeError):  # ragged nesting
        raw = np.asarray(None)
    if raw.dtype.kind not in "iuf" or not _real_leaves(value):
        raise ValueError(f"{name} must be real numbers of shape {shape} ({meaning}), got {value!r}")
    if raw.shape != shape:
        raise ValueError(f"{name} must have shape {shape} ({meaning}), got shape {raw.shape}: {value!r}")
    a = raw.astype(np.float64)
    if not np.all(np.isfinite(a)):
        raise ValueError(f"{name} must be finite ({meaning}), got {a.tolist()}")
    return a


def reset_options(options: Any, allowed: tuple[str, ...]) -> dict:
    """``options`` of ``reset`` as a dict ({} for None), or ValueError unless it is a mapping with ``allowed`` keys."""
    if options is None:
        return {}
    if not isinstance(options, Mapping):
        raise ValueError(f"reset options must be a dict with keys from {list(allowed)}, got {options!r}")
    unknown = [k for k in options if k not in allowed]
    if unknown:
        raise ValueError(f"unknown reset options {unknown!r}; allowed: {list(allowed)}")
    return dict(options)


def option_vector(options: dict, key: str, size: int) -> np.ndarray | None:
    """``options[key]`` as ``size`` finite floats, None when absent, ValueError otherwise."""
    if key not in options:
        return None
    return real_array(f"options[{key!r}]", options[key], (size,), f"{size} finite numbers")


def checked_action(action: Any, space: spaces.Box, meaning: str) -> np.ndarray:
    """``action`` clipped to ``space``; ValueError unless it is finite real numbers of the space's shape."""
    return np.clip(real_array("action", action, space.shape, meaning), space.low, space.high)
