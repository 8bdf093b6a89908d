"""Warp MPM solver: explicit MLS/APIC material point method with typed materials.

Entry points: :class:`MPMSolver`, :class:`MPMConfig`, materials in
:mod:`physics.mpm.materials`, colliders in :mod:`physics.mpm.colliders`, particle
samplers in :mod:`physics.mpm.sampling`, gradients in :mod:`physics.mpm.differentiable`.
"""

from __future__ import annotations

from . import colliders, materials
from .colliders import Box, Capsule, Plane, Sphere, TriMesh
from .config import MPMConfig
from .materials import DruckerPrager, FixedCorotated, Fluid, Fracture, HerschelBulkley, NeoHookean, Snow, VonMises
from .sampling import sample_box, sample_mesh, sample_sphere
from .solver import MPMSolver, SimulationDivergedError

__all__ = [
    "MPMConfig",
    "MPMSolver",
    "SimulationDivergedError",
    "colliders",
    "materials",
    "Plane",
    "Box",
    "Sphere",
    "Capsule",
    "TriMesh",
    "FixedCorotated",
    "NeoHookean",
    "VonMises",
    "DruckerPrager",
    "HerschelBulkley",
    "Fluid",
    "Snow",
    "Fracture",
    "sample_box",
    "sample_sphere",
    "sample_mesh",
]
