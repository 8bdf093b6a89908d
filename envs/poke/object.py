"""The flexible objects of Poke4D: the task's shapes, their default materials and colours.

A shape is a union of boxes standing on the table (`physics.modal.contact_object.BoxShape`),
clamped where it meets the table. `modal_object` builds its
`physics.modal.contact_object.ModalObject` (modes, surface samples painted in colour bands so
their motion shows in RGB) once per (shape, material, mode count, sampling) and caches it for
the process, so resets and further envs of the same object are free; the modes are shared
between samplings, the nearest-sample table between materials.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from physics.modal import ModalModel, Modes
from physics.modal.contact_object import BoxShape, ModalObject, clamped_box_modes, sample_surface
from physics.modal.pullback import SampleGrid

SHAPE_NAMES = ("rod", "stem", "plate")
OBJECT_COLOR = np.array([0.95, 0.55, 0.15])
STRIPE = 0.02  # height of the colour bands painted on the objects (m), so their motion shows in RGB


@dataclass(frozen=True, kw_only=True)
class PokeShape(BoxShape):
    """A Poke4D shape: its boxes and mesh cells (`BoxShape`), ``name``, default material and description."""

    name: str
    youngs_modulus: float  # default material (Pa): gives a first mode of a few Hz
    description: str


SHAPES = {
    "rod": PokeShape(name="rod", boxes=(((-0.01, -0.01, 0.0), (0.01, 0.01, 0.2)),), voxel=(0.01, 0.01, 0.01),
                     youngs_modulus=1.0e6, description="square rod 0.02 x 0.02 x 0.20 m"),
    "stem": PokeShape(name="stem", boxes=(((-0.0075, -0.0075, 0.0), (0.0075, 0.0075, 0.15)),
                                          ((-0.0225, -0.0225, 0.15), (0.0225, 0.0225, 0.18))),
                      voxel=(0.0075, 0.0075, 0.01), youngs_modulus=2.0e6,
                      description="stem 0.015 x 0.015 x 0.15 m carrying a head 0.045 x 0.045 x 0.03 m"),
    "plate": PokeShape(name="plate", boxes=(((-0.06, -0.003, 0.0), (0.06, 0.003, 0.12)),), voxel=(0.01, 0.003, 0.01),
                       youngs_modulus=1.0e6, description="upright plate 0.12 wide, 0.006 thick, 0.12 m high"),
}


@lru_cache(maxsize=8)
def _sample_grid(shape: str, num_surface_points: int, seed: int) -> SampleGrid:
    """The (lazily built) `SampleGrid` of a shape's surface samples, shared by every material."""
    return SampleGrid(sample_surface(SHAPES[shape], num_surface_points, seed)[0], SHAPES[shape].bounds)


@lru_cache(maxsize=8)
def _modes(shape: str, youngs_modulus: float, poisson_ratio: float, density: float, num_modes: int
           ) -> tuple[ModalModel, Modes]:
    """The meshed, clamped shape and its lowest ``num_modes`` modes (cached)."""
    return clamped_box_modes(SHAPES[shape], youngs_modulus, poisson_ratio, density, num_modes)


@lru_cache(maxsize=16)
def modal_object(shape: str, youngs_modulus: float, poisson_ratio: float, density: float, num_modes: int,
                 num_surface_points: int, seed: int = 0) -> ModalObject:
    """The cached `ModalObject` of shape ``shape`` ("rod", "stem", "plate") with this material and mode count,
    sampled with ``num_surface_points`` surface points (modes are shared between samplings)."""
    if shape not in SHAPES:
        raise ValueError(f"unknown shape {shape!r}; allowed: {SHAPE_NAMES}")
    spec = SHAPES[shape]
    model, modes = _modes(shape, youngs_modulus, poisson_ratio, density, num_modes)
    surface, normals = sample_surface(spec, num_surface_points, seed)
    band = (np.floor(surface[:, 2] / STRIPE) % 2)[:, None]
    colors = OBJECT_COLOR * (0.7 + 0.3 * band)
    return ModalObject.from_samples(spec, model, modes, surface, normals, colors,
                                    _sample_grid(shape, num_surface_points, seed))
