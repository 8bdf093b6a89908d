"""Procedural extruded shapes for the object library: footprint polygons in metres and their convex decomposition.

Every shape is a shapely polygon in its own frame (x, y in metres) extruded from z = 0 to its height.
``"T"`` is exactly the PushT block (`envs.pusht.geometry`: same footprint, frame and height); the other
shapes are about the T's size (footprint ~0.2 m across, bars 0.04-0.05 m wide, height 0.04 m) and are
centred on their bounding box. ``"star/<seed>"`` is a seeded random star-shaped polygon (`star_polygon`).

Use `shape_polygon(name)` for (polygon, height), `validate_polygon` to turn user points into a checked
polygon, and `convex_decomposition` to split a polygon (holes included) exactly into convex pieces.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Sequence

import numpy as np
import shapely
from shapely.geometry import Polygon, box
from shapely.geometry.polygon import orient
from shapely.validation import explain_validity

DEFAULT_HEIGHT = 0.04
# the T of PushT4D-v0 (gym-pusht's block in metres), defined here once; `envs.pusht.geometry` builds on it
T_BAR = (-0.10, 0.0, 0.10, 0.05)  # xmin, ymin, xmax, ymax
T_STEM = (-0.025, 0.05, 0.025, 0.20)
T_HEIGHT = 0.04
T_MASS = 0.8  # kg
PROCEDURAL_SHAPES = ("T", "L", "I", "plus", "U", "arrow", "V", "E", "ring", "disk")
STAR_PREFIX = "star/"
STAR_RADII = (0.03, 0.1)  # m: the radius drawn per vertex angle
STAR_VERTICES = (5, 12)  # inclusive range of the number of vertices
STAR_HEIGHTS = (0.03, 0.04)


def _union(*rects: tuple[float, float, float, float]) -> Polygon:
    return shapely.simplify(shapely.union_all([box(*r) for r in rects]), 0.0)


def _regular(radius: float, sides: int) -> np.ndarray:
    a = 2 * np.pi * np.arange(sides) / sides
    return radius * np.stack([np.cos(a), np.sin(a)], axis=1)


def _centred(poly: Polygon) -> Polygon:
    xmin, ymin, xmax, ymax = poly.bounds
    return orient(shapely.affinity.translate(poly, -(xmin + xmax) / 2, -(ymin + ymax) / 2), 1.0)


def _build(name: str) -> Polygon:
    if name == "L":
        return _centred(_union((0.0, 0.0, 0.05, 0.2), (0.0, 0.0, 0.15, 0.05)))
    if name == "I":
        return _centred(_union((0.0, 0.0, 0.12, 0.04), (0.04, 0.04, 0.08, 0.16), (0.0, 0.16, 0.12, 0.2)))
    if name == "plus":
        return _centred(_union((0.0, 0.075, 0.2, 0.125), (0.075, 0.0, 0.125, 0.2)))
    if name == "U":
        return _centred(_union((0.0, 0.0, 0.2, 0.05), (0.0, 0.05, 0.05, 0.18), (0.15, 0.05, 0.2, 0.18)))
    if name == "arrow":
        return _centred(Polygon([(0.0, 0.045), (0.12, 0.045), (0.12, 0.0), (0.2, 0.07), (0.12, 0.14),
                                 (0.12, 0.095), (0.0, 0.095)]))
    if name == "V":
        return _centred(Polygon([(0.0, 0.16), (0.08, 0.0), (0.12, 0.0), (0.2, 0.16), (0.15, 0.16), (0.1, 0.06),
                                 (0.05, 0.16)]))
    if name == "E":
        return _centred(_union((0.0, 0.0, 0.05, 0.2), (0.0, 0.0, 0.15, 0.04), (0.0, 0.08, 0.13, 0.12),
                               (0.0, 0.16, 0.15, 0.2)))
    if name == "ring":  # 24 inner sides: an exact convex decomposition needs one piece per hole edge
        return orient(Polygon(_regular(0.09, 48), [_regular(0.05, 24)]), 1.0)
    if name == "disk":
        return orient(Polygon(_regular(0.08, 64)), 1.0)
    raise KeyError(name)


def star_polygon(seed: int) -> tuple[Polygon, float]:
    """The random star-shaped polygon ``star/<seed>`` and its height, drawn from ``numpy.random.default_rng(seed)``.

    Vertex i sits at angle 2 pi (i + u_i) / n (u_i ~ U(-0.35, 0.35), so angles strictly increase and every gap is
    below pi) and radius r_i ~ U(STAR_RADII): the polygon is star-shaped about the origin, hence always simple.
    """
    seed = int(seed)
    if seed < 0:
        raise ValueError(f"star seed must be a non-negative integer, got {seed}")
    rng = np.random.default_rng(seed)
    n = int(rng.integers(STAR_VERTICES[0], STAR_VERTICES[1] + 1))
    theta = 2 * np.pi * (np.arange(n) + rng.uniform(-0.35, 0.35, n)) / n
    radius = rng.uniform(*STAR_RADII, n)
    height = float(rng.uniform(*STAR_HEIGHTS))
    poly = orient(Polygon(np.stack([radius * np.cos(theta), radius * np.sin(theta)], axis=1)), 1.0)
    assert poly.is_valid and poly.area > 0, "a star-shaped polygon is simple"
    return poly, height


def is_shape_name(name: str) -> bool:
    """Whether ``name`` is a procedural shape: one of `PROCEDURAL_SHAPES` or ``"star/<non-negative int>"``."""
    if name in PROCEDURAL_SHAPES:
        return True
    tail = name[len(STAR_PREFIX):] if name.startswith(STAR_PREFIX) else ""
    return tail.isdigit() and tail == str(int(tail))


@lru_cache(maxsize=1)
def t_polygon() -> Polygon:
    """The T's footprint in its own frame: bar ``T_BAR`` union stem ``T_STEM`` (normalised)."""
    return shapely.union(box(*T_BAR), box(*T_STEM)).normalize()


