"""PointNetFlow: Dream2Flow's Push-T dynamics model extended to H-step point flow, with a
contact-aware push code.

Every scene point is a query (position, colour, normal) that sees two broadcast codes: a
global scene code (max-pooled point features) and a push code. The push code joins two
parts: the gripper points' trajectory alone (a shared point MLP per time step, max-pooled,
the steps concatenated and mixed; Dream2Flow's push encoding) and an *interaction* code:
``anchors`` scene points (an even, index-strided subset) each see their own features and
their offsets to the gripper's centroid at every step t..t+H (in units of
``contact_scale``, clamped), a shared MLP and a max-pool over anchors. The interaction
code tells the decoder where the hand passes relative to the block, which the two separate
global codes convey only poorly. A shared per-point MLP maps [query, scene code, push code]
to H displacements and H log-variances. Positions are centred and scaled by normalisation
statistics. With ``use_velocity`` every query (and anchor) also carries the point's
``previous_displacement`` over the last control period (see `worldmodel.formulation`), and
with ``history=2`` its ``earlier_displacement`` over the period before: two past motions fix
the phase and amplitude of a vibration, which one motion and an unknown rest shape do not;
``history`` up to ``MAX_HISTORY`` adds older motions (``displacement_lag3`` ..), which tell a
vibration's frequency and several modes apart. With ``since_start`` every query also carries
its ``start_displacement`` x_t - x_0 since the episode's first row: for an object clamped in place
that starts at rest, its deflection, to the millimetre (the position alone hides it in the shape).
With ``point_offsets`` every query also sees its own offsets to the gripper's centroid at
every step t..t+H (a linear term added to the decoder's first layer): where the hand passes
relative to *this* point, which decides how a slender object bends under a poke.

The decoder's first layer is linear in the concatenation, so it is split into a scene term
(computed once per scene by `encode_scene`) plus a push term (one vector per candidate):
MPC decodes hundreds of candidate pushes of one scene at the price of the later layers
and the small anchor MLP.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..formulation import HORIZON, MAX_HISTORY, PAST_KEYS, START_KEY, check_batch

INFERENCE_CHUNK = 16  # pushes per pass without autograd: the per-point buffers stay in cache (~1.5x faster)


class MLP(nn.Sequential):
    """Linear + GELU layers (no activation after the last). Without autograd the activations
    run in place on each Linear's fresh output: the same numbers with one large buffer less
    per layer (~20% faster when 256 candidate pushes are decoded at once)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Apply the layers in order."""
        inplace = not torch.is_grad_enabled()
        for layer in self:
            x = gelu_inplace(x) if inplace and isinstance(layer, nn.GELU) else layer(x)
        return x


def in_chunks(fn, n: int, part) -> tuple[torch.Tensor, ...]:
    """``fn(part(s))`` for slices s of ``INFERENCE_CHUNK`` of ``n`` items, outputs concatenated."""
    outs = [fn(part(slice(i, i + INFERENCE_CHUNK))) for i in range(0, n, INFERENCE_CHUNK)]
    return tuple(torch.cat(o) for o in zip(*outs, strict=True))


def gelu_inplace(x: torch.Tensor) -> torch.Tensor:
    """GELU written over ``x`` (only for tensors nothing else refers to, outside autograd)."""
    return torch.ops.aten.gelu_(x)


def mlp(sizes: list[int]) -> MLP:
    """Linear + GELU layers (no activation after the last)."""
    layers: list[nn.Module] = []
    for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:], strict=True)):
        layers.append(nn.Linear(a, b))
        if i < len(sizes) - 2:
            layers.append(nn.GELU())
    return MLP(*layers)


class PointNetFlow(nn.Module):
    """Per-point displacement predictor (see the module docstring); ``horizon`` steps, ``width`` channels."""

    def __init__(self, horizon: int = HORIZON, width: int = 128, anchors: int = 128, position_scale: float = 0.2,
                 velocity_scale: float = 0.3, displacement_scale: float = 0.02, contact_scale: float = 0.05,
                 use_velocity: bool = False, dt: float = 0.1, point_offsets: bool = False, history: int = 1,
                 since_start: bool = False):
        super().__init__()
        if horizon <= 0 or width <= 0 or anchors <= 0:
            raise ValueError(f"horizon, width and anchors must be positive, got {horizon}, {width}, {anchors}")
        self.horizon, self.anchors, self.contact_scale = horizon, anchors, contact_scale
        if not isinstance(history, int) or not 1 <= history <= MAX_HISTORY:
            raise ValueError(f"history must be 1 .. {MAX_HISTORY} past displacements, got {history!r}")
        self.use_velocity, self.dt, self.since_start = bool(use_velocity), float(dt), bool(since_start)
        self.inputs = PAST_KEYS[:history] if use_velocity else ()
        if self.since_start:
            self.inputs += (START_KEY,)
        q = 9 + 3 * len(self.inputs)
        self.register_buffer("position_mean", torch.zeros(3))
        self.register_buffer("position_scale", torch.tensor(float(position_scale)))
        self.register_buffer("velocity_scale", torch.tensor(float(velocity_scale)))
        self.register_buffer("displacement_scale", torch.tensor(float(displacement_scale)))
        self.point_encoder = mlp([q, width, width])
        self.gripper_encoder = mlp([9 + 1, width, width])
        self.push_mixer = mlp([(horizon + 1) * width, 2 * width, width])
        self.interaction_encoder = mlp([q + 3 * (horizon + 1), width, width])
        self.scene_to_hidden = nn.Linear(2 * width, 2 * width)  # [query, scene code] part of layer 1
        self.push_to_hidden = nn.Linear(2 * width, 2 * width, bias=False)  # push-code part of layer 1
        self.decoder = mlp([2 * width, width, 4 * horizon])
        self.point_offsets = bool(point_offsets)
        if self.point_offsets:  # per-point offsets to the gripper path: part of layer 1 too
            self.offsets_to_hidden = nn.Linear(3 * (horizon + 1), 2 * width, bias=False)

    def _query(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        x = (batch["scene_points"] - self.position_mean) / self.position_scale
        parts = [x, batch["scene_colors"], batch["scene_normals"]]
        parts += [batch[k] / (self.dt * self.velocity_scale) for k in self.inputs]
        return torch.cat(parts, dim=-1)

    def encode_scene(self, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, ...]:
        """Reusable across pushes: the scene's share of the decoder's first layer per point (S, Ns, 2C),
        the anchors' query features (S, M, 9 + 3 x past displacements) and positions (S, M, 3), and the
        points (S, Ns, 3)."""
        query = self._query(batch)
        feats = self.point_encoder(query)
        scene = feats.amax(dim=1, keepdim=True).expand_as(feats)
        N = query.shape[1]
        idx = torch.arange(0, N, max(1, N // self.anchors), device=query.device)[: self.anchors]
        points = batch["scene_points"]
        return self.scene_to_hidden(torch.cat([feats, scene], dim=-1)), query[:, idx], points[:, idx], points

    def encode_push(self, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        """The trajectory code (B, C) of the gripper points and their centroid path (B, H+1, 3)."""
        B = batch["gripper_points"].shape[0]
        if not torch.is_grad_enabled() and B > INFERENCE_CHUNK:
            keys = ("gripper_points", "gripper_velocity", "gripper_acceleration")
            return in_chunks(self.encode_push, B, lambda s: {k: batch[k][s] for k in keys})
        g = (batch["gripper_points"] - self.position_mean) / self.position_scale
        v = batch["gripper_velocity"] / self.velocity_scale
        a = batch["gripper_acceleration"] / (self.velocity_scale * 10)
        B, T, Nr, _ = g.shape
        t = torch.linspace(0, 1, T, device=g.device, dtype=g.dtype).view(1, T, 1, 1).expand(B, T, Nr, 1)
        per_step = self.gripper_encoder(torch.cat([g, v, a, t], dim=-1)).amax(dim=2)  # (B, T, C)
        return self.push_mixer(per_step.reshape(B, -1)), batch["gripper_points"].mean(dim=2)

    def _offsets(self, xyz: torch.Tensor, centroid: torch.Tensor) -> torch.Tensor:
        """Offsets (B, P, 3 (H+1)) of points (S, P, 3) from the gripper centroid path (B, H+1, 3), in units of
        ``contact_scale``, clamped to +-5."""
        offsets = (xyz[:, :, None] - centroid[:, None]) / self.contact_scale
        return offsets.clamp(-5.0, 5.0).flatten(2)

    def forward(self, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        """Displacements (B, H, Ns, 3) in metres and log-variances (B, H, Ns)."""
        check_batch(batch, self.horizon, self.inputs)
        return self.decode(self.encode_scene(batch), self.encode_push(batch))

    def decode(self, scene_code: tuple[torch.Tensor, ...],
               push: tuple[torch.Tensor, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        """Flow of encoded scenes (S leading) under encoded pushes (B leading), S in {1, B}.

        With S = 1 one encoded scene serves every candidate push (MPC): encode it once with
        `encode_scene`, encode the candidates with `encode_push`, and decode them together.
        """
        hidden_scene, anchor_query, anchor_xyz, points = scene_code
        code, centroid = push
        B, N = code.shape[0], hidden_scene.shape[1]
        if hidden_scene.shape[0] not in (1, B):
            raise ValueError(f"scene codes of {hidden_scene.shape[0]} scenes cannot serve {B} pushes (need 1 or {B})")
        if not torch.is_grad_enabled() and B > INFERENCE_CHUNK:
            shared = hidden_scene.shape[0] == 1
            return in_chunks(lambda args: self.decode(*args), B, lambda s: (
                scene_code if shared else tuple(t[s] for t in scene_code), (code[s], centroid[s])))
        M = anchor_xyz.shape[1]
        contact = self.interaction_encoder(
            torch.cat([anchor_query.expand(B, M, -1), self._offsets(anchor_xyz, centroid)], dim=-1)).amax(dim=1)
        hidden = hidden_scene + self.push_to_hidden(torch.cat([code, contact], dim=-1))[:, None]
        if self.point_offsets:
            hidden = hidden + self.offsets_to_hidden(self._offsets(points, centroid))
        hidden = F.gelu(hidden) if torch.is_grad_enabled() else gelu_inplace(hidden)
        out = self.decoder(hidden).view(B, N, self.horizon, 4).permute(0, 2, 1, 3)
        return out[..., :3] * self.displacement_scale, out[..., 3]
