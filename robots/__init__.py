"""URDF loading (yourdfpy), batched forward kinematics (numpy and torch) and gripper surface points."""

from .gripper_points import DEFAULT_GRIPPER_LINKS, GripperPoints, GripperTrajectory, link_mesh, sample_surface
from .kinematics import ForwardKinematics
from .urdf import JointDesc, MeshRef, RobotDescription, describe, load_description, load_urdf, panda_urdf_path

__all__ = [
    "DEFAULT_GRIPPER_LINKS",
    "ForwardKinematics",
    "GripperPoints",
    "GripperTrajectory",
    "JointDesc",
    "MeshRef",
    "RobotDescription",
    "describe",
    "link_mesh",
    "load_description",
    "load_urdf",
    "panda_urdf_path",
    "sample_surface",
]
