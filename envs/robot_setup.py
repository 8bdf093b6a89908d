"""The robots of the tabletop tasks, built from the Franka Panda URDF.

- ``"panda"``: the full 7-joint arm, hanging from an overhead xy gantry (base 0.9 m above
  the table, pointing down). A fixed-base Panda cannot hold a vertical tool 0.01 m above
  every point of the 0.853 m workspace (from any mount we tried, part of it is out of reach
  or beyond the joint limits), so the gantry carries the arm to the target while the arm's
  joint servos hold a pushing posture and yield under contact like a real arm.
- ``"panda_hand"``: the hand and fingers of the same URDF on a floating planar base.

Both hold the fingers closed, the hand pointing straight down, and the fingertips
``tcp_height`` above the table. `make_gripper` mounts any gripper of the library
(`robots.grippers`: ``"panda_hand"`` is one) or a user's URDF on the same floating base. Gripper
points and the simulators use the same `RobotDescription`, so the points follow the simulated
links exactly.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np
import shapely

from physics.rigid.spec import Box, Decoration, Link, MeshGeom, RobotModel
from robots.gripper_points import DEFAULT_GRIPPER_LINKS, link_mesh
from robots.grippers import GripperLike, gripper_description, gripper_spec
from robots.kinematics import ForwardKinematics
from robots.urdf import MeshRef, RobotDescription, load_description

ROBOTS = ("panda", "panda_hand")
# Fastest fingertip speed (m/s) the tasks accept. A hand throws the block at up to ~1.4 times its own speed, and a
# contact stops a body over a fixed time, so the block sinks into a wall by about 7.4 mm per m/s of impact speed in
# MuJoCo (time constant 0.02 s): at 0.75 m/s it stays within ~8 mm of the 20 mm wall; at 2-3 m/s it passes it, and
# faster hands also sink into the block far enough in one 5 ms step to throw it over the 0.05 m walls.
MAX_SPEED = 0.75
# The robot stalls once the block pushes back harder than this (N). Pushing a block that is free to move takes less
# (< 90 N measured at 0.5 m/s, reversals and impacts included: those pushes are unchanged by the limit), while a block
# jammed against a wall was squeezed with 400-1100 N into it (MuJoCo: 6 mm deep, tilted 5 deg) or climbed by the
# fingers and levered over it (PyBullet's torque-limited arm gives way upward).
MAX_PUSH_FORCE = 100.0
HAND_LINK = "panda_hand"
FINGER_JOINTS = ("panda_finger_joint1", "panda_finger_joint2")
ARM_JOINTS = tuple(f"panda_joint{i}" for i in range(1, 8))
CONTACT_LINKS = ("panda_leftfinger", "panda_rightfinger", "panda_hand")
# rendered with their visual meshes; the hand (7k faces) and arm links with their collision
# meshes, which software rendering draws several times faster (4.5 of 9.7 ms per step were the hand)
RENDER_VISUAL_LINKS = ("panda_leftfinger", "panda_rightfinger")
PANDA_BASE_HEIGHT = 0.9
# posture of the hanging arm: hand pointing down, fingertips 0.89 m below the base and 0.25 m
# beside it, every joint at least 7% of its range from its limits
PANDA_REST_Q = (1.438, -1.482, -0.57, -2.435, 2.484, 2.068, 0.039)
HAND_DOWN = np.array([[1.0, 0.0, 0.0], [0.0, -1.0, 0.0], [0.0, 0.0, -1.0]])  # hand z -> world -z
# the drawn gantry of the hanging arm (visual only): colours, clearance beyond the carriage's travel, sizes (m)
GANTRY_RGBA = (0.62, 0.64, 0.68, 1.0)  # rails and posts
BRIDGE_RGBA = (0.93, 0.68, 0.18, 1.0)
CARRIAGE_RGBA = (0.28, 0.28, 0.31, 1.0)
GANTRY_MARGIN = 0.12
GANTRY_BEAM = 0.03  # half width of rails, bridge and posts
GANTRY_FLOOR = -0.6  # where the posts start (the floor under the table)


def _rot_x(angle: float) -> np.ndarray:
    c, s = np.cos(angle), np.sin(angle)
    return np.array([[1, 0, 0], [0, c, -s], [0, s, c]])


@dataclass(frozen=True)
class RobotSetup:
    """A robot variant: its description, FK, simulator model and the map from qpos to link poses."""

    name: str
    desc: RobotDescription
    fk: ForwardKinematics
    model: RobotModel
    fingertip_offset: float  # distance from the hand (tcp link) origin to the fingertips along its z axis
    gripper_links: tuple[str, ...] = DEFAULT_GRIPPER_LINKS  # the links whose surfaces give the gripper points

    def base_pose(self, qpos: np.ndarray) -> np.ndarray:
        """World pose of the description's root link for robot joint values ``qpos`` (..., D)."""
        qpos = np.asarray(qpos, dtype=float)
        T = np.broadcast_to(self.model.base_pose, qpos.shape[:-1] + (4, 4)).copy()
        T[..., 0, 3] += qpos[..., 0]
        T[..., 1, 3] += qpos[..., 1]
        return T

    def joint_vector(self, qpos: np.ndarray) -> np.ndarray:
        """The description's actuated joint vector for robot joint values ``qpos`` (..., D).

        ``qpos`` = (gantry x, gantry y, arm joints..., then the held joints' values sorted by joint name), as the
        rigid backends' ``robot_qpos`` gives it (the Panda's: ..., finger1, finger2; finger2 mimics finger1).
        """
        return np.asarray(qpos, dtype=float)[..., self._joint_index]

    @cached_property
    def _joint_index(self) -> np.ndarray | slice:
        arm = list(self.model.arm_joints)
        held = sorted(self.model.fixed_joint_values)
        index = [2 + arm.index(n) if n in arm else 2 + len(arm) + held.index(n) for n in self.desc.actuated]
        if index == list(range(2, 2 + len(index))):
            return slice(2, 2 + len(index))
        return np.array(index, dtype=int)

    def link_poses(self, qpos: np.ndarray, links: tuple[str, ...]) -> np.ndarray:
        """World poses (..., len(links), 4, 4) of links for robot joint values ``qpos``."""
        return self.fk.link_poses(self.joint_vector(qpos), links, self.base_pose(qpos))

    def hand_pose(self, tcp_xy: np.ndarray) -> np.ndarray:
        """World pose of the hand (..., 4, 4) when the fingertips are centred at ``tcp_xy``."""
        tcp_xy = np.asarray(tcp_xy, dtype=float)
        T = np.broadcast_to(np.eye(4), tcp_xy.shape[:-1] + (4, 4)).copy()
        T[..., :3, :3] = HAND_DOWN
        T[..., 0, 3] = tcp_xy[..., 0]
        T[..., 1, 3] = tcp_xy[..., 1]
        T[..., 2, 3] = self.model.tcp_height + self.fingertip_offset
        return T

    def finger_outline(self, below: float) -> np.ndarray:
        """Closed convex outline (K, 2) in xy, relative to the fingertip centre, of the contact links' collision
        geometry lower than ``below`` m above the table (the part of the gripper that can touch an object
        that high), with the hand pointing down; empty when no contact geometry reaches that low."""
        q = np.array([self.model.fixed_joint_values.get(n, 0.0) for n in self.desc.actuated])
        links = tuple(k for k in self.model.contact_links if self.desc.collision.get(k))
        poses = self.fk.link_poses(q, (self.model.tcp_link,) + links)
        to_world = self.hand_pose(np.zeros(2)) @ np.linalg.inv(poses[0])
        low = []
        for link, T in zip(links, poses[1:], strict=True):
            v = link_mesh(self.desc, link, "collision").vertices @ (to_world @ T)[:3, :3].T + (to_world @ T)[:3, 3]
            low.append(v[v[:, 2] < below, :2])
        low = np.concatenate(low) if low else np.zeros((0, 2))
        if len(low) < 3:
            return np.zeros((0, 2))
        return np.asarray(shapely.MultiPoint(low).convex_hull.exterior.coords)


