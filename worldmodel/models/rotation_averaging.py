"""Test-time rotation averaging of a point-flow model about the vertical axis through the origin.

Physics is unchanged when the whole scene (object, table, gripper and its path) turns about the
gravity axis, and ``wm4d train``'s augmentation turns every sample about z through the origin by a
uniform angle, so a trained model should predict the same flow, turned, for a turned scene. It does
so only approximately; `RotationAveraged` turns the inputs by K angles 2 pi k / K, runs the model on
each, turns the K predictions back and averages them. The average is exactly equivariant to those K
turns and its error is lower (fewer orientation-dependent mistakes; K = 8 is ~2.5% lower on Poke4D's
held-out pokes). The log-variance is that of the mixture: the mean variance plus the predictions'
spread, in the loss's units (``LOSS_SCALE``), so MPC's uncertainty penalty sees disagreement too.

A checkpoint asks for it in ``config.json`` (``"inference": {"rotations": K}``, written by
``wm4d train rotations=K``); `worldmodel.pretrained.load_model` then returns the wrapped model. It keeps
the model interface: ``forward(batch)`` and MPC's ``encode_scene`` / ``encode_push`` / ``decode``.
Only for models trained with rotation augmentation and scenes whose rotation about z through the
origin is a symmetry (no fixed walls in the point cloud).
"""

from __future__ import annotations

import math

import torch
from torch import nn

from ..formulation import LOSS_SCALE, PAST_KEYS, START_KEY

VECTOR_KEYS = ("scene_points", "scene_normals", "gripper_points", "gripper_velocity", "gripper_acceleration",
               *PAST_KEYS, START_KEY)  # batch entries that are 3-vectors in world axes (turned with the scene)


def check_rotations(count: object, where: str = "rotations") -> int:
    """``count`` as a rotation count (a positive integer; 1: no averaging), else ValueError naming ``where``."""
    if not isinstance(count, int) or isinstance(count, bool) or count < 1:
        raise ValueError(f"{where} must be a positive integer (1: no averaging), got {count!r}")
    return count


def z_rotations(count: int, dtype: torch.dtype = torch.float32, device: torch.device | str = "cpu") -> torch.Tensor:
    """The ``count`` rotations (count, 3, 3) about z by 2 pi k / count, k = 0 .. count - 1."""
    angles = torch.arange(count, dtype=torch.float64) * (2.0 * math.pi / count)
    c, s = torch.cos(angles), torch.sin(angles)
    mats = torch.zeros(count, 3, 3, dtype=torch.float64)
    mats[:, 0, 0], mats[:, 0, 1], mats[:, 1, 0], mats[:, 1, 1], mats[:, 2, 2] = c, -s, s, c, 1.0
    return mats.to(dtype=dtype, device=device)


def turn(batch: dict[str, torch.Tensor], rotation: torch.Tensor) -> dict[str, torch.Tensor]:
    """``batch`` with every world-axis vector entry (`VECTOR_KEYS`) turned by ``rotation`` (3, 3)."""
    return {k: (v @ rotation.to(v).T if k in VECTOR_KEYS else v) for k, v in batch.items()}


class RotationAveraged(nn.Module):
    """``model`` averaged over ``rotations`` turns of its input about z (see the module docstring).

    Use: ``RotationAveraged(model, 8)(batch) -> (displacements (B, H, Ns, 3), log_var (B, H, Ns))``, or the
    MPC split ``decode(encode_scene(scene), encode_push(pushes))`` like the wrapped model.
    """

    def __init__(self, model: nn.Module, rotations: int) -> None:
        super().__init__()
        check_rotations(rotations)
        for name in ("encode_scene", "encode_push", "decode", "horizon"):
            if not hasattr(model, name):
                raise ValueError(f"{type(model).__name__} lacks {name}: rotation averaging needs the MPC interface")
        self.model, self.rotations = model, rotations
        self.register_buffer("turns", z_rotations(rotations), persistent=False)

    @property
    def horizon(self) -> int:
        """Steps predicted (the wrapped model's)."""
        return self.model.horizon

    @property
    def inputs(self) -> tuple[str, ...]:
        """Per-point inputs the wrapped model needs besides positions, colours and normals."""
        return getattr(self.model, "inputs", ())

    def encode_scene(self, batch: dict[str, torch.Tensor]) -> list[tuple[torch.Tensor, ...]]:
        """The wrapped model's scene code of each turned copy of ``batch``."""
        return [self.model.encode_scene(turn(batch, r)) for r in self.turns]

    def encode_push(self, batch: dict[str, torch.Tensor]) -> list[tuple[torch.Tensor, ...]]:
        """The wrapped model's push code of each turned copy of ``batch``."""
        return [self.model.encode_push(turn(batch, r)) for r in self.turns]

    def decode(self, scene_code: list[tuple[torch.Tensor, ...]],
               push: list[tuple[torch.Tensor, ...]]) -> tuple[torch.Tensor, torch.Tensor]:
        """Average of the turned-back predictions of each copy, and the mixture's log-variance."""
        outs = [self.model.decode(scene, code) for scene, code in zip(scene_code, push, strict=True)]
        return self._average(torch.stack([o[0] for o in outs]), torch.stack([o[1] for o in outs]))

    def forward(self, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        """Displacements (B, H, Ns, 3) in metres and log-variances (B, H, Ns), averaged over the turns
        (the turned copies go through the wrapped model as one batch)."""
        copies = [turn(batch, r) for r in self.turns]
        flow, log_var = self.model({k: torch.cat([c[k] for c in copies]) for k in batch})
        K = self.rotations
        return self._average(flow.reshape(K, -1, *flow.shape[1:]), log_var.reshape(K, -1, *log_var.shape[1:]))

    def _average(self, flows: torch.Tensor, log_vars: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Mean of the K turned-back flows (K, B, H, Ns, 3) and the log-variance of their mixture."""
        flows = torch.einsum("kbhnj,kji->kbhni", flows, self.turns.to(flows))
        mean = flows.mean(dim=0)
        spread = 0.5 * ((flows - mean) ** 2).sum(dim=-1).mean(dim=0) / LOSS_SCALE**2
        return mean, (log_vars.exp().mean(dim=0) + spread).log()
