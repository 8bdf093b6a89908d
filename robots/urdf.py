"""URDF loading (yourdfpy) and a flat, engine-neutral description of a robot's kinematic tree.

`RobotDescription` is what the rest of the package consumes: links in topological order,
one joint per non-root link (origin, axis, limits, mimic), the actuated joints, and the
visual/collision geometry of every link with its local transform: mesh files and the URDF
primitives (box, cylinder, sphere), so a gripper built from primitives collides and gives
gripper points like one built from meshes. Forward kinematics
(`robots.kinematics`), gripper surface points (`robots.gripper_points`) and the simulator
scenes are all built from the same description, so they cannot disagree.
"""

from __future__ import annotations

import io
import os
import re
from dataclasses import dataclass, field, replace
from functools import lru_cache
from pathlib import Path

import numpy as np
import yourdfpy

JOINT_TYPES = ("fixed", "revolute", "continuous", "prismatic")
# an XML declaration whose version lxml refuses (pybullet_data's WSG-50 finger URDFs say version="0.0")
_BAD_XML_VERSION = re.compile(rb"""^(\s*<\?xml\s+version\s*=\s*["'])(?!1\.[01]["'])[^"']*(["'])""")
SHAPES = ("mesh", "box", "cylinder", "sphere")


@dataclass(frozen=True)
class MeshRef:
    """A geometry attached to a link, placed by ``T_link_mesh``: a mesh file (``shape="mesh"``: ``path``, scaled
    by ``scale``) or a URDF primitive centred on its frame (``path`` empty): ``"box"`` with ``size`` = its full
    extents (x, y, z), ``"cylinder"`` with ``size`` = (radius, length along z), ``"sphere"`` with (radius,)."""

    path: str
    T_link_mesh: np.ndarray
    scale: tuple[float, float, float] = (1.0, 1.0, 1.0)
    rgba: tuple[float, float, float, float] = (0.9, 0.9, 0.9, 1.0)
    shape: str = "mesh"
    size: tuple[float, ...] = ()


@dataclass(frozen=True)
class JointDesc:
    """The joint that connects ``parent`` to ``child``; ``origin`` is T_parent_joint at q = 0."""

    name: str
    type: str
    parent: str
    child: str
    origin: np.ndarray
    axis: np.ndarray
    lower: float = -np.inf
    upper: float = np.inf
    mimic: str | None = None
    mimic_multiplier: float = 1.0
    mimic_offset: float = 0.0


@dataclass(frozen=True)
class RobotDescription:
    """A kinematic tree: ``links[0]`` is the root; ``joints[i]`` has child ``links[i + 1]``.

    ``actuated`` lists the independent joint variables (non-fixed, non-mimic) in URDF order;
    a joint vector ``q`` of shape (..., len(actuated)) fully determines every link pose.
    """

    name: str
    links: tuple[str, ...]
    joints: tuple[JointDesc, ...]
    actuated: tuple[str, ...]
    visual: dict[str, tuple[MeshRef, ...]] = field(default_factory=dict)
    collision: dict[str, tuple[MeshRef, ...]] = field(default_factory=dict)
    source: str = ""

    @property
    def root(self) -> str:
        """Name of the root link."""
        return self.links[0]

    def link_index(self, name: str) -> int:
        """Index of link ``name`` in ``links``; ValueError names the available links."""
        try:
            return self.links.index(name)
        except ValueError:
            raise ValueError(f"unknown link {name!r}; links are {list(self.links)}") from None

    def joint(self, name: str) -> JointDesc:
        """The joint called ``name``."""
        for j in self.joints:
            if j.name == name:
                return j
        raise ValueError(f"unknown joint {name!r}; joints are {[j.name for j in self.joints]}")

    def joint_limits(self) -> tuple[np.ndarray, np.ndarray]:
        """Lower and upper limits of the actuated joints (inf for continuous joints)."""
        js = [self.joint(n) for n in self.actuated]
        return np.array([j.lower for j in js]), np.array([j.upper for j in js])

    def subtree(self, root: str) -> "RobotDescription":
        """The description of the links below (and including) ``root``; ``root`` becomes the base."""
        self.link_index(root)
        keep = {root}
        joints = []
        for j in self.joints:  # topological order: parents come first
            if j.parent in keep:
                keep.add(j.child)
                joints.append(j)
        links = tuple(k for k in self.links if k in keep)
        names = {j.name for j in joints}
        actuated = tuple(n for n in self.actuated if n in names)
        joints = [replace(j, mimic=None) if j.mimic is not None and j.mimic not in names else j for j in joints]
        return RobotDescription(
            name=f"{self.name}:{root}",
            links=links,
            joints=tuple(joints),
            actuated=actuated,
            visual={k: v for k, v in self.visual.items() if k in keep},
            collision={k: v for k, v in self.collision.items() if k in keep},
            source=self.source,
        )


