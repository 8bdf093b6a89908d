"""File <-> simulation coordinates of a capture: rotation to z-up, scale to metres, offset into the domain.

``sim = ((x R^T) - lower) s + offset`` for file points ``x`` (rows), with ``R`` the rotation
taking the file's up direction to +z (:func:`~physics.splats.axes.up_rotation`), ``lower`` the
rotated object's lower corner, ``s`` metres per file unit and ``offset`` where that corner sits
in the simulation box. Gaussians are carried along exactly: covariances ``s^2 R Sigma R^T``, SH
colour and normals turned by ``R`` (and back by ``R^T / s``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .drive import deform_splats
from .gaussians import GaussianSplats

__all__ = ["SimulationFrame"]


@dataclass
class SimulationFrame:
    """The map between file and simulation coordinates (see the module docstring)."""

    rotation: np.ndarray  # (3, 3) file -> z-up
    scale: float  # metres per file unit
    lower: np.ndarray  # (3,) lower corner of the rotated object (file units)
    offset: np.ndarray  # (3,) where ``lower`` sits in the simulation (metres)

    @property
    def turned(self) -> bool:
        """Whether the rotation is not the identity."""
        return not np.array_equal(self.rotation, np.eye(3))

    def to_sim(self, x: np.ndarray) -> np.ndarray:
        """File points (..., 3) -> simulation points (metres, z up)."""
        return (np.asarray(x, dtype=np.float64) @ self.rotation.T - self.lower) * self.scale + self.offset

    def to_file(self, y: np.ndarray) -> np.ndarray:
        """Simulation points (..., 3) -> file points."""
        return ((np.asarray(y, dtype=np.float64) - self.offset) / self.scale + self.lower) @ self.rotation

    def up_in_file(self) -> np.ndarray:
        """The simulation's +z as a file direction."""
        return self.rotation[2].copy()

    def splats_to_sim(self, splats: GaussianSplats) -> GaussianSplats:
        """Gaussians moved, scaled and turned into simulation coordinates."""
        x = self.to_sim(splats.positions)
        if not self.turned:  # exact: only the log scales shift
            return splats.updated(positions=x, log_scales=splats.log_scales + np.log(self.scale),
                                  quaternions=splats.quaternions)
        return deform_splats(splats, x, np.broadcast_to(self.scale * self.rotation, (len(splats), 3, 3)))

    def splats_to_file(self, splats: GaussianSplats) -> GaussianSplats:
        """Gaussians in simulation coordinates back to file coordinates."""
        x = self.to_file(splats.positions)
        if not self.turned:
            return splats.updated(positions=x, log_scales=splats.log_scales - np.log(self.scale),
                                  quaternions=splats.quaternions)
        return deform_splats(splats, x, np.broadcast_to(self.rotation.T / self.scale, (len(splats), 3, 3)))