def gantry_decorations(robot: RobotSetup, reach: float) -> tuple[Decoration, ...]:
    """The overhead xy gantry that carries ``robot``'s hanging arm, as visual-only boxes (`Decoration`: no
    collision, no mass; the simulation is unchanged), for fingertip targets within ``reach`` m of the origin
    along x and y: two rails along x on four posts, a bridge along y riding on them (it moves with the gantry's
    x) and the carriage under the bridge that holds the arm's base (x and y). Empty for robots without an arm
    (a floating hand is its own carriage)."""
    model = robot.model
    if not model.floating or not model.arm_joints:
        return ()
    fixed = [model.fixed_joint_values[n] for n in sorted(model.fixed_joint_values)]
    q = np.concatenate([np.zeros(2), model.rest_q, fixed])
    tcp_xy = robot.link_poses(q, (model.tcp_link,))[0, :2, 3]  # fingertips with the gantry at the origin
    base = np.asarray(model.base_pose)[:3, 3]
    travel = np.abs(np.stack([-reach - tcp_xy, reach - tcp_xy])).max(axis=0)  # largest |gantry x|, |gantry y|
    X, Y = travel + GANTRY_MARGIN
    b, top = GANTRY_BEAM, base[2] + 0.05  # the carriage's top and the bridge's underside
    boxes = [
        (Box("gantry_carriage", (0.09, 0.09, 0.025), (base[0], base[1], top - 0.025), rgba=CARRIAGE_RGBA), "xy"),
        (Box("gantry_bridge", (b + 0.01, Y + b, b), (base[0], 0.0, top + b), rgba=BRIDGE_RGBA), "x"),
    ]
    for sy in (-1, 1):
        boxes.append((Box(f"gantry_rail_{sy:+d}", (X + b, b, b), (0.0, sy * Y, top - b), rgba=GANTRY_RGBA), "world"))
        for sx in (-1, 1):
            h = (top - 2 * b - GANTRY_FLOOR) / 2
            boxes.append((Box(f"gantry_post_{sx:+d}{sy:+d}", (b, b, h), (sx * X, sy * Y, GANTRY_FLOOR + h),
                              rgba=GANTRY_RGBA), "world"))
    return tuple(Decoration(box, carried) for box, carried in boxes)


