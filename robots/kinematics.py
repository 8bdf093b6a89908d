"""Batched forward kinematics of a `RobotDescription`, in numpy and in torch.

Each joint's motion is written in closed form (Rodrigues for revolute joints):

    T_joint(theta) = I + sin(theta) * K + (1 - cos(theta)) * K^2 + theta * P

with ``K`` the cross-product matrix of a revolute axis and ``P`` the translation of a
prismatic axis (both 4x4, zero where they do not apply). A link's pose is
``T_world_parent @ origin @ T_joint(theta)``. The same code runs on numpy arrays and on
torch tensors (any device, differentiable), batched over any leading dimensions.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import torch

from .urdf import RobotDescription


class ForwardKinematics:
    """Link poses (..., L, 4, 4) from actuated joint values (..., D) of a `RobotDescription`.

    ``base`` (optional, (..., 4, 4) or (4, 4)) places the root link in the world; by default
    the root is at the origin. Mimic joints follow their leader (multiplier, offset).
    """

    def __init__(self, desc: RobotDescription):
        self.desc = desc
        self.num_links = len(desc.links)
        self.dof = len(desc.actuated)
        index = {n: i for i, n in enumerate(desc.actuated)}
        self.parents = np.array([-1] + [desc.link_index(j.parent) for j in desc.joints])
        origins = [np.eye(4)]
        K = np.zeros((self.num_links, 4, 4))
        P = np.zeros((self.num_links, 4, 4))
        q_index = np.full(self.num_links, -1)
        mult = np.zeros(self.num_links)
        offset = np.zeros(self.num_links)
        for i, j in enumerate(desc.joints, start=1):
            origins.append(j.origin)
            if j.type == "fixed":
                continue
            a = j.axis
            if j.type == "prismatic":
                P[i, :3, 3] = a
            else:
                K[i, :3, :3] = [[0, -a[2], a[1]], [a[2], 0, -a[0]], [-a[1], a[0], 0]]
            leader = j.name if j.mimic is None else j.mimic
            q_index[i] = index[leader]
            mult[i] = 1.0 if j.mimic is None else j.mimic_multiplier
            offset[i] = 0.0 if j.mimic is None else j.mimic_offset
        self.origins = np.stack(origins)
        self.K, self.K2, self.P = K, K @ K, P
        self.q_index, self.mult, self.offset = q_index, mult, offset
        self._moving = np.flatnonzero(q_index >= 0)
        self._torch_cache: dict[tuple, tuple[torch.Tensor, ...]] = {}

    def _check(self, q_shape: Sequence[int]) -> None:
        if len(q_shape) == 0 or q_shape[-1] != self.dof:
            raise ValueError(
                f"joint vector must have shape (..., {self.dof}) for joints {list(self.desc.actuated)}, "
                f"got {tuple(q_shape)}"
            )

    def numpy(self, q: np.ndarray, base: np.ndarray | None = None) -> np.ndarray:
        """Link poses as a float64 numpy array (..., L, 4, 4)."""
        q = np.asarray(q, dtype=np.float64)
        self._check(q.shape)
        theta = np.zeros(q.shape[:-1] + (self.num_links,))
        moving = self._moving
        theta[..., moving] = q[..., self.q_index[moving]] * self.mult[moving] + self.offset[moving]
        local = self._local(theta[..., None, None], np.sin, np.cos, self.origins, self.K, self.K2, self.P)
        return self._chain(local, base, np.stack, np.asarray)

    def torch(self, q: torch.Tensor, base: torch.Tensor | None = None) -> torch.Tensor:
        """Link poses as a torch tensor (..., L, 4, 4) on q's device and dtype (differentiable)."""
        self._check(q.shape)
        key = (q.device, q.dtype)
        if key not in self._torch_cache:
            conv = lambda a: torch.as_tensor(a, device=q.device, dtype=q.dtype)  # noqa: E731
            self._torch_cache[key] = tuple(
                conv(a) for a in (self.origins, self.K, self.K2, self.P, self.mult, self.offset)
            ) + (torch.as_tensor(self.q_index.clip(min=0), device=q.device),
                 torch.as_tensor(self.q_index >= 0, device=q.device))
        origins, K, K2, P, mult, offset, qi, moving = self._torch_cache[key]
        theta = torch.where(moving, q[..., qi] * mult + offset, torch.zeros_like(mult))
        local = self._local(theta[..., None, None], torch.sin, torch.cos, origins, K, K2, P)
        return self._chain(local, base, torch.stack, lambda b: b.to(q))

    @staticmethod
    def _local(theta, sin, cos, origins, K, K2, P):
        eye = origins[0]
        return origins @ (eye + sin(theta) * K + (1 - cos(theta)) * K2 + theta * P)

    def _chain(self, local, base, stack, convert):
        poses = []
        for i, p in enumerate(self.parents):
            if p < 0:
                poses.append(local[..., 0, :, :] if base is None else convert(base) @ local[..., 0, :, :])
            else:
                poses.append(poses[p] @ local[..., i, :, :])
        return stack(poses, -3)

    def link_poses(self, q: np.ndarray, links: Sequence[str], base: np.ndarray | None = None) -> np.ndarray:
        """Poses (..., len(links), 4, 4) of the named links (numpy)."""
        idx = [self.desc.link_index(n) for n in links]
        return self.numpy(q, base)[..., idx, :, :]
