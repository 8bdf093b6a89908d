"""A gripper's real shape in the pushers' planning: the hand's layers and the object grown by them.

A Push4D gripper is held with its z axis down and its x axis along world +x, so its shape relative to the
fingertip centre never changes. `hand_layers` reads it from the observation's gripper points (point-cloud
modes; or ``info["gripper_outline"]``, one outline for every height, when an env gives one): the points lower
than the object's top (+``HAND_TOP_MARGIN``), in layers ``HAND_SLAB`` high, each outlined by the convex hull of
all the points below its top (sparse samples never thin a layer; a gripper that widens upward, as most do, is
outlined well), layers whose outlines agree within ``HAND_MERGE`` merged (e.g. the Panda's fingers, then its
20 cm wide hand).

`grow_by_hand` gives the geometry a push is planned on (`policies.footprint.PushGeometry`). A hand layer spanning
heights [a, b] can only touch the object's material at those heights: the footprint cut to the convex hull of the
object's surface points between a - ``SLAB_PAD`` and b + ``SLAB_PAD`` (the whole footprint for a layer that spans
the object's height). The fingertip centre must keep out of the union over layers of that material grown by the
mirrored layer outline (Minkowski sums, `hand_obstacle`): its outline carries the contact candidates and their
(contact) normals, and each candidate's contact point is where the nearest layer then touches the object. So a
push is measured from where the hand touches, not from its fingertip centre, and a tall object is not approached
closer than the hand's body allows.
"""

from __future__ import annotations

from dataclasses import replace
from typing import NamedTuple

import numpy as np
import shapely
from shapely.geometry import MultiPolygon, Polygon

from envs.pusht import geometry as geo
from robots.transforms import pose_matrix

from .footprint import OUTLINE_SPACING, PushGeometry, outline_candidates, ring_coordinates

HAND_TOP_MARGIN = 0.005  # m: gripper points up to this far above the object's top can touch it
HAND_SLAB = 0.01  # m: height of the slabs the hand's points are cut into ...
HAND_MERGE = 0.005  # m: ... merged while their outlines' bounds agree this closely
SLAB_PAD = 0.005  # m: the object's points this far above and below a layer count
HAND_CLEARANCE = 0.025  # m: the travel keeps this far from the object grown by the hand
MIN_POINTS = 3  # points that make an outline


class HandLayer(NamedTuple):
    """The part of the hand between heights ``z_lo`` and ``z_hi`` (m above the table): its convex ``outline``
    (K, 2; world axes, relative to the fingertip centre)."""

    z_lo: float
    z_hi: float
    outline: np.ndarray


def _hull(xy: np.ndarray) -> np.ndarray | None:
    """The convex hull (K, 2) of points ``xy``; None for fewer than three points or points in a line."""
    hull = shapely.MultiPoint(xy).convex_hull
    return np.asarray(hull.exterior.coords)[:-1] if isinstance(hull, Polygon) and hull.area > 0 else None


def hand_layers(obs: dict, info: dict | None) -> tuple[HandLayer, ...] | None:
    """The layers (bottom-up) of the part of a Push4D gripper that can touch the object (module docstring); None (a
    point hand) without gripper points or ``info["gripper_outline"]``, and for PushT4D observations
    (``block_pose``), whose pushers keep the point hand of their recorded behaviour."""
    if "object_pose" not in obs:
        return None
    if info and info.get("gripper_outline") is not None:
        return (HandLayer(-np.inf, np.inf, np.asarray(info["gripper_outline"], dtype=float)),)
    grip = obs.get("gripper_points")
    if grip is None or len(grip) < MIN_POINTS:
        return None
    grip = np.asarray(grip, dtype=float)
    if info and info.get("object_points") is not None and len(info["object_points"]):
        grip = grip[grip[:, 2] < float(np.max(np.asarray(info["object_points"])[:, 2])) + HAND_TOP_MARGIN]
    if len(grip) < MIN_POINTS:
        return None
    rel, z = grip[:, :2] - np.asarray(obs["agent_pos"], dtype=float), grip[:, 2]
    order = np.argsort(z, kind="stable")
    rel, z = rel[order], z[order]
    edges = z.min() + HAND_SLAB * np.arange(1, int(np.floor((z.max() - z.min()) / HAND_SLAB)) + 2)
    layers: list[HandLayer] = []
    for top in edges:  # the hull of every point below each slab's top: sparse samples never thin a layer
        below = int(np.searchsorted(z, top, side="left"))
        outline = _hull(rel[:below]) if below >= MIN_POINTS else None
        if outline is None:
            continue
        if layers and _close(layers[-1].outline, outline):
            layers[-1] = layers[-1]._replace(outline=outline)
            continue
        z_lo = -np.inf if not layers else layers[-1].z_hi
        layers.append(HandLayer(z_lo, float(top), outline))
    if layers:
        layers[-1] = layers[-1]._replace(z_hi=np.inf)
    return tuple(layers) or None


