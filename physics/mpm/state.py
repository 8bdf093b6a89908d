"""Per-particle arrays of an MPM simulation and their host-side growth."""

from __future__ import annotations

from dataclasses import dataclass, fields

import numpy as np
import warp as wp

# Per-particle field name -> (warp dtype, numpy trailing shape). Order is the storage order.
PARTICLE_FIELDS: dict[str, tuple[type, tuple[int, ...]]] = {
    "x": (wp.vec3, (3,)),
    "v": (wp.vec3, (3,)),
    "C": (wp.mat33, (3, 3)),
    "F": (wp.mat33, (3, 3)),
    "plastic": (wp.float32, ()),
    "tau": (wp.mat33, (3, 3)),
    "mass": (wp.float32, ()),
    "volume": (wp.float32, ()),
    "stiffness": (wp.float32, ()),
    "poisson_ratio": (wp.float32, ()),
    "mu": (wp.float32, ()),
    "lam": (wp.float32, ()),
    "material_id": (wp.int32, ()),
    "covariance": (wp.mat33, (3, 3)),
}

# The state a step starts from: everything else is either constant or recomputed from it (tau from F).
STATE_FIELDS = ("x", "v", "C", "F", "plastic")
# Fields that evolve in time (the differentiable rollout keeps one copy per substep).
DYNAMIC_FIELDS = STATE_FIELDS + ("tau",)


@dataclass
class Particles:
    """Device arrays of all particles; ``covariance`` is empty unless tracked."""

    x: wp.array
    v: wp.array
    C: wp.array
    F: wp.array
    plastic: wp.array
    tau: wp.array
    mass: wp.array
    volume: wp.array
    stiffness: wp.array
    poisson_ratio: wp.array
    mu: wp.array
    lam: wp.array
    material_id: wp.array
    covariance: wp.array

    @classmethod
    def empty(cls, device: str) -> "Particles":
        """Zero particles on ``device``."""
        return cls(**{name: wp.zeros(0, dtype=dt, device=device) for name, (dt, _) in PARTICLE_FIELDS.items()})

    def __len__(self) -> int:
        return self.x.shape[0]

    def nbytes(self) -> int:
        """Device memory held by the particle arrays, in bytes."""
        return sum(getattr(self, f.name).capacity for f in fields(self))

    def appended(self, new: dict[str, np.ndarray], device: str) -> "Particles":
        """A copy with the host arrays ``new`` (every field but optional covariance) appended."""
        out = {}
        for name, (dtype, shape) in PARTICLE_FIELDS.items():
            old = getattr(self, name).numpy().reshape((-1, *shape))
            if name not in new:
                out[name] = getattr(self, name)
                continue
            add = np.asarray(new[name]).reshape((-1, *shape))
            host = np.concatenate([old, add.astype(old.dtype)], axis=0)
            out[name] = wp.array(host, dtype=dtype, device=device)
        return Particles(**out)

    def dynamic_copy(self, requires_grad: bool) -> dict[str, wp.array]:
        """Fresh copies of the time-evolving fields (a checkpoint)."""
        return {name: wp.clone(getattr(self, name), requires_grad=requires_grad) for name in DYNAMIC_FIELDS}
