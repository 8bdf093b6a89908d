"""The object library of the Push4D task: rigid objects to push, from procedural shapes, meshes, URDFs or polygons.

``load_object(spec)`` gives a `RigidObject` (mesh, footprint, convex collision pieces, mass properties, surface
points) in the object's own frame, resting on z = 0; ``library_names(split)`` lists the library (procedural shapes,
pybullet_data meshes used in place, and ``random_urdf/NNN``) in fixed ``train`` / ``val`` / ``test`` splits::

    from envs.objects import library_names, load_object

    duck = load_object("duck")
    ring = load_object({"name": "ring", "mass": 0.5, "friction": 0.4})
    mine = load_object({"polygon": [[0, 0], [0.1, 0], [0, 0.1]], "height": 0.03})
    points, normals = duck.surface_points(256, np.random.default_rng(0))
    names = library_names("test")
"""

from .library import SPLITS, LibraryEntry, library_entry, library_names
from .rigid_object import DEFAULT_DENSITY, RigidObject, load_object
from .shapes import PROCEDURAL_SHAPES, convex_decomposition, shape_polygon, star_polygon

__all__ = [
    "DEFAULT_DENSITY",
    "PROCEDURAL_SHAPES",
    "SPLITS",
    "LibraryEntry",
    "RigidObject",
    "convex_decomposition",
    "library_entry",
    "library_names",
    "load_object",
    "shape_polygon",
    "star_polygon",
]
