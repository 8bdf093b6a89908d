"""Checkpoint files of a training directory, every one written atomically (temp file, then rename).

``model.safetensors`` (weights and normalisation buffers; metadata ``step``),
``ema.safetensors`` (exponential moving average of the weights, when enabled),
``trainer_state.safetensors`` (optimizer state and sampler RNG state as tensors; step, parameter
groups and the optimizer's non-tensor state as JSON metadata), ``config.json`` (model and trainer
config). Nothing is pickled: a run directory is read back without executing any of its contents
(an older run's pickled ``trainer_state.pt`` is refused, not loaded).
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from safetensors import safe_open
from safetensors.torch import load_file, save_file

TRAINER_STATE = "trainer_state.safetensors"
LEGACY_TRAINER_STATE = "trainer_state.pt"  # pickled by earlier versions; never loaded


def atomic_write(path: Path, write: Callable[[Path], Any]) -> None:
    """Call ``write(tmp)`` and rename ``tmp`` onto ``path``: readers never see a partial file."""
    tmp = path.with_name(path.name + ".tmp")
    write(tmp)
    os.replace(tmp, path)


def save_weights(path: str | os.PathLike, model: torch.nn.Module, step: int) -> None:
    """Write ``model``'s state dict to a safetensors file with the step in its metadata."""
    weights = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    atomic_write(Path(path), lambda p: save_file(weights, str(p), metadata={"step": str(step)}))


def save_checkpoint(out_dir: str | os.PathLike, model: torch.nn.Module, optimizer: torch.optim.Optimizer,
                    step: int, config: dict[str, Any], rng: torch.Generator,
                    ema: torch.nn.Module | None = None) -> None:
    """Write the checkpoint files of ``out_dir`` (see the module docstring)."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    save_weights(out / "model.safetensors", model, step)
    if ema is not None:
        save_weights(out / "ema.safetensors", ema, step)
    save_trainer_state(out / TRAINER_STATE, optimizer, step, rng)
    atomic_write(out / "config.json", lambda p: p.write_text(json.dumps(config, indent=2)))


def load_weights(model: torch.nn.Module, path: str | os.PathLike) -> int:
    """Load a safetensors file into ``model`` (every key and shape must match); returns the saved step."""
    path = Path(path)
    try:
        weights = load_file(str(path))
        with safe_open(str(path), framework="pt") as f:
            step = int((f.metadata() or {}).get("step", 0))
    except Exception as err:
        raise ValueError(f"{path} is not a readable safetensors checkpoint: {err}") from err
    own = model.state_dict()
    missing, extra = sorted(set(own) - set(weights)), sorted(set(weights) - set(own))
    bad = [k for k in own if k in weights and own[k].shape != weights[k].shape]
    if missing or extra or bad:
        raise ValueError(f"{path} does not fit {type(model).__name__}: missing {missing}, unexpected {extra}, "
                         f"wrong shapes {bad}")
    model.load_state_dict(weights)
    return step


def save_trainer_state(path: str | os.PathLike, optimizer: torch.optim.Optimizer, step: int,
                       rng: torch.Generator) -> None:
    """Write the optimizer's state, ``step`` and ``rng``'s state to one safetensors file (no pickle)."""
    sd = optimizer.state_dict()
    tensors = {"rng": rng.get_state().contiguous()}
    plain: dict[str, dict[str, Any]] = {}
    for index, entry in sd["state"].items():
        for key, value in entry.items():
            if isinstance(value, torch.Tensor):
                tensors[f"state.{index}.{key}"] = value.detach().cpu().contiguous()
            else:
                plain.setdefault(str(index), {})[key] = value
    metadata = {"step": str(step), "param_groups": json.dumps(sd["param_groups"]), "plain_state": json.dumps(plain)}
    atomic_write(Path(path), lambda p: save_file(tensors, str(p), metadata=metadata))


def load_trainer_state(path: str | os.PathLike, optimizer: torch.optim.Optimizer, rng: torch.Generator) -> int:
    """Restore ``optimizer`` and ``rng`` from a file of `save_trainer_state`; returns the saved step."""
    path = Path(path)
    try:
        tensors = load_file(str(path))
        with safe_open(str(path), framework="pt") as f:
            meta = f.metadata() or {}
        step = int(meta["step"])
        groups, plain = json.loads(meta["param_groups"]), json.loads(meta["plain_state"])
    except Exception as err:
        raise ValueError(f"{path} is not a readable trainer state: {err}") from err
    own = optimizer.state_dict()["param_groups"]
    if len(groups) != len(own) or any(len(g["params"]) != len(o["params"]) for g, o in zip(groups, own, strict=True)):
        raise ValueError(f"{path} does not fit this optimizer: parameter groups differ")
    for g, o in zip(groups, own, strict=True):  # JSON turned tuples (betas) into lists
        for key, value in o.items():
            if isinstance(value, tuple) and isinstance(g.get(key), list):
                g[key] = tuple(g[key])
    state: dict[int, dict[str, Any]] = {}
    for name, value in tensors.items():
        if name.startswith("state."):
            index, key = name[len("state."):].split(".", 1)
            state.setdefault(int(index), {})[key] = value
    for index, entry in plain.items():
        state.setdefault(int(index), {}).update(entry)
    optimizer.load_state_dict({"state": state, "param_groups": groups})
    rng.set_state(tensors["rng"])
    return step
