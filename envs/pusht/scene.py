"""The PushT4D scene for the rigid backends: table, walls, T block, robot, cameras (and the arm's drawn gantry)."""

from __future__ import annotations

from physics.rigid.spec import Box, Camera, FreeBody, Scene
from robots.control import CONTROL_DT

from ..robot_setup import RobotSetup, gantry_decorations
from . import geometry as geo

TABLE_RGBA = (0.78, 0.74, 0.68, 1.0)
WALL_RGBA = (0.45, 0.45, 0.5, 1.0)
BLOCK_RGBA = (0.47, 0.53, 0.6, 1.0)  # gym-pusht's LightSlateGray
PAD_RADIUS = 0.005


def _rect_box(name: str, rect: tuple[float, float, float, float], z0: float, z1: float, rgba) -> Box:
    xmin, ymin, xmax, ymax = rect
    return Box(
        name,
        ((xmax - xmin) / 2, (ymax - ymin) / 2, (z1 - z0) / 2),
        ((xmin + xmax) / 2, (ymin + ymax) / 2, (z0 + z1) / 2),
        rgba=rgba,
    )


def table() -> Box:
    """The table: top face at z = 0, larger than the workspace."""
    return _rect_box("table", (-0.75, -0.75, 0.75, 0.75), -0.04, 0.0, TABLE_RGBA)


def walls() -> tuple[Box, ...]:
    """Four walls, 0.05 m high, closing the square workspace."""
    h, t, H = geo.WORKSPACE / 2, geo.WALL_THICKNESS, geo.WALL_HEIGHT
    return (
        _rect_box("wall_south", (-h - t, -h - t, h + t, -h), 0.0, H, WALL_RGBA),
        _rect_box("wall_north", (-h - t, h, h + t, h + t), 0.0, H, WALL_RGBA),
        _rect_box("wall_west", (-h - t, -h, -h, h), 0.0, H, WALL_RGBA),
        _rect_box("wall_east", (h, -h, h + t, h), 0.0, H, WALL_RGBA),
    )


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
            _rect_box("block_bar", geo.BAR, 0.0, geo.HEIGHT, BLOCK_RGBA),
            _rect_box("block_stem", geo.STEM, 0.0, geo.HEIGHT, BLOCK_RGBA),
        ),
        mass=geo.MASS,
        feet=((-0.085, 0.025, z), (0.085, 0.025, z), (0.0, 0.185, z)),
        foot_radius=r,
    )


def make_scene(
    robot: RobotSetup, cameras: tuple[Camera, ...], friction: float = 0.5, timestep: float = 0.005,
    control_dt: float = CONTROL_DT, body: FreeBody | None = None,
) -> Scene:
    """The PushT4D `Scene` with ``robot``, ``cameras`` and body/table Coulomb ``friction`` (and, for the hanging
    arm, its gantry drawn as visual-only decorations); ``body`` is the pushed object (default: the T block)."""
    return Scene(
        table=table(),
        statics=walls(),
        body=t_block() if body is None else body,
        robot=robot.model,
        cameras=cameras,
        timestep=timestep,
        control_dt=control_dt,
        static_friction=friction,
        decorations=gantry_decorations(robot, geo.WORKSPACE / 2),
    )
