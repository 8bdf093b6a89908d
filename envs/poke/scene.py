"""The Poke4D scene without a rigid engine: table, kinematic robot and cameras, rendered by splatting.

- Table: the square ``|x|, |y| <= TABLE_HALF`` at z = 0, ray-cast once per camera into base
  frames (depth in metres, label 0) that every step's splats are composited onto.
- Robot: the URDF robot (`envs.robot_setup`) in its fixed posture with the fingers closed and
  the hand pointing down, translated as a whole so its fingertips sit at a point in space. Its
  links are placed by forward kinematics once; surface samples of them (``render``) are
  splatted with label 2 and (``contact``) touch the object; the observed gripper points are
  the env's `GripperPoints` placed by the same forward kinematics.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from physics.render import LABEL_ROBOT, LABEL_STATIC, Camera, Frames, orbit_cameras, splat_points
from physics.render.cameras import pixel_rays
from robots.gripper_points import DEFAULT_GRIPPER_LINKS, GripperPoints

from ..robot_setup import RobotSetup, make_robot

TABLE_HALF = 0.3
TABLE_COLORS = (np.array([0.78, 0.70, 0.58]), np.array([0.70, 0.62, 0.50]))  # checker squares of 5 cm
CHECKER = 0.05
ROBOT_COLORS = {"panda_hand": (0.85, 0.85, 0.88), "panda_leftfinger": (0.3, 0.3, 0.32),
                "panda_rightfinger": (0.3, 0.3, 0.32)}
ARM_COLOR = (0.92, 0.92, 0.92)


def poke_cameras(num: int, width: int, height: int) -> tuple[Camera, ...]:
    """``num`` cameras on a circle 0.6 m from the object, 0.5 m up, looking at (0, 0, 0.08)."""
    return orbit_cameras(num, width, height, radius=0.6, height_m=0.5, target=(0.0, 0.0, 0.08))


def table_frames(cameras: tuple[Camera, ...]) -> Frames:
    """Frames of the bare table (checkered, label 0) seen by ``cameras``; background has depth 0."""
    V, H, W = len(cameras), cameras[0].height, cameras[0].width
    rgb = np.zeros((V, H, W, 3), np.uint8)
    depth = np.zeros((V, H, W), np.float32)
    seg = np.full((V, H, W), LABEL_STATIC, np.int32)
    for c, cam in enumerate(cameras):
        T = np.asarray(cam.cam2world, dtype=float)
        rays = pixel_rays(cam) @ T[:3, :3].T  # world directions with camera-frame z = 1
        t = np.where(rays[..., 2] < -1e-9, -T[2, 3] / np.minimum(rays[..., 2], -1e-9), -1.0)
        hit = T[:3, 3] + t[..., None] * rays
        on = (t > 0) & (np.abs(hit[..., 0]) <= TABLE_HALF) & (np.abs(hit[..., 1]) <= TABLE_HALF)
        depth[c][on] = t[on]  # camera-frame z = t, since the rays have unit z
        square = (np.floor(hit[..., 0] / CHECKER) + np.floor(hit[..., 1] / CHECKER)).astype(np.int64) % 2
        color = np.where(square[..., None] == 0, TABLE_COLORS[0], TABLE_COLORS[1])
        rgb[c][on] = np.rint(color[on] * 255).astype(np.uint8)
    return Frames(rgb, depth, seg)


def rest_joint_values(robot: RobotSetup) -> np.ndarray:
    """The robot's joint vector in its holding posture: arm at ``rest_q``, fingers closed."""
    model = robot.model
    values = dict(zip(model.arm_joints, model.rest_q, strict=True))
    values.update(model.fixed_joint_values)
    return np.array([values.get(name, 0.0) for name in robot.desc.actuated])


