"""Gaussian-splat (3DGS) scenes driven by physics.

- :mod:`~physics.splats.ply`: binary PLY read/write, bit-exact round trips.
- :mod:`~physics.splats.gaussians`: :class:`GaussianSplats`, typed arrays over a 3DGS PLY
  (positions, scales, rotations, opacities, SH) and covariance <-> scale + rotation.
- :mod:`~physics.splats.sh`: the 3DGS real spherical harmonics, evaluation and rotation.
- :mod:`~physics.splats.fill`: PhysGaussian interior filling by opacity ray marching.
- :mod:`~physics.splats.drive`: Gaussians deformed by MPM particles, modes or k-nearest particles.
- :mod:`~physics.splats.synthetic`: splat spheres and boxes for tests and demos.
"""

from __future__ import annotations

from .drive import KNearestDeformation, ModalSplatDriver, MPMSplatDriver, deform_splats, polar_rotations
from .fill import InteriorFill, fill_interior, opacity_field, shared_cell_volumes
from .gaussians import GaussianSplats, covariance_to_scale_rotation, scale_rotation_to_covariance
from .ply import PlyFile, parse_ply, ply_bytes, read_ply, write_ply
from .sh import eval_sh, rotate_sh, sh_basis
from .synthetic import box_splats, sphere_splats, surface_splats

__all__ = [
    "PlyFile",
    "read_ply",
    "write_ply",
    "parse_ply",
    "ply_bytes",
    "GaussianSplats",
    "covariance_to_scale_rotation",
    "scale_rotation_to_covariance",
    "sh_basis",
    "eval_sh",
    "rotate_sh",
    "InteriorFill",
    "fill_interior",
    "opacity_field",
    "shared_cell_volumes",
    "deform_splats",
    "polar_rotations",
    "MPMSplatDriver",
    "ModalSplatDriver",
    "KNearestDeformation",
    "surface_splats",
    "sphere_splats",
    "box_splats",
]
