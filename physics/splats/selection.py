"""Which Gaussians of a capture to simulate: masks, crop boxes, opacity, strays, connected pieces, scenes.

Real 3DGS captures hold more than the object: floaters (stray Gaussians, sometimes hundreds
of units away), background, a ground. :func:`select_gaussians` applies, in this order:

1. ``mask``: a boolean mask over the Gaussians or an array of their indices (e.g. a ``.npy`` file,
   :func:`load_mask`);
2. ``crop``: an axis-aligned box ``[[x0, y0, z0], [x1, y1, z1]]`` in file units;
3. ``min_opacity``: Gaussians at least this opaque;
4. strays (``remove_strays``): a Gaussian whose mean distance to its ``k`` nearest neighbours
   exceeds ``max(3 m, m + stray_factor x 1.4826 MAD)`` (m the median of those distances,
   MAD their median absolute deviation), and every Gaussian of a connected piece smaller than
   ``max(8, 0.2 % of the Gaussians)``;
5. ``component``: ``"largest"`` or the index of a piece (0 = largest) of the connected pieces:
   Gaussians linked when they fall in the same or neighbouring cells of side three times the
   median nearest-neighbour distance (:func:`gaussian_components`).

**Scene rule.** Without an explicit selection (``mask``, ``crop`` or ``component``) the input
looks like a whole scene, not one object, when more than ``scene_stray_fraction`` (2 %) of the
Gaussians are strays, when it falls into more than ``scene_max_components`` (16) pieces, or
when a ground plane (:func:`~physics.splats.axes.ground_plane`, given as ``ground``) reaches at
least twice as far as the Gaussians standing on it.
:attr:`Selection.scene_like` says so and :attr:`Selection.scene_reason` why; the caller
refuses or warns.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

import numpy as np
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components
from scipy.spatial import cKDTree

__all__ = ["Selection", "select_gaussians", "load_mask", "stray_mask", "gaussian_components", "crop_mask",
           "describe_components"]

SCENE_STRAY_FRACTION = 0.02
SCENE_MAX_COMPONENTS = 16
SCENE_GROUND_RATIO = 2.0


def load_mask(path: str | os.PathLike, count: int) -> np.ndarray:
    """A boolean mask over ``count`` Gaussians from a ``.npy`` file: a boolean array of length ``count``, or
    integer indices of the Gaussians to keep."""
    try:
        value = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as err:
        raise ValueError(f"mask {str(path)!r} cannot be read as a .npy array: {err}") from err
    return as_mask(value, count, f"mask {str(path)!r}")


def as_mask(value: np.ndarray, count: int, what: str = "mask") -> np.ndarray:
    """``value`` (a boolean mask of length ``count`` or integer indices) as a boolean mask."""
    arr = np.asarray(value)
    if arr.dtype == bool:
        if arr.shape != (count,):
            raise ValueError(f"{what}: a boolean mask needs one entry per Gaussian ({count}), got shape {arr.shape}")
        return arr.copy()
    if arr.dtype.kind in "iu" and arr.ndim == 1:
        if len(arr) and (arr.min() < 0 or arr.max() >= count):
            raise ValueError(f"{what}: indices must lie in [0, {count - 1}], got {arr.min()}..{arr.max()}")
        mask = np.zeros(count, dtype=bool)
        mask[arr] = True
        return mask
    raise ValueError(f"{what} must be a boolean array of length {count} or a 1-D integer index array, "
                     f"got dtype {arr.dtype} and shape {arr.shape}")


def crop_mask(positions: np.ndarray, box: object) -> np.ndarray:
    """Gaussians inside the box ``[[x0, y0, z0], [x1, y1, z1]]`` (x1 > x0 etc.)."""
    b = np.asarray(box, dtype=np.float64)
    if b.shape != (2, 3) or not np.all(np.isfinite(b)) or np.any(b[1] <= b[0]):
        raise ValueError(f"crop must be [[x0, y0, z0], [x1, y1, z1]] with x1 > x0 etc., got {box!r}")
    return np.all((positions >= b[0]) & (positions <= b[1]), axis=1)


def stray_mask(positions: np.ndarray, k: int = 16, factor: float = 6.0) -> np.ndarray:
    """Statistical outliers: mean distance to the ``k`` nearest neighbours above ``max(3 m, m + factor 1.4826 MAD)``."""
    x = np.asarray(positions, dtype=np.float64)
    if len(x) <= 2:
        return np.zeros(len(x), dtype=bool)
    kk = int(min(k, len(x) - 1))
    dist, _ = cKDTree(x).query(x, k=kk + 1)
    mean = dist[:, 1:].mean(axis=1)
    m = float(np.median(mean))
    mad = float(np.median(np.abs(mean - m)))
    return mean > max(3.0 * m, m + factor * 1.4826 * mad)


def gaussian_components(positions: np.ndarray, link: float | None = None) -> tuple[np.ndarray, np.ndarray, float]:
    """Connected pieces of Gaussian centres: labels (0 = largest piece, 1, ...), piece sizes (descending) and
    the link length used.

    Centres are binned into cells of side ``link`` (default: three times the median nearest-neighbour distance);
    occupied cells touching at a face, edge or corner are connected (sparse: memory grows with the centres,
    not the extent).
    """
    x = np.asarray(positions, dtype=np.float64)
    n = len(x)
    if n == 0:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64), 0.0
    if link is None:
        nn = cKDTree(x).query(x, k=2)[0][:, 1] if n > 1 else np.ones(1)
        link = 3.0 * float(np.median(nn))
    link = float(link) if link > 0.0 else 1.0
    cells = np.floor((x - x.min(axis=0)) / link).astype(np.int64) + 1
    dims = cells.max(axis=0) + 2
    keys = np.ravel_multi_index(cells.T, dims)
    unique, cell_of = np.unique(keys, return_inverse=True)
    cell_of = cell_of.ravel()
    coords = np.stack(np.unravel_index(unique, dims), axis=1)
    rows, cols = [np.arange(len(unique))], [np.arange(len(unique))]
    for offset in np.argwhere(np.ones((3, 3, 3), dtype=bool)) - 1:
        if tuple(offset) <= (0, 0, 0):
            continue  # each neighbour pair once
        target = np.ravel_multi_index((coords + offset).T, dims)
        pos = np.minimum(np.searchsorted(unique, target), len(unique) - 1)
        hit = unique[pos] == target
        rows.append(np.flatnonzero(hit))
        cols.append(pos[hit])
    r, c = np.concatenate(rows), np.concatenate(cols)
    graph = coo_matrix((np.ones(len(r)), (r, c)), shape=(len(unique), len(unique)))
    _, cell_label = connected_components(graph, directed=False)
    label = cell_label[cell_of]
    sizes = np.bincount(label)
    order = np.argsort(-sizes, kind="stable")
    relabel = np.empty_like(order)
    relabel[order] = np.arange(len(order))
    return relabel[label], sizes[order], link


def describe_components(positions: np.ndarray, labels: np.ndarray, limit: int = 8) -> str:
    """One line per piece (up to ``limit``): index, Gaussian count and bounding box."""
    lines = []
    count = int(labels.max()) + 1 if len(labels) else 0
    for c in range(min(count, limit)):
        p = positions[labels == c]
        lo, hi = p.min(axis=0), p.max(axis=0)
        lines.append(f"component {c}: {len(p)} Gaussians, box [{', '.join(f'{v:.3g}' for v in lo)}] .. "
                     f"[{', '.join(f'{v:.3g}' for v in hi)}]")
    if count > limit:
        lines.append(f"... and {count - limit} more")
    return "; ".join(lines)


@dataclass
class Selection:
    """Result of :func:`select_gaussians`.

    Attributes:
        rows: indices of the selected Gaussians in the input.
        num_strays: Gaussians dropped as strays (outliers and tiny pieces).
        stray_distance: largest distance of a dropped stray from the selection's median centre (0 if none).
        component_sizes: Gaussian counts of the pieces (descending) before a ``component`` choice.
        components: description of the pieces (:func:`describe_components`).
        scene_like: whether the input looks like a whole scene (see the module docstring).
        scene_reason: why, or "".
        notes: what each step removed, for the summary.
    """

    rows: np.ndarray
    num_strays: int = 0
    stray_distance: float = 0.0
    component_sizes: list[int] = field(default_factory=list)
    components: str = ""
    scene_like: bool = False
    scene_reason: str = ""
    notes: dict = field(default_factory=dict)


def select_gaussians(
    positions: np.ndarray,
    opacities: np.ndarray,
    mask: np.ndarray | None = None,
    crop: object | None = None,
    min_opacity: float = 0.0,
    remove_strays: bool = True,
    component: str | int | None = None,
    stray_neighbours: int = 16,
    stray_factor: float = 6.0,
    scene_stray_fraction: float = SCENE_STRAY_FRACTION,
    scene_max_components: int = SCENE_MAX_COMPONENTS,
    ground: object | None = None,
) -> Selection:
    """Select the Gaussians of one object (see the module docstring for the steps and the scene rule).

    Args:
        positions: (N, 3) centres (file units).
        opacities: (N,) opacities in (0, 1).
        mask: boolean mask (N,) or indices of the Gaussians allowed, or None for all.
        crop: box ``[[x0, y0, z0], [x1, y1, z1]]`` or None.
        min_opacity: Gaussians less opaque are left out, in [0, 1).
        remove_strays: drop statistical outliers and tiny pieces.
        component: None (all pieces), ``"largest"`` or a piece index (0 = largest).
        stray_neighbours, stray_factor: the outlier test's k and factor.
        scene_stray_fraction, scene_max_components: the scene rule's limits.
        ground: the input's :class:`~physics.splats.axes.GroundPlane`, if one was found (scene rule 3).
    """
    x = np.asarray(positions, dtype=np.float64)
    n = len(x)
    if not (0.0 <= min_opacity < 1.0):
        raise ValueError(f"min_opacity must lie in [0, 1), got {min_opacity}")
    if component is not None and component != "largest" and not (
            isinstance(component, (int, np.integer)) and component >= 0):
        raise ValueError(f"component must be null, 'largest' or a piece index >= 0 (0 = largest), got {component!r}")
    keep = np.ones(n, dtype=bool) if mask is None else as_mask(mask, n)
    notes = {"mask": int(n - keep.sum())}
    if crop is not None:
        inside = crop_mask(x, crop)
        notes["crop"] = int((keep & ~inside).sum())
        keep &= inside
    if min_opacity > 0.0:
        opaque = np.asarray(opacities) >= min_opacity
        notes["min_opacity"] = int((keep & ~opaque).sum())
        keep &= opaque
    rows = np.flatnonzero(keep)
    if len(rows) < 4:
        raise ValueError(f"only {len(rows)} Gaussians to simulate after mask / crop / min_opacity "
                         f"(removed: {notes}); need at least 4")
    sel = Selection(rows, notes=notes)
    strays = np.zeros(len(rows), dtype=bool)
    if remove_strays:
        strays = stray_mask(x[rows], stray_neighbours, stray_factor)
    labels, sizes, _ = gaussian_components(x[rows][~strays])
    if remove_strays:
        tiny = sizes < max(8, int(0.002 * len(rows)))
        if tiny.any() and not tiny.all():
            small = np.flatnonzero(~strays)[tiny[labels]]
            strays[small] = True
            labels, sizes = labels[~tiny[labels]], sizes[~tiny]
    sel.num_strays = int(strays.sum())
    if sel.num_strays:
        centre = np.median(x[rows][~strays], axis=0)
        sel.stray_distance = float(np.linalg.norm(x[rows][strays] - centre, axis=1).max())
    rows = rows[~strays]
    sel.component_sizes = sizes.tolist()
    sel.components = describe_components(x[rows], labels)
    explicit = mask is not None or crop is not None or component is not None
    if not explicit:
        if sel.num_strays > scene_stray_fraction * (len(rows) + sel.num_strays):
            sel.scene_like = True
            sel.scene_reason = (f"{sel.num_strays} of {len(rows) + sel.num_strays} Gaussians are strays "
                                f"(> {scene_stray_fraction:.0%}), up to {sel.stray_distance:.3g} file units away")
        elif len(sizes) > scene_max_components:
            sel.scene_like = True
            sel.scene_reason = f"the Gaussians fall into {len(sizes)} separate pieces (> {scene_max_components})"
        elif ground is not None and ground.extent_ratio >= SCENE_GROUND_RATIO:
            sel.scene_like = True
            sel.scene_reason = (f"a ground plane (up {np.round(ground.up, 3).tolist()}) holds {ground.support:.0%} "
                                f"of the Gaussians and reaches {ground.extent_ratio:.1f}x as far as what stands on it")
    if component is not None:
        index = 0 if component == "largest" else int(component)
        if index >= len(sizes):
            raise ValueError(f"component={component!r} but there are only {len(sizes)} pieces: {sel.components}")
        rows = rows[labels == index]
    if len(rows) < 4:
        raise ValueError(f"only {len(rows)} Gaussians to simulate after removing strays; need at least 4")
    sel.rows = rows
    return sel
