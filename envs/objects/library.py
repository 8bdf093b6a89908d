"""The object library: procedural shapes, pybullet_data meshes and the 1,000 pybullet random URDFs, in three splits.

Names:

- procedural shapes (`envs.objects.shapes`): ``"T"`` (the PushT block), ``"L"``, ``"I"``, ``"plus"``, ``"U"``,
  ``"arrow"``, ``"V"``, ``"E"``, ``"ring"``, ``"disk"``, and seeded random stars ``"star/<seed>"`` (any
  non-negative seed loads; the splits list 24 of them);
- meshes shipped with pybullet (used in place from ``pybullet_data.getDataPath()``, never copied), each scaled to
  a pushable size (footprint about 0.08-0.25 m across) and, for the duck and the torus, turned upright from their
  y-up files (``rpy``): see `NAMED_MESHES` for the file, URDF, scale and orientation of each;
- ``"random_urdf/NNN"``: ``random_urdfs/NNN/NNN.urdf`` (000-999, convex-part unions at the URDF's 0.015 scale),
  resting as a pushed object can: turned (the least turn, no spin about z) onto the nearest face of its convex hull
  it rests on stably (``trimesh.poses.compute_stable_poses``, a face that catches >= 5% of random drops) and on
  which it is squat (its centre of mass no higher than half its narrower footprint side: it tips only past 45
  degrees), else onto its most probable face (a tall thin piece lies down);
  then times a per-entry scale that brings the larger footprint side into [0.08, 0.25] m (1 for most). See
  `random_urdf_pose`. `EXCLUDED_RANDOM_URDFS` lists those left out, with why.

Splits (fixed, deterministic, disjoint; together they are the whole library; `SPLITS`):

- ``train``: T, L, plus, U, E, disk, star/0-15; duck, mug, lego, jenga, cube, block, soccerball; random_urdf 000-799
- ``val``: I, V, star/16-19; teddy, stone; random_urdf 800-899
- ``test``: arrow, ring, star/20-23; bunny, torus; random_urdf 900-999

so the test split holds shapes (the ring's hole, the arrow) and meshes (bunny, torus) that train never shows.
`library_names(split)` lists them; `envs.objects.load_object(name)` loads one.
"""

from __future__ import annotations

import difflib
import re
import warnings
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
import trimesh

from .shapes import PROCEDURAL_SHAPES, STAR_PREFIX, is_shape_name

SPLITS = ("train", "val", "test")
RANDOM_URDF_PREFIX = "random_urdf/"
RANDOM_URDF_COUNT = 1000
RANDOM_URDF_SPLIT_STARTS = {"train": 0, "val": 800, "test": 900}  # index ranges [start, next start)
RANDOM_URDF_SCALE = 0.015  # the scale every random_urdfs/NNN.urdf gives its mesh
FOOTPRINT_RANGE = (0.08, 0.25)  # m: the larger footprint side of a library mesh after scaling
# Left out of the library, found once with the rule of `random_urdf_pose` (the larger footprint side is brought into
# FOOTPRINT_RANGE) and these limits: height in [0.02, 0.25] m (flatter objects pass under a gripper held 0.01 m above
# the table) and the narrower footprint side at least 0.015 m. `tests/envs/test_objects.py` re-derives the list.
EXCLUDED_RANDOM_URDFS = {
    168: "its OBJ has non-finite (nan) vertices",
    **{i: "too flat to push once scaled (height < 0.02 m)" for i in (110, 292, 295, 507)},
    **{i: "a thin stick: lying on its most stable face it is too flat to push (height < 0.02 m)" for i in
       (167, 178, 232, 350, 357, 479, 578)},
    **{i: "a thin sheet: lying on its most stable face it is too flat to push (height < 0.02 m)" for i in
       (297, 602, 824)},
}
HEIGHT_RANGE = (0.02, 0.25)  # m: the limits above
MIN_NARROW_SIDE = 0.015  # m
MIN_REST_PROBABILITY = 0.05  # a resting face must catch at least this share of random drops (trimesh's estimate)

PROCEDURAL_SPLITS = {
    "train": ("T", "L", "plus", "U", "E", "disk", *(f"{STAR_PREFIX}{i}" for i in range(16))),
    "val": ("I", "V", *(f"{STAR_PREFIX}{i}" for i in range(16, 20))),
    "test": ("arrow", "ring", *(f"{STAR_PREFIX}{i}" for i in range(20, 24))),
}


