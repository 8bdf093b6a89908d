"""Rigid objects to push: geometry, footprint, convex collision pieces and mass properties from one spec.

`load_object(spec)` accepts

- a library name (`envs.objects.library_names()`: ``"T"``, ``"ring"``, ``"star/7"``, ``"duck"``,
  ``"random_urdf/042"``, ...);
- a path to a mesh file (``.obj``, ``.stl``, ``.ply``, ``.glb``; metres, used in its own frame);
- a path to a single-link URDF (its visual geometry, else its collision geometry: meshes with their scale and
  origin, or box / cylinder / sphere primitives);
- ``{"polygon": [[x, y], ...], "height": h}`` (metres; an extruded simple polygon; optional ``"holes"``: a
  list of point lists);
- a dict with one of the keys ``"name"``, ``"mesh"``, ``"urdf"``, ``"polygon"`` and options ``"mass"`` (kg) or
  ``"density"`` (kg/m^3), ``"friction"``, ``"color"`` (rgb or rgba in [0, 1]), ``"scale"`` (uniform factor) and
  ``"rpy"`` (radians: turn the geometry about its frame's origin, e.g. to stand a y-up file upright).

The object frame is the file's (or polygon's) own frame, turned by ``rpy`` and scaled, then shifted only along z
so that the mesh's lowest point is at z = 0. Mass properties use ``density`` (default `DEFAULT_DENSITY`, which
gives the PushT block its 0.8 kg) or are scaled to ``mass``; a mesh that does not enclose a volume (not watertight)
uses the volume of its convex pieces. Loads are cached (``functools.lru_cache`` on the spec): a repeat costs
microseconds and returns the same, shared object, so treat its arrays and mesh as read-only.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Sequence

import numpy as np
import shapely
import trimesh
from scipy.spatial.transform import Rotation
from shapely.affinity import rotate, translate
from shapely.geometry import MultiPolygon, Polygon
from shapely.geometry.polygon import orient

from robots.gripper_points import geometry_mesh, sample_surface
from robots.urdf import MeshRef, load_description

from .decompose import MAX_PIECES, hull_mesh, hull_vertices, merge_pieces, mesh_pieces
from .library import NAMED_MESHES, RANDOM_URDF_PREFIX, library_entry
from .shapes import (
    DEFAULT_HEIGHT,
    T_HEIGHT,
    T_MASS,
    convex_decomposition,
    is_shape_name,
    shape_polygon,
    t_polygon,
    validate_polygon,
)

DEFAULT_DENSITY = T_MASS / (t_polygon().area * T_HEIGHT)  # kg/m^3: the T weighs 0.8 kg
DEFAULT_RGBA = (0.47, 0.53, 0.6, 1.0)  # gym-pusht's LightSlateGray, the PushT block's colour
MESH_EXTENSIONS = (".obj", ".stl", ".ply", ".glb")
URDF_EXTENSIONS = (".urdf",)
SOURCE_KEYS = ("name", "mesh", "urdf", "polygon")
OPTION_KEYS = ("mass", "density", "friction", "color", "scale", "rpy")
POLYGON_KEYS = ("height", "holes")
FOOTPRINT_TOLERANCE = 5e-4  # m: a mesh footprint is simplified within this distance
BOTTOM_TOLERANCE = 1e-3  # m: faces this close to z = 0 and facing down are the resting face
_URDF_DEFAULT_RGBA = MeshRef("", np.eye(4)).rgba


@dataclass(frozen=True, eq=False)
class RigidObject:
    """A rigid object in its own frame (metres, kg): what the Push4D env and its physics backends consume.

    ``mesh``: closed or open triangle surface, lowest point at z = 0. ``footprint``: its projection along z
    (object frame xy; a MultiPolygon when it has separate parts; holes kept), exact for extruded polygons.
    ``pieces``: convex collision pieces, hull vertex arrays (Vi, 3). ``com`` (3,) and ``inertia`` (3, 3, about the
    COM, object-frame axes) for ``mass`` kg. ``friction`` None means the backend's default. ``polygon`` is the exact
    extruded polygon (None for meshes). ``rest_z`` is the height of the frame above the table when the object rests
    upright on its collision pieces (0 when they reach down to the mesh's lowest point). ``scale`` is the total
    uniform scale applied to the source geometry; ``source`` names where it came from.
    """

    name: str
    mesh: trimesh.Trimesh
    footprint: Polygon | MultiPolygon
    height: float
    pieces: tuple[np.ndarray, ...]
    mass: float
    com: np.ndarray
    inertia: np.ndarray
    volume: float
    density: float
    friction: float | None
    color: tuple[float, float, float, float]
    scale: float
    source: str
    polygon: Polygon | None = None
    rest_z: float = 0.0

    def surface_points(self, count: int, rng: np.random.Generator,
                       skip_bottom: bool = False) -> tuple[np.ndarray, np.ndarray]:
        """``count`` area-weighted uniform samples on the mesh and their outward face normals, (count, 3) each.

        ``skip_bottom=True`` leaves out the downward faces within 1 mm of z = 0 (the resting face, never seen);
        for ``"T"`` that gives exactly `envs.pusht.geometry.surface_points` for ``rng = default_rng(seed)``.
        """
        if int(count) <= 0:
            raise ValueError(f"count must be a positive integer, got {count}")
        mesh = self.mesh
        if skip_bottom:
            low = mesh.triangles[:, :, 2].max(axis=1) <= BOTTOM_TOLERANCE
            keep = ~(low & (mesh.face_normals[:, 2] <= -0.5))
            mesh = mesh.submesh([np.flatnonzero(keep)], append=True)
        return sample_surface(mesh, int(count), rng)

    def footprint_at(self, pose: Sequence[float] | np.ndarray) -> Polygon | MultiPolygon:
        """The footprint placed at planar pose (x, y, yaw): turned counter-clockwise by yaw about the frame's origin,
        then moved there."""
        x, y, yaw = (float(v) for v in pose)
        return translate(rotate(self.footprint, yaw, origin=(0.0, 0.0), use_radians=True), x, y)


# --------------------------------------------------------------------------------------------- spec parsing


def _positive(key: str, value) -> float:
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{key} must be a positive number, got {value!r}") from None
    if not np.isfinite(v) or v <= 0:
        raise ValueError(f"{key} must be a positive number, got {value!r}")
    return v


def _options(spec: dict) -> tuple:
    """Validated options as a sorted, hashable tuple of (key, value)."""
    out = {}
    for key in ("mass", "density", "scale"):
        if spec.get(key) is not None:
            out[key] = _positive(key, spec[key])
    if "mass" in out and "density" in out:
        raise ValueError("give either mass or density, not both (mass scales the density to match)")
    if spec.get("friction") is not None:
        f = spec["friction"]
        try:
            out["friction"] = float(f)
        except (TypeError, ValueError):
            raise ValueError(f"friction must be a non-negative number, got {f!r}") from None
        if not np.isfinite(out["friction"]) or out["friction"] < 0:
            raise ValueError(f"friction must be a non-negative number, got {f!r}")
    if spec.get("color") is not None:
        c = np.asarray(spec["color"], dtype=float).ravel() if np.ndim(spec["color"]) else np.zeros(0)
        if c.size not in (3, 4) or not np.all((c >= 0) & (c <= 1)):
            raise ValueError(f"color must be 3 or 4 numbers in [0, 1] (rgb or rgba), got {spec['color']!r}")
        out["color"] = tuple(float(v) for v in (c if c.size == 4 else np.append(c, 1.0)))
    if spec.get("rpy") is not None:
        r = np.asarray(spec["rpy"], dtype=float).ravel()
        if r.size != 3 or not np.isfinite(r).all():
            raise ValueError(f"rpy must be 3 finite angles in radians, got {spec['rpy']!r}")
        out["rpy"] = tuple(float(v) for v in r)
    return tuple(sorted(out.items()))


def _file_key(kind: str, value) -> tuple:
    path = Path(os.path.expanduser(os.fspath(value)))
    suffix = path.suffix.lower()
    allowed = MESH_EXTENSIONS if kind == "mesh" else URDF_EXTENSIONS if kind == "urdf" else \
        MESH_EXTENSIONS + URDF_EXTENSIONS
    if suffix not in allowed:
        raise ValueError(f"unsupported file extension {suffix or '(none)'!r} of {path}; allowed: "
                         f"{', '.join(MESH_EXTENSIONS)} (meshes, metres) and .urdf (a single-link URDF)"
                         if kind == "file" else f"{kind} file {path} must end in one of {', '.join(allowed)}")
    if not path.is_file():
        raise ValueError(f"file not found: {path} (a mesh or URDF path must point to an existing file)")
    path = path.resolve()
    stat = path.stat()
    return ("urdf" if suffix in URDF_EXTENSIONS else "mesh", str(path), stat.st_mtime_ns, stat.st_size)


def _looks_like_library_name(text: str) -> bool:
    return is_shape_name(text) or text in NAMED_MESHES or text.startswith(RANDOM_URDF_PREFIX)


def _spec_key(spec) -> tuple:
    """A hashable, validated description of ``spec`` (files carry their modification time and size)."""
    if isinstance(spec, os.PathLike):
        return _file_key("file", spec) + ((),)
    if isinstance(spec, str):
        if _looks_like_library_name(spec):
            library_entry(spec)  # raises for names that are not in the library
            return ("name", spec, ())
        if Path(spec).suffix or os.path.exists(os.path.expanduser(spec)):
            return _file_key("file", spec) + ((),)
        library_entry(spec)  # raises: unknown library name, with close matches
    if not isinstance(spec, dict):
        raise ValueError(f"an object spec is a library name, a file path or a dict, got {type(spec).__name__}")
    sources = [k for k in SOURCE_KEYS if k in spec]
    if len(sources) != 1:
        raise ValueError(f"an object dict needs exactly one of the keys {SOURCE_KEYS}, got {sorted(spec)}")
    kind = sources[0]
    allowed = {kind, *OPTION_KEYS} | (set(POLYGON_KEYS) if kind == "polygon" else set())
    unknown = sorted(set(spec) - allowed)
    if unknown:
        raise ValueError(f"unknown object option(s) {unknown}; allowed with {kind!r}: {sorted(allowed - {kind})}")
    options = _options(spec)
    if kind == "name":
        if not isinstance(spec["name"], str):
            raise ValueError(f"'name' must be a library name (a string), got {spec['name']!r}")
        library_entry(spec["name"])
        return ("name", spec["name"], options)
    if kind in ("mesh", "urdf"):
        return _file_key(kind, spec[kind]) + (options,)
    poly = validate_polygon(spec["polygon"], spec.get("holes"))
    height = _positive("height", spec["height"]) if spec.get("height") is not None else DEFAULT_HEIGHT
    shell = tuple(map(tuple, np.asarray(poly.exterior.coords)))
    holes = tuple(tuple(map(tuple, np.asarray(h.coords))) for h in poly.interiors)
    return ("polygon", (shell, holes), height, options)


def load_object(spec: str | os.PathLike | dict) -> RigidObject:
    """Load a `RigidObject` from a library name, a mesh or URDF path, a polygon dict or a dict with options (see the
    module docstring). ValueError names what was wrong and what is allowed. Cached: repeats are instant."""
    return _load(_spec_key(spec))


# --------------------------------------------------------------------------------------------- geometry


def _clean_mesh(vertices: np.ndarray, faces: np.ndarray, what: str) -> trimesh.Trimesh:
    """A processed copy (duplicate vertices merged, degenerate faces dropped, closed meshes facing out)."""
    vertices = np.asarray(vertices, dtype=float)
    if len(faces) == 0:
        raise ValueError(f"{what} has no triangles (no area)")
    if not np.isfinite(vertices).all():
        raise ValueError(f"{what} has non-finite vertex coordinates")
    mesh = trimesh.Trimesh(vertices, faces, process=True)
    f = mesh.faces
    mesh.update_faces((f[:, 0] != f[:, 1]) & (f[:, 1] != f[:, 2]) & (f[:, 0] != f[:, 2]))
    mesh.remove_unreferenced_vertices()
    if len(mesh.faces) == 0 or not mesh.area > 0:
        raise ValueError(f"{what} has no area (all its triangles are degenerate)")
    if mesh.is_watertight and mesh.volume < 0:
        mesh.invert()
    return mesh


def _read_mesh(path: str, scale=(1.0, 1.0, 1.0)) -> trimesh.Trimesh:
    if not os.path.isfile(path):
        raise ValueError(f"mesh file not found: {path}")
    try:
        loaded = trimesh.load(path, force="mesh", process=False)
    except Exception as err:  # trimesh raises many types for unreadable files
        raise ValueError(f"cannot read mesh {path}: {type(err).__name__}: {err}") from err
    if not isinstance(loaded, trimesh.Trimesh):
        raise ValueError(f"mesh {path} holds no triangles")
    return _clean_mesh(np.asarray(loaded.vertices, dtype=float) * np.asarray(scale, dtype=float),
                       np.asarray(loaded.faces), f"mesh {path}")


def _primitive_points(ref: MeshRef) -> np.ndarray:
    """Vertices of a URDF primitive's convex collision shape (box exact, cylinder 32-gon, sphere icosphere)."""
    if ref.shape == "box":
        m = trimesh.creation.box(extents=ref.size)
    elif ref.shape == "cylinder":
        m = trimesh.creation.cylinder(radius=ref.size[0], height=ref.size[1], sections=32)
    else:
        m = trimesh.creation.icosphere(subdivisions=2, radius=ref.size[0])
    return trimesh.transform_points(m.vertices, ref.T_link_mesh)


def _ref_mesh(ref: MeshRef, where: str) -> trimesh.Trimesh:
    if ref.shape == "mesh":
        if not os.path.isfile(ref.path):
            raise ValueError(f"{where}: mesh file not found: {ref.path}")
        mesh = _read_mesh(ref.path, ref.scale)
    else:
        mesh = geometry_mesh(ref)
    mesh.apply_transform(ref.T_link_mesh)
    return mesh


def _urdf_geometry(path: str) -> tuple[trimesh.Trimesh, list, tuple | None]:
    """(surface mesh, collision items ("points", array) / ("mesh", Trimesh), URDF colour or None) of a URDF."""
    try:
        desc = load_description(path)
    except FileNotFoundError as err:
        raise ValueError(f"file not found: {path}") from err
    except ValueError as err:
        raise ValueError(f"cannot use URDF {path}: {err}") from err
    if len(desc.links) != 1:
        raise ValueError(f"URDF {path} has {len(desc.links)} links {list(desc.links)}; an object URDF must have "
                         "exactly one link (no joints)")
    link = desc.links[0]
    visual, collision = desc.visual.get(link, ()), desc.collision.get(link, ())
    if not visual and not collision:
        raise ValueError(f"URDF {path}: link {link!r} has no visual or collision geometry (a mesh, box, cylinder "
                         "or sphere)")
    where = f"URDF {path}"
    shown = [_ref_mesh(ref, where) for ref in (visual or collision)]
    mesh = _clean_mesh(*_concat(shown), f"{where} geometry") if len(shown) > 1 else shown[0]
    items = [("points", _primitive_points(ref)) if ref.shape != "mesh" else ("mesh", _ref_mesh(ref, where))
             for ref in (collision or visual)]
    rgba = visual[0].rgba if visual and visual[0].rgba != _URDF_DEFAULT_RGBA else None
    return mesh, items, rgba


def _concat(meshes: list[trimesh.Trimesh]) -> tuple[np.ndarray, np.ndarray]:
    joined = trimesh.util.concatenate(meshes)
    return joined.vertices, joined.faces


def mesh_footprint(mesh: trimesh.Trimesh, tolerance: float = FOOTPRINT_TOLERANCE) -> Polygon | MultiPolygon:
    """The projection of ``mesh`` along z: the union of its projected faces (of its upward faces, enough for a
    closed mesh), closed over gaps narrower than ``tolerance`` (parts that touch, e.g. convex parts of a union, give
    one outline), holes and parts smaller than ``tolerance`` squared dropped, simplified within ``tolerance`` (m)."""
    tri = mesh.triangles[:, :, :2]
    if mesh.is_volume:
        tri = tri[mesh.face_normals[:, 2] > 0]
    e1, e2 = tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0]
    keep = np.abs(e1[:, 0] * e2[:, 1] - e1[:, 1] * e2[:, 0]) > 1e-16
    rings = np.concatenate([tri[keep], tri[keep][:, :1]], axis=1)
    union = shapely.union_all(shapely.polygons(rings))
    union = union.buffer(tolerance / 2, join_style="mitre").buffer(-tolerance / 2, join_style="mitre")
    tiny = tolerance ** 2
    parts = [Polygon(p.exterior, [h for h in p.interiors if Polygon(h).area > tiny])
             for p in getattr(union, "geoms", [union]) if isinstance(p, Polygon) and p.area > tiny]
    if not parts:
        raise ValueError("mesh has no footprint: its projection along z has no area (every face is vertical)")
    fp = shapely.make_valid(shapely.union_all(parts).simplify(tolerance, preserve_topology=True))
    polys = [p for p in getattr(fp, "geoms", [fp]) if isinstance(p, Polygon) and p.area > 0]
    return orient(polys[0], 1.0) if len(polys) == 1 else MultiPolygon([orient(p, 1.0) for p in polys])


