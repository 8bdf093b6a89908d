"""An object's footprint as the scripted pushers see it: contact candidates, centre of mass, limit surface, travel.

`PushGeometry` turns a footprint (a shapely Polygon or MultiPolygon in the object frame, holes and concave
parts included), the centre of mass and the spacing of the contact candidates into what the pushers need:

- ``outline`` (M, 2) / ``normals`` (M, 2): contact candidates along every boundary ring (each part's outer
  ring, then its holes) with unit normals pointing out of the material (into a hole on a hole's ring). An
  edge at least ``spacing`` long gets ``int(length / spacing)`` evenly spaced candidates with the edge's
  normal; a run of shorter edges (a mesh's finely sampled outline) is sampled every ``spacing`` along its
  length, each candidate with the normal of the chord ``spacing`` long around it (of its own edge when that
  chord turns by more than ~80 degrees), so a dense outline does not crowd the candidates;
- ``radius``: the ellipsoidal limit surface's moment-to-force ratio for uniform pressure (the mean distance
  of the support area from the centre of mass); ``probe``: points of the footprint (relative to the centre
  of mass) that measure a pose error; ``symmetry``: the footprint's order of rotational symmetry about its
  centroid (1: none), so that a goal pose and its symmetric twins count alike, and ``yaw_free``: whether
  its yaw hardly matters at all (a disk, a ring: only its centroid has to reach the goal's);
- placing (`at`), distances, the hand's travel around the object along its outline offset by
  ``BLOCK_CLEARANCE`` (`around`, `travel`), the check that a push's approach stays clear of it
  (`clear_approach`) and which candidates the hand can reach from where it is (`reachable`: a candidate on a
  hole's ring only from inside that hole).

This is the geometry of a point hand (the fingertip centre touches the outline). `policies.hand` grows it by a
gripper's real outline (its ``obstacle``, ``contacts`` and ``hand`` then differ from the footprint's).

`object_geometry(info)` is the geometry of an env's current object from its ``info`` (``object_footprint``,
``object_com``; built once per footprint and cached), and PushT4D's T (`envs.pusht.geometry`) when ``info``
has no footprint. Built from the T the values are exactly those the pushers have always used.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import shapely
from shapely.geometry import LineString, MultiPolygon, Point, Polygon

from envs.pusht import geometry as geo

OUTLINE_SPACING = 0.01  # m: spacing of the candidate contact points along the outline
BLOCK_CLEARANCE = 0.035  # m: the hand travels around the object along its outline offset by this much
STRAIGHT_MARGIN = 0.005  # m: a straight travel may pass this much closer to the object than BLOCK_CLEARANCE
MAX_CROSSING = 0.005  # m: with a hand's outline, a straight travel may run this far inside the grown obstacle
APPROACH_CLEARANCE = 0.005  # m: the approach to a contact keeps this far from the object ...
APPROACH_FINAL = 0.01  # m: ... until this far before the contact
REACH = geo.WORKSPACE / 2 - 0.01  # targets stay 1 cm inside the workspace
LIMIT_SURFACE_SAMPLES = 20000  # uniform draws in the footprint's bounding box that average the limit surface's radius
MIN_INSIDE_SAMPLES = 2000  # ... drawn again until at least this many fall inside the footprint
PROBE_DRAWS = 400  # uniform draws in the bounding box for the points that measure the pose error ...
PROBE_POINTS = 60  # ... of which the first this many inside the footprint are kept
MAX_DRAW_ROUNDS = 50  # rounds of draws before a (very thin) footprint is sampled on its boundary instead
CHORD_MIN_COSINE = 0.2  # a run candidate keeps its chord's normal when it is within ~80 deg of its edge's normal
SYMMETRY_ORDERS = range(36, 1, -1)  # rotational symmetry orders tried, highest first
SYMMETRY_IOU = 0.985  # a footprint turned by 2 pi / k about its centroid overlapping itself this much is k-symmetric
YAW_FREE_COVERAGE = 0.975  # a footprint that covers this much of itself turned by any angle: its yaw does not matter
YAW_FREE_ANGLES = 12  # angles in (0, pi] at which that is checked


def segment(a: np.ndarray, b: np.ndarray, step: float) -> list[np.ndarray]:
    """Points from ``a`` (excluded) to ``b`` (included) at most ``step`` apart."""
    n = max(1, int(np.ceil(np.linalg.norm(b - a) / step)))
    return [a + (b - a) * k / n for k in range(1, n + 1)]


def to_world(pose: np.ndarray, pts: np.ndarray,
             vecs: np.ndarray | None = None) -> np.ndarray | tuple[np.ndarray, np.ndarray]:
    """Object-frame points (N, 2) (and vectors, if given) in the world for planar ``pose`` (x, y, yaw)."""
    R = geo.rot_z(pose[2])[:2, :2]
    w = pts @ R.T + pose[:2]
    return (w, vecs @ R.T) if vecs is not None else w


def ring_coordinates(footprint: Polygon | MultiPolygon) -> list[tuple[np.ndarray, int]]:
    """Every boundary ring (closed coordinates (n + 1, 2)) and its region: -1 for a part's outer ring, else the
    index of the hole (counted over all parts) it bounds."""
    out, hole = [], 0
    for part in getattr(footprint, "geoms", [footprint]):
        out.append((np.asarray(part.exterior.coords)[:, :2], -1))
        for ring in part.interiors:
            out.append((np.asarray(ring.coords)[:, :2], hole))
            hole += 1
    return out


def _ring_candidates(ring: np.ndarray, outward_right: bool, spacing: float) -> tuple[np.ndarray, np.ndarray]:
    """Candidates (K, 2) and outward normals (K, 2) along one closed ring (see the module docstring)."""
    sign = 1.0 if outward_right else -1.0  # the right-hand normal (dy, -dx) or its opposite
    edges = ring[1:] - ring[:-1]
    lengths = np.array([np.linalg.norm(e) for e in edges])  # one by one: the T's candidates bit for bit
    pts, nrm = [], []
    i = 0
    while i < len(edges):
        if lengths[i] <= 0:
            i += 1
            continue
        if int(lengths[i] / spacing) >= 1:  # a long edge: its own evenly spaced candidates
            a, edge, length = ring[i], edges[i], lengths[i]
            n = max(1, int(length / spacing))
            t = (np.arange(n) + 0.5) / n
            pts.append(a + t[:, None] * edge)
            normal = np.array([edge[1], -edge[0]]) / length
            nrm.append(np.repeat((normal if sign > 0 else -normal)[None], n, axis=0))
            i += 1
            continue
        j = i  # a run of short edges [i, j)
        while j < len(edges) and int(lengths[j] / spacing) < 1:
            j += 1
        p, q = _run_candidates(ring[i : j + 1], sign, spacing)
        pts.append(p)
        nrm.append(q)
        i = j
    if not pts:
        return np.zeros((0, 2)), np.zeros((0, 2))
    return np.concatenate(pts), np.concatenate(nrm)


def _run_candidates(run: np.ndarray, sign: float, spacing: float) -> tuple[np.ndarray, np.ndarray]:
    """Candidates every ``spacing`` along a polyline of short edges ``run`` (n + 1, 2), with chord normals."""
    edges = run[1:] - run[:-1]
    lengths = np.linalg.norm(edges, axis=1)
    keep = lengths > 0
    run = np.concatenate([run[:1], run[1:][keep]])
    edges, lengths = edges[keep], lengths[keep]
    s = np.concatenate([[0.0], np.cumsum(lengths)])
    total = s[-1]
    n = max(1, int(round(total / spacing)))
    at = (np.arange(n) + 0.5) / n * total

    def point(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Points at arc lengths ``x`` along the run, and the edge each lies on."""
        k = np.clip(np.searchsorted(s, x, side="right") - 1, 0, len(edges) - 1)
        return run[k] + ((x - s[k]) / lengths[k])[:, None] * edges[k], k

    pts, k = point(at)
    edge_normal = sign * np.stack([edges[k, 1], -edges[k, 0]], 1) / lengths[k][:, None]
    ahead, _ = point(np.minimum(at + spacing / 2, total))
    behind, _ = point(np.maximum(at - spacing / 2, 0.0))
    chord = ahead - behind
    norm = np.linalg.norm(chord, axis=1, keepdims=True)
    chord_normal = sign * np.stack([chord[:, 1], -chord[:, 0]], 1) / np.maximum(norm, 1e-12)
    good = (norm[:, 0] > 0) & (np.sum(chord_normal * edge_normal, axis=1) > CHORD_MIN_COSINE)
    return pts, np.where(good[:, None], chord_normal, edge_normal)


