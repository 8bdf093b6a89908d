"""Push4D's object in the rigid engines and the pool of objects an env draws from."""

from __future__ import annotations

from typing import Any

import numpy as np

from physics.rigid.spec import FreeBody

from ..objects import SPLITS, RigidObject, library_names

MAX_VISUAL_FACES = 5000


def object_pool(spec: Any) -> list[Any]:
    """The object specs an env draws from: a split name of the library (all its objects), a list or tuple of specs,
    or one spec (a library name, a path, or a dict; see `envs.objects.load_object`)."""
    if isinstance(spec, str) and spec in SPLITS:
        return list(library_names(spec))
    if isinstance(spec, list | tuple):
        if not spec:
            raise ValueError(f"object must name at least one object; got an empty {type(spec).__name__} (a library "
                             f"name, a mesh/URDF path, a polygon dict, a list of these or a split in {SPLITS})")
        return list(spec)
    return [spec]


def object_body(obj: RigidObject) -> FreeBody:
    """The rigid engines' free body of ``obj``: its convex pieces with its mass, centre of mass and inertia, drawn
    with its own mesh when that has at most ``MAX_VISUAL_FACES`` faces (else with the pieces: software renderers
    draw dense meshes slowly and, at small image sizes, lose pixels of them)."""
    visual = (np.asarray(obj.mesh.vertices), np.asarray(obj.mesh.faces)) if len(obj.mesh.faces) <= MAX_VISUAL_FACES \
        else None
    return FreeBody("object", hulls=tuple(obj.pieces), mass=obj.mass, com=np.asarray(obj.com),
                    inertia=np.asarray(obj.inertia), visual=visual, rgba=tuple(obj.color))
