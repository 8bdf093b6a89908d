"""Data-parallel training under ``torchrun``: process group from the environment, a sharded
seeded sampler, and rank-0-only side effects.

``torchrun --nproc_per_node N $(which wm4d) train ...`` sets RANK/WORLD_SIZE; the gloo
backend serves CPUs and NCCL GPUs. Every rank draws the same permutation from the shared
seed and takes its own stride of it, so the global batch is the same as one process with
``N x batch_size`` samples would see.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import torch
import torch.distributed as dist
from torch.utils.data import Sampler


def world() -> tuple[int, int]:
    """(rank, world size) of this process; (0, 1) when not distributed."""
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def init_from_env(device: torch.device) -> bool:
    """Join the process group described by torchrun's environment variables; False when there is none."""
    if int(os.environ.get("WORLD_SIZE", "1")) <= 1 or not dist.is_available():
        return False
    if not dist.is_initialized():
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    return True


class ShardedRandomSampler(Sampler[int]):
    """A random permutation of ``n`` indices from ``generator`` (the same on every rank), strided by rank."""

    def __init__(self, n: int, generator: torch.Generator):
        self.n, self.generator = n, generator
        self.rank, self.size = world()

    def __iter__(self) -> Iterator[int]:
        order = torch.randperm(self.n, generator=self.generator)
        usable = self.n - self.n % self.size if self.n >= self.size else self.n
        return iter(order[self.rank:usable:self.size].tolist())

    def __len__(self) -> int:
        return max(1, self.n // self.size)
