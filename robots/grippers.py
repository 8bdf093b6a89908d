"""The gripper library of the tabletop tasks: floating grippers described by URDFs (DESIGN §12).

A `GripperSpec` names a URDF, the links of it that collide with the object (and give the gripper
points), the link whose frame is the tool frame, the tool centre point's offset along that frame's
z axis (e.g. to the fingertips), the values its joints are held at (fingers closed or at a pushing
width) and, optionally, the link at which to cut a subtree out of a larger robot. Mounted, the tool
frame points down (its z axis along world -z, its x axis along world +x) and the tool centre point
is held ``tcp_height`` above the table (`envs.robot_setup.make_gripper`).

`GRIPPERS` is the library: the Panda hand (the PushT4D default), the xArm gripper, a WSG-50 finger
and the PR2 gripper of ``pybullet_data`` (used in place, never copied), and a stick pusher of our
own (``robots/assets/stick.urdf``, URDF primitives only). `gripper_spec` resolves a library name or
a user's ``{"urdf": path, "links": [names], "tcp_link": name}`` (optional ``tcp_offset``,
``fixed_joint_values``, ``root_link``, ``name``); `gripper_description` loads a spec's URDF as the
`RobotDescription` that the simulators, forward kinematics and gripper points share. Anything
wrong (an unknown name, a missing file, a link or joint the URDF lacks) is a ValueError naming it.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, replace
from functools import lru_cache
from pathlib import Path
from typing import Any, Union

import numpy as np
import pybullet_data
import trimesh

from .gripper_points import DEFAULT_GRIPPER_LINKS
from .urdf import JointDesc, RobotDescription, load_description, panda_urdf_path

PYBULLET_DATA = Path(pybullet_data.getDataPath())
ASSETS = Path(__file__).resolve().parent / "assets"
USER_KEYS = ("urdf", "links", "tcp_link", "tcp_offset", "fixed_joint_values", "root_link", "name")
REQUIRED_KEYS = ("urdf", "links", "tcp_link")


@dataclass(frozen=True)
class GripperSpec:
    """A floating gripper made of a URDF (see the module docstring).

    ``links`` collide with the object and, unless ``point_links`` is given, give the gripper points
    (sampled on their visual geometry, as the tasks do). ``tcp_offset`` (m) is the tool centre
    point's distance from the ``tcp_link`` origin along its z axis. ``fixed_joint_values`` holds
    actuated joints (name, value) (the rest at 0; mimic joints follow their leader). ``root_link``
    cuts the subtree below that link out of a larger robot. ``tcp_frame`` = (parent link,
    (roll, pitch, yaw)) adds ``tcp_link`` as a frame fixed to that link with that rotation, for a
    gripper whose approach axis is no link's z axis. ``visual_links`` are drawn with their visual
    geometry, the other links with their collision geometry (None: every link with visual geometry).
    """

    name: str
    urdf: str
    links: tuple[str, ...]
    tcp_link: str
    tcp_offset: float = 0.0
    fixed_joint_values: tuple[tuple[str, float], ...] = ()
    root_link: str | None = None
    point_links: tuple[str, ...] = ()
    tcp_frame: tuple[str, tuple[float, float, float]] | None = None
    visual_links: tuple[str, ...] | None = None

    def __post_init__(self) -> None:
        """Make the spec hashable (its description is cached per spec): lists become tuples, a dict of joint
        values (name, value) pairs."""
        values = self.fixed_joint_values
        pairs = values.items() if isinstance(values, Mapping) else values
        object.__setattr__(self, "fixed_joint_values", tuple((str(n), float(v)) for n, v in pairs))
        for key in ("links", "point_links") + (("visual_links",) if self.visual_links is not None else ()):
            object.__setattr__(self, key, tuple(getattr(self, key)))
        if self.tcp_frame is not None:
            parent, rpy = self.tcp_frame
            object.__setattr__(self, "tcp_frame", (parent, tuple(float(a) for a in rpy)))
        object.__setattr__(self, "urdf", str(self.urdf))
        object.__setattr__(self, "tcp_offset", float(self.tcp_offset))

    @property
    def gripper_point_links(self) -> tuple[str, ...]:
        """The links whose surfaces give the gripper points."""
        return self.point_links or self.links

    def joint_values(self, desc: RobotDescription) -> dict[str, float]:
        """Value of every moving joint of ``desc`` (this spec's description), in tree order: the actuated joints
        from ``fixed_joint_values`` (default 0), each mimic joint from its leader (multiplier, offset)."""
        given = dict(self.fixed_joint_values)
        values = {n: float(given.get(n, 0.0)) for n in desc.actuated}
        out = {}
        for j in desc.joints:
            if j.type == "fixed":
                continue
            out[j.name] = values[j.name] if j.mimic is None else j.mimic_multiplier * values[j.mimic] + j.mimic_offset
        return out


def _pybullet(rel: str) -> str:
    return str(PYBULLET_DATA / rel)


PANDA_HAND = GripperSpec(
    name="panda_hand",
    urdf=str(panda_urdf_path()),
    links=("panda_leftfinger", "panda_rightfinger", "panda_hand"),
    tcp_link="panda_hand",
    # finger joint origin z (0.0584) + the top of the finger's collision mesh (0.053849): the fingertips
    tcp_offset=0.112249,
    fixed_joint_values=(("panda_finger_joint1", 0.0),),  # fingers closed (finger 2 mimics finger 1)
    root_link="panda_hand",
    point_links=DEFAULT_GRIPPER_LINKS,
    visual_links=("panda_leftfinger", "panda_rightfinger"),
)

XARM_LINKS = ("xarm_gripper_base_link", "left_outer_knuckle", "left_finger", "left_inner_knuckle",
              "right_outer_knuckle", "right_finger", "right_inner_knuckle")

# Each tcp_offset reaches the lowest point of the gripper's geometry (visual and collision, to 0.1 mm), so that
# nothing of it is below the tool height and its tip is at it.
GRIPPERS: dict[str, GripperSpec] = {
    "panda_hand": PANDA_HAND,
    # the xArm gripper of xArm6's URDF, cut at its base; drive_joint 0.85 rad (its upper limit): fingers closed, their
    # tips 0.1745 m below the base
    "xarm_gripper": GripperSpec(
        name="xarm_gripper", urdf=_pybullet("xarm/xarm6_with_gripper.urdf"), links=XARM_LINKS,
        tcp_link="xarm_gripper_base_link", tcp_offset=0.1745, fixed_joint_values=(("drive_joint", 0.85),),
        root_link="xarm_gripper_base_link",
    ),
    # pybullet_data ships the whole WSG-50 only as SDF; its URDF form is one finger (a 2 x 2 x 15 cm box collision,
    # the tip mesh as visual), the only part of the SDF gripper that collides: a finger-shaped pusher
    "wsg50_finger": GripperSpec(
        name="wsg50_finger", urdf=_pybullet("gripper/wsg50_one_motor_gripper_left_finger.urdf"), links=("baseLink",),
        tcp_link="baseLink", tcp_offset=0.1175,
    ),
    # the PR2 gripper points along its pole's +x axis: the tool frame is the pole's frame turned so that its z axis
    # is the pole's x axis; jaws closed (both joints at their lower limit 0), the fingertips 0.3226 m out
    "pr2_gripper": GripperSpec(
        name="pr2_gripper", urdf=_pybullet("pr2_gripper.urdf"),
        links=("gripper_pole", "left_gripper", "left_tip", "right_gripper", "right_tip"),
        tcp_link="pr2_gripper_tcp", tcp_offset=0.3226, tcp_frame=("gripper_pole", (0.0, np.pi / 2, 0.0)),
    ),
    # a cylinder 1 cm in radius and 10 cm long (ManiSkill's panda_stick tool); its frame is at the tip
    "stick": GripperSpec(name="stick", urdf=str(ASSETS / "stick.urdf"), links=("stick",), tcp_link="stick"),
}

GripperLike = Union[str, Mapping[str, Any], GripperSpec]


def _names(value: Any, key: str) -> tuple[str, ...]:
    if isinstance(value, str):
        value = (value,)
    try:
        names = tuple(value)
    except TypeError:
        raise ValueError(f"gripper {key!r} must be a list of link names, got {value!r}") from None
    if not names or not all(isinstance(n, str) and n for n in names):
        raise ValueError(f"gripper {key!r} must be a non-empty list of link names, got {value!r}")
    return names


def _user_spec(spec: Mapping[str, Any]) -> GripperSpec:
    unknown = sorted(set(spec) - set(USER_KEYS))
    if unknown:
        raise ValueError(f"unknown gripper keys {unknown}; allowed: {list(USER_KEYS)}")
    missing = [k for k in REQUIRED_KEYS if k not in spec]
    if missing:
        raise ValueError(f"a gripper dict needs the keys {list(REQUIRED_KEYS)}; missing {missing}")
    if not isinstance(spec["urdf"], (str, os.PathLike)):
        raise ValueError(f"gripper 'urdf' must be a path, got {spec['urdf']!r}")
    path = Path(spec["urdf"]).expanduser()
    if not path.is_file():
        raise ValueError(f"gripper URDF not found: {path}")
    if not isinstance(spec["tcp_link"], str):
        raise ValueError(f"gripper 'tcp_link' must be a link name, got {spec['tcp_link']!r}")
    offset = spec.get("tcp_offset", 0.0)
    try:
        offset = float(offset)
    except (TypeError, ValueError):
        raise ValueError(f"gripper 'tcp_offset' must be a number (m), got {offset!r}") from None
    if not np.isfinite(offset):
        raise ValueError(f"gripper 'tcp_offset' must be finite, got {offset}")
    joints = spec.get("fixed_joint_values") or {}
    if not isinstance(joints, Mapping) or not all(isinstance(k, str) for k in joints):
        raise ValueError(f"gripper 'fixed_joint_values' must map joint names to values, got {joints!r}")
    try:
        values = tuple((k, float(v)) for k, v in joints.items())
    except (TypeError, ValueError):
        raise ValueError(f"gripper 'fixed_joint_values' must be numbers, got {dict(joints)!r}") from None
    root = spec.get("root_link")
    if root is not None and not isinstance(root, str):
        raise ValueError(f"gripper 'root_link' must be a link name, got {root!r}")
    return GripperSpec(
        name=str(spec.get("name") or path.stem), urdf=str(path.resolve()), links=_names(spec["links"], "links"),
        tcp_link=spec["tcp_link"], tcp_offset=offset, fixed_joint_values=values, root_link=root,
    )


def gripper_spec(spec: GripperLike) -> GripperSpec:
    """The `GripperSpec` of a library name (`GRIPPERS`), a user dict ``{"urdf", "links", "tcp_link"}`` (optional
    ``tcp_offset`` (m, default 0: the ``tcp_link`` frame is the tool centre point), ``fixed_joint_values``,
    ``root_link``, ``name``) or a spec; checked against its URDF (`gripper_description`). ValueError names an
    unknown gripper (listing the library), a missing file, or links and joints the URDF lacks."""
    if isinstance(spec, GripperSpec):
        resolved = spec
    elif isinstance(spec, str):
        if spec not in GRIPPERS:
            raise ValueError(f"unknown gripper {spec!r}; library grippers: {sorted(GRIPPERS)} "
                             "(or a dict {'urdf': path, 'links': [names], 'tcp_link': name})")
        resolved = GRIPPERS[spec]
    elif isinstance(spec, Mapping):
        resolved = _user_spec(spec)
    else:
        raise ValueError(f"a gripper is a library name {sorted(GRIPPERS)} or a dict "
                         f"{{'urdf': path, 'links': [names], 'tcp_link': name}}, got {spec!r}")
    gripper_description(resolved)
    return resolved


def _with_frame(desc: RobotDescription, name: str, parent: str, rpy: tuple[float, float, float]) -> RobotDescription:
    """``desc`` with a geometry-less link ``name`` fixed to ``parent`` at its origin, rotated by ``rpy``."""
    joint = JointDesc(name=f"{name}_joint", type="fixed", parent=parent, child=name,
                      origin=trimesh.transformations.euler_matrix(*rpy, axes="sxyz"), axis=np.array([1.0, 0.0, 0.0]))
    return replace(desc, links=desc.links + (name,), joints=desc.joints + (joint,))


def _check_links(spec: GripperSpec, desc: RobotDescription) -> None:
    where = f"gripper {spec.name!r} ({spec.urdf}" + (f", cut at {spec.root_link!r})" if spec.root_link else ")")
    for key, names in (("links", spec.links), ("tcp_link", (spec.tcp_link,)), ("point_links", spec.point_links),
                       ("visual_links", spec.visual_links or ())):
        bad = [n for n in names if n not in desc.links]
        if bad:
            raise ValueError(f"{where}: {key} {bad} not in the URDF; its links are {list(desc.links)}")
    bad = [n for n, _ in spec.fixed_joint_values if n not in desc.actuated]
    if bad:
        raise ValueError(f"{where}: fixed_joint_values names joints {bad} that are not its actuated joints "
                         f"{list(desc.actuated)} (mimic joints follow their leader)")
    for n, value in spec.fixed_joint_values:
        j = desc.joint(n)
        if not j.lower - 1e-9 <= value <= j.upper + 1e-9:
            raise ValueError(f"{where}: fixed_joint_values[{n!r}] = {value} is outside the joint's limits "
                             f"[{j.lower}, {j.upper}]")
    for link in spec.links:
        if not desc.collision.get(link):
            raise ValueError(f"{where}: link {link!r} has no collision geometry, so it cannot touch the object")
    for link in spec.gripper_point_links:
        if not desc.visual.get(link):
            raise ValueError(f"{where}: link {link!r} has no visual geometry to give gripper points")
    for link in desc.links:
        for ref in desc.visual.get(link, ()) + desc.collision.get(link, ()):
            if ref.shape == "mesh" and not os.path.isfile(ref.path):
                raise ValueError(f"{where}: mesh file of link {link!r} not found: {ref.path}")


@lru_cache(maxsize=32)
def gripper_description(spec: GripperSpec) -> RobotDescription:
    """The `RobotDescription` of ``spec``'s gripper: its URDF (meshes and primitives), cut at ``root_link``, with
    its tool frame added where ``tcp_frame`` asks; checked (ValueError names a missing file, a bad URDF, or links,
    joints and geometry it lacks). Cached per spec."""
    if not os.path.isfile(spec.urdf):
        raise ValueError(f"gripper {spec.name!r}: URDF not found: {spec.urdf}")
    try:
        desc = load_description(spec.urdf)
    except FileNotFoundError as err:
        raise ValueError(f"gripper {spec.name!r}: {err}") from err
    if spec.root_link is not None:
        if spec.root_link not in desc.links:
            raise ValueError(f"gripper {spec.name!r} ({spec.urdf}): root_link {spec.root_link!r} not in the URDF; "
                             f"its links are {list(desc.links)}")
        desc = desc.subtree(spec.root_link)
    if spec.tcp_frame is not None:
        parent, rpy = spec.tcp_frame
        if parent not in desc.links:
            raise ValueError(f"gripper {spec.name!r} ({spec.urdf}): tcp_frame parent {parent!r} not in the URDF; "
                             f"its links are {list(desc.links)}")
        desc = _with_frame(desc, spec.tcp_link, parent, tuple(rpy))
    _check_links(spec, desc)
    return desc