def panda_urdf_path() -> Path:
    """Path of the Franka Panda URDF shipped in ``pybullet_data`` (used in place, never copied)."""
    import pybullet_data

    path = Path(pybullet_data.getDataPath()) / "franka_panda" / "panda.urdf"
    if not path.is_file():
        raise FileNotFoundError(f"the Franka Panda URDF is missing from pybullet_data: {path}")
    return path


def package_resolver(urdf_path: str | os.PathLike) -> "callable":
    """A yourdfpy filename handler that resolves ``package://`` and relative paths against the URDF folder."""
    folder = Path(urdf_path).resolve().parent

    def resolve(fname: str) -> str:
        if fname.startswith("package://"):
            rel = fname[len("package://"):]
            candidate = folder / rel
            if not candidate.exists():  # package://<pkg_name>/<rel>: drop the package name
                candidate = folder / rel.split("/", 1)[-1]
            return str(candidate)
        if fname.startswith("file://"):
            fname = fname[len("file://"):]
        return str(fname if os.path.isabs(fname) else folder / fname)

    return resolve


def load_urdf(path: str | os.PathLike, load_meshes: bool = False, build_scene_graph: bool = False) -> yourdfpy.URDF:
    """Load a URDF with yourdfpy, resolving ``package://`` and relative mesh paths against its folder.

    An XML declaration with a version that lxml refuses (pybullet_data's WSG-50 finger URDFs say "0.0")
    is read as XML 1.0. ``build_scene_graph=True`` enables yourdfpy's own forward kinematics (``get_transform``).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"URDF not found: {path}")
    source: str | io.BytesIO = str(path)
    extra = {}
    text = path.read_bytes()
    if _BAD_XML_VERSION.match(text):  # parse it as XML 1.0 instead of yourdfpy's logged-error fallback
        source = io.BytesIO(_BAD_XML_VERSION.sub(rb"\g<1>1.0\g<2>", text, count=1))
        extra["mesh_dir"] = str(path.parent)
    try:
        return yourdfpy.URDF.load(
            source,
            **extra,
            filename_handler=package_resolver(path),
            load_meshes=load_meshes,
            build_scene_graph=build_scene_graph or load_meshes,
            load_collision_meshes=load_meshes,
        )
    except (ValueError, TypeError, IndexError, KeyError) as err:  # e.g. "Unknown tag: capsule", an empty <geometry/>
        raise ValueError(f"cannot load URDF {path}: {type(err).__name__}: {err} (supported geometry: {SHAPES})"
                         ) from err


def _primitive(geometry, where: str) -> tuple[str, tuple[float, ...]]:
    """(shape, size) of a URDF box, cylinder or sphere; ValueError naming ``where`` for anything else."""
    if geometry.box is not None:
        shape, size = "box", tuple(float(v) for v in np.broadcast_to(geometry.box.size, 3))
    elif geometry.cylinder is not None:
        shape, size = "cylinder", (float(geometry.cylinder.radius), float(geometry.cylinder.length))
    elif geometry.sphere is not None:
        shape, size = "sphere", (float(geometry.sphere.radius),)
    else:
        raise ValueError(f"{where} has no supported geometry; supported: {SHAPES}")
    if not all(np.isfinite(size)) or min(size) <= 0:
        raise ValueError(f"{where}: {shape} dimensions must be positive, got {size}")
    return shape, size


def _mesh_refs(elements, resolve, material_colors: dict[str, tuple], where: str) -> tuple[MeshRef, ...]:
    refs = []
    for i, el in enumerate(elements):
        if el.geometry is None:
            raise ValueError(f"{where} element {i} has no geometry; supported: {SHAPES}")
        mesh = el.geometry.mesh
        origin = np.eye(4) if el.origin is None else np.asarray(el.origin, dtype=float)
        rgba = (0.9, 0.9, 0.9, 1.0)
        mat = getattr(el, "material", None)
        if mat is not None:
            if mat.color is not None:
                rgba = tuple(float(c) for c in mat.color.rgba)
            elif mat.name in material_colors:
                rgba = material_colors[mat.name]
        if mesh is None:
            shape, size = _primitive(el.geometry, f"{where} element {i}")
            refs.append(MeshRef(path="", T_link_mesh=origin, rgba=rgba, shape=shape, size=size))
            continue
        scale = (1.0, 1.0, 1.0) if mesh.scale is None else tuple(np.broadcast_to(mesh.scale, 3).astype(float))
        refs.append(MeshRef(path=resolve(mesh.filename), T_link_mesh=origin, scale=scale, rgba=rgba))
    return tuple(refs)


def describe(urdf: yourdfpy.URDF, urdf_path: str | os.PathLike) -> RobotDescription:
    """Flatten a loaded yourdfpy URDF into a `RobotDescription` (topological link order)."""
    robot = urdf.robot
    resolve = package_resolver(urdf_path)
    by_child = {j.child: j for j in robot.joints}
    children: dict[str, list] = {}
    for j in robot.joints:
        children.setdefault(j.parent, []).append(j)
    roots = [k.name for k in robot.links if k.name not in by_child]
    if len(roots) != 1:
        raise ValueError(f"URDF {urdf_path} must have exactly one root link, found {roots}")
    links, joints, stack = [roots[0]], [], list(reversed(children.get(roots[0], [])))
    while stack:
        j = stack.pop()
        if j.type not in JOINT_TYPES:
            raise ValueError(f"joint {j.name!r} has unsupported type {j.type!r}; supported: {JOINT_TYPES}")
        lim = j.limit
        lower = -np.inf if lim is None or lim.lower is None or j.type == "continuous" else float(lim.lower)
        upper = np.inf if lim is None or lim.upper is None or j.type == "continuous" else float(lim.upper)
        axis = np.array([1.0, 0.0, 0.0]) if j.axis is None else np.asarray(j.axis, dtype=float)
        if j.type != "fixed":
            axis = axis / np.linalg.norm(axis)
        joints.append(
            JointDesc(
                name=j.name,
                type=j.type,
                parent=j.parent,
                child=j.child,
                origin=np.eye(4) if j.origin is None else np.asarray(j.origin, dtype=float),
                axis=axis,
                lower=lower,
                upper=upper,
                mimic=None if j.mimic is None else j.mimic.joint,
                mimic_multiplier=1.0 if j.mimic is None else float(j.mimic.multiplier or 1.0),
                mimic_offset=0.0 if j.mimic is None else float(j.mimic.offset or 0.0),
            )
        )
        links.append(j.child)
        stack.extend(reversed(children.get(j.child, [])))
    actuated = tuple(j.name for j in joints if j.type != "fixed" and j.mimic is None)
    colors = {m.name: tuple(float(c) for c in m.color.rgba) for m in robot.materials if m.color is not None}
    link_by_name = {k.name: k for k in robot.links}
    return RobotDescription(
        name=robot.name,
        links=tuple(links),
        joints=tuple(joints),
        actuated=actuated,
        visual={n: _mesh_refs(link_by_name[n].visuals, resolve, colors, f"link {n!r}: visual") for n in links},
        collision={n: _mesh_refs(link_by_name[n].collisions, resolve, colors, f"link {n!r}: collision") for n in links},
        source=str(urdf_path),
    )


@lru_cache(maxsize=8)
def load_description(path: str | os.PathLike | None = None) -> RobotDescription:
    """Load and describe a URDF (default: the Franka Panda from pybullet_data); cached per path."""
    path = panda_urdf_path() if path is None else Path(path)
    return describe(load_urdf(path), path)