def outline_candidates(footprint: Polygon | MultiPolygon,
                       spacing: float = OUTLINE_SPACING) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Contact candidates (M, 2) on every boundary ring of ``footprint``, their outward unit normals (M, 2) and
    the region (M,) of the free space each faces (-1 outside the object, else the index of its hole)."""
    pts, nrm, region = [], [], []
    for ring, where in ring_coordinates(footprint):
        ccw = bool(shapely.is_ccw(shapely.linearrings(ring)))
        # an outer ring's material lies left of a counter-clockwise walk, a hole's material right of it
        p, n = _ring_candidates(ring, outward_right=(ccw == (where < 0)), spacing=spacing)
        pts.append(p)
        nrm.append(n)
        region.append(np.full(len(p), where))
    return np.concatenate(pts), np.concatenate(nrm), np.concatenate(region).astype(int)


def _inside_draws(footprint: Polygon | MultiPolygon, seed: int, draws: int, wanted: int) -> np.ndarray:
    """Uniform points of the footprint: rounds of ``draws`` uniform draws in its bounding box (generator
    ``default_rng(seed)``), the ones inside kept, until at least ``wanted`` are found."""
    rng = np.random.default_rng(seed)
    x0, y0, x1, y1 = footprint.bounds
    found, count = [], 0
    for _ in range(MAX_DRAW_ROUNDS):
        pts = rng.uniform((x0, y0), (x1, y1), size=(draws, 2))
        inside = pts[shapely.contains_xy(footprint, pts[:, 0], pts[:, 1])]
        found.append(inside)
        count += len(inside)
        if count >= wanted:
            break
    out = np.concatenate(found)
    if not len(out):  # no area to speak of: its boundary stands for it
        line = footprint.boundary
        out = np.array([line.interpolate(t, normalized=True).coords[0] for t in np.linspace(0, 1, wanted)])
    return out


def limit_surface_radius(footprint: Polygon | MultiPolygon, com: np.ndarray) -> float:
    """Mean distance of the footprint's support area from the centre of mass ``com`` (2,): the ellipsoidal
    limit surface's moment-to-force ratio for uniform pressure (m_max / f_max)."""
    pts = _inside_draws(footprint, 0, LIMIT_SURFACE_SAMPLES, MIN_INSIDE_SAMPLES)
    return float(np.mean(np.linalg.norm(pts - np.asarray(com)[:2], axis=1)))