def shape_polygon(name: str) -> tuple[Polygon, float]:
    """(footprint polygon in metres, extrusion height in metres) of procedural shape ``name``.

    ``shape_polygon("T")`` returns the PushT4D-v0 block's footprint (`t_polygon`) and its height 0.04 m.
    """
    if name == "T":
        return t_polygon(), T_HEIGHT
    if name.startswith(STAR_PREFIX) and is_shape_name(name):
        return star_polygon(int(name[len(STAR_PREFIX):]))
    try:
        return _build(name), DEFAULT_HEIGHT
    except KeyError:
        raise ValueError(f"unknown procedural shape {name!r}; allowed: {', '.join(PROCEDURAL_SHAPES)} or "
                         f"'{STAR_PREFIX}<seed>' (a non-negative integer seed)") from None


def validate_polygon(points: Sequence[Sequence[float]] | np.ndarray,
                     holes: Sequence[Sequence[Sequence[float]]] | None = None) -> Polygon:
    """A checked shapely polygon from ``points`` (N >= 3 (x, y) pairs, metres; a closing repeat is dropped) and
    optional ``holes`` (a list of such rings). ValueError when there are fewer than 3 points, non-finite values,
    zero area or a self-intersection (shapely ``is_valid``)."""

    def ring(pts, what: str) -> np.ndarray:
        try:
            arr = np.asarray(pts, dtype=float)
        except (TypeError, ValueError):
            raise ValueError(f"{what} must be a list of [x, y] pairs in metres, got {pts!r}") from None
        if arr.ndim != 2 or arr.shape[1] != 2:
            raise ValueError(f"{what} must be a list of [x, y] pairs in metres, got an array of shape {arr.shape}")
        if len(arr) > 1 and np.array_equal(arr[0], arr[-1]):
            arr = arr[:-1]
        if len(arr) < 3:
            raise ValueError(f"{what} needs at least 3 distinct points, got {len(arr)}")
        if not np.isfinite(arr).all():
            raise ValueError(f"{what} has non-finite coordinates")
        return arr

    shell = ring(points, "polygon")
    inner = [ring(h, f"polygon hole {i}") for i, h in enumerate(holes or [])]
    poly = Polygon(shell, inner)
    if np.linalg.matrix_rank(shell - shell[0], tol=1e-12) < 2:
        raise ValueError(f"polygon has zero area (its {len(shell)} points are collinear or repeated)")
    if not poly.is_valid:
        raise ValueError(f"polygon is not simple: {explain_validity(poly)} (self-intersecting outlines and holes "
                         "that cross the outline are not allowed; give the points in order around the outline)")
    if not poly.area > 1e-12:
        raise ValueError("polygon has zero area once its holes are removed")
    return orient(poly, 1.0)


def _cross(o: tuple, a: tuple, b: tuple) -> float:
    return (a[0] - o[0]) * (b[1] - o[1]) - (a[1] - o[1]) * (b[0] - o[0])


def _is_convex(ring: list[tuple]) -> bool:
    n = len(ring)
    return all(_cross(ring[i - 1], ring[i], ring[(i + 1) % n]) >= -1e-15 for i in range(n))


def _merge(p: list[tuple], q: list[tuple], a: tuple, b: tuple) -> list[tuple]:
    """The ring of pieces ``p`` (with edge a -> b) and ``q`` (with edge b -> a) joined along that edge."""
    i, j = p.index(b), q.index(a)
    p_rot = p[i:] + p[:i]  # b ... a
    q_rot = q[j:] + q[:j]  # a ... b
    return p_rot + q_rot[1:-1]


def convex_decomposition(polygon: Polygon) -> list[Polygon]:
    """An exact decomposition of ``polygon`` (holes included) into convex polygons that tile it.

    A convex polygon without holes is returned whole. Otherwise the polygon is triangulated (constrained
    Delaunay, no added points) and adjacent pieces are merged across their shared diagonal, longest first,
    whenever the union stays convex (Hertel-Mehlhorn): at most 4x the minimum number of pieces.
    """
    polygon = orient(polygon, 1.0)
    if not polygon.interiors and polygon.convex_hull.area - polygon.area <= 1e-12 * polygon.area:
        return [orient(polygon.convex_hull, 1.0)]
    pieces: dict[int, list[tuple]] = {}
    for k, tri in enumerate(shapely.constrained_delaunay_triangles(polygon).geoms):
        pts = [tuple(c) for c in np.asarray(tri.exterior.coords)[:3]]
        area2 = _cross(*pts)
        if abs(area2) > 0:
            pieces[k] = pts if area2 > 0 else pts[::-1]
    owner = {(r[i], r[(i + 1) % len(r)]): k for k, r in pieces.items() for i in range(len(r))}
    diagonals = sorted({tuple(sorted(e)) for e in owner if (e[1], e[0]) in owner},
                       key=lambda e: (-np.hypot(e[0][0] - e[1][0], e[0][1] - e[1][1]), e))
    for a, b in diagonals:
        p, q = owner.get((a, b)), owner.get((b, a))
        if p is None or q is None or p == q:
            continue
        merged = _merge(pieces[p], pieces[q], a, b)
        if not _is_convex(merged):
            continue
        for i in range(len(pieces[q])):
            owner[(pieces[q][i], pieces[q][(i + 1) % len(pieces[q])])] = p
        del owner[(a, b)], owner[(b, a)], pieces[q]
        pieces[p] = merged
    return [orient(Polygon(r).convex_hull, 1.0) for _, r in sorted(pieces.items())]
