"""The PushT4D scene for the rigid backends: table, walls, T block, robot, cameras (and the arm's drawn gantry)."""

from __future__ import annotations

from physics.rigid.spec import Camera, FreeBody, Scene
from robots.control import CONTROL_DT

from .. import workspace
from ..robot_setup import RobotSetup
from ..workspace import rect_box
from . import geometry as geo

BLOCK_RGBA = (0.47, 0.53, 0.6, 1.0)  # gym-pusht's LightSlateGray
PAD_RADIUS = 0.005


def t_block() -> FreeBody:
    """The T block: two boxes in the block frame (uniform density, 0.8 kg) resting on three pads.

    The pads (5 mm spheres under both ends of the bar and the end of the stem, reaching
    ``geo.PAD_CLEARANCE`` below the block) carry it on the table, so the friction under the
    block is statically determinate and the same in every engine.
    """
    r, z = PAD_RADIUS, PAD_RADIUS - geo.PAD_CLEARANCE
    return FreeBody(
        "block",
        (
            rect_box("block_bar", geo.BAR, 0.0, geo.HEIGHT, BLOCK_RGBA),
            rect_box("block_stem", geo.STEM, 0.0, geo.HEIGHT, BLOCK_RGBA),
        ),
        mass=geo.MASS,
        feet=((-0.085, 0.025, z), (0.085, 0.025, z), (0.0, 0.185, z)),
        foot_radius=r,
    )


def make_scene(
    robot: RobotSetup, cameras: tuple[Camera, ...], friction: float = 0.5, timestep: float = 0.005,
    control_dt: float = CONTROL_DT,
) -> Scene:
    """The PushT4D `Scene`: the workspace (`envs.workspace.make_scene`) with the T block, ``robot``, ``cameras``
    and block/table Coulomb ``friction``."""
    return workspace.make_scene(robot, cameras, t_block(), friction=friction, timestep=timestep,
                                control_dt=control_dt)