def yaw_free(footprint: Polygon | MultiPolygon) -> bool:
    """Whether the footprint turned about its centroid by any angle still covers at least ``YAW_FREE_COVERAGE`` of
    itself (a disk, a ring, a regular polygon with many sides): pushing it onto its goal needs no turning."""
    c = footprint.centroid
    for a in np.linspace(np.pi / YAW_FREE_ANGLES, np.pi, YAW_FREE_ANGLES):
        turned = shapely.affinity.rotate(footprint, a, origin=c, use_radians=True)
        if footprint.intersection(turned).area < YAW_FREE_COVERAGE * footprint.area:
            return False
    return True


def symmetry_order(footprint: Polygon | MultiPolygon) -> int:
    """The highest order k (<= 36) of rotational symmetry of ``footprint`` about its centroid: turned by 2 pi / k
    it overlaps itself by intersection-over-union >= ``SYMMETRY_IOU``; 1 when it has none."""
    c = footprint.centroid
    for k in SYMMETRY_ORDERS:
        turned = shapely.affinity.rotate(footprint, 2 * np.pi / k, origin=c, use_radians=True)
        inter = footprint.intersection(turned).area
        if inter / max(footprint.union(turned).area, 1e-300) >= SYMMETRY_IOU:
            return k
    return 1


