"""Interior filling of a Gaussian scene (PhysGaussian, Sec. 5): particles inside closed splat surfaces.

A 3DGS reconstruction of a solid object only has Gaussians near its surface; simulated as
is it would behave like a hollow shell. PhysGaussian fills the interior:

1. **Opacity field.** Every Gaussian adds ``o exp(-d^T (Sigma + (h/2)^2 I)^-1 d / 2)`` to the
   nodes of a grid of spacing ``h`` (the covariance widened by half a cell so that surfaces
   thinner than a cell are still seen by the grid).
2. **Ray marching along the axes.** Along each grid line in x, y and z the field is
   marched; every run of nodes above ``opacity_threshold`` is one crossing of the surface,
   placed at the middle of the run (the run's ends found to sub-node accuracy by linear
   interpolation of the field), i.e. on the sheet of Gaussian centres.
3. **Inside test.** A node is inside when its six axis rays (+x, -x, +y, -y, +z, -z) cross
   the surface an odd number of times. A grid line crossing the surface an odd number of
   times in all is not closed: it grazes a curved surface (one run for two crossings),
   passes through a stray Gaussian or a hole; such lines are not trusted, and a node votes
   inside when the rays of all its closed lines (at least one) cross an odd number of times.
   Nodes connected to each other without crossing the surface (connected regions of the
   grid below the threshold) lie all inside or all outside: each region follows the
   majority of its nodes' votes; regions are formed ``SEAL`` nodes clear of the surface so
   that small holes in it do not join inside and outside. A node within the surface band (field
   above the threshold) takes the verdict of the first node past the band on its side of
   the band's middle, along the axis whose run through it is shortest (the axis crossing
   the surface most steeply): rays grazing the surface would stay inside the band. The nodes inside are the fill
   particles; each stands for h^3 of volume, so their count times h^3 is the volume
   enclosed by the splat surface.

The fill particles drive the simulation only; they are never written back to PLY files.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import warp as wp
from scipy import ndimage

from .gaussians import GaussianSplats

SEAL = 3  # nodes kept clear of the surface when forming connected regions (seals holes up to ~2 SEAL nodes wide)

__all__ = ["InteriorFill", "fill_interior", "opacity_field", "shared_cell_volumes"]


@wp.kernel
def splat_opacity(
    centres: wp.array(dtype=wp.vec3),
    inv_cov: wp.array(dtype=wp.mat33),
    opacity: wp.array(dtype=float),
    reach: wp.array(dtype=int),
    origin: wp.vec3,
    h: float,
    nx: int,
    ny: int,
    nz: int,
    field: wp.array(dtype=float),
):
    """Add each Gaussian's opacity o exp(-d^T Sigma^-1 d / 2) to the grid nodes within ``reach`` nodes (3 sigma)."""
    g = wp.tid()
    c = centres[g]
    rel = (c - origin) / h
    ci = int(wp.round(rel[0]))
    cj = int(wp.round(rel[1]))
    ck = int(wp.round(rel[2]))
    r = reach[g]
    for i in range(wp.max(ci - r, 0), wp.min(ci + r + 1, nx)):
        for j in range(wp.max(cj - r, 0), wp.min(cj + r + 1, ny)):
            for k in range(wp.max(ck - r, 0), wp.min(ck + r + 1, nz)):
                d = origin + wp.vec3(float(i), float(j), float(k)) * h - c
                m = wp.dot(d, inv_cov[g] * d)
                if m < 9.0:
                    wp.atomic_add(field, (i * ny + j) * nz + k, opacity[g] * wp.exp(-0.5 * m))


@dataclass
class InteriorFill:
    """Result of :func:`fill_interior`.

    Attributes:
        positions: (M, 3) fill particles (grid nodes inside the surface, optionally jittered).
        spacing: grid spacing h; each particle stands for h^3.
        origin: position of grid node (0, 0, 0).
        inside: (nx, ny, nz) boolean grid of the inside test.
        field: (nx, ny, nz) opacity field.
    """

    positions: np.ndarray
    spacing: float
    origin: np.ndarray
    inside: np.ndarray
    field: np.ndarray

    @property
    def volume(self) -> float:
        """Enclosed volume: number of inside nodes times h^3."""
        return float(self.inside.sum()) * self.spacing**3


