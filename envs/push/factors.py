"""Factors of variation of Push4D-v0 (``randomize=``, DESIGN §12): checked once, drawn per reset, reported in ``info``.

`parse_randomize` checks the ``randomize`` dict and gives the `Factors` to draw; `Factors.draw` draws one episode's
values through the env's generator, always in the order of `FACTORS` (each factor asked for takes its draws, the
others none), as a `Draw`; `Draw.report` is what ``info["randomization"]`` holds. `scaled_object` and `with_mass`
give the episode's object, `moved_cameras` its cameras. The env (`envs.push.env.Push4DEnv`) applies a draw.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import shapely
from shapely.affinity import scale as scale_geometry

from physics.render import Camera, look_at
from physics.rigid import Light
from robots.grippers import GripperSpec, gripper_spec

from ..objects import RigidObject

FACTORS = ("scale", "mass", "friction", "object_color", "table_color", "light", "camera_pose", "gripper")  # draw order
RANGES = {  # factor: (largest allowed value, what it is)
    "scale": (5.0, "a factor of the object's size"),
    "mass": (100.0, "the object's mass in kg"),
    "friction": (10.0, "the object-table and object-wall Coulomb coefficient"),
}
MAX_CAMERA_JITTER = 0.3  # m: the largest camera_pose jitter
LIGHT_ELEVATION = (np.radians(30.0), np.radians(90.0))  # rad: the drawn light comes from this high above the horizon
LIGHT_INTENSITY = (0.5, 1.5)  # the drawn light's intensity, a factor of the scene's own directional light


def _real(v: Any) -> bool:
    return isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, (bool, np.bool_)) \
        and bool(np.isfinite(v))


def _range(key: str, value: Any) -> tuple[float, float]:
    top, meaning = RANGES[key]
    pair = tuple(value) if isinstance(value, (Sequence, np.ndarray)) and not isinstance(value, str) else ()
    if not (len(pair) == 2 and all(_real(v) for v in pair) and 0 < pair[0] <= pair[1] <= top):
        raise ValueError(f"randomize[{key!r}] must be a range [lo, hi] with 0 < lo <= hi <= {top:g} ({meaning}), "
                         f"got {value!r}")
    return float(pair[0]), float(pair[1])


def _rgba(value: Any) -> tuple[float, float, float, float] | None:
    """``value`` as rgba, None unless it is 3 or 4 real numbers in [0, 1]."""
    if not isinstance(value, (Sequence, np.ndarray)) or isinstance(value, str) or len(value) not in (3, 4) \
            or not all(_real(v) and 0 <= v <= 1 for v in value):
        return None
    return tuple(float(v) for v in value) + ((1.0,) if len(value) == 3 else ())


def _colors(key: str, value: Any) -> bool | tuple[tuple[float, ...], ...]:
    """True (draw any colour) or the colours (rgba) to draw from."""
    if value is True:
        return True
    ok = isinstance(value, (Sequence, np.ndarray)) and not isinstance(value, str) and len(value) > 0
    colors = tuple(_rgba(v) for v in value) if ok else (None,)
    if any(c is None for c in colors):
        raise ValueError(f"randomize[{key!r}] must be True (a random rgb colour) or a non-empty list of colours to "
                         f"draw from, each 3 or 4 numbers in [0, 1] (rgb or rgba), e.g. [[1, 0, 0], [0, 0, 1]]; "
                         f"got {value!r}")
    return colors


@dataclass(frozen=True)
class Draw:
    """One episode's factor values (None: not asked for). ``gripper`` indexes `Factors.grippers`."""

    scale: float | None = None
    mass: float | None = None
    friction: float | None = None
    object_rgba: tuple[float, float, float, float] | None = None
    table_rgba: tuple[float, float, float, float] | None = None
    light: Light | None = None
    camera_offsets: np.ndarray | None = None
    gripper: int | None = None
    gripper_name: str | None = None

    def report(self) -> dict[str, Any]:
        """The values as ``info["randomization"]`` holds them: plain floats, lists and strings (a new dict)."""
        out: dict[str, Any] = {}
        for key in ("scale", "mass", "friction"):
            if getattr(self, key) is not None:
                out[key] = float(getattr(self, key))
        for key, value in (("object_color", self.object_rgba), ("table_color", self.table_rgba)):
            if value is not None:
                out[key] = [float(v) for v in value]
        if self.light is not None:
            out["light_direction"] = [float(v) for v in self.light.direction]
            out["light_intensity"] = float(self.light.intensity)
        if self.camera_offsets is not None:
            out["camera_offsets"] = np.asarray(self.camera_offsets, dtype=float).tolist()
        if self.gripper_name is not None:
            out["gripper"] = self.gripper_name
        return out


