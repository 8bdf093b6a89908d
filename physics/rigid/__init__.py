"""Rigid-body backends for tabletop tasks: the engine-neutral scene description, the backend interface, engines."""

from physics.render import LABEL_OBJECT, LABEL_ROBOT, LABEL_STATIC, Camera, Frames

from .base import RigidBackend, SimState
from .spec import Box, Decoration, FreeBody, Light, Link, MeshGeom, RobotModel, Scene

BACKENDS = ("mujoco", "pybullet")


def make_backend(name: str, scene: Scene) -> RigidBackend:
    """The rigid backend ``name`` simulating ``scene``."""
    if name == "mujoco":
        from .mujoco_backend import MujocoBackend

        return MujocoBackend(scene)
    if name == "pybullet":
        from .pybullet_backend import PybulletBackend

        return PybulletBackend(scene)
    raise ValueError(f"unknown backend {name!r}; allowed: {BACKENDS}")


__all__ = [
    "BACKENDS", "Box", "Camera", "Decoration", "Frames", "FreeBody", "LABEL_OBJECT", "LABEL_ROBOT", "LABEL_STATIC",
    "Light", "Link", "MeshGeom", "RigidBackend", "RobotModel", "Scene", "SimState", "make_backend",
]