def _transform(s: float, rpy: tuple) -> np.ndarray:
    T = np.eye(4)
    T[:3, :3] = s * Rotation.from_euler("xyz", rpy).as_matrix()  # URDF rpy: fixed axes x, y, z
    return T


def _entry_geometry(key: tuple) -> tuple[str, str, float, tuple, object]:
    """(name, source, base scale, base rpy, geometry) where geometry is (polygon, height) or (mesh, items, rgba)."""
    kind = key[0]
    if kind == "name":
        entry = library_entry(key[1])
        if entry.kind == "shape":
            return entry.name, entry.name, entry.scale, entry.rpy, shape_polygon(entry.source)
        mesh_data = _urdf_geometry(entry.source) if entry.kind == "urdf" else (_read_mesh(entry.source), None, None)
        return entry.name, entry.source, entry.scale, entry.rpy, mesh_data
    if kind == "polygon":
        (shell, holes), height = key[1], key[2]
        return "polygon", "polygon", 1.0, (0.0, 0.0, 0.0), (Polygon(shell, holes), height)
    path = key[1]
    data = _urdf_geometry(path) if kind == "urdf" else (_read_mesh(path), None, None)
    return Path(path).stem, path, 1.0, (0.0, 0.0, 0.0), data


@lru_cache(maxsize=512)
def _load(key: tuple) -> RigidObject:
    options = dict(key[-1])
    name, source, base_scale, base_rpy, geometry = _entry_geometry(key)
    scale = base_scale * options.get("scale", 1.0)
    rpy = options.get("rpy", base_rpy)
    T = _transform(scale, rpy)
    turned = not np.allclose(T[:3, :3], scale * np.eye(3))
    polygon = None
    if len(geometry) == 2:  # an extruded polygon: exact mesh, footprint and convex pieces
        polygon, height = geometry
        if scale != 1.0:
            polygon = shapely.affinity.scale(polygon, scale, scale, origin=(0.0, 0.0))
            height *= scale
        mesh = trimesh.creation.extrude_polygon(polygon, height)
        items = []
        for piece in convex_decomposition(polygon):
            xy = np.asarray(piece.exterior.coords)[:-1]
            items.append(("points", np.vstack([np.c_[xy, np.zeros(len(xy))], np.c_[xy, np.full(len(xy), height)]])))
        if turned:
            mesh.apply_transform(_transform(1.0, rpy))
            items = [("points", trimesh.transform_points(p, _transform(1.0, rpy))) for _, p in items]
            polygon = None
        rgba = None
    else:
        mesh, items, rgba = geometry
        mesh = mesh.copy()
        identity = np.allclose(T, np.eye(4))
        if not identity:
            mesh.apply_transform(T)
        # collision items in the object frame; ("mesh", None) stands for the surface mesh itself
        items = [("mesh", None)] if items is None else [
            (k, v if identity else trimesh.transform_points(v, T) if k == "points" else v.copy().apply_transform(T))
            for k, v in items]
    zmin = float(mesh.vertices[:, 2].min())
    if zmin != 0.0:
        mesh.apply_translation((0.0, 0.0, -zmin))
    pieces = []
    for k, v in items:
        if k == "points":
            h = hull_vertices(np.asarray(v) - (0.0, 0.0, zmin))
            if h is not None:
                pieces.append(h)
        else:
            try:
                pieces.extend(mesh_pieces(mesh if v is None else v.copy().apply_translation((0.0, 0.0, -zmin))))
            except ValueError as err:
                raise ValueError(f"{source}: {err}") from None
    if not pieces:
        raise ValueError(f"{source}: the object has no volume (its collision geometry is flat)")
    if len(pieces) > MAX_PIECES:
        pieces = merge_pieces(pieces, MAX_PIECES)
    if mesh.is_volume:
        volume, com, inertia1 = float(mesh.volume), mesh.center_mass, mesh.moment_inertia
    else:
        hulls = trimesh.util.concatenate([hull_mesh(p) for p in pieces])
        volume, com, inertia1 = float(hulls.volume), hulls.center_mass, hulls.moment_inertia
    if not volume > 0:
        raise ValueError(f"{source}: the object has no volume")
    density = options["mass"] / volume if "mass" in options else options.get("density", DEFAULT_DENSITY)
    footprint = polygon if polygon is not None else mesh_footprint(mesh)
    com, inertia = np.array(com, dtype=float), density * np.array(inertia1, dtype=float)
    for arr in (com, inertia, *pieces):
        arr.flags.writeable = False
    return RigidObject(
        name=name, mesh=mesh, footprint=footprint, height=float(mesh.vertices[:, 2].max()), pieces=tuple(pieces),
        mass=density * volume, com=com, inertia=inertia, volume=volume, density=float(density),
        friction=options.get("friction"), color=options.get("color", rgba or DEFAULT_RGBA), scale=float(scale),
        source=source, polygon=polygon, rest_z=float(-min(p[:, 2].min() for p in pieces)) + 0.0)