@dataclass(frozen=True, eq=False)
class PushGeometry:
    """What the scripted pushers know of an object (see the module docstring); object-frame lengths in metres."""

    footprint: Polygon | MultiPolygon
    com: np.ndarray  # (2,) the centre of mass
    outline: np.ndarray  # (M, 2) contact candidates: where the fingertip centre is when the hand touches
    normals: np.ndarray  # (M, 2) their outward unit normals (the contact normals)
    region: np.ndarray  # (M,) the free region each faces: -1 outside, k inside hole k
    radius: float  # the limit surface's moment-to-force ratio (m)
    probe: np.ndarray  # (P, 2) points of the footprint relative to the centre of mass
    symmetry: int  # order of rotational symmetry about the centroid (1: none)
    yaw_free: bool  # turning it about its centroid hardly changes the ground it covers (`yaw_free`)
    centroid: np.ndarray  # (2,) the footprint's area centroid
    holes: tuple[Polygon, ...]  # each hole of ``obstacle`` as a polygon (object frame), indexed as in ``region``
    obstacle: Polygon | MultiPolygon  # where the fingertip centre cannot go: the footprint for a point hand
    contacts: np.ndarray  # (M, 2) where the hand touches the object at each candidate (``outline`` for a point)
    clearance: float = BLOCK_CLEARANCE  # m: the travel keeps this far from ``obstacle``
    hand: tuple | None = None  # the hand's layers it was grown by (`policies.hand`); None: a point hand

    @classmethod
    def build(cls, footprint: Polygon | MultiPolygon, com: np.ndarray,
              spacing: float = OUTLINE_SPACING) -> PushGeometry:
        """The geometry of ``footprint`` (object frame) with its centre of mass ``com`` ((2,) or (3,))."""
        if footprint.is_empty or not footprint.area > 0:
            raise ValueError("a footprint to push needs an area (got an empty or flat one)")
        com = np.array(np.asarray(com, dtype=float)[:2])
        outline, normals, region = outline_candidates(footprint, spacing)
        probe = _inside_draws(footprint, 1, PROBE_DRAWS, PROBE_POINTS)[:PROBE_POINTS] - com
        holes = tuple(Polygon(r) for part in getattr(footprint, "geoms", [footprint]) for r in part.interiors)
        for arr in (com, outline, normals, region, probe):
            arr.flags.writeable = False
        return cls(footprint, com, outline, normals, region, limit_surface_radius(footprint, com), probe,
                   symmetry_order(footprint), yaw_free(footprint), np.array(footprint.centroid.coords[0]), holes,
                   footprint, outline)

    # ------------------------------------------------------------------ placing
    def at(self, pose: np.ndarray) -> Polygon | MultiPolygon:
        """The footprint placed at planar pose (x, y, yaw)."""
        return self._place(self.footprint, pose)

    def obstacle_at(self, pose: np.ndarray) -> Polygon | MultiPolygon:
        """Where the fingertip centre cannot go with the object at ``pose``: the footprint for a point hand."""
        return self.at(pose) if self.hand is None else self._place(self.obstacle, pose)

    @staticmethod
    def _place(shape: Polygon | MultiPolygon, pose: np.ndarray) -> Polygon | MultiPolygon:
        x, y, yaw = (float(v) for v in pose)
        c, s = np.cos(yaw), np.sin(yaw)
        return shapely.transform(shape, lambda xy: xy @ np.array([[c, s], [-s, c]]) + (x, y))

    def com_pose(self, pose: np.ndarray) -> np.ndarray:
        """Planar pose of the centre of mass for object pose (x, y, yaw)."""
        x, y, yaw = pose
        c = geo.rot_z(yaw)[:2, :2] @ self.com
        return np.array([x + c[0], y + c[1], yaw])

    def distance(self, pose: np.ndarray, xy: np.ndarray) -> float:
        """Planar distance (m) from point ``xy`` to the footprint at ``pose`` (0 inside the material)."""
        return float(self.at(pose).distance(Point(float(xy[0]), float(xy[1]))))

    def symmetric_goals(self, goal: np.ndarray) -> np.ndarray:
        """The goal pose and its symmetric twins (symmetry, 3): the footprint turned about its centroid by
        multiples of 2 pi / ``symmetry`` covers the same ground."""
        goal = np.asarray(goal, dtype=float)
        if self.symmetry == 1:
            return goal[None]
        out = []
        for j in range(self.symmetry):
            a = 2 * np.pi * j / self.symmetry
            turned = geo.rot_z(a)[:2, :2] @ self.centroid
            shift = geo.rot_z(goal[2])[:2, :2] @ (self.centroid - turned)
            out.append([goal[0] + shift[0], goal[1] + shift[1], goal[2] + a])
        return np.array(out)

    # ------------------------------------------------------------------ reach
    def hole_of(self, pose: np.ndarray, xy: np.ndarray) -> int:
        """The hole (index) that world point ``xy`` lies in with the object at ``pose``; -1 if in none."""
        if not self.holes:
            return -1
        local = (np.asarray(xy, dtype=float) - pose[:2]) @ geo.rot_z(pose[2])[:2, :2]
        for k, hole in enumerate(self.holes):
            if shapely.contains_xy(hole, local[0], local[1]):
                return k
        return -1

    def reachable(self, pose: np.ndarray, ee: np.ndarray) -> np.ndarray:
        """Which candidates (M,) the hand at ``ee`` can get to without crossing the object: those facing the free
        region it is in (all of them when none does, e.g. a hand pressed into the object)."""
        ok = self.region == self.hole_of(pose, ee)
        return ok if ok.any() else np.ones(len(ok), dtype=bool)

    def clear_approach(self, pose: np.ndarray, idx: np.ndarray, u: np.ndarray, standoff: float) -> np.ndarray:
        """Whether pushes at candidates ``idx`` along world directions ``u`` (K, 2) can be approached: the pre-push
        point ``standoff`` behind the contact lies outside the object and the approach stays 5 mm from it until
        1 cm before the contact (a push into a concave corner at an angle can put its pre-push point inside
        another arm of the object, and the hand would sweep it while getting there)."""
        contact = to_world(pose, self.outline[idx])
        lines = shapely.linestrings(np.stack([contact - u * standoff, contact - u * APPROACH_FINAL], axis=1))
        return shapely.distance(self.obstacle_at(pose), lines) > APPROACH_CLEARANCE

    # ------------------------------------------------------------------ travel
    def _travel_ring(self, placed: Polygon | MultiPolygon, pose: np.ndarray, start: np.ndarray,
                     goal: np.ndarray) -> shapely.LinearRing | None:
        """The offset outline the hand follows from ``start`` to ``goal``: inside a hole both are in, that hole's
        outline offset inward; else the object's outer outline offset outward (of its convex hull when the offset
        parts stay apart)."""
        hole = self.hole_of(pose, start)
        if hole >= 0 and hole == self.hole_of(pose, goal):
            inner = self._place(self.holes[hole], pose).buffer(-self.clearance)
            parts = [p for p in getattr(inner, "geoms", [inner]) if isinstance(p, Polygon) and not p.is_empty]
            return max(parts, key=lambda p: p.area).exterior if parts else None
        grown = placed.buffer(self.clearance)
        if isinstance(grown, MultiPolygon):
            grown = placed.convex_hull.buffer(self.clearance)
        return grown.exterior

    def around(self, start: np.ndarray, goal: np.ndarray, pose: np.ndarray, step: float) -> list[np.ndarray]:
        """Waypoints (at most ``step`` apart) from ``start`` to ``goal`` that never approach the object at ``pose``.

        The straight segment is taken when it keeps ``clearance - STRAIGHT_MARGIN`` from the object (its
        ``obstacle``) or comes no closer than its end points (and, for a grown obstacle, which a hand touches
        when its push ends, runs at most ``MAX_CROSSING`` inside it); otherwise the hand moves out to the obstacle's
        outline offset by ``clearance``, along it the shorter way round, and in to ``goal``. The moves out and
        in follow the distance gradient (each end's nearest point on the offset outline), so they never cut
        across the object, not even from inside its concave corners.
        """
        block = self.obstacle_at(pose)
        line = LineString([start, goal])
        gap = min(self.clearance - STRAIGHT_MARGIN, block.distance(Point(*start)), block.distance(Point(*goal)))
        straight = line.distance(block) >= gap - 1e-9
        if straight and self.hand is not None:  # a push ends touching a grown obstacle: never straight across it
            straight = line.intersection(block).length <= MAX_CROSSING
        if straight:
            return segment(start, goal, step)
        ring = self._travel_ring(block, pose, start, goal)
        if ring is None:  # a hole too small to travel in: straight
            return segment(start, goal, step)
        a, b = ring.project(Point(*start)), ring.project(Point(*goal))
        forward = (b - a) % ring.length
        span = forward if forward <= ring.length / 2 else forward - ring.length  # signed, the shorter way
        along = step if self.hand is None else min(step, self.clearance)  # chords of a tight ring cut its corners
        n = max(1, int(np.ceil(abs(span) / along)))
        arc = [np.array(ring.interpolate((a + span * k / n) % ring.length).coords[0]) for k in range(n + 1)]
        return segment(start, arc[0], step) + arc[1:] + segment(arc[-1], goal, step)

    def travel(self, pose: np.ndarray, ee: np.ndarray, pre: np.ndarray, step: float) -> list[np.ndarray]:
        """Targets (at most ``step`` apart) from ``ee`` to ``pre`` around the object at ``pose``, inside the
        workspace."""
        return [np.clip(p, -REACH, REACH) for p in self.around(ee, pre, pose, step)]


