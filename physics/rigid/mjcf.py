"""Build a MuJoCo MJCF model (XML text) from an engine-neutral `Scene`.

Contact filtering: statics collide only with the free body; the robot's ``contact_links``
collide only with the free body (never the table or walls: the tool is held above the
table). Friction: statics and robot geoms have a higher ``priority`` than the free body, so
MuJoCo uses their coefficient for each pair (rather than the maximum of the two). The
robot's contacts are stiffer than MuJoCo's default (time constant 10 ms, impedance
0.95-0.99): the pusher sinks less into the block, which brings pushes closer to PyBullet's
hard contacts (median block difference over the parity scenarios 31 -> 19 mm). Visual geoms are in group 1
(the robot's in group 2, so that a renderer can draw the robot apart from the rest, `mujoco_render`),
robot collision geoms and free bodies' contact feet (under the body, never in view) in group 3 (not rendered).
Robot geometry is a mesh or a URDF primitive (box, cylinder, sphere).
The robot is gravity-compensated and servoed by position actuators. A free body of boxes gets uniform density;
one of convex pieces (``hulls``) its given inertia (``fullinertia``) and massless mesh geoms of the pieces.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import trimesh

from .spec import Box, FreeBody, Link, MeshGeom, RobotModel, Scene

STATIC_BITS = 'contype="1" conaffinity="0" priority="1"'
BODY_BITS = 'contype="1" conaffinity="3"'
ROBOT_BITS = 'contype="2" conaffinity="0" priority="1"'
VISUAL_ONLY = 'contype="0" conaffinity="0" group="1"'
ROBOT_VISUAL = 'contype="0" conaffinity="0" group="2"'
HIDDEN = 'group="3"'  # collision-only geoms, not rendered: robot collision meshes, a free body's hulls and contact feet
ROBOT_SOLREF = "0.01 1"
ROBOT_SOLIMP = "0.95 0.99 0.001"
# MuJoCo sizes of the URDF primitives: box half extents, cylinder (radius, half length), sphere radius
PRIMITIVE_SIZES = {
    "box": lambda size: np.asarray(size) / 2,
    "cylinder": lambda size: (size[0], size[1] / 2),
    "sphere": lambda size: size[:1],
}


@lru_cache(maxsize=64)
def mesh_asset(path: str, scale: tuple[float, float, float]) -> bytes:
    """A mesh file merged into one binary STL (MuJoCo's OBJ reader keeps only the first object)."""
    mesh = trimesh.load(path, force="mesh", process=False)
    mesh.apply_scale(scale)
    return mesh.export(file_type="stl")


def _f(v) -> str:
    return " ".join(f"{float(x):.10g}" for x in np.ravel(v))


def mat_to_quat(R: np.ndarray) -> np.ndarray:
    """Rotation matrix -> unit quaternion (w, x, y, z) with w >= 0."""
    import mujoco

    q = np.zeros(4)
    mujoco.mju_mat2Quat(q, np.ascontiguousarray(R, dtype=np.float64).ravel())
    return q if q[0] >= 0 else -q


def joint_transform(link: Link, value: float) -> np.ndarray:
    """T_parent_link of ``link`` with its joint at ``value``."""
    T = np.eye(4)
    a = np.asarray(link.joint_axis, dtype=float)
    if link.joint_type == "prismatic":
        T[:3, 3] = a * value
    elif link.joint_type == "revolute" and value != 0.0:
        K = np.array([[0, -a[2], a[1]], [a[2], 0, -a[0]], [-a[1], a[0], 0]])
        T[:3, :3] = np.eye(3) + np.sin(value) * K + (1 - np.cos(value)) * K @ K
    return np.asarray(link.joint_origin, dtype=float) @ T


def _box(b: Box, bits: str, extra: str = "") -> str:
    return (
        f'<geom name="{b.name}" type="box" size="{_f(b.half_size)}" pos="{_f(b.pos)}" '
        f'quat="{_f(b.quat)}" rgba="{_f(b.rgba)}" {bits} {extra}/>'
    )


def _pose_attr(T: np.ndarray) -> str:
    return f'pos="{_f(T[:3, 3])}" quat="{_f(mat_to_quat(T[:3, :3]))}"'


class _RobotWriter:
    """Writes the robot's assets and nested bodies."""

    def __init__(self, robot: RobotModel):
        self.robot = robot
        self.assets: list[str] = []
        self.files: dict[str, bytes] = {}
        self.children: dict[str | None, list[Link]] = {}
        for link in robot.links:
            self.children.setdefault(link.parent, []).append(link)
        self.arm = set(robot.arm_joints)

    def _shape(self, name: str, g: MeshGeom) -> str:
        """The geom's type and size attributes (mesh geoms also register their asset)."""
        if g.shape == "mesh":
            self.files[f"{name}.stl"] = mesh_asset(g.path, tuple(g.scale))
            self.assets.append(f'<mesh name="{name}" file="{name}.stl"/>')
            return f'type="mesh" mesh="{name}"'
        if g.shape not in PRIMITIVE_SIZES:
            raise ValueError(f"geometry {name!r} has unknown shape {g.shape!r}; "
                             f"supported: mesh, {tuple(PRIMITIVE_SIZES)}")
        return f'type="{g.shape}" size="{_f(PRIMITIVE_SIZES[g.shape](g.size))}"'

    def _meshes(self, link: Link) -> str:
        out = []
        for kind, geoms in (("v", link.visual), ("c", link.collision if link.name in self.robot.contact_links else ())):
            for i, g in enumerate(geoms):
                name = f"{link.name}_{kind}{i}"
                attrs = ROBOT_VISUAL if kind == "v" else (
                    f'{ROBOT_BITS} group="3" friction="{self.robot.friction:.6g} 0.005 0.0001" '
                    f'solref="{ROBOT_SOLREF}" solimp="{ROBOT_SOLIMP}"')
                out.append(
                    f'<geom name="{name}" {self._shape(name, g)} {_pose_attr(g.T_link_mesh)} '
                    f'rgba="{_f(g.rgba)}" mass="0" {attrs}/>'
                )
        return "\n".join(out)

    def body(self, link: Link, T: np.ndarray, extra_joints: str = "") -> str:
        r = self.robot
        joint = ""
        if link.name in {k.name for k in r.links if k.joint_name in self.arm}:
            kind = "hinge" if link.joint_type == "revolute" else "slide"
            lo, hi = link.joint_range
            rng = f'range="{lo:.6g} {hi:.6g}"' if np.isfinite(lo) and np.isfinite(hi) else ""
            joint = (f'<joint name="{link.joint_name}" type="{kind}" axis="{_f(link.joint_axis)}" {rng} '
                     'armature="0.1" damping="1"/>')
        inertia = max(link.mass, 1e-3) * 0.05**2 * 0.4
        site = ""
        if link.name == r.tcp_link:
            site = f'<site name="tcp" pos="{_f(r.tcp_offset)}" size="0.005"/>'
        kids = "\n".join(
            self.body(c, joint_transform(c, 0.0) if c.joint_name in self.arm
                      else joint_transform(c, r.fixed_joint_values.get(c.joint_name, 0.0)))
            for c in self.children.get(link.name, [])
        )
        return (
            f'<body name="{link.name}" {_pose_attr(T)} gravcomp="1">{extra_joints}{joint}'
            f'<inertial pos="0 0 0" mass="{max(link.mass, 1e-3):.6g}" diaginertia="{_f([inertia] * 3)}"/>'
            f"{self._meshes(link)}{site}{kids}</body>"
        )

    def tree(self) -> str:
        r = self.robot
        (root,) = self.children[None]
        if not r.floating:
            return self.body(root, np.asarray(r.base_pose))
        # A massless-looking carriage with two horizontal slides carries the floating base.
        z = float(r.base_pose[2, 3])
        slides = (
            '<joint name="base_x" type="slide" axis="1 0 0" armature="0.1" damping="1"/>'
            '<joint name="base_y" type="slide" axis="0 1 0" armature="0.1" damping="1"/>'
        )
        T_root = np.eye(4)
        T_root[:3, :3] = r.base_pose[:3, :3]
        return (
            f'<body name="carriage" pos="0 0 {z:.10g}" gravcomp="1">{slides}'
            f'<inertial pos="0 0 0" mass="0.01" diaginertia="1e-5 1e-5 1e-5"/>'
            f"{self.body(root, T_root)}</body>"
        )

    def actuators(self) -> str:
        r = self.robot
        # gantry slides: critically damped for the whole robot's mass; arm joints: stiff servos
        mass = sum(max(k.mass, 1e-3) for k in r.links)
        gains = [(n, r.stiffness, 2.0 * np.sqrt(r.stiffness * mass)) for n in ("base_x", "base_y") if r.floating]
        arm_kp = r.stiffness if not r.floating else r.stiffness / 4
        gains += [(n, arm_kp, 2.0 * np.sqrt(arm_kp * 0.5)) for n in r.arm_joints]
        return "\n".join(f'<position name="act_{n}" joint="{n}" kp="{kp:.6g}" kv="{kv:.6g}"/>' for n, kp, kv in gains)


def _free_body(body: FreeBody) -> str:
    """The free body's MJCF: a free joint, its boxes (uniform density) and massless contact feet."""
    volume = sum(8 * np.prod(b.half_size) for b in body.boxes)
    density = body.mass / volume
    geoms = "\n".join(
        [_box(b, BODY_BITS, f'density="{density:.10g}"') for b in body.boxes]
        + [f'<geom name="{body.name}_foot{i}" type="sphere" size="{body.foot_radius:.6g}" pos="{_f(p)}" '
           f'mass="0" rgba="{_f(body.boxes[0].rgba)}" {BODY_BITS} {HIDDEN}/>' for i, p in enumerate(body.feet)]
    )
    return f'<body name="{body.name}" pos="0 0 0"><freejoint name="{body.name}_free"/>{geoms}</body>'


def _hull_body(body: FreeBody, files: dict[str, bytes]) -> tuple[str, str]:
    """The MJCF (assets, body) of a free body of convex pieces: a free joint, the given mass, centre of mass and
    full inertia, one massless mesh geom per hull (MuJoCo collides with its convex hull), massless feet, and the
    visual mesh (a visual-only geom; its STL goes into ``files``) with the hulls then hidden (group 3)."""
    n = body.name
    assets = [f'<mesh name="{n}_hull{i}" vertex="{_f(h)}"/>' for i, h in enumerate(body.hulls)]
    hidden = HIDDEN if body.visual is not None else ""
    geoms = [f'<geom name="{n}_hull{i}" type="mesh" mesh="{n}_hull{i}" mass="0" rgba="{_f(body.rgba)}" '
             f"{BODY_BITS} {hidden}/>" for i in range(len(body.hulls))]
    geoms += [f'<geom name="{n}_foot{i}" type="sphere" size="{body.foot_radius:.6g}" pos="{_f(p)}" '
              f'mass="0" rgba="{_f(body.rgba)}" {BODY_BITS} {HIDDEN}/>' for i, p in enumerate(body.feet)]
    if body.visual is not None:
        files[f"{n}_visual.stl"] = trimesh.Trimesh(*body.visual, process=False).export(file_type="stl")
        # shell inertia: any surface is accepted (the geom is massless; MuJoCo still measures every mesh)
        assets.append(f'<mesh name="{n}_visual" file="{n}_visual.stl" inertia="shell"/>')
        geoms.append(f'<geom name="{n}_visual" type="mesh" mesh="{n}_visual" mass="0" rgba="{_f(body.rgba)}" '
                     f"{VISUAL_ONLY}/>")
    I_ = np.asarray(body.inertia)
    inertial = (f'<inertial pos="{_f(body.com)}" mass="{body.mass:.10g}" '
                f'fullinertia="{_f([I_[0, 0], I_[1, 1], I_[2, 2], I_[0, 1], I_[0, 2], I_[1, 2]])}"/>')
    xml = f'<body name="{n}" pos="0 0 0"><freejoint name="{n}_free"/>{inertial}{"".join(geoms)}</body>'
    return "".join(assets), xml


def scene_to_mjcf(scene: Scene) -> tuple[str, dict[str, bytes]]:
    """The MJCF XML of ``scene`` and its mesh assets (file name -> bytes) for ``MjModel.from_xml_string``."""
    robot = _RobotWriter(scene.robot)
    robot_xml = robot.tree()
    body_assets, body_xml, files = "", "", dict(robot.files)
    if scene.body is not None and scene.body.hulls:
        body_assets, body_xml = _hull_body(scene.body, files)
    elif scene.body is not None:
        body_xml = _free_body(scene.body)
    statics = "\n".join(
        _box(b, STATIC_BITS, f'friction="{scene.static_friction:.6g} 0.005 0.0001"') for b in scene.statics
    )
    t = scene.table
    top = t.pos[2] + t.half_size[2]
    table = (
        # (a plane's third size is its rendering grid spacing: one cell keeps software rendering cheap)
        f'<geom name="{t.name}" type="plane" '
        f'size="{t.half_size[0]:.6g} {t.half_size[1]:.6g} {2 * max(t.half_size):.6g}" '
        f'pos="{t.pos[0]:.6g} {t.pos[1]:.6g} {top:.10g}" rgba="{_f(t.rgba)}" {STATIC_BITS} '
        f'friction="{scene.static_friction:.6g} 0.005 0.0001"/>'
    )
    cams = []
    for c in scene.cameras:
        centred = abs(c.cx - (c.width - 1) / 2) <= 1e-6 and abs(c.cy - (c.height - 1) / 2) <= 1e-6
        if abs(c.fx - c.fy) > 1e-6 * c.fx or not centred:
            raise ValueError(f"camera {c.name!r}: MuJoCo cameras need fx == fy and a centred principal point")
        R = np.asarray(c.cam2world)[:3, :3]
        xyaxes = np.concatenate([R[:, 0], -R[:, 1]])  # OpenCV (x right, y down) -> MuJoCo (x right, y up)
        cams.append(
            f'<camera name="{c.name}" pos="{_f(c.cam2world[:3, 3])}" xyaxes="{_f(xyaxes)}" fovy="{c.fovy_deg:.10g}"/>'
        )
    width = max([c.width for c in scene.cameras] + [64])
    height = max([c.height for c in scene.cameras] + [64])
    xml = f"""<mujoco model="tabletop">
  <compiler angle="radian" autolimits="true" inertiafromgeom="auto"/>
  <option timestep="{scene.timestep:.10g}" integrator="implicitfast" cone="elliptic" impratio="1"/>
  <visual>
    <quality shadowsize="0" offsamples="0"/>
    <global offwidth="{width}" offheight="{height}"/>
    <map znear="0.02" zfar="5"/>
    <headlight ambient="0.35 0.35 0.35" diffuse="0.45 0.45 0.45" specular="0 0 0"/>
  </visual>
  <statistic extent="1" center="0 0 0.2"/>
  <asset>
    {"".join(robot.assets)}{body_assets}
  </asset>
  <worldbody>
    <light name="sun" pos="0.3 -0.3 2.0" dir="-0.15 0.15 -1" directional="true" castshadow="false"
           diffuse="0.5 0.5 0.5" specular="0 0 0"/>
    {table}
    {statics}
    {body_xml}
    {robot_xml}
    {"".join(cams)}
  </worldbody>
  <actuator>
    {robot.actuators()}
  </actuator>
</mujoco>
"""
    return xml, files
