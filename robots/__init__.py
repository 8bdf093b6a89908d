"""URDF loading (yourdfpy; meshes and box/cylinder/sphere primitives), batched forward kinematics (numpy and
torch), gripper surface points and the gripper library."""

from .gripper_points import (
    DEFAULT_GRIPPER_LINKS,
    GripperPoints,
    GripperTrajectory,
    finite_difference_motion,
    geometry_mesh,
    link_mesh,
    sample_surface,
)
from .grippers import GRIPPERS, GripperSpec, gripper_description, gripper_spec
from .kinematics import ForwardKinematics
from .transforms import quat_to_mat
from .urdf import JointDesc, MeshRef, RobotDescription, describe, load_description, load_urdf, panda_urdf_path

__all__ = [
    "DEFAULT_GRIPPER_LINKS",
    "ForwardKinematics",
    "GRIPPERS",
    "GripperPoints",
    "GripperSpec",
    "GripperTrajectory",
    "JointDesc",
    "MeshRef",
    "RobotDescription",
    "describe",
    "finite_difference_motion",
    "geometry_mesh",
    "gripper_description",
    "gripper_spec",
    "link_mesh",
    "load_description",
    "load_urdf",
    "panda_urdf_path",
    "quat_to_mat",
    "sample_surface",
]