def _close(a: np.ndarray, b: np.ndarray) -> bool:
    """Whether two outlines' bounds agree within ``HAND_MERGE``."""
    return bool(np.abs(np.r_[a.min(0) - b.min(0), a.max(0) - b.max(0)]).max() <= HAND_MERGE)


def object_points_local(info: dict) -> np.ndarray | None:
    """The object's tracked surface points (K, 3) in its own frame, from ``info`` (``object_points`` placed by
    ``object_pose7``); None without them."""
    if info.get("object_points") is None or info.get("object_pose7") is None:
        return None
    T = pose_matrix(np.asarray(info["object_pose7"], dtype=float))
    return (np.asarray(info["object_points"], dtype=float) - T[:3, 3]) @ T[:3, :3]


def hand_obstacle(footprint: Polygon | MultiPolygon, hand: np.ndarray) -> Polygon | MultiPolygon:
    """Where a hand of convex outline ``hand`` (K, 2, relative to its reference point, the footprint's frame)
    cannot put that point without overlapping ``footprint``: the Minkowski sum of the footprint and the mirrored
    hand, i.e. the footprint and every boundary edge swept by the mirrored hand (convex hulls)."""
    mirrored = -np.asarray(hand, dtype=float)
    pieces = [footprint]
    for ring, _ in ring_coordinates(footprint):
        ends = np.stack([ring[:-1], ring[1:]], axis=1)  # (E, 2, 2)
        swept = (ends[:, :, None, :] + mirrored[None, None]).reshape(len(ends), -1, 2)
        pieces.extend(shapely.convex_hull(shapely.multipoints(swept)))
    return _polygonal(shapely.union_all(pieces).simplify(1e-5))


def _polygonal(shape) -> Polygon | MultiPolygon:
    valid = shapely.make_valid(shape)
    polys = [p for p in getattr(valid, "geoms", [valid]) if isinstance(p, Polygon) and p.area > 0]
    return polys[0] if len(polys) == 1 else MultiPolygon(polys)


def material_between(footprint: Polygon | MultiPolygon, points: np.ndarray | None, z_lo: float,
                     z_hi: float) -> Polygon | MultiPolygon | None:
    """The footprint of the object's material between heights ``z_lo`` and ``z_hi``: ``footprint`` cut to the convex
    hull of the surface ``points`` (K, 3, object frame) in that range (+-``SLAB_PAD``); the footprint itself when
    the range spans every point (or without points); None when no point lies in it."""
    if points is None or not len(points):
        return footprint
    z = points[:, 2]
    if z_lo <= z.min() and z_hi >= z.max():
        return footprint
    inside = points[(z >= z_lo - SLAB_PAD) & (z <= z_hi + SLAB_PAD), :2]
    if len(inside) < MIN_POINTS:
        return None
    hull = shapely.MultiPoint(inside).convex_hull
    if hull.contains(footprint):
        return footprint
    cut = footprint.intersection(hull)
    return None if cut.is_empty or not cut.area > 0 else _polygonal(cut)


def grow_by_hand(geometry: PushGeometry, layers: tuple[HandLayer, ...] | None, yaw: float,
                 points: np.ndarray | None = None, spacing: float = OUTLINE_SPACING) -> PushGeometry:
    """``geometry`` for a hand of ``layers`` (None: a point, ``geometry`` itself) with the object turned by ``yaw``
    and its surface ``points`` (K, 3, object frame; None: every layer meets the whole footprint): see the module
    docstring. Valid for poses with this ``yaw``."""
    if not layers:
        return geometry
    turn = geo.rot_z(yaw)[:2, :2]
    parts = []  # (material, the layer's outline in the object frame)
    for layer in layers:
        material = material_between(geometry.footprint, points, layer.z_lo, layer.z_hi)
        if material is not None:
            parts.append((material, np.asarray(layer.outline, dtype=float) @ turn))
    if not parts:
        return geometry
    obstacle = _polygonal(shapely.union_all([hand_obstacle(m, h) for m, h in parts]))
    outline, normals, region = outline_candidates(obstacle, spacing)
    best = np.full(len(outline), np.inf)
    touch = outline.copy()
    for material, hand in parts:  # bottom-up: a tie goes to the lower layer
        hands = shapely.polygons(np.concatenate([hand, hand[:1]])[None] + outline[:, None])
        lines = shapely.shortest_line(material, hands)
        gap = shapely.length(lines)
        closer = gap < best - 1e-6
        touch[closer] = shapely.get_coordinates(lines).reshape(-1, 2, 2)[closer, 0]
        best = np.minimum(best, gap)
    holes = tuple(Polygon(r) for part in getattr(obstacle, "geoms", [obstacle]) for r in part.interiors)
    key = tuple((layer.z_lo, layer.z_hi, np.asarray(layer.outline).tobytes()) for layer in layers)
    return replace(geometry, outline=outline, normals=normals, region=region, holes=holes, obstacle=obstacle,
                   contacts=touch, clearance=HAND_CLEARANCE, hand=key)