class KinematicRobot:
    """The robot translated rigidly so that its fingertip centre is at a point ``tcp`` (3,).

    ``qpos(tcp)`` is (x, y, z of the fingertips, joint values...); ``gripper_points(tcp)`` the
    observed gripper points; ``render_points``/``contact_points`` are offsets from the tcp.
    """

    def __init__(self, robot: RobotSetup, num_gripper_points: int, seed: int, num_render_points: int = 768,
                 num_contact_points: int = 384):
        self.robot = robot
        self.joints = rest_joint_values(robot)
        # where the fingertips are with the gantry at the origin: the floating hand hangs above it,
        # the arm reaches out from it
        hand = robot.link_poses(np.concatenate([np.zeros(2), self.joints]), (robot.model.tcp_link,))[0]
        self.rest_tcp = hand[:3, :3] @ np.asarray(robot.model.tcp_offset, dtype=float) + hand[:3, 3]
        self.gripper = GripperPoints(robot.desc, DEFAULT_GRIPPER_LINKS, num_gripper_points, seed=seed)
        rest = self.link_poses(self.rest_tcp, self.gripper.links)
        self.gripper_offsets = self.gripper.place(rest)[0] - self.rest_tcp
        # touching: the observed points and denser samples of the hand's collision meshes
        touch = GripperPoints(robot.desc, DEFAULT_GRIPPER_LINKS, num_contact_points, seed=seed + 1, mesh="collision")
        self.contact_offsets = np.concatenate([self.gripper_offsets, touch.place(rest)[0] - self.rest_tcp])
        shown = tuple(link for link in robot.desc.links if robot.desc.collision.get(link))
        render = GripperPoints(robot.desc, shown, num_render_points, seed=seed + 2, mesh="collision")
        self.render_offsets = render.place(self.link_poses(self.rest_tcp, shown))[0] - self.rest_tcp
        self.render_colors = np.array([ROBOT_COLORS.get(render.links[i], ARM_COLOR) for i in render.link_ids])
        area = sum(_link_area(robot, link) for link in shown)
        self.render_radius = 1.2 * float(np.sqrt(area / num_render_points))

    def link_poses(self, tcp: np.ndarray, links: tuple[str, ...]) -> np.ndarray:
        """World poses (len(links), 4, 4) of ``links`` with the fingertips at ``tcp``."""
        q = np.concatenate([tcp[:2] - self.rest_tcp[:2], self.joints])
        T = self.robot.link_poses(q, links).copy()
        T[..., 2, 3] += tcp[2] - self.rest_tcp[2]
        return T

    def qpos(self, tcp: np.ndarray) -> np.ndarray:
        """Robot configuration (3 + D,): fingertip x, y, z, then the (held) joint values."""
        return np.concatenate([tcp, self.joints])

    def gripper_points(self, tcp: np.ndarray) -> np.ndarray:
        """Observed gripper points (Nr, 3) with the fingertips at ``tcp``."""
        return self.gripper_offsets + tcp


@lru_cache(maxsize=8)
def kinematic_robot(name: str, num_gripper_points: int, seed: int) -> KinematicRobot:
    """The cached `KinematicRobot` of robot ``name`` (its meshes are sampled once per process)."""
    return KinematicRobot(make_robot(name), num_gripper_points, seed)


def _link_area(robot: RobotSetup, link: str) -> float:
    from robots.gripper_points import link_mesh

    return float(link_mesh(robot.desc, link, "collision").area)


def render_scene(cameras: tuple[Camera, ...], table: Frames, object_points: np.ndarray, object_colors: np.ndarray,
                 object_radius: float, robot: KinematicRobot, tcp: np.ndarray) -> Frames:
    """Frames of the table, the deformed object (label 1) and the robot (label 2) by z-buffered splatting."""
    points = np.concatenate([object_points, robot.render_offsets + tcp])
    colors = np.concatenate([object_colors, robot.render_colors])
    labels = np.concatenate([np.ones(len(object_points), np.int32),
                             np.full(len(robot.render_offsets), LABEL_ROBOT, np.int32)])
    radius = np.concatenate([np.full(len(object_points), object_radius),
                             np.full(len(robot.render_offsets), robot.render_radius)])
    return splat_points(points, colors, labels, radius, cameras, base=table)
