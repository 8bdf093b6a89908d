"""PointFlowTransformer: a PointWorld-style point-flow predictor in pure PyTorch (CPU and GPU).

Scene encoder (push-independent, computed once per scene by `encode_scene`), PTv3-like:
every scene point is a token (position with Fourier features, colour, normal); the points
are serialised by z-order codes in two axis orders (`serialization.serialize`), and each
block attends inside fixed-size patches of one order (`F.scaled_dot_product_attention`),
alternating the orders and shifting the patches by half a patch every other pair of blocks
so information crosses patch borders. In place of PTv3's sparse convolution, the positional
encoding is cheap: Fourier features of xyz at the input and, in every attention, a learned
per-head bias on the squared distance between query and key points (`distance_geometry`).

Anchors: M farthest-point samples of the scene carry its encoded features. Every point
blends the anchors with attention weights from features and a learned distance penalty
(push-independent, so stored in the scene code).

Push (`encode_push`): farthest-point samples of the gripper points at step t, followed
through all H + 1 steps, are tokens of position, velocity, acceleration and a learned time
embedding.

Decoder (`decode`, the only per-candidate work): the anchors are FiLM-modulated by the
max-pooled push tokens, then a few layers of cross-attention to the push tokens (with the
distance bias as a contact prior) and anchor self-attention (so a push at one end of an
object reaches its far end). Each anchor predicts, per step, a local affine field of
displacement and log-variance, f(x) = b + G (x - a); a point's output is the blend of the
fields of its anchors (linear blend skinning: exact for rigid motion when the blend stays on
one body) plus a push-independent per-point log-variance term. The blend is one matrix
product with the scene code, so one encoded scene serves many candidate pushes cheaply.
Heteroscedastic output: displacements (B, H, Ns, 3) in metres and log-variances (B, H, Ns).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from ..formulation import HORIZON, check_batch
from .pointnet_flow import mlp
from .serialization import farthest_point_sampling, gather_points, serialize

ORDERS = ("xyz", "yxz")  # PTv3's "z" and "z-trans" serialisations
BLEND_DIM = 32  # channels of the point-to-anchor blending attention
DISTANCE_SIGMAS = (0.03, 0.24)  # metres: range of the initial widths of the per-head distance biases
GEOMETRY_DIMS = 4  # query/key channels per head that carry the distance bias


def fourier_features(x: torch.Tensor, bands: int) -> torch.Tensor:
    """sin and cos of 2**i * pi * x for i < bands, (..., 3) -> (..., 6 * bands)."""
    freqs = math.pi * 2.0 ** torch.arange(bands, device=x.device, dtype=x.dtype)
    arg = (x[..., None] * freqs).flatten(-2)
    return torch.cat([arg.sin(), arg.cos()], dim=-1)


def _inverse_softplus(y: torch.Tensor) -> torch.Tensor:
    return y + torch.log(-torch.expm1(-y))


def distance_weights(heads: int, position_scale: float) -> nn.Parameter:
    """Raw per-head weights c = softplus(raw) of -c |q - k|^2, widths log-spaced over DISTANCE_SIGMAS (metres)."""
    sigmas = torch.logspace(*map(math.log10, DISTANCE_SIGMAS), heads) / position_scale
    return nn.Parameter(_inverse_softplus(0.5 / sigmas.square()))


def distance_geometry(query_pos: torch.Tensor, key_pos: torch.Tensor, raw_weight: torch.Tensor, head_dim: int
                      ) -> tuple[torch.Tensor, torch.Tensor]:
    """Extra query/key channels ((..., heads, Lq, 4), (..., 1, Lk, 4)) whose scaled dot product adds
    -c_h |q - k|^2 to the attention logits, up to a per-query constant that softmax ignores:
    c (2 q.k - |k|^2) = -c |q - k|^2 + c |q|^2. Centre the positions near the region of interest:
    the bias is exact for any common shift, and small coordinates keep it precise."""
    c = F.softplus(raw_weight).view(-1, 1, 1) * math.sqrt(head_dim)  # SDPA divides the logits by sqrt(head_dim)
    gq = c * torch.cat([2 * query_pos, -torch.ones_like(query_pos[..., :1])], dim=-1).unsqueeze(-3)
    gk = torch.cat([key_pos, key_pos.square().sum(-1, keepdim=True)], dim=-1).unsqueeze(-3)
    return gq, gk


class Attention(nn.Module):
    """Multi-head attention of ``x`` (..., L, C) to ``context`` (..., Lc, C) (``x`` itself when None).

    With ``geometric`` the last GEOMETRY_DIMS query and key channels of every head are the
    `distance_geometry` channels passed to `forward` instead of learned projections (one head
    dimension for q, k and v keeps SDPA on its fast kernels, forward and backward, with no mask).
    """

    def __init__(self, width: int, heads: int, geometric: bool = False):
        super().__init__()
        self.heads, self.head_dim = heads, width // heads
        self.learned = self.head_dim - GEOMETRY_DIMS * geometric  # learned query/key channels per head
        self.q, self.k = nn.Linear(width, heads * self.learned), nn.Linear(width, heads * self.learned)
        self.v, self.out = nn.Linear(width, width), nn.Linear(width, width)

    def forward(self, x: torch.Tensor, context: torch.Tensor | None = None, mask: torch.Tensor | None = None,
                geometry: tuple[torch.Tensor, torch.Tensor] | None = None) -> torch.Tensor:
        """Attention output (..., L, C); ``mask`` is a boolean SDPA mask (True: attend)."""
        context = x if context is None else context
        h = self.heads
        q = self.q(x).unflatten(-1, (h, self.learned)).transpose(-2, -3)
        k = self.k(context).unflatten(-1, (h, self.learned)).transpose(-2, -3)
        v = self.v(context).unflatten(-1, (h, self.head_dim)).transpose(-2, -3)
        if self.learned < self.head_dim:
            q = torch.cat([q, geometry[0].expand(*q.shape[:-1], -1)], dim=-1)
            k = torch.cat([k, geometry[1].expand(*k.shape[:-1], -1)], dim=-1)
        o = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
        return self.out(o.transpose(-2, -3).flatten(-2))


class SerializedBlock(nn.Module):
    """Pre-norm transformer block over a serialised cloud: distance-biased patch attention, then an MLP."""

    def __init__(self, width: int, heads: int, patch_size: int, position_scale: float):
        super().__init__()
        self.patch_size = patch_size
        self.norm1, self.norm2 = nn.LayerNorm(width), nn.LayerNorm(width)
        self.attn = Attention(width, heads, geometric=True)
        self.locality = distance_weights(heads, position_scale)
        self.mlp = mlp([width, 2 * width, width])

    def forward(self, x: torch.Tensor, pos: torch.Tensor, perm: torch.Tensor, shift: bool) -> torch.Tensor:
        """Update features (B, N, C) of points ``pos`` (B, N, 3), attending inside patches of the order ``perm``."""
        B, N, C = x.shape
        K = min(self.patch_size, N)
        pad = (-N) % K
        h, p = self.norm1(x), pos
        if shift:  # patches start half a patch later along the order
            perm = perm.roll(-(K // 2), dims=1)
        h, p = gather_points(h, perm), gather_points(p, perm)
        mask = None
        if pad:
            h, p = F.pad(h, (0, 0, 0, pad)), F.pad(p, (0, 0, 0, pad))
            keep = torch.arange(N + pad, device=x.device) < N
            mask = keep.view(1, -1, 1, 1, K).expand(B, -1, 1, 1, K).reshape(-1, 1, 1, K)
        p = p.view(-1, K, 3)
        p = p - p.mean(dim=1, keepdim=True)  # small coordinates keep the bias precise in low precision
        geometry = distance_geometry(p, p, self.locality, self.attn.head_dim)
        a = self.attn(h.view(-1, K, C), mask=mask, geometry=geometry).view(B, N + pad, C)[:, :N]
        inverse = torch.empty_like(perm).scatter_(1, perm, torch.arange(N, device=x.device).expand(B, N))
        x = x + gather_points(a, inverse)
        return x + self.mlp(self.norm2(x))


class AnchorLayer(nn.Module):
    """Anchors attend to the push tokens (distance-biased), then to each other, then an MLP (pre-norm residuals)."""

    def __init__(self, width: int, heads: int, position_scale: float):
        super().__init__()
        self.norm1, self.norm2, self.norm3 = nn.LayerNorm(width), nn.LayerNorm(width), nn.LayerNorm(width)
        self.cross = Attention(width, heads, geometric=True)
        self.contact = distance_weights(heads, position_scale)
        self.self_attn = Attention(width, heads)
        self.mlp = mlp([width, 2 * width, width])

    def forward(self, h: torch.Tensor, anchors: torch.Tensor, tokens: torch.Tensor, positions: torch.Tensor
                ) -> torch.Tensor:
        """Updated anchors (B, M, C) at ``anchors`` (B, M, 3) given push tokens (B, P, C) at ``positions`` (B, P, 3)."""
        geometry = distance_geometry(anchors, positions, self.contact, self.cross.head_dim)
        h = h + self.cross(self.norm1(h), tokens, geometry=geometry)
        h = h + self.self_attn(self.norm2(h))
        return h + self.mlp(self.norm3(h))


class PointFlowTransformer(nn.Module):
    """Serialised-patch point transformer with an anchor decoder (see the module docstring).

    ``width`` channels (divisible by ``heads``), ``depth`` scene blocks over patches of
    ``patch_size`` points serialised on a ``grid_size`` (m) grid, ``num_anchors`` anchors that
    every point blends, ``decoder_layers`` anchor layers, ``gripper_tokens``
    gripper points followed over the H + 1 steps, ``fourier_bands`` positional frequencies.
    """

    def __init__(self, horizon: int = HORIZON, width: int = 64, heads: int = 2, depth: int = 4,
                 patch_size: int = 64, num_anchors: int = 128, decoder_layers: int = 2,
                 gripper_tokens: int = 16, fourier_bands: int = 6, grid_size: float = 0.01,
                 position_scale: float = 0.2, velocity_scale: float = 0.3, displacement_scale: float = 0.02):
        super().__init__()
        positive = dict(horizon=horizon, width=width, heads=heads, depth=depth, patch_size=patch_size,
                        num_anchors=num_anchors, gripper_tokens=gripper_tokens)
        bad = {k: v for k, v in positive.items() if not isinstance(v, int) or v <= 0}
        if bad:
            raise ValueError(f"{bad}: {list(positive)} must be positive integers")
        if width % heads or width // heads <= GEOMETRY_DIMS:
            raise ValueError(f"width ({width}) must split into heads ({heads}) of more than {GEOMETRY_DIMS} channels")
        if decoder_layers < 0 or fourier_bands < 0 or grid_size <= 0 or min(position_scale, velocity_scale,
                                                                             displacement_scale) <= 0:
            raise ValueError("decoder_layers and fourier_bands must be >= 0; grid_size and the scales positive")
        self.horizon, self.width, self.heads = horizon, width, heads
        self.num_anchors, self.gripper_tokens = num_anchors, gripper_tokens
        self.fourier_bands, self.grid_size = fourier_bands, grid_size
        self.register_buffer("position_mean", torch.zeros(3))
        self.register_buffer("position_scale", torch.tensor(float(position_scale)))
        self.register_buffer("velocity_scale", torch.tensor(float(velocity_scale)))
        self.register_buffer("displacement_scale", torch.tensor(float(displacement_scale)))
        lifted = 9 + 6 * fourier_bands
        self.point_embed = mlp([lifted, width, width])
        self.blocks = nn.ModuleList(SerializedBlock(width, heads, patch_size, position_scale) for _ in range(depth))
        self.point_norm = nn.LayerNorm(width)
        self.blend_q, self.blend_k = nn.Linear(width, BLEND_DIM), nn.Linear(width, BLEND_DIM)
        self.blend_distance = nn.Parameter(_inverse_softplus(torch.tensor(8.0)))  # ~5 cm anchor spacing
        self.point_log_var = nn.Linear(width, horizon)
        self.gripper_embed = mlp([lifted, width, width])
        self.time_embed = nn.Parameter(0.02 * torch.randn(horizon + 1, width))
        self.token_norm = nn.LayerNorm(width)
        self.film = nn.Linear(width, 2 * width)
        self.anchor_layers = nn.ModuleList(AnchorLayer(width, heads, position_scale) for _ in range(decoder_layers))
        self.head_norm = nn.LayerNorm(width)
        self.head = nn.Linear(width, 4 * horizon * 4)  # blocks (b, G columns) x steps x (dx, dy, dz, log var)
        for layer in (self.point_log_var, self.film, self.head):  # start as the zero-flow, unit-variance model
            nn.init.zeros_(layer.weight)
            nn.init.zeros_(layer.bias)

    def _lift(self, x: torch.Tensor, *features: torch.Tensor) -> torch.Tensor:
        return torch.cat([x, fourier_features(x, self.fourier_bands), *features], dim=-1)

    def encode_scene(self, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, ...]:
        """The push-independent scene code, reusable across candidate pushes: (blend weights (S, Ns, M),
        normalised points (S, Ns, 3), point log-variance term (S, H, Ns), anchor features (S, M, C),
        normalised anchor positions (S, M, 3))."""
        pts = batch["scene_points"]
        S, N, _ = pts.shape
        x = (pts - self.position_mean) / self.position_scale
        f = self.point_embed(self._lift(x, batch["scene_colors"], batch["scene_normals"]))
        perms = [serialize(pts.detach(), self.grid_size, order).argsort(dim=1) for order in ORDERS]
        for i, block in enumerate(self.blocks):
            f = block(f, x, perms[i % len(ORDERS)], shift=(i // len(ORDERS)) % 2 == 1)
        f = self.point_norm(f)
        M = min(self.num_anchors, N)
        anchor_idx = farthest_point_sampling(x, M)
        anchors, anchor_f = gather_points(x, anchor_idx), gather_points(f, anchor_idx)
        # blend weights: attention of every point to the anchors, features plus a learned distance penalty
        logits = self.blend_q(f) @ self.blend_k(anchor_f).transpose(1, 2) / math.sqrt(BLEND_DIM)
        logits = logits - F.softplus(self.blend_distance) * torch.cdist(x, anchors).square()
        # anchors 40 below the best logit get weight 0: this keeps the products free of denormal floats (slow on CPUs)
        logits = logits.masked_fill(logits < logits.amax(dim=-1, keepdim=True) - 40, float("-inf"))
        return torch.softmax(logits, dim=-1), x, self.point_log_var(f).transpose(1, 2), anchor_f, anchors

    def encode_push(self, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        """Push tokens (B, (H + 1) * K, C) and their normalised positions (B, (H + 1) * K, 3)."""
        g = batch["gripper_points"]
        B, T, Nr, _ = g.shape
        if T != self.horizon + 1:
            raise ValueError(f"gripper_points must hold H + 1 = {self.horizon + 1} steps, got {T}")
        x = (g - self.position_mean) / self.position_scale
        idx = farthest_point_sampling(x[:, 0], min(self.gripper_tokens, Nr))  # followed through every step
        idx = idx.view(B, 1, -1, 1).expand(B, T, -1, 3)
        x, v, a = (t.gather(2, idx) for t in (x, batch["gripper_velocity"], batch["gripper_acceleration"]))
        v, a = v / self.velocity_scale, a / (self.velocity_scale * 10)
        tokens = self.gripper_embed(self._lift(x, v, a)) + self.time_embed[:, None]
        return self.token_norm(tokens.flatten(1, 2)), x.flatten(1, 2)

    def forward(self, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        """Displacements (B, H, Ns, 3) in metres and log-variances (B, H, Ns)."""
        check_batch(batch, self.horizon)
        return self.decode(self.encode_scene(batch), self.encode_push(batch))

    def decode(self, scene_code: tuple[torch.Tensor, ...], push_code: tuple[torch.Tensor, torch.Tensor]
               ) -> tuple[torch.Tensor, torch.Tensor]:
        """Flow of S encoded scenes under B encoded pushes, S in {1, B}: (B, H, Ns, 3) metres, (B, H, Ns).

        With S = 1 one encoded scene serves every candidate push (MPC): encode it once with
        `encode_scene`, encode the candidates with `encode_push`, and decode them together.
        """
        weights, x, point_log_var, anchor_f, anchors = scene_code
        tokens, positions = push_code
        (S, N, M), B, H = weights.shape, tokens.shape[0], self.horizon
        if S not in (1, B):
            raise ValueError(f"scene codes of {S} scenes cannot serve {B} pushes (need 1 or {B})")
        gamma, beta = self.film(tokens.amax(dim=1)).unsqueeze(1).chunk(2, dim=-1)
        h = anchor_f * (1 + gamma) + beta  # (B, M, C)
        centre = positions.mean(dim=1, keepdim=True)  # precise distances near the gripper in low precision
        for layer in self.anchor_layers:
            h = layer(h, anchors - centre, tokens, positions - centre)
        # anchor m's field at point x: b_m + G_m (x - a_m) = u_m + G_m x with u_m = b_m - G_m a_m, per step
        # and channel (dx, dy, dz, log var); coef[:, m] = [u_m, G_m columns] pairs with [1, x] of each point
        scale = torch.cat([self.displacement_scale.expand(3), self.displacement_scale.new_ones(1)])
        fields = self.head(self.head_norm(h)).view(B, M, 4, H, 4) * scale
        u = fields[:, :, 0] - (fields[:, :, 1:] * anchors.view(S, M, 3, 1, 1)).sum(2)
        coef = torch.cat([u.unsqueeze(2), fields[:, :, 1:]], dim=2)  # (B, M, 4, H, 4)
        x1 = F.pad(x, (1, 0), value=1.0)  # (S, N, 4): [1, x]
        if S == 1:  # one product serves every candidate: (N, M * 4) @ (M * 4, B * H * 4)
            blend = (weights[0].unsqueeze(-1) * x1[0].unsqueeze(1)).view(N, M * 4)
            out = (blend @ coef.permute(1, 2, 0, 3, 4).reshape(M * 4, B * H * 4)).view(N, B, H, 4)
            out = out.permute(1, 2, 0, 3)
        else:  # blend the coefficients, then contract with [1, x]
            out = torch.einsum("bnjhc,bnj->bhnc", torch.bmm(weights, coef.view(B, M, -1)).view(B, N, 4, H, 4), x1)
        return out[..., :3], out[..., 3] + point_log_var