def opacity_field(splats: GaussianSplats, spacing: float, max_reach: int = 8,
                  device: str = "cpu") -> tuple[np.ndarray, np.ndarray]:
    """Opacity field (nx, ny, nz) of the Gaussians on a grid of ``spacing``, and the grid origin.

    The grid covers the Gaussians' centres with a margin of their (capped) 3-sigma reach.
    Each Gaussian reaches at most ``max_reach`` nodes from its centre.
    """
    if not (np.isfinite(spacing) and spacing > 0.0):
        raise ValueError(f"spacing must be a finite positive length, got {spacing}")
    if max_reach < 1:
        raise ValueError(f"max_reach must be >= 1 node, got {max_reach}")
    if len(splats) == 0:
        raise ValueError("no Gaussians to fill")
    cov = splats.covariances + (spacing / 2.0) ** 2 * np.eye(3)
    sigma_max = np.sqrt(np.linalg.eigvalsh(cov)[:, -1])
    reach = np.minimum(np.ceil(3.0 * sigma_max / spacing).astype(np.int32), max_reach)
    pad = int(reach.max()) + 2
    x = splats.positions
    origin = x.min(axis=0) - (pad + 0.5) * spacing  # surfaces at the extreme centres fall between nodes
    dims = np.ceil((x.max(axis=0) - origin) / spacing).astype(int) + pad + 1
    if np.prod(dims) > 256**3:
        raise ValueError(f"fill grid of {dims.tolist()} nodes is too large; use a larger spacing (got {spacing})")
    field = wp.zeros(int(np.prod(dims)), dtype=float, device=device)
    wp.launch(
        splat_opacity,
        dim=len(x),
        inputs=[
            wp.array(x, dtype=wp.vec3, device=device),
            wp.array(np.linalg.inv(cov), dtype=wp.mat33, device=device),
            wp.array(splats.opacities, dtype=float, device=device),
            wp.array(reach, dtype=int, device=device),
            wp.vec3(*origin),
            float(spacing),
            int(dims[0]),
            int(dims[1]),
            int(dims[2]),
        ],
        outputs=[field],
        device=device,
    )
    return field.numpy().astype(np.float64).reshape(tuple(dims)), origin


@dataclass
class _AxisMarch:
    """What marching the grid lines along one axis tells about every node."""

    odd: np.ndarray  # the node's +axis ray crosses the surface an odd number of times
    closed: np.ndarray  # the node's whole grid line crosses the surface an even number of times
    run_length: np.ndarray  # length (nodes) of the above-threshold run the node lies in, inf off the surface
    side_node: np.ndarray  # index along the axis of the first node past the run's end on the node's side of its middle


def _march(field: np.ndarray, threshold: float, axis: int) -> _AxisMarch:
    """March every grid line along ``axis``: runs of nodes above ``threshold`` are surface crossings,
    each placed at the middle of its run (ends interpolated linearly between nodes)."""
    d = np.moveaxis(field, axis, -1)
    shape = d.shape
    length = shape[-1]
    lines = d.reshape(-1, length)
    step = np.diff(np.pad(lines > threshold, ((0, 0), (1, 1))).astype(np.int8), axis=1)
    line, first = np.nonzero(step == 1)  # a run covers nodes first..last; row-major order pairs starts and ends
    last = np.nonzero(step == -1)[1] - 1

    def crossing(below: np.ndarray, above: np.ndarray) -> np.ndarray:
        """Position between node ``below`` (field <= threshold) and ``above`` (> threshold) where the field
        crosses it."""
        ok = (below >= 0) & (below < length)
        fb = lines[line, np.clip(below, 0, length - 1)]
        fa = lines[line, above]
        t = np.where(ok, (threshold - fb) / np.maximum(fa - fb, 1e-30), 0.5)  # half a node out at the grid's end
        return below + t * (above - below)

    t_in, t_out = crossing(first - 1, first), crossing(last + 1, last)
    mid = 0.5 * (t_in + t_out)
    before = np.ceil(mid).astype(np.int64) - 1  # the last node strictly before the crossing
    keep = before >= 0
    hist = np.zeros(lines.shape, dtype=np.int64)
    np.add.at(hist, (line[keep], np.minimum(before[keep], length - 1)), 1)
    ahead = np.cumsum(hist[:, ::-1], axis=1)[:, ::-1]  # crossings beyond node i
    behind = np.bincount(line, minlength=len(lines))[:, None] - ahead
    # per node of each run: its run's length and the node just past the run on its side of the middle
    sizes = last - first + 1
    run_line = np.repeat(line, sizes)
    nodes = np.arange(sizes.sum()) - np.repeat(np.cumsum(sizes) - sizes, sizes) + np.repeat(first, sizes)
    run_length = np.full(lines.shape, np.inf)
    run_length[run_line, nodes] = np.repeat(t_out - t_in, sizes)
    side = np.broadcast_to(np.arange(length), lines.shape).copy()
    side[run_line, nodes] = np.where(nodes < np.repeat(mid, sizes), np.repeat(first - 1, sizes),
                                     np.repeat(last + 1, sizes))
    odd = ahead % 2 == 1
    closed = np.broadcast_to((ahead + behind) % 2 == 0, lines.shape)
    back = [np.moveaxis(a.reshape(shape), -1, axis) for a in (odd, closed, run_length, side)]
    return _AxisMarch(*back)


