"""Gaussian-splat (3DGS) scenes driven by physics.

- :mod:`~physics.splats.ply`: binary PLY read/write, bit-exact round trips.
- :mod:`~physics.splats.gaussians`: :class:`GaussianSplats`, typed arrays over a 3DGS PLY
  (positions, scales, rotations, opacities, SH) and covariance <-> scale + rotation.
- :mod:`~physics.splats.sh`: the 3DGS real spherical harmonics, evaluation and rotation.
- :mod:`~physics.splats.fill`: PhysGaussian interior filling by opacity ray marching (older API).
- :mod:`~physics.splats.solid`: the solid volume of a capture (closed, flood-filled coverage) and its pieces.
- :mod:`~physics.splats.selection`: which Gaussians to simulate (mask, crop, opacity, strays, pieces, scenes).
- :mod:`~physics.splats.axes`: up axes, the ground plane of a capture, the turn to z up.
- :mod:`~physics.splats.frame`: the file <-> simulation map (turn, scale, offset).
- :mod:`~physics.splats.pieces`: one modal model per solid piece.
- :mod:`~physics.splats.drive`: Gaussians deformed by MPM particles, modes or k-nearest particles.
- :mod:`~physics.splats.synthetic`: splat spheres, boxes, tori and filled volumes for tests and demos.
"""

from __future__ import annotations

from .drive import KNearestDeformation, ModalSplatDriver, MPMSplatDriver, deform_splats, polar_rotations
from .fill import InteriorFill, fill_interior, opacity_field, shared_cell_volumes
from .gaussians import GaussianSplats, covariance_to_scale_rotation, scale_rotation_to_covariance
from .ply import PlyFile, parse_ply, ply_bytes, read_ply, write_ply
from .selection import Selection, select_gaussians
from .sh import eval_sh, rotate_sh, sh_basis
from .solid import SolidFill, solid_components, solid_fill
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
    "SolidFill",
    "solid_fill",
    "solid_components",
    "Selection",
    "select_gaussians",
    "deform_splats",
    "polar_rotations",
    "MPMSplatDriver",
    "ModalSplatDriver",
    "KNearestDeformation",
    "surface_splats",
    "sphere_splats",
    "box_splats",
]