@dataclass(frozen=True)
class Factors:
    """The checked ``randomize`` dict: ranges [lo, hi], colour choices (True: any rgb colour), whether to draw a
    light, the cameras' jitter (m) and the grippers to draw from (None / False / () where not asked for)."""

    scale: tuple[float, float] | None = None
    mass: tuple[float, float] | None = None
    friction: tuple[float, float] | None = None
    object_color: bool | tuple[tuple[float, ...], ...] = False
    table_color: bool | tuple[tuple[float, ...], ...] = False
    light: bool = False
    camera_pose: float | None = None
    grippers: tuple[GripperSpec, ...] = ()

    @property
    def changes_geometry(self) -> bool:
        """Whether a draw can change what the start checks depend on (the object's size, the gripper)."""
        return self.scale is not None or bool(self.grippers)

    def draw(self, rng: np.random.Generator, num_cameras: int) -> Draw:
        """One episode's values, drawn through ``rng`` in the order of `FACTORS`."""
        values: dict[str, Any] = {}
        for key in ("scale", "mass", "friction"):
            if getattr(self, key) is not None:
                values[key] = float(rng.uniform(*getattr(self, key)))
        for key, out in (("object_color", "object_rgba"), ("table_color", "table_rgba")):
            choices = getattr(self, key)
            if choices is True:
                values[out] = (*(float(v) for v in rng.random(3)), 1.0)
            elif choices:
                values[out] = choices[int(rng.integers(len(choices)))]
        if self.light:
            azimuth, elevation = rng.uniform(-np.pi, np.pi), rng.uniform(*LIGHT_ELEVATION)
            toward = np.array([np.cos(elevation) * np.cos(azimuth), np.cos(elevation) * np.sin(azimuth),
                               np.sin(elevation)])
            values["light"] = Light(tuple(-toward), float(rng.uniform(*LIGHT_INTENSITY)))
        if self.camera_pose is not None:  # uniform in a ball of radius camera_pose
            direction = rng.normal(size=(num_cameras, 3))
            direction /= np.linalg.norm(direction, axis=1, keepdims=True)
            radius = self.camera_pose * rng.random(num_cameras) ** (1.0 / 3.0)
            values["camera_offsets"] = direction * radius[:, None]
        if self.grippers:
            values["gripper"] = int(rng.integers(len(self.grippers)))
            values["gripper_name"] = self.grippers[values["gripper"]].name
        return Draw(**values)


def parse_randomize(randomize: Any, robot: str | None) -> Factors | None:
    """The `Factors` of ``randomize`` (None for None or an empty dict); ValueError names an unknown factor (listing
    `FACTORS`) or a bad value and what is allowed."""
    if randomize is None:
        return None
    if not isinstance(randomize, Mapping):
        raise ValueError(f"randomize must be None or a dict of factors from {list(FACTORS)}, got {randomize!r}")
    unknown = sorted(str(k) for k in randomize if k not in FACTORS)
    if unknown:
        raise ValueError(f"unknown randomize factor(s) {unknown}; allowed: {list(FACTORS)}")
    r = dict(randomize)
    if not r:
        return None
    out: dict[str, Any] = {k: _range(k, r[k]) for k in RANGES if r.get(k) is not None}
    for key in ("object_color", "table_color"):
        if r.get(key) not in (None, False):
            out[key] = _colors(key, r[key])
    if r.get("light") not in (None, False):
        if r["light"] is not True:
            raise ValueError(f"randomize['light'] must be True (draw a light direction and intensity) or False, "
                             f"got {r['light']!r}")
        out["light"] = True
    if r.get("camera_pose") is not None:
        j = r["camera_pose"]
        if not (_real(j) and 0 < j <= MAX_CAMERA_JITTER):
            raise ValueError(f"randomize['camera_pose'] must be the cameras' position jitter in metres, a number in "
                             f"(0, {MAX_CAMERA_JITTER}], got {j!r}")
        out["camera_pose"] = float(j)
    if r.get("gripper") is not None:
        specs = r["gripper"]
        if isinstance(specs, (str, Mapping)) or not isinstance(specs, Sequence) or not specs:
            raise ValueError(f"randomize['gripper'] must be a non-empty list of gripper specs (library names or "
                             f"dicts) to draw from, got {specs!r}")
        if robot is not None:
            raise ValueError(f"randomize['gripper'] needs robot=None (the floating gripper); robot={robot!r} pushes "
                             "with its own hand")
        out["grippers"] = tuple(gripper_spec(s) for s in specs)
    return Factors(**out)


def scaled_object(obj: RigidObject, s: float) -> RigidObject:
    """``obj`` scaled by ``s`` about its frame's origin: mesh, footprint, pieces, centre of mass and height times
    ``s``, volume and mass (same density) times s^3, inertia times s^5 (``obj`` itself for s = 1)."""
    if s == 1.0:
        return obj
    mesh = obj.mesh.copy()
    mesh.apply_scale(s)

    def frozen(a: np.ndarray) -> np.ndarray:
        a = np.asarray(a, dtype=float) * s
        a.flags.writeable = False
        return a

    inertia = np.asarray(obj.inertia) * s**5
    inertia.flags.writeable = False
    return replace(
        obj, mesh=mesh, footprint=_scaled_shape(obj.footprint, s), height=obj.height * s,
        pieces=tuple(frozen(p) for p in obj.pieces), mass=obj.mass * s**3, com=frozen(obj.com), inertia=inertia,
        volume=obj.volume * s**3, scale=obj.scale * s,
        polygon=None if obj.polygon is None else _scaled_shape(obj.polygon, s), rest_z=obj.rest_z * s)


def _scaled_shape(shape: shapely.Geometry, s: float) -> shapely.Geometry:
    return scale_geometry(shape, s, s, origin=(0.0, 0.0))


def with_mass(obj: RigidObject, mass: float | None) -> RigidObject:
    """``obj`` with ``mass`` kg, its density and inertia scaled with it (``obj`` itself for None)."""
    if mass is None or mass == obj.mass:
        return obj
    inertia = np.asarray(obj.inertia) * (mass / obj.mass)
    inertia.flags.writeable = False
    return replace(obj, mass=float(mass), inertia=inertia, density=float(mass / obj.volume))


def moved_cameras(cameras: tuple[Camera, ...], offsets: np.ndarray, target: Sequence[float]) -> tuple[Camera, ...]:
    """``cameras`` moved by ``offsets`` (V, 3) m, each looking at ``target`` again (intrinsics unchanged)."""
    return tuple(replace(c, cam2world=look_at(np.asarray(c.cam2world)[:3, 3] + d, target))
                 for c, d in zip(cameras, np.asarray(offsets, dtype=float), strict=True))