def fill_interior(
    splats: GaussianSplats,
    spacing: float,
    opacity_threshold: float = 0.35,
    rng: np.random.Generator | None = None,
    jitter: float = 0.0,
    max_reach: int = 8,
    device: str = "cpu",
) -> InteriorFill:
    """Particles filling the volume enclosed by the splats, ``spacing`` apart (see the module docstring).

    Args:
        splats: the Gaussians (e.g. one object's; crop background Gaussians first).
        spacing: grid spacing h of the fill (the MPM particle spacing, e.g. dx / 2).
        opacity_threshold: opacity-field level that counts as surface, in (0, 1); lowered to
            half the median Gaussian opacity when that is smaller (faint splats).
        rng: generator for the jitter (required when ``jitter > 0``).
        jitter: fraction of ``spacing`` by which particles move randomly off the grid nodes.
        max_reach: cap, in nodes, on how far one Gaussian adds to the field.
        device: Warp device for the opacity field.
    """
    if not (0.0 < opacity_threshold < 1.0):
        raise ValueError(f"opacity_threshold must lie in (0, 1), got {opacity_threshold}")
    if not (0.0 <= jitter <= 1.0):
        raise ValueError(f"jitter must lie in [0, 1] (fraction of the spacing), got {jitter}")
    if jitter > 0.0 and not isinstance(rng, np.random.Generator):
        raise ValueError("jitter > 0 needs rng, a numpy.random.Generator")
    field, origin = opacity_field(splats, spacing, max_reach, device)
    threshold = min(opacity_threshold, 0.5 * float(np.median(splats.opacities)))  # faint splats still make a surface
    marches = [_march(field, threshold, axis) for axis in range(3)]
    off_surface = field <= threshold
    closed = [m.closed for m in marches]
    votes = off_surface & (closed[0] | closed[1] | closed[2])
    for march in marches:
        votes &= march.odd | ~march.closed
    # nodes connected without crossing the surface are all inside or all outside: the rays
    # of each connected region vote, which outvotes the few rays that miscount. Regions are
    # formed away from the surface (SEAL nodes off it), so small holes in it do not join
    # inside and outside; the nodes near the surface follow the nearest region node.
    open_space = off_surface & ~ndimage.binary_dilation(~off_surface, iterations=SEAL)
    regions, count = ndimage.label(open_space)
    share = (np.bincount(regions.ravel(), weights=votes.ravel(), minlength=count + 1)
             / np.maximum(np.bincount(regions.ravel(), minlength=count + 1), 1))
    inside = open_space & (share[regions] > 0.5)
    # near the surface: the verdict of the nearest region node connected to it off the surface,
    # else (parts too thin to hold a region) the majority of the connected nodes' votes
    full, full_count = ndimage.label(off_surface)
    full_share = (np.bincount(full.ravel(), weights=votes.ravel(), minlength=full_count + 1)
                  / np.maximum(np.bincount(full.ravel(), minlength=full_count + 1), 1))
    near = np.argwhere(off_surface & ~open_space)
    verdict = full_share[full[tuple(near.T)]] > 0.5
    if count:
        nearest = ndimage.distance_transform_edt(~open_space, return_distances=False, return_indices=True)
        source = tuple(nearest[:, near[:, 0], near[:, 1], near[:, 2]])
        same = full[source] == full[tuple(near.T)]
        verdict[same] = inside[source][same]
    inside[tuple(near.T)] = verdict
    # a node on the surface takes the verdict of the off-surface node next to the surface on
    # its side of the sheet's middle, along the axis crossing the surface most steeply
    # (shortest run); rays grazing the surface would stay inside the band
    steepest = np.argmin(np.stack([m.run_length for m in marches]), axis=0)
    for axis, march in enumerate(marches):
        sel = np.argwhere(~off_surface & (steepest == axis))
        neighbour = sel.copy()
        neighbour[:, axis] = march.side_node[tuple(sel.T)]
        valid = (neighbour[:, axis] >= 0) & (neighbour[:, axis] < field.shape[axis])
        verdict = np.zeros(len(sel), dtype=bool)
        verdict[valid] = inside[tuple(neighbour[valid].T)]
        inside[tuple(sel.T)] = verdict
    nodes = np.argwhere(inside)
    positions = origin + nodes * spacing
    if jitter > 0.0:
        positions = positions + rng.uniform(-0.5, 0.5, positions.shape) * jitter * spacing
    return InteriorFill(positions, float(spacing), origin, inside, field)


def shared_cell_volumes(points: np.ndarray, spacing: float, origin: np.ndarray) -> np.ndarray:
    """Volume per particle (N,): each occupied cell of side ``spacing`` (centred on the grid nodes
    ``origin + i * spacing``) shares its h^3 equally among the particles in it (PhysGaussian)."""
    x = np.asarray(points, dtype=np.float64)
    if x.ndim != 2 or x.shape[1] != 3:
        raise ValueError(f"points must have shape (N, 3), got {x.shape}")
    cells = np.floor((x - np.asarray(origin, dtype=np.float64)) / spacing + 0.5).astype(np.int64)
    _, inverse, counts = np.unique(cells, axis=0, return_inverse=True, return_counts=True)
    return spacing**3 / counts[inverse.ravel()]
