"""URDF text of a `RobotModel` as the simulators see it: the robot's own links on a base mount.

The mount is either fixed at ``base_pose`` or a gantry (two prismatic joints along world x
and y at the base's height) carrying the robot, as in the MJCF model. Joints the robot
holds fixed (e.g. closed fingers) are written as fixed joints at their held value, and
only ``contact_links`` get collision geometry. Mesh paths are absolute; primitives (box, cylinder,
sphere) are written as URDF primitives.
"""

from __future__ import annotations

import numpy as np

from .mjcf import joint_transform
from .spec import Link, MeshGeom, RobotModel

GANTRY_LINKS = ("gantry_world", "gantry_x", "gantry_y")


def _rpy(R: np.ndarray) -> tuple[float, float, float]:
    """URDF roll-pitch-yaw (fixed axes x, y, z) of a rotation matrix."""
    pitch = float(np.arcsin(np.clip(-R[2, 0], -1.0, 1.0)))
    if abs(np.cos(pitch)) > 1e-9:
        roll = float(np.arctan2(R[2, 1], R[2, 2]))
        yaw = float(np.arctan2(R[1, 0], R[0, 0]))
    else:  # gimbal lock: put everything in yaw
        roll, yaw = 0.0, float(np.arctan2(-R[0, 1], R[1, 1]))
    return roll, pitch, yaw


def _origin(T: np.ndarray) -> str:
    x, y, z = (float(v) for v in T[:3, 3])
    r, p, w = _rpy(T[:3, :3])
    return f'<origin xyz="{x:.10g} {y:.10g} {z:.10g}" rpy="{r:.12g} {p:.12g} {w:.12g}"/>'


def _inertial(mass: float) -> str:
    i = max(mass, 1e-3) * 0.05**2 * 0.4
    return (f'<inertial><origin xyz="0 0 0" rpy="0 0 0"/><mass value="{max(mass, 1e-3):.6g}"/>'
            f'<inertia ixx="{i:.6g}" iyy="{i:.6g}" izz="{i:.6g}" ixy="0" ixz="0" iyz="0"/></inertial>')


def _geometry(g: MeshGeom) -> str:
    """The URDF geometry element of a mesh or primitive."""
    if g.shape == "mesh":
        sx, sy, sz = g.scale
        return f'<mesh filename="{g.path}" scale="{sx:.6g} {sy:.6g} {sz:.6g}"/>'
    if g.shape == "box":
        return '<box size="{:.10g} {:.10g} {:.10g}"/>'.format(*g.size)
    if g.shape == "cylinder":
        return f'<cylinder radius="{g.size[0]:.10g}" length="{g.size[1]:.10g}"/>'
    if g.shape == "sphere":
        return f'<sphere radius="{g.size[0]:.10g}"/>'
    raise ValueError(f"unknown geometry shape {g.shape!r}; supported: mesh, box, cylinder, sphere")


def _link(link: Link, collide: bool) -> str:
    parts = [f'<link name="{link.name}">', _inertial(link.mass)]
    for tag, geoms in (("visual", link.visual), ("collision", link.collision if collide else ())):
        for g in geoms:
            color = ""
            if tag == "visual":
                r, gg, b, a = g.rgba
                color = f'<material name="m_{link.name}"><color rgba="{r:.4g} {gg:.4g} {b:.4g} {a:.4g}"/></material>'
            parts.append(f"<{tag}>{_origin(np.asarray(g.T_link_mesh))}<geometry>{_geometry(g)}</geometry>{color}</{tag}>")
    parts.append("</link>")
    return "".join(parts)


def robot_urdf(robot: RobotModel) -> str:
    """URDF XML of ``robot`` on its mount (see the module docstring)."""
    arm = set(robot.arm_joints)
    out = [f'<?xml version="1.0"?><robot name="{robot.name}">']
    root = next(k for k in robot.links if k.parent is None)
    base = np.asarray(robot.base_pose, dtype=float)
    out.append(f'<link name="{GANTRY_LINKS[0]}">{_inertial(0.0)}</link>')
    if robot.floating:
        for name, parent, axis in (("base_x", GANTRY_LINKS[0], "1 0 0"), ("base_y", GANTRY_LINKS[1], "0 1 0")):
            child = GANTRY_LINKS[1] if name == "base_x" else GANTRY_LINKS[2]
            out.append(f'<link name="{child}">{_inertial(0.01)}</link>')
            z = base[2, 3] if name == "base_x" else 0.0
            out.append(f'<joint name="{name}" type="prismatic"><parent link="{parent}"/><child link="{child}"/>'
                       f'<origin xyz="0 0 {z:.10g}" rpy="0 0 0"/><axis xyz="{axis}"/>'
                       f'<limit lower="-2" upper="2" effort="1000" velocity="10"/></joint>')
        mount = np.eye(4)
        mount[:3, :3] = base[:3, :3]
        parent = GANTRY_LINKS[2]
    else:
        mount, parent = base, GANTRY_LINKS[0]
    out.append(f'<joint name="mount" type="fixed"><parent link="{parent}"/><child link="{root.name}"/>'
               f"{_origin(mount)}</joint>")
    for link in robot.links:
        out.append(_link(link, link.name in robot.contact_links))
        if link.parent is None:
            continue
        if link.joint_name in arm:
            lo, hi = link.joint_range
            kind = "revolute" if link.joint_type == "revolute" else "prismatic"
            ax = " ".join(f"{v:.10g}" for v in link.joint_axis)
            out.append(f'<joint name="{link.joint_name}" type="{kind}"><parent link="{link.parent}"/>'
                       f'<child link="{link.name}"/>{_origin(np.asarray(link.joint_origin))}<axis xyz="{ax}"/>'
                       f'<limit lower="{lo:.6g}" upper="{hi:.6g}" effort="1000" velocity="10"/></joint>')
        else:
            T = joint_transform(link, robot.fixed_joint_values.get(link.joint_name, 0.0))
            out.append(f'<joint name="{link.joint_name}" type="fixed"><parent link="{link.parent}"/>'
                       f'<child link="{link.name}"/>{_origin(T)}</joint>')
    out.append("</robot>")
    # one element per line: Bullet's URDF reader breaks lines longer than 8 kB (mid-attribute)
    return "".join(out).replace("><", ">\n<")