def _link_mass(link: str, has_mesh: bool) -> float:
    if link == HAND_LINK:
        return 0.81
    if "finger" in link:
        return 0.1
    return 0.5 if has_mesh else 0.01


def _geom(ref: MeshRef) -> MeshGeom:
    return MeshGeom(ref.path, ref.T_link_mesh, ref.scale, ref.rgba, ref.shape, ref.size)


def _links(desc: RobotDescription, visual_links: tuple[str, ...] | None = RENDER_VISUAL_LINKS) -> tuple[Link, ...]:
    """The simulator links of ``desc``: ``visual_links`` are drawn with their visual geometry, the others with their
    collision geometry (None: every link with visual geometry draws it)."""

    def link(name: str, **joint) -> Link:
        if visual_links is None:
            shown = desc.visual.get(name) or desc.collision.get(name, ())
        else:
            shown = (desc.visual if name in visual_links else desc.collision).get(name, ())
        return Link(
            name=name,
            visual=tuple(_geom(r) for r in shown),
            collision=tuple(_geom(r) for r in desc.collision.get(name, ())),
            mass=_link_mass(name, bool(desc.visual.get(name))),
            **joint,
        )

    root = link(desc.root, parent=None, joint_name="", joint_type="fixed", joint_origin=np.eye(4),
                joint_axis=np.zeros(3))
    return (root,) + tuple(
        link(j.child, parent=j.parent, joint_name=j.name, joint_type=j.type, joint_origin=j.origin,
             joint_axis=j.axis, joint_range=(j.lower, j.upper))
        for j in desc.joints
    )