@dataclass(frozen=True)
class LibraryEntry:
    """One library object: where its geometry comes from and how it is scaled and turned.

    ``kind`` is ``"shape"`` (``source`` = the procedural shape's name), ``"mesh"`` (``source`` = a mesh file) or
    ``"urdf"`` (``source`` = a single-link URDF); files are absolute paths inside ``pybullet_data``. ``scale``
    multiplies the geometry (after the URDF's own mesh scale) and ``rpy`` (radians, fixed-axis roll-pitch-yaw)
    turns it before it is shifted to rest on z = 0. ``split`` is None for a star seed that no split lists.
    """

    name: str
    kind: str
    source: str
    split: str | None
    scale: float = 1.0
    rpy: tuple[float, float, float] = (0.0, 0.0, 0.0)


# name -> (split, kind, path relative to pybullet_data, scale, rpy). Sizes after scaling: footprint x by y, height.
NAMED_MESHES: dict[str, tuple[str, str, str, float, tuple[float, float, float]]] = {
    "duck": ("train", "urdf", "duck_vhacd.urdf", 2.0, (np.pi / 2, 0.0, 0.0)),  # 0.17 x 0.12, 0.15 upright
    "mug": ("train", "urdf", "objects/mug.urdf", 1.0, (0.0, 0.0, 0.0)),  # 0.08 x 0.12, 0.10
    "lego": ("train", "urdf", "lego/lego.urdf", 4.0, (0.0, 0.0, 0.0)),  # 0.13 x 0.13, 0.09 (2x2 brick)
    "jenga": ("train", "urdf", "jenga/jenga.urdf", 1.0, (0.0, 0.0, 0.0)),  # 0.15 x 0.05, 0.03
    "cube": ("train", "urdf", "cube.urdf", 0.1, (0.0, 0.0, 0.0)),  # 0.10 cube
    "block": ("train", "urdf", "block.urdf", 2.0, (0.0, 0.0, 0.0)),  # 0.20 x 0.036 x 0.036 bar (box primitive)
    "soccerball": ("train", "urdf", "soccerball.urdf", 0.12, (0.0, 0.0, 0.0)),  # ball of diameter 0.12
    "teddy": ("val", "urdf", "teddy_vhacd.urdf", 2.0, (0.0, 0.0, 0.0)),  # 0.15 x 0.19, 0.13 (lying)
    "stone": ("val", "mesh", "stone.obj", 0.35, (0.0, 0.0, 0.0)),  # 0.17 x 0.17, 0.06 (a frustum)
    "bunny": ("test", "mesh", "bunny.obj", 0.07, (0.0, 0.0, 0.0)),  # 0.07 x 0.10, 0.14
    "torus": ("test", "mesh", "torus/torus_textured.obj", 0.12, (np.pi / 2, 0.0, 0.0)),  # 0.18 across, 0.06 flat
}


def pybullet_data_dir() -> Path:
    """The installed ``pybullet_data`` folder (its files are used in place)."""
    import pybullet_data

    return Path(pybullet_data.getDataPath())


def _random_urdf_indices(split: str) -> list[int]:
    starts = [RANDOM_URDF_SPLIT_STARTS[s] for s in SPLITS] + [RANDOM_URDF_COUNT]
    k = SPLITS.index(split)
    return [i for i in range(starts[k], starts[k + 1]) if i not in EXCLUDED_RANDOM_URDFS]


@lru_cache(maxsize=4)
def _names(split: str | None) -> tuple[str, ...]:
    if split is None:
        return tuple(n for s in SPLITS for n in _names(s))
    meshes = tuple(n for n, e in NAMED_MESHES.items() if e[0] == split)
    urdfs = tuple(f"{RANDOM_URDF_PREFIX}{i:03d}" for i in _random_urdf_indices(split))
    return PROCEDURAL_SPLITS[split] + meshes + urdfs


def library_names(split: str | None = None) -> list[str]:
    """The library's object names, in a fixed order: all of them, or those of ``split`` (one of `SPLITS`).

    Procedural shapes first, then the named pybullet meshes, then ``random_urdf/NNN`` in index order.
    """
    if split is not None and split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; allowed: {SPLITS} or None for every name")
    return list(_names(split))


def _split_of(name: str) -> str | None:
    for split in SPLITS:
        if name in PROCEDURAL_SPLITS[split]:
            return split
    return None


def _obj_vertices(path: Path) -> np.ndarray:
    """The vertices (V, 3) of an OBJ file (a plain scan of its ``v`` lines)."""
    with open(path) as f:
        return np.array([line.split()[1:4] for line in f if line.startswith("v ")], dtype=float)


