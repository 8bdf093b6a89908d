"""Modal objects that can be touched: a union of boxes clamped to the table, its FEM modes and surface samples.

A `BoxShape` is a union of axis-aligned boxes standing on the table (z = 0), meshed on one
voxel grid into quadratic tetrahedra and clamped where it meets the table
(`clamped_box_modes`: its modes from :class:`physics.modal.ModalModel`).

Surface samples (rest positions, outward normals, colours) carry the mode basis at their
location (exact FE interpolation), so the deformed surface is ``X + basis @ q``; a
`ModalObject` holds them with the modes. Penetration is measured in the rest frame: a world
point ``p`` is pulled back to the ``X`` with ``X + u(X) = p`` (``u`` expanded to first order
about the nearest surface sample, whose displacement gradient is stored with its basis) and
tested against the exact signed distance of the union of boxes (`physics.modal.pullback`).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np

from .embedding import PointEmbedding
from .mesh import voxel_tet_mesh
from .model import ModalModel, Modes
from .pullback import Probe, PullBack, SampleGrid, SurfaceProbe


@dataclass(frozen=True)
class BoxShape:
    """A union of boxes ``(lo, hi)`` (m, rest frame, z up, base on z = 0), meshed with cells ``voxel``."""

    boxes: tuple[tuple[tuple[float, float, float], tuple[float, float, float]], ...]
    voxel: tuple[float, float, float]

    @cached_property
    def bounds(self) -> np.ndarray:
        """Axis-aligned bounds (2, 3) of the union of boxes."""
        b = np.array(self.boxes, dtype=float)
        bounds = np.stack([b[:, 0].min(0), b[:, 1].max(0)])
        bounds.flags.writeable = False  # cached and shared
        return bounds

    @property
    def tip(self) -> np.ndarray:
        """Rest position of the tip: the top centre of the highest box."""
        lo, hi = np.array(max(self.boxes, key=lambda b: b[1][2]), dtype=float)
        return np.array([(lo[0] + hi[0]) / 2, (lo[1] + hi[1]) / 2, hi[2]])


def box_sdf(points: np.ndarray, boxes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Signed distance (N,) of points (N, 3) to a union of boxes (B, 2, 3) and its outward unit gradient (N, 3)."""
    c = (boxes[:, 0] + boxes[:, 1]) / 2
    h = (boxes[:, 1] - boxes[:, 0]) / 2
    rel = points[:, None, :] - c[None]  # (N, B, 3)
    q = np.abs(rel) - h[None]
    outside = np.maximum(q, 0.0)
    out_norm = np.sqrt(np.einsum("nbi,nbi->nb", outside, outside))
    d = out_norm + np.minimum(q.max(-1), 0.0)  # (N, B)
    b = np.argmin(d, axis=1)
    rows = np.arange(len(points))
    qb, relb, ob, nb = q[rows, b], rel[rows, b], outside[rows, b], out_norm[rows, b]
    sign = np.where(relb >= 0, 1.0, -1.0)
    grad_out = sign * ob / np.maximum(nb, 1e-12)[:, None]
    grad_in = np.zeros_like(relb)
    axis = np.argmax(qb, axis=1)
    grad_in[rows, axis] = sign[rows, axis]
    grad = np.where((nb > 0)[:, None], grad_out, grad_in)
    return d[rows, b], grad