def gripper_robot(
    desc: RobotDescription, tcp_link: str, contact_links: tuple[str, ...], name: str = "gripper",
    tcp_offset: float = 0.0, tcp_height: float = 0.01, max_speed: float = 0.5,
    max_push_force: float = MAX_PUSH_FORCE, fixed_joint_values: dict[str, float] | None = None,
    visual_links: tuple[str, ...] | None = RENDER_VISUAL_LINKS, gripper_links: tuple[str, ...] | None = None,
) -> RobotSetup:
    """A floating gripper made of any URDF description (meshes or primitives) on the planar gantry.

    The ``tcp_link`` frame points down (its z axis along world -z, its x axis along world +x); the
    tool centre point, ``tcp_offset`` m along that z axis from its origin, is held ``tcp_height``
    above the table. ``contact_links`` collide with the free body; joints not in
    ``fixed_joint_values`` are held at 0. ``visual_links`` are drawn with their visual geometry
    (None: every link that has some), the others with their collision geometry. ``gripper_links`` give the
    gripper points (default: ``contact_links``).
    """
    for link in (tcp_link, *contact_links):
        desc.link_index(link)
    fixed = {n: 0.0 for n in desc.actuated} | dict(fixed_joint_values or {})
    q = np.array([fixed[n] for n in desc.actuated])
    T_root_tcp = ForwardKinematics(desc).link_poses(q, (tcp_link,))[0]
    tcp = np.eye(4)
    tcp[:3, :3] = HAND_DOWN
    tcp[2, 3] = tcp_height + tcp_offset
    model = RobotModel(
        name=name, links=_links(desc, visual_links), base_pose=tcp @ np.linalg.inv(T_root_tcp), floating=True,
        arm_joints=(), fixed_joint_values=fixed, tcp_link=tcp_link, tcp_offset=(0.0, 0.0, tcp_offset),
        tcp_height=tcp_height, tcp_quat=(0.0, 1.0, 0.0, 0.0), contact_links=tuple(contact_links), max_speed=max_speed,
        stiffness=2000.0, max_push_force=max_push_force,
    )
    return RobotSetup(name=name, desc=desc, fk=ForwardKinematics(desc), model=model, fingertip_offset=tcp_offset,
                      gripper_links=tuple(contact_links if gripper_links is None else gripper_links))


def make_gripper(spec: GripperLike = "panda_hand", tcp_height: float = 0.01, max_speed: float = 0.5,
                 max_push_force: float = MAX_PUSH_FORCE) -> RobotSetup:
    """The floating gripper ``spec`` (a `robots.grippers` library name, a user dict ``{"urdf", "links",
    "tcp_link"}`` or a `GripperSpec`) with its tool frame pointing down and its tool centre point ``tcp_height``
    above the table; ValueError names what is wrong with ``spec``."""
    spec = gripper_spec(spec)
    desc = gripper_description(spec)
    return gripper_robot(desc, spec.tcp_link, spec.links, name=spec.name, tcp_offset=spec.tcp_offset,
                         tcp_height=tcp_height, max_speed=max_speed, max_push_force=max_push_force,
                         fixed_joint_values=spec.joint_values(desc), visual_links=spec.visual_links,
                         gripper_links=spec.gripper_point_links)


def make_robot(name: str = "panda", tcp_height: float = 0.01, max_speed: float = 0.5,
               max_push_force: float = MAX_PUSH_FORCE) -> RobotSetup:
    """The robot variant ``name`` ("panda" or "panda_hand") with fingertips ``tcp_height`` above the table."""
    if name not in ROBOTS:
        raise ValueError(f"unknown robot {name!r}; allowed: {ROBOTS}")
    if name == "panda_hand":
        return make_gripper(name, tcp_height=tcp_height, max_speed=max_speed, max_push_force=max_push_force)
    full = load_description()
    finger = link_mesh(full, "panda_leftfinger", "collision")
    fingertip = float(full.joint("panda_finger_joint1").origin[2, 3] + finger.bounds[1, 2])
    fixed = {n: 0.0 for n in FINGER_JOINTS}  # fingers closed
    base = np.eye(4)
    base[:3, :3] = _rot_x(np.pi)
    base[2, 3] = PANDA_BASE_HEIGHT
    model = RobotModel(
        name=name, links=_links(full), base_pose=base, floating=True, arm_joints=ARM_JOINTS,
        fixed_joint_values=fixed, tcp_link=HAND_LINK, tcp_offset=(0.0, 0.0, fingertip),
        tcp_height=tcp_height, tcp_quat=(0.0, 1.0, 0.0, 0.0), rest_q=PANDA_REST_Q, contact_links=CONTACT_LINKS,
        max_speed=max_speed, stiffness=8000.0, max_push_force=max_push_force,
    )
    return RobotSetup(name=name, desc=full, fk=ForwardKinematics(full), model=model, fingertip_offset=fingertip)