@lru_cache(maxsize=1024)
def random_urdf_pose(index: int) -> tuple[tuple[float, float, float], float, np.ndarray]:
    """How ``random_urdf/<index>`` rests in the library (module docstring): its ``rpy`` (radians), its scale (on top
    of the URDF's 0.015) and its extents (3,) in metres once turned and scaled. ValueError for an unusable file."""
    from scipy.spatial.transform import Rotation

    path = pybullet_data_dir() / "random_urdfs" / f"{index:03d}" / f"{index:03d}.obj"
    v = _obj_vertices(path) * RANDOM_URDF_SCALE
    if len(v) < 4 or not np.isfinite(v).all():
        raise ValueError(f"random_urdf/{index:03d} has no usable geometry ({path})")
    hull = trimesh.convex.convex_hull(v)
    poses, probabilities = trimesh.poses.compute_stable_poses(hull)
    best = None  # (rotation angle, rotation) of the least-turned squat pose
    for T, p in zip(poses, probabilities, strict=True):
        down = T[:3, :3].T @ np.array([0.0, 0.0, -1.0])  # the face it rests on, as a direction of the file
        R = Rotation.align_vectors([[0.0, 0.0, -1.0]], [down])[0]  # the least turn onto it (no spin about z)
        turned = v @ R.as_matrix().T
        extents = turned.max(axis=0) - turned.min(axis=0)
        squat = (R.apply(hull.center_mass)[2] - turned[:, 2].min()) <= extents[:2].min() / 2
        if squat and p >= MIN_REST_PROBABILITY and (best is None or R.magnitude() < best[0]):
            best = (R.magnitude(), R)
    if best is None:  # nothing squat: the most probable face
        down = poses[int(np.argmax(probabilities))][:3, :3].T @ np.array([0.0, 0.0, -1.0])
        best = (0.0, Rotation.align_vectors([[0.0, 0.0, -1.0]], [down])[0])
    with warnings.catch_warnings():  # a face turned by 90 degrees about y: the angles are still exact
        warnings.simplefilter("ignore", UserWarning)
        rpy = tuple(float(a) for a in best[1].as_euler("xyz"))
    turned = v @ Rotation.from_euler("xyz", rpy).as_matrix().T
    extents = turned.max(axis=0) - turned.min(axis=0)
    side = float(extents[:2].max())
    scale = float(np.clip(side, *FOOTPRINT_RANGE) / side)
    out = extents * scale
    out.flags.writeable = False
    return rpy, scale, out


def _unknown(name: str) -> ValueError:
    close = difflib.get_close_matches(name, library_names() + list(PROCEDURAL_SHAPES), n=3)
    hint = f" (did you mean {', '.join(map(repr, close))}?)" if close else ""
    return ValueError(
        f"unknown library object {name!r}{hint}; library names are procedural shapes such as 'T', 'L', 'ring', "
        f"'star/<seed>', pybullet meshes such as 'duck', 'bunny', 'mug' and 'random_urdf/000'..'random_urdf/999'; "
        "list them all with envs.objects.library_names() (or library_names('train'|'val'|'test')), or give a path "
        "to an existing .obj/.stl/.ply/.glb/.urdf file")


@lru_cache(maxsize=2048)
def library_entry(name: str) -> LibraryEntry:
    """The `LibraryEntry` of library name ``name``; ValueError (with close matches) for anything else."""
    if not isinstance(name, str):
        raise ValueError(f"a library name must be a string, got {type(name).__name__}")
    if is_shape_name(name):
        return LibraryEntry(name, "shape", name, _split_of(name))
    if name in NAMED_MESHES:
        split, kind, rel, scale, rpy = NAMED_MESHES[name]
        return LibraryEntry(name, kind, str(pybullet_data_dir() / rel), split, float(scale),
                            tuple(float(a) for a in rpy))
    m = re.fullmatch(re.escape(RANDOM_URDF_PREFIX) + r"(\d{3})", name)
    if m is None:
        raise _unknown(name)
    index = int(m.group(1))
    if index in EXCLUDED_RANDOM_URDFS:
        raise ValueError(f"{name!r} is left out of the library: {EXCLUDED_RANDOM_URDFS[index]}; "
                         "see envs.objects.library.EXCLUDED_RANDOM_URDFS and library_names()")
    split = next(s for s in reversed(SPLITS) if index >= RANDOM_URDF_SPLIT_STARTS[s])
    path = pybullet_data_dir() / "random_urdfs" / f"{index:03d}" / f"{index:03d}.urdf"
    rpy, scale, _ = random_urdf_pose(index)
    return LibraryEntry(name, "urdf", str(path), split, scale, rpy)
