"""Convex pieces of a triangle mesh for collision: the hull of a convex mesh, the parts of a mesh that is already a
union of convex parts (e.g. a ``*_vhacd.obj``), or a V-HACD decomposition (``pybullet.vhacd``) cached on disk.

`mesh_pieces(mesh)` is the entry point. Every piece is the vertex array (V, 3) of a convex hull with positive
volume, in the mesh's frame; there are at most ``max_pieces`` of them (neighbouring hulls are merged greedily,
smallest added volume first, when a decomposition gives more). V-HACD results live in `vhacd_cache_dir()`
(``$XDG_CACHE_HOME/worldmodel4d/vhacd`` or ``~/.cache/worldmodel4d/vhacd``), one OBJ per sha256 of the mesh's
vertex and face bytes plus the parameters, written atomically, so each mesh is decomposed once per machine.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import numpy as np
import trimesh
from scipy.spatial import ConvexHull, QhullError

MAX_PIECES = 32
# V-HACD 2.x settings (on a copy of the mesh centred and scaled to a unit bounding-box diagonal): 6e5 voxels keep
# the hole of a torus open (coarser voxels fill small concavities: V-HACD's error term E grows) in ~2 s per mesh.
VHACD_PARAMS = {"resolution": 600_000, "planeDownsampling": 8, "convexhullDownsampling": 8,
                "maxNumVerticesPerCH": 64}
_MIN_VOLUME_FRACTION = 1e-6  # pieces smaller than this fraction of the mesh's hull volume are dropped


def vhacd_cache_dir() -> Path:
    """Folder of cached V-HACD results: ``$XDG_CACHE_HOME/worldmodel4d/vhacd`` (default ``~/.cache/...``)."""
    root = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(root) / "worldmodel4d" / "vhacd"


def hull_volume(points: np.ndarray) -> float:
    """Volume of the convex hull of ``points`` (N, 3); 0 for fewer than 4 points or flat sets."""
    points = np.asarray(points, dtype=float)
    if len(points) < 4:
        return 0.0
    try:
        return float(ConvexHull(points).volume)
    except QhullError:
        return 0.0


def hull_vertices(points: np.ndarray) -> np.ndarray | None:
    """The vertices (V, 3) of the convex hull of ``points``, or None when they span no volume."""
    points = np.asarray(points, dtype=float)
    if len(points) < 4:
        return None
    try:
        hull = ConvexHull(points)
    except QhullError:
        return None
    return points[np.sort(hull.vertices)] if hull.volume > 0 else None


def hull_mesh(points: np.ndarray) -> trimesh.Trimesh:
    """The convex hull of ``points`` as a closed, outward-facing triangle mesh."""
    return trimesh.convex.convex_hull(np.asarray(points, dtype=float))


def write_pieces_obj(path: Path, pieces: list[np.ndarray]) -> None:
    """Write convex pieces as one OBJ object (``o piece_i``, hull triangles) each, atomically (temp file + rename)."""
    lines, base = [], 1
    for i, piece in enumerate(pieces):
        hull = ConvexHull(piece)
        lines.append(f"o piece_{i}")
        lines += [f"v {x:.17g} {y:.17g} {z:.17g}" for x, y, z in piece]
        lines += [f"f {a + base} {b + base} {c + base}" for a, b, c in hull.simplices]
        base += len(piece)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as f:
            f.write("\n".join(lines) + "\n")
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def read_pieces_obj(path: Path) -> list[np.ndarray]:
    """The vertex arrays of the objects (``o`` blocks; faces pick their vertices) of an OBJ file."""
    verts: list[list[float]] = []
    groups: list[list[int]] = []
    with open(path) as f:
        for line in f:
            if line.startswith("o "):
                groups.append([])
            elif line.startswith("v "):
                verts.append([float(t) for t in line.split()[1:4]])
            elif line.startswith("f "):
                if not groups:
                    groups.append([])
                groups[-1].extend(int(t.split("/")[0]) - 1 for t in line.split()[1:])
    v = np.asarray(verts, dtype=float).reshape(-1, 3)
    return [v[np.unique(g)] for g in groups if g]


@contextmanager
def _quiet_stdout() -> Iterator[None]:
    """Silence C-level writes to stdout (V-HACD prints its progress there)."""
    saved, null = os.dup(1), os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(null, 1)
        yield
    finally:
        os.dup2(saved, 1)
        os.close(null)
        os.close(saved)


def _run_vhacd(mesh: trimesh.Trimesh, params: dict) -> list[np.ndarray]:
    """Raw V-HACD hulls of ``mesh`` (in its frame), computed on a centred, unit-diagonal copy in a temp dir."""
    import pybullet

    centre = mesh.bounds.mean(axis=0)
    size = float(np.linalg.norm(mesh.extents))
    v = (mesh.vertices - centre) / size
    with tempfile.TemporaryDirectory(prefix="wm4d_vhacd_") as tmp:
        src, dst, log = (os.path.join(tmp, n) for n in ("in.obj", "out.obj", "log.txt"))
        with open(src, "w") as f:
            f.write("".join(f"v {x:.17g} {y:.17g} {z:.17g}\n" for x, y, z in v))
            f.write("".join(f"f {a + 1} {b + 1} {c + 1}\n" for a, b, c in mesh.faces))
        with _quiet_stdout():
            pybullet.vhacd(src, dst, log, **params)
        hulls = read_pieces_obj(Path(dst)) if os.path.isfile(dst) else []
    return [h * size + centre for h in hulls]


def merge_pieces(pieces: list[np.ndarray], max_pieces: int = MAX_PIECES, neighbours: int = 4) -> list[np.ndarray]:
    """Merge convex pieces pairwise until at most ``max_pieces`` remain, always the pair (among each piece's
    ``neighbours`` nearest by centroid) whose joint hull adds the least volume over the two pieces."""
    alive = {i: np.asarray(p, dtype=float) for i, p in enumerate(pieces)}
    vols = {i: hull_volume(p) for i, p in alive.items()}
    cost: dict[tuple[int, int], float] = {}

    def add_pairs(i: int) -> None:
        others = [j for j in alive if j != i]
        cents = np.array([alive[j].mean(axis=0) for j in others])
        near = np.argsort(np.linalg.norm(cents - alive[i].mean(axis=0), axis=1), kind="stable")[:neighbours]
        for j in (others[k] for k in near):
            pair = (min(i, j), max(i, j))
            if pair not in cost:
                cost[pair] = hull_volume(np.vstack([alive[i], alive[j]])) - vols[i] - vols[j]

    for i in list(alive):
        add_pairs(i)
    next_id = len(pieces)
    while len(alive) > max_pieces:
        i, j = min(cost, key=lambda pair: (cost[pair], pair))
        joined = hull_vertices(np.vstack([alive.pop(i), alive.pop(j)]))
        cost = {pair: c for pair, c in cost.items() if i not in pair and j not in pair}
        alive[next_id], vols[next_id] = joined, hull_volume(joined)
        add_pairs(next_id)
        for k in list(alive):  # pieces whose candidate pairs all involved i or j get new ones
            if k != next_id and not any(k in pair for pair in cost):
                add_pairs(k)
        next_id += 1
    return list(alive.values())


def _clean(pieces: list[np.ndarray], reference_volume: float, max_pieces: int) -> list[np.ndarray]:
    """Hull vertices of each piece, dropping flat or negligible ones, merged down to ``max_pieces``."""
    out = []
    for p in pieces:
        h = hull_vertices(p)
        if h is not None and hull_volume(h) > _MIN_VOLUME_FRACTION * reference_volume:
            out.append(h)
    return merge_pieces(out, max_pieces) if len(out) > max_pieces else out


def vhacd_pieces(mesh: trimesh.Trimesh, params: dict | None = None, max_pieces: int = MAX_PIECES) -> list[np.ndarray]:
    """V-HACD convex pieces of ``mesh`` (its frame), read from / written to the on-disk cache (`vhacd_cache_dir`)."""
    params = dict(VHACD_PARAMS if params is None else params)
    digest = hashlib.sha256()
    digest.update(np.ascontiguousarray(mesh.vertices, dtype=np.float64).tobytes())
    digest.update(np.ascontiguousarray(mesh.faces, dtype=np.int64).tobytes())
    digest.update(json.dumps({"params": params, "max_pieces": max_pieces}, sort_keys=True).encode())
    path = vhacd_cache_dir() / f"{digest.hexdigest()}.obj"
    if path.is_file():
        try:
            cached = read_pieces_obj(path)
            if cached and all(hull_vertices(p) is not None for p in cached):
                return cached
        except (OSError, ValueError):
            pass  # a damaged cache entry is recomputed and replaced
    ref = hull_volume(mesh.vertices)
    pieces = _clean(_run_vhacd(mesh, params), ref, max_pieces)
    if not pieces:  # V-HACD gave nothing usable: fall back to the convex hull
        pieces = [hull_vertices(mesh.vertices)]
    try:
        write_pieces_obj(path, pieces)
    except OSError:
        pass  # a read-only cache only costs time
    return pieces


def _is_convex_part(part: trimesh.Trimesh, tolerance: float = 1e-3) -> bool:
    """Whether a connected part is convex: every vertex on its hull's surface (within ``tolerance`` times the hull's
    size) and, when the part is closed, its volume at least 98% of the hull's."""
    try:
        hull = ConvexHull(part.vertices)
    except QhullError:
        return False
    size = float(np.linalg.norm(np.ptp(part.vertices, axis=0)))
    depth = (part.vertices @ hull.equations[:, :3].T + hull.equations[:, 3]).max(axis=1)
    if depth.min() < -tolerance * size:
        return False
    return not part.is_watertight or abs(part.volume) >= 0.98 * hull.volume


def mesh_pieces(mesh: trimesh.Trimesh, max_pieces: int = MAX_PIECES) -> list[np.ndarray]:
    """Convex pieces (hull vertex arrays) of a mesh that encloses volume.

    Its convex hull when the mesh is convex; the hulls of its connected parts when every part that has volume is
    convex (a mesh that is already a union of convex parts, e.g. a ``*_vhacd.obj``), merged down to ``max_pieces``;
    otherwise a V-HACD decomposition (`vhacd_pieces`). ValueError when the mesh spans no volume.
    """
    ref = hull_volume(mesh.vertices)
    if ref <= 0:
        raise ValueError("mesh has no volume: its vertices are flat (coplanar) or fewer than 4")
    parts = [p for p in mesh.split(only_watertight=False) if hull_volume(p.vertices) > _MIN_VOLUME_FRACTION * ref]
    if parts and all(_is_convex_part(p) for p in parts):
        pieces = _clean([p.vertices for p in parts], ref, max_pieces)
        if pieces:
            return pieces
    return vhacd_pieces(mesh, max_pieces=max_pieces)
