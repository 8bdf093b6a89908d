"""Pulling world points back into a modal object's rest frame and measuring them there (a Warp kernel).

A world point ``p`` near the deformed surface has a rest position ``X`` with ``X + u(X) = p``.
About a surface sample ``j`` the displacement is the first-order field
``u(X) = a_j + (grad u)_j X`` (``a_j = u(X_j) - (grad u)_j X_j``; both linear in the modal
coordinates ``q`` through the sample's ``expansion`` table), so ``X = F^-1 (p - a_j)`` with
``F = I + (grad u)_j``. The sample is the one nearest to ``X`` (`SampleGrid`), looked up at a
guess and again at the solution until it stays the same; a point keeps a sample found earlier
while its rest position stays within ``reach`` of where that was looked up (the expansion's
error grows as the square of the distance). At ``X`` the kernel measures the rest-frame signed
distance to the union of boxes, the outward normal ``n``, the deformed normal ``F^-T n`` (the
gradient of that distance with respect to ``p``) and its modal row ``basis(X)^T F^-T n`` (how
each mode moves the surface along it).

One thread per point, float64 throughout. The gripper points tested per contact substep are a
few dozen, where numpy spends most of its time dispatching small operations: one launch
measures them all.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import warp as wp
from scipy.spatial import cKDTree

GRID_CELL = 0.001  # cell of the nearest-sample table (m)
GRID_MARGIN = 0.03  # the table reaches this far beyond the rest bounds (m); points further out use its border cells
GRID_COARSE = 4  # cells further than this many cells from every sample take the nearest sample of a 4x coarser cell
MAX_ITERATIONS = 6  # sample lookups per point and pull-back


class PullBack(NamedTuple):
    """World points pulled back to the rest frame: rest positions (P, 3), the surface sample (P,) each was
    expanded about, where that sample was looked up (P, 3), and the deformation gradient
    ``F = I + grad u`` (P, 3, 3) there."""

    rest: np.ndarray
    nearest: np.ndarray
    looked_up: np.ndarray
    F: np.ndarray


class Probe(NamedTuple):
    """A `PullBack` and what it measures: rest-frame signed distance (P,) (negative inside), deformed normal
    ``F^-T n`` (P, 3) and its modal row ``basis^T F^-T n`` (P, k)."""

    back: PullBack
    distance: np.ndarray
    normal: np.ndarray
    modal_normal: np.ndarray


class SampleGrid:
    """The surface sample nearest to each cell centre of a ``GRID_CELL`` grid around a shape's rest bounds.

    The sample found for a point lies at most ``sqrt(3) GRID_CELL`` further from it than its
    nearest sample where that is within ``GRID_COARSE - 1`` cells, and at most ``sqrt(3)
    GRID_COARSE GRID_CELL`` further elsewhere (pull-backs far from the surface need no precise
    expansion). The table is built on first use (about a second).
    """

    def __init__(self, samples: np.ndarray, bounds: np.ndarray):
        self.samples = np.asarray(samples, dtype=float)
        self.lo = np.asarray(bounds[0], dtype=float) - GRID_MARGIN
        self.dims = np.ceil((np.asarray(bounds[1]) + GRID_MARGIN - self.lo) / GRID_CELL).astype(np.int64)
        self._table: np.ndarray | None = None

    @property
    def table(self) -> np.ndarray:
        """The nearest sample (int32) of every cell, shaped ``dims``."""
        if self._table is None:
            tree, dims = cKDTree(self.samples), self.dims
            coarse_dims = -(-dims // GRID_COARSE)
            coarse = tree.query(_cell_centres(self.lo, coarse_dims, GRID_COARSE * GRID_CELL), workers=-1)[1]
            coarse = coarse.reshape(tuple(coarse_dims))
            _, table = tree.query(_cell_centres(self.lo, dims, GRID_CELL), distance_upper_bound=GRID_COARSE * GRID_CELL,
                                  workers=-1)
            table = table.reshape(tuple(dims))
            # no sample within reach of a cell's centre: its coarse cell's nearest sample serves
            i, j, k = np.nonzero(table == len(self.samples))
            table[i, j, k] = coarse[i // GRID_COARSE, j // GRID_COARSE, k // GRID_COARSE]
            self._table = table.astype(np.int32)
        return self._table

    def nearest(self, points: np.ndarray) -> np.ndarray:
        """Indices (P,) of the samples nearest to the cell centres of rest points (P, 3)."""
        cell = np.clip(((np.asarray(points) - self.lo) / GRID_CELL).astype(np.int64), 0, self.dims - 1)
        return self.table[cell[:, 0], cell[:, 1], cell[:, 2]]


def _cell_centres(lo: np.ndarray, dims: np.ndarray, cell: float) -> np.ndarray:
    """Centres (prod(dims), 3) of a grid of cubic cells from ``lo``, C order."""
    axes = [lo[a] + (np.arange(dims[a]) + 0.5) * cell for a in range(3)]
    return np.stack(np.meshgrid(*axes, indexing="ij"), -1).reshape(-1, 3)


@wp.func
def first_order_field(gradient: wp.array2d(dtype=wp.mat33d), affine: wp.array2d(dtype=wp.vec3d), j: int,
                      q: wp.array(dtype=wp.float64)):
    """``F = I + grad u`` and ``a = u(X_j) - grad u X_j`` about sample ``j`` for modal coordinates ``q``."""
    F = wp.identity(3, dtype=wp.float64)
    a = wp.vec3d()
    for m in range(q.shape[0]):
        F += q[m] * gradient[j, m]
        a += q[m] * affine[j, m]
    return F, a


@wp.func
def grid_sample(table: wp.array3d(dtype=wp.int32), lo: wp.vec3d, inv_cell: wp.float64, X: wp.vec3d):
    """The tabulated nearest sample of rest point ``X`` (border cells beyond the table)."""
    c = wp.vec3i()
    for a in range(3):
        c[a] = wp.clamp(int((X[a] - lo[a]) * inv_cell), 0, table.shape[a] - 1)
    return table[c[0], c[1], c[2]]


@wp.func
def box_union_distance(X: wp.vec3d, lower: wp.array(dtype=wp.vec3d), upper: wp.array(dtype=wp.vec3d)):
    """Signed distance of ``X`` to the union of boxes (the nearest box's) and its outward unit gradient."""
    best = wp.float64(1.0e30)
    normal = wp.vec3d()
    for b in range(lower.shape[0]):
        centre = wp.float64(0.5) * (lower[b] + upper[b])
        half = wp.float64(0.5) * (upper[b] - lower[b])
        rel = X - centre
        sign = wp.vec3d()
        over = wp.vec3d()  # |rel| - half
        out = wp.vec3d()
        deepest = int(0)
        for a in range(3):
            sign[a] = wp.where(rel[a] >= wp.float64(0.0), wp.float64(1.0), wp.float64(-1.0))
            over[a] = wp.abs(rel[a]) - half[a]
            out[a] = wp.max(over[a], wp.float64(0.0))
            if over[a] > over[deepest]:
                deepest = a
        out_norm = wp.length(out)
        d = out_norm + wp.min(over[deepest], wp.float64(0.0))
        if d < best:
            best = d
            if out_norm > wp.float64(0.0):
                normal = wp.cw_mul(sign, out) / out_norm
            else:
                normal = wp.vec3d()
                normal[deepest] = sign[deepest]
    return best, normal


@wp.kernel
def pull_back_and_measure(
    points: wp.array(dtype=wp.vec3d),
    q: wp.array(dtype=wp.float64),
    gradient: wp.array2d(dtype=wp.mat33d),
    affine: wp.array2d(dtype=wp.vec3d),
    table: wp.array3d(dtype=wp.int32),
    grid_lo: wp.vec3d,
    inv_cell: wp.float64,
    lower: wp.array(dtype=wp.vec3d),
    upper: wp.array(dtype=wp.vec3d),
    reach: wp.float64,
    margin: wp.float64,
    max_iterations: int,
    rest: wp.array(dtype=wp.vec3d),
    nearest: wp.array(dtype=wp.int32),
    looked_up: wp.array(dtype=wp.vec3d),
    deformation: wp.array(dtype=wp.mat33d),
    distance: wp.array(dtype=wp.float64),
    normal: wp.array(dtype=wp.vec3d),
    modal_normal: wp.array2d(dtype=wp.float64),
):
    """Pull point i back (``rest``, ``nearest``, ``looked_up`` hold its start and receive the result) and
    measure it (see the module docstring); the modal row only where it lies within ``margin`` of the surface."""
    i = wp.tid()
    p = points[i]
    j = nearest[i]
    X = rest[i]
    seen = looked_up[i]
    F = wp.identity(3, dtype=wp.float64)
    todo = True
    if j >= 0:
        F, a = first_order_field(gradient, affine, j, q)
        X = wp.inverse(F) @ (p - a)
        todo = wp.length(X - seen) > reach
    it = int(0)
    while todo and it < max_iterations:
        found = grid_sample(table, grid_lo, inv_cell, X)
        seen = X
        if found == j:
            todo = False
        else:
            j = found
            F, a = first_order_field(gradient, affine, j, q)
            X = wp.inverse(F) @ (p - a)
            todo = wp.length(X - seen) > reach
        it += 1
    rest[i] = X
    nearest[i] = j
    looked_up[i] = seen
    deformation[i] = F
    d, n = box_union_distance(X, lower, upper)
    nc = wp.transpose(wp.inverse(F)) @ n
    distance[i] = d
    normal[i] = nc
    if d < margin:
        for m in range(q.shape[0]):  # basis(X)^T nc with basis(X) = affine + gradient X
            modal_normal[i, m] = wp.dot(affine[j, m] + gradient[j, m] @ X, nc)


class SurfaceProbe:
    """Pulls world points back through a modal object's ``expansion`` table (S, 12, k) and measures them
    against its ``boxes`` (B, 2, 3) (one `pull_back_and_measure` launch on the CPU; the arrays
    it fills are reused, the results returned are copies)."""

    def __init__(self, expansion: np.ndarray, boxes: np.ndarray, grid: SampleGrid):
        self.grid, self._k, self._capacity, self._tables = grid, expansion.shape[2], 0, None
        self._expansion, self._boxes = np.asarray(expansion, dtype=np.float64), np.asarray(boxes, dtype=np.float64)

    def reserve(self, n: int) -> None:
        """Allocate for ``n`` points (and build the sample table) now rather than at the first call."""
        if n > self._capacity:
            self._allocate(n)

    def _allocate(self, n: int) -> None:
        """Arrays for up to ``n`` points (a power of two, at least 64) and the recorded launch that fills them."""
        cap, k, dev = max(64, 1 << int(np.ceil(np.log2(n)))), self._k, "cpu"
        if self._tables is None:  # the object's arrays, the same whatever the capacity
            S, boxes = len(self._expansion), self._boxes
            per_mode = np.ascontiguousarray(np.moveaxis(self._expansion, 2, 1))  # (S, k, 12)
            self._tables = [wp.array(per_mode[..., :9].reshape(S, k, 3, 3), dtype=wp.mat33d, device=dev),
                            wp.array(np.ascontiguousarray(per_mode[..., 9:]), dtype=wp.vec3d, device=dev),
                            wp.array(self.grid.table, dtype=wp.int32, device=dev), wp.vec3d(*self.grid.lo),
                            wp.float64(1.0 / GRID_CELL), wp.array(boxes[:, 0], dtype=wp.vec3d, device=dev),
                            wp.array(boxes[:, 1], dtype=wp.vec3d, device=dev)]
        vec = {name: wp.zeros(cap, dtype=wp.vec3d, device=dev) for name in ("points", "rest", "looked_up", "normal")}
        q, nearest = wp.zeros(k, dtype=wp.float64, device=dev), wp.zeros(cap, dtype=wp.int32, device=dev)
        F, distance = wp.zeros(cap, dtype=wp.mat33d, device=dev), wp.zeros(cap, dtype=wp.float64, device=dev)
        modal = wp.zeros((cap, k), dtype=wp.float64, device=dev)
        inputs = [vec["points"], q, *self._tables, wp.float64(0.0), wp.float64(0.0), MAX_ITERATIONS]
        outputs = [vec["rest"], nearest, vec["looked_up"], F, distance, vec["normal"], modal]
        self._launch = wp.launch(pull_back_and_measure, dim=cap, inputs=inputs, outputs=outputs, device=dev,
                                 record_cmd=True)
        self._arrays = (vec, q, nearest, F, distance, modal)  # the views below share their memory
        self._views = {name: a.numpy() for name, a in vec.items()}
        self._views.update(q=q.numpy(), nearest=nearest.numpy(), F=F.numpy(), distance=distance.numpy(),
                           modal=modal.numpy())
        self._capacity, self._params = cap, (0.0, 0.0, MAX_ITERATIONS)

    def __call__(self, points: np.ndarray, q: np.ndarray, start: PullBack | None = None, reach: float = 0.0,
                 margin: float = np.inf, max_iterations: int = MAX_ITERATIONS) -> Probe:
        """Pull ``points`` (P, 3) back for modal coordinates ``q`` (k,) from ``start`` (rest guesses, samples
        -1 where none, where they were looked up; None: the points themselves, no samples) and
        measure them; modal rows only of points within ``margin`` (m) of the surface (zeros elsewhere)."""
        n, k = len(points), self._k
        if n == 0:
            empty = PullBack(np.zeros((0, 3)), np.zeros(0, np.int64), np.zeros((0, 3)), np.zeros((0, 3, 3)))
            return Probe(empty, np.zeros(0), np.zeros((0, 3)), np.zeros((0, k)))
        self.reserve(n)
        v = self._views
        v["points"][:n], v["q"][:] = points, q
        if start is None:
            v["rest"][:n], v["nearest"][:n], v["looked_up"][:n] = points, -1, np.inf
        else:
            v["rest"][:n], v["nearest"][:n], v["looked_up"][:n] = start.rest, start.nearest, start.looked_up
        v["modal"][:n] = 0.0
        params = (float(reach), float(margin), int(max_iterations))
        if params != self._params:  # setting a parameter of the recorded launch costs more than the launch itself
            for name, value in zip(("reach", "margin", "max_iterations"), params, strict=True):
                self._launch.set_param_by_name(name, wp.float64(value) if name != "max_iterations" else value)
            self._params = params
        self._launch.set_dim(n)
        self._launch.launch()
        back = PullBack(v["rest"][:n].copy(), v["nearest"][:n].astype(np.int64), v["looked_up"][:n].copy(),
                        v["F"][:n].copy())
        return Probe(back, v["distance"][:n].copy(), v["normal"][:n].copy(), v["modal"][:n].copy())
