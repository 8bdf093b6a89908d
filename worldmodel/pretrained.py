"""Trained point-flow models: load a ``wm4d train`` directory or a checkpoint shipped with the package.

Shipped checkpoints live in ``worldmodel/checkpoints/<name>/``: ``model.safetensors`` (the
weights, EMA-averaged when training kept an average), ``config.json`` (the resolved model,
trainer and data config), ``stats.json`` (normalisation statistics), ``metrics.json`` (held-out
evaluation) and ``recipe.yaml`` (the data collection, training and evaluation commands;
``wm4d reproduce name=<name>`` reruns them)::

    from worldmodel import pretrained
    model = pretrained.load_pretrained("pusht4d-pointflow")   # eval mode, on the CPU
    displacements, log_var = model(batch)                      # DESIGN §6 batch

A checkpoint whose ``config.json`` holds ``"inference": {"rotations": K}`` (``wm4d train rotations=K``) is
returned averaged over K turns about z (`worldmodel.models.RotationAveraged`); ``rotations=`` overrides it.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # torch is imported when a model is loaded, not with the package
    import torch

CHECKPOINTS = Path(__file__).parent / "checkpoints"
DEFAULT = "pusht4d-pointflow"  # what ``checkpoint=pretrained`` names


def available() -> list[str]:
    """Names of the checkpoints shipped with the package."""
    if not CHECKPOINTS.is_dir():
        return []
    return sorted(p.name for p in CHECKPOINTS.iterdir() if (p / "model.safetensors").exists())


def checkpoint_dir(name_or_path: str | os.PathLike) -> Path:
    """The directory of a shipped checkpoint name ("pretrained" is the default one), or ``name_or_path``
    itself when it is a directory."""
    if str(name_or_path) == "pretrained":
        name_or_path = DEFAULT
    path = Path(name_or_path)
    if path.is_dir():
        return path
    if (CHECKPOINTS / str(name_or_path)).is_dir():
        return CHECKPOINTS / str(name_or_path)
    raise ValueError(f"{name_or_path!r} is neither a checkpoint directory nor a shipped checkpoint "
                     f"(shipped: {', '.join(available()) or 'none'})")


def load_model(checkpoint: str | os.PathLike, device: str | torch.device = "cpu",
               rotations: int | None = None) -> tuple[torch.nn.Module, dict]:
    """The model of a checkpoint directory or shipped name (EMA weights when present) and its config.

    ``rotations``: test-time averaging over that many turns about z (1: the bare model, for fine-tuning or
    ablations); None: the checkpoint's own ``inference.rotations`` (1 when it names none).

    The directory is data: ``config.json``'s ``model`` may name only the package's model classes
    (`worldmodel.safe_config`, registry ``model``) and the weights are read from safetensors only;
    anything else raises ``ValueError`` before any of it runs."""
    from worldmodel.safe_config import instantiate_checked
    from worldmodel.training import load_weights

    ckpt = checkpoint_dir(checkpoint)
    if not (ckpt / "config.json").exists() or not (ckpt / "model.safetensors").exists():
        raise ValueError(f"{ckpt} is not a checkpoint directory (needs config.json and model.safetensors)")
    try:
        config = json.loads((ckpt / "config.json").read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise ValueError(f"{ckpt / 'config.json'} is not valid JSON: {err}") from err
    if not isinstance(config, dict) or not isinstance(config.get("model"), dict) or "_target_" not in config["model"]:
        raise ValueError(f"{ckpt / 'config.json'} names no model class (needs model._target_)")
    model = instantiate_checked(config["model"], "model", where=f"{ckpt / 'config.json'}: model")
    weights = ckpt / "ema.safetensors" if (ckpt / "ema.safetensors").exists() else ckpt / "model.safetensors"
    load_weights(model, weights)
    count = checkpoint_rotations(config, ckpt) if rotations is None else rotations
    if count != 1:
        from worldmodel.models import RotationAveraged

        model = RotationAveraged(model, count)
    return model.to(device).eval(), config


def checkpoint_rotations(config: dict, where: object = "config.json") -> int:
    """The test-time rotation count a checkpoint config asks for (``inference.rotations``; 1 when absent)."""
    from worldmodel.models.rotation_averaging import check_rotations

    return check_rotations((config.get("inference") or {}).get("rotations", 1), f"{where}: inference.rotations")


def load_pretrained(name: str = DEFAULT, device: str | torch.device = "cpu") -> torch.nn.Module:
    """A shipped point-flow model, ready for inference (eval mode)."""
    if name not in available():
        raise ValueError(f"no shipped checkpoint named {name!r}; shipped: {', '.join(available()) or 'none'}")
    return load_model(CHECKPOINTS / name, device)[0]