def sample_surface(shape: BoxShape, count: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """``count`` area-uniform samples (and outward normals) on the exposed faces of ``shape``: faces inside
    the union and the clamped base on the table are skipped."""
    boxes = np.array(shape.boxes, dtype=float)
    faces = []  # (origin, edge_u, edge_v, normal)
    for lo, hi in boxes:
        for axis in range(3):
            u_ax, v_ax = [a for a in range(3) if a != axis]
            for side, value in ((-1.0, lo[axis]), (1.0, hi[axis])):
                if axis == 2 and side < 0 and value <= 1e-9:
                    continue  # the clamped base
                o = lo.copy()
                o[axis] = value
                eu, ev, n = np.zeros(3), np.zeros(3), np.zeros(3)
                eu[u_ax], ev[v_ax], n[axis] = hi[u_ax] - lo[u_ax], hi[v_ax] - lo[v_ax], side
                faces.append((o, eu, ev, n))
    origin, eu, ev, nrm = (np.array(x) for x in zip(*faces, strict=True))
    area = np.linalg.norm(np.cross(eu, ev), axis=1)
    rng = np.random.default_rng(seed)
    pts, normals = [], []
    extended = clamp_extended(boxes)
    while sum(len(p) for p in pts) < count:
        f = rng.choice(len(area), size=4 * count, p=area / area.sum())
        s, t = rng.random(4 * count), rng.random(4 * count)
        p = origin[f] + s[:, None] * eu[f] + t[:, None] * ev[f]
        exposed = box_sdf(p + 1e-5 * nrm[f], extended)[0] > 0  # not covered by another box
        pts.append(p[exposed])
        normals.append(nrm[f][exposed])
    return np.concatenate(pts)[:count], np.concatenate(normals)[:count]


def clamp_extended(boxes: np.ndarray) -> np.ndarray:
    """Boxes standing on the table extended 1 m below it: the clamp has no bottom face to be pushed up by."""
    ext = boxes.copy()
    ext[ext[:, 0, 2] <= 1e-9, 0, 2] = -1.0
    return ext


def clamped_box_modes(shape: BoxShape, youngs_modulus: float, poisson_ratio: float, density: float, num_modes: int
                      ) -> tuple[ModalModel, Modes]:
    """``shape`` meshed into quadratic tetrahedra on its voxel grid, clamped at the table, and its lowest
    ``num_modes`` modes."""
    boxes = np.array(shape.boxes, dtype=float)
    voxel = np.array(shape.voxel)
    lo, hi = boxes[:, 0].min(0), boxes[:, 1].max(0)
    dims = np.rint((hi - lo) / voxel).astype(int)
    idx = np.stack(np.meshgrid(*[np.arange(n) for n in dims], indexing="ij"), -1).reshape(-1, 3)
    centres = lo + (idx + 0.5) * voxel
    occ = (box_sdf(centres, boxes)[0] < 0).reshape(tuple(dims))
    vertices, tets = voxel_tet_mesh(occ, voxel, lo)
    model = ModalModel(vertices, tets, youngs_modulus, poisson_ratio, density, fixed=vertices[:, 2] <= 1e-9)
    return model, model.solve(num_modes)


@dataclass(frozen=True)
class ModalObject:
    """A meshed shape, its modes and its surface samples with their mode basis (see the module docstring);
    build one with `from_samples`."""

    shape: BoxShape
    model: ModalModel
    modes: Modes
    surface: np.ndarray  # (S, 3) rest positions
    normals: np.ndarray  # (S, 3) rest outward normals
    colors: np.ndarray  # (S, 3) in [0, 1]
    basis: np.ndarray  # (S, 3, k): u(surface) = basis @ q
    expansion: np.ndarray  # (S, 12, k): per unit mode the displacement gradient du_i/dX_j at each sample (9 rows,
    # row-major), then basis - gradient @ X: the first-order field about a sample is u(X) = affine + gradient X
    tip_basis: np.ndarray  # (3, k): tip displacement = tip_basis @ q
    sdf_boxes: np.ndarray  # (B, 2, 3) boxes for the signed distance (clamped ones extended below the table)
    mode_reach: np.ndarray  # (k,) largest displacement of a surface sample per unit modal coordinate
    prober: SurfaceProbe  # pulls world points back and measures them (`probe`)

    @classmethod
    def from_samples(cls, shape: BoxShape, model: ModalModel, modes: Modes, surface: np.ndarray, normals: np.ndarray,
                     colors: np.ndarray, grid: SampleGrid | None = None) -> ModalObject:
        """The object of ``shape`` meshed as ``model`` with ``modes``, sampled at ``surface`` (S, 3) with outward
        ``normals`` and ``colors`` (S, 3); ``grid``: the `SampleGrid` of these samples (None: a new one)."""
        emb = PointEmbedding(model, np.concatenate([surface, shape.tip[None]]))
        basis = np.moveaxis(emb.interpolate(modes.node_shapes), 0, -1)  # (S + 1, 3, k)
        gradient = np.ascontiguousarray(np.moveaxis(emb.gradient(modes.node_shapes)[:, :-1], 0, -1))  # (S, 3, 3, k)
        surface_basis = np.ascontiguousarray(basis[:-1])
        reach = np.linalg.norm(surface_basis, axis=1).max(0)
        affine = surface_basis - np.einsum("simk,sm->sik", gradient, surface)
        expansion = np.ascontiguousarray(np.concatenate([gradient.reshape(len(surface), 9, -1), affine], axis=1))
        boxes = clamp_extended(np.array(shape.boxes, dtype=float))
        grid = SampleGrid(surface, shape.bounds) if grid is None else grid
        return cls(shape, model, modes, surface, normals, colors, surface_basis, expansion, basis[-1], boxes, reach,
                   SurfaceProbe(expansion, boxes, grid))

    def displacement_bound(self, q: np.ndarray) -> float:
        """An upper bound (m) of every surface sample's displacement (or speed, for ``q = qdot``)."""
        return float(np.abs(q) @ self.mode_reach)

    @property
    def num_modes(self) -> int:
        """Number of modes k."""
        return self.modes.num_modes

    @property
    def bounds(self) -> np.ndarray:
        """Rest axis-aligned bounds (2, 3)."""
        return self.shape.bounds

    def tip_compliance(self, omega: np.ndarray) -> np.ndarray:
        """Static compliance (3, 3) (m/N) of the tip under a tip force: sum phi phi^T / omega^2."""
        return (self.tip_basis / omega**2) @ self.tip_basis.T

    def displacements(self, q: np.ndarray) -> np.ndarray:
        """Displacements (S, 3) of the surface samples for modal coordinates q (k,)."""
        return (self.basis.reshape(-1, len(q)) @ q).reshape(-1, 3)

    def embed(self, points: np.ndarray) -> np.ndarray:
        """Mode basis (P, 3, k) at arbitrary rest points (exact FE interpolation inside the mesh)."""
        emb = PointEmbedding(self.model, np.asarray(points, dtype=float))
        return np.moveaxis(emb.interpolate(self.modes.node_shapes), 0, -1)

    def probe(self, points: np.ndarray, q: np.ndarray, start: PullBack | None = None, reach: float = 0.0,
              margin: float = np.inf) -> Probe:
        """World points (P, 3) pulled back to the rest frame for modal coordinates ``q`` and measured there
        (`physics.modal.pullback`); ``start``: a pull-back of the same points a substep ago (samples -1
        where none), kept where a point stays within ``reach`` (m) of where its sample was looked up;
        modal rows of the points within ``margin`` (m) of the surface."""
        return self.prober(points, q, start, reach, margin)

    def signed_distance(self, rest_points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Rest-frame signed distance (P,) (negative inside) and outward normal (P, 3) of rest points."""
        return box_sdf(rest_points, self.sdf_boxes)
