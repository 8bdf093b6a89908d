"""Checkpoint files of a training directory, every one written atomically (temp file, then rename).

``model.safetensors`` (weights and normalisation buffers; metadata ``step``),
``ema.safetensors`` (exponential moving average of the weights, when enabled),
``trainer_state.pt`` (optimizer, step, RNG state), ``config.json`` (model and trainer config).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Callable

import torch
from safetensors import safe_open
from safetensors.torch import load_file, save_file


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
    state = {"optimizer": optimizer.state_dict(), "step": step, "rng": rng.get_state()}
    atomic_write(out / "trainer_state.pt", lambda p: torch.save(state, p))
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
