"""Point-cloud serialisation and sampling in plain, vectorised PyTorch (CPU and GPU).

- `morton_codes`: z-order codes of integer grid coordinates (21 bits per axis, int64);
- `serialize`: the z-order of a batch of clouds quantised on a metric grid, for any axis
  order ("xyz" is PTv3's "z" order, "yxz" its "z-trans");
- `farthest_point_sampling`: indices of well-spread points (deterministic, starts from the
  point farthest from the centroid, so it does not depend on the input order);
- `gather_points`: rows of a batch of point features at given indices.
"""

from __future__ import annotations

import torch

MORTON_BITS = 21  # 3 x 21 = 63 bits fit a signed int64
AXIS_ORDERS = ("xyz", "xzy", "yxz", "yzx", "zxy", "zyx")


def _spread_bits(v: torch.Tensor) -> torch.Tensor:
    """Insert two zero bits between the low 21 bits of ``v`` (int64): b2 b1 b0 -> b2 0 0 b1 0 0 b0."""
    v = v & 0x1FFFFF
    v = (v | (v << 32)) & 0x1F00000000FFFF
    v = (v | (v << 16)) & 0x1F0000FF0000FF
    v = (v | (v << 8)) & 0x100F00F00F00F00F
    v = (v | (v << 4)) & 0x10C30C30C30C30C3
    return (v | (v << 2)) & 0x1249249249249249


def morton_codes(grid: torch.Tensor) -> torch.Tensor:
    """Z-order codes (...) of non-negative integer coordinates (..., 3) below 2**21; axis 0 is the lowest bit."""
    if grid.shape[-1] != 3 or grid.is_floating_point():
        raise ValueError(f"grid must be an integer tensor of shape (..., 3), got {grid.dtype} {tuple(grid.shape)}")
    g = grid.long()
    if bool((g < 0).any()) or bool((g >= 1 << MORTON_BITS).any()):
        raise ValueError(f"grid coordinates must lie in [0, 2**{MORTON_BITS})")
    return _spread_bits(g[..., 0]) | (_spread_bits(g[..., 1]) << 1) | (_spread_bits(g[..., 2]) << 2)


def serialize(points: torch.Tensor, grid_size: float, order: str = "xyz") -> torch.Tensor:
    """Z-order codes (B, N) of clouds (B, N, 3) quantised on a grid of cell ``grid_size`` from each cloud's minimum.

    ``order`` names the axes from the most to the least significant bit of each bit triple
    ("xyz": z-order; "yxz": the transposed z-order). Codes do not change when a cloud is translated
    by a whole number of cells.
    """
    if order not in AXIS_ORDERS:
        raise ValueError(f"unknown order {order!r}; allowed: {AXIS_ORDERS}")
    if grid_size <= 0:
        raise ValueError(f"grid_size must be positive, got {grid_size}")
    lo = points.amin(dim=1, keepdim=True)
    grid = torch.floor((points - lo) / grid_size).long().clamp_(0, (1 << MORTON_BITS) - 1)
    axes = ["xyz".index(a) for a in reversed(order)]  # least significant first
    return morton_codes(grid[..., axes])


@torch.no_grad()
def farthest_point_sampling(points: torch.Tensor, m: int) -> torch.Tensor:
    """Indices (B, m) of ``m`` farthest-point samples of clouds (B, N, 3), m <= N."""
    B, N, _ = points.shape
    if not 0 < m <= N:
        raise ValueError(f"m must be in [1, N = {N}], got {m}")
    x = points.detach().transpose(1, 2).contiguous()  # (B, 3, N): reductions over 3 contiguous rows are fast
    rows = torch.arange(B, device=x.device)

    def distance(i: torch.Tensor) -> torch.Tensor:
        return (x - x[rows, :, i].unsqueeze(-1)).square().sum(1)

    idx = [(x - x.mean(dim=2, keepdim=True)).square().sum(1).argmax(dim=1)]
    dist = distance(idx[0])
    for _ in range(1, m):
        idx.append(dist.argmax(dim=1))
        dist = torch.minimum(dist, distance(idx[-1]))
    return torch.stack(idx, dim=1)


def gather_points(x: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
    """Rows of ``x`` (B, N, C) at ``idx`` (B, ...) -> (B, ..., C)."""
    B, C = x.shape[0], x.shape[-1]
    flat = idx.reshape(B, -1)
    return x.gather(1, flat.unsqueeze(-1).expand(B, flat.shape[1], C)).view(*idx.shape, C)