@lru_cache(maxsize=64)
def _geometry(wkb: bytes, com: tuple[float, float]) -> PushGeometry:
    return PushGeometry.build(shapely.from_wkb(wkb), np.array(com))


def geometry_of(footprint: Polygon | MultiPolygon, com: np.ndarray) -> PushGeometry:
    """The (cached) `PushGeometry` of ``footprint`` (object frame) with centre of mass ``com``."""
    c = np.asarray(com, dtype=float)
    return _geometry(shapely.to_wkb(footprint), (float(c[0]), float(c[1])))


def pusht_geometry() -> PushGeometry:
    """PushT4D's T block (`envs.pusht.geometry`)."""
    return geometry_of(geo.footprint(), geo.COM_LOCAL)


def object_geometry(info: dict | None) -> PushGeometry:
    """The geometry of an env's current object from its ``info`` (``object_footprint`` and ``object_com``, the
    footprint's centroid without it), built once per footprint; PushT4D's T when ``info`` holds no footprint."""
    if not info or info.get("object_footprint") is None:
        return pusht_geometry()
    footprint = info["object_footprint"]
    com = info.get("object_com")
    return geometry_of(footprint, np.asarray(footprint.centroid.coords[0]) if com is None else com)


def object_pose(obs: dict) -> np.ndarray:
    """The object's planar pose (x, y, yaw) of an observation: ``object_pose`` (Push4D) or ``block_pose`` (PushT4D)."""
    return np.asarray(obs["object_pose"] if "object_pose" in obs else obs["block_pose"], dtype=float)
