"""``ModalModel``: a meshed linear-elastic body, its K and M, and its lowest vibration modes."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
from numpy.typing import ArrayLike, NDArray

from .eigen import Backend, lowest_eigenpairs
from .fem import assemble, quadratic_nodes
from .mesh import check_tets
from .ordering import SeparatorTree, nested_dissection, node_adjacency
from .rigid import count_rigid_modes

__all__ = ["Modes", "ModalModel"]


@dataclass(frozen=True)
class Modes:
    """Vibration modes: ``frequencies_hz`` (k,) ascending and M-orthonormal ``node_shapes`` (k, N, 3).

    ``shapes`` are the shapes at the first ``num_vertices`` nodes (the mesh vertices; a
    quadratic mesh appends its edge nodes after them). ``damping_ratios`` is set for
    modes measured from motion (spectral modes) and ``None`` for FEM modes.
    """

    frequencies_hz: NDArray[np.float64]
    node_shapes: NDArray[np.float64]
    num_vertices: int
    num_rigid_modes_removed: int = 0
    damping_ratios: NDArray[np.float64] | None = None

    @property
    def shapes(self) -> NDArray[np.float64]:
        """Mode shapes at the mesh vertices, (k, V, 3)."""
        return self.node_shapes[:, : self.num_vertices]

    @property
    def angular_frequencies(self) -> NDArray[np.float64]:
        """omega = 2 pi f in rad/s, (k,)."""
        return 2.0 * np.pi * self.frequencies_hz

    @property
    def num_modes(self) -> int:
        """Number of modes k."""
        return len(self.frequencies_hz)

    def modal_load(self, node_ids: ArrayLike, forces: ArrayLike) -> NDArray[np.float64]:
        """Modal force ``phi^T f`` (k,) of forces (P, 3) (or impulses) applied at nodes ``node_ids`` (P,)."""
        ids = np.atleast_1d(np.asarray(node_ids))
        f = np.asarray(forces, dtype=np.float64).reshape(len(ids), 3)
        if ids.dtype.kind not in "iu" or ids.min(initial=0) < 0 or ids.max(initial=0) >= self.node_shapes.shape[1]:
            raise ValueError(f"node_ids must be integer indices in [0, {self.node_shapes.shape[1] - 1}]")
        return np.einsum("kpd,pd->k", self.node_shapes[:, ids], f)


def _material(value: ArrayLike, name: str, num_tets: int) -> NDArray[np.float64]:
    arr = np.asarray(value, dtype=np.float64)
    if arr.ndim > 1 or (arr.ndim == 1 and len(arr) != num_tets):
        raise ValueError(f"{name} must be a scalar or one value per tetrahedron ({num_tets},), got shape {arr.shape}")
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} must be finite")
    return np.broadcast_to(arr, (num_tets,)).copy()


class ModalModel:
    """Linear-elastic FEM body on 4-node (``order=1``) or 10-node (``order=2``, default) tetrahedra.

    K and M are assembled on construction; :meth:`solve` only solves. ``youngs_modulus``
    (Pa), ``poisson_ratio`` and ``density`` (kg/m^3) are scalars or per-tetrahedron arrays.
    ``fixed`` is a boolean mask over vertices clamped to zero displacement; with quadratic
    tetrahedra an edge node is clamped when both its end vertices are, so every node on a
    clamped face is fixed. ``mass`` chooses the consistent or HRZ-lumped mass matrix.
    Vertices used by no tetrahedron carry no DOF (their shapes are zero).
    """

    def __init__(
        self,
        vertices: ArrayLike,
        tets: ArrayLike,
        youngs_modulus: float | ArrayLike,
        poisson_ratio: float | ArrayLike,
        density: float | ArrayLike,
        fixed: ArrayLike | None = None,
        order: int = 2,
        mass: Literal["consistent", "lumped"] = "consistent",
        backend: Backend = "auto",
    ) -> None:
        if order not in (1, 2):
            raise ValueError(f"order must be 1 (linear tets) or 2 (quadratic tets), got {order!r}")
        if mass not in ("consistent", "lumped"):
            raise ValueError(f"mass must be 'consistent' or 'lumped', got {mass!r}")
        self.vertices, self.tets = check_tets(vertices, tets)
        num_tets = len(self.tets)
        self.youngs_modulus = _material(youngs_modulus, "youngs_modulus", num_tets)
        self.poisson_ratio = _material(poisson_ratio, "poisson_ratio", num_tets)
        self.density = _material(density, "density", num_tets)
        if np.any(self.youngs_modulus <= 0):
            raise ValueError("youngs_modulus must be > 0 (Pa)")
        if np.any(self.density <= 0):
            raise ValueError("density must be > 0 (kg/m^3)")
        if np.any(self.poisson_ratio >= 0.5) or np.any(self.poisson_ratio <= -1.0):
            raise ValueError("poisson_ratio must lie in (-1, 0.5); 0.5 (incompressible) is not allowed")
        self.order = order
        self.backend: Backend = backend
        if order == 1:
            self.nodes, self.elements = self.vertices, self.tets
            edge_vertices = np.zeros((0, 2), dtype=np.int64)
        else:
            self.nodes, self.elements, edge_vertices = quadratic_nodes(self.vertices, self.tets)
        self.fixed_nodes = self._fixed_nodes(fixed, edge_vertices)

        e, nu = self.youngs_modulus, self.poisson_ratio
        lam = e * nu / ((1 + nu) * (1 - 2 * nu))
        mu = e / (2 * (1 + nu))
        self.stiffness, self.mass = assemble(self.nodes, self.elements, lam, mu, self.density, mass == "lumped")

        active = np.zeros(len(self.nodes), dtype=bool)
        active[self.elements.ravel()] = True
        free_nodes = active & ~self.fixed_nodes
        if not free_nodes.any():
            raise ValueError("fixed clamps every vertex; leave at least one vertex free")
        self.free_dofs = np.flatnonzero(np.repeat(free_nodes, 3))
        self._k_free = self.stiffness[self.free_dofs][:, self.free_dofs].tocsc()
        self._m_free = self.mass[self.free_dofs][:, self.free_dofs].tocsc()
        self.num_rigid_modes = count_rigid_modes(self.nodes, self.elements, self.fixed_nodes)
        self._tree: SeparatorTree | None = None

    def separator_tree(self) -> SeparatorTree:
        """Nested-dissection tree of the free DOFs used to factorise ``K - sigma M`` (cached)."""
        if self._tree is None:
            dofs = np.full(3 * len(self.nodes), -1, dtype=np.int64)
            dofs[self.free_dofs] = np.arange(len(self.free_dofs))
            adjacency = node_adjacency(self.elements, len(self.nodes))
            self._tree = nested_dissection(self.nodes, adjacency, dofs.reshape(-1, 3))
        return self._tree

    def _fixed_nodes(self, fixed: ArrayLike | None, edge_vertices: NDArray[np.int64]) -> NDArray[np.bool_]:
        nv = len(self.vertices)
        if fixed is None:
            mask = np.zeros(nv, dtype=bool)
        else:
            mask = np.asarray(fixed)
            if mask.dtype != bool or mask.shape != (nv,):
                raise ValueError(
                    f"fixed must be a boolean mask over the vertices, shape ({nv},); got {mask.dtype} {mask.shape}"
                )
        edge_fixed = mask[edge_vertices[:, 0]] & mask[edge_vertices[:, 1]]
        return np.concatenate([mask, edge_fixed])

    @property
    def num_dofs(self) -> int:
        """Number of free (unclamped) degrees of freedom."""
        return len(self.free_dofs)

    @property
    def total_mass(self) -> float:
        """Mass of the body in kg (from M, including clamped nodes)."""
        ones = np.zeros(self.mass.shape[0])
        ones[0::3] = 1.0
        return float(ones @ (self.mass @ ones))

    def default_shift(self) -> float:
        """Shift for shift-invert: 0 for a clamped body, a small negative value when rigid modes exist."""
        if self.num_rigid_modes == 0:
            return 0.0
        size = float(np.linalg.norm(np.ptp(self.vertices, axis=0)))
        wave_speed_sq = float(np.median(self.youngs_modulus / self.density))
        return -1e-3 * wave_speed_sq / size**2

    def solve(
        self, num_modes: int, keep_rigid: bool = False, shift: float | None = None,
        rng: np.random.Generator | None = None,
    ) -> Modes:
        """The ``num_modes`` lowest elastic modes (rigid modes are dropped unless ``keep_rigid``).

        Rigid modes are counted exactly (:func:`~physics.modal.rigid.count_rigid_modes`);
        ``shift`` overrides :meth:`default_shift` and must lie below the lowest eigenvalue;
        ``rng`` draws the Lanczos start vector (default: a fixed seed).
        """
        if not isinstance(num_modes, (int, np.integer)) or num_modes < 1:
            raise ValueError(f"num_modes must be a positive integer, got {num_modes!r}")
        rigid = self.num_rigid_modes
        available = self.num_dofs - (0 if keep_rigid else rigid)
        if num_modes > available:
            raise ValueError(
                f"asked for {num_modes} modes but the model has {self.num_dofs} free DOFs "
                f"({rigid} rigid modes{'' if keep_rigid else ' removed'}): at most {available} modes"
            )
        count = num_modes + (0 if keep_rigid else rigid)
        sigma = self.default_shift() if shift is None else float(shift)
        vals, vecs = lowest_eigenpairs(
            self._k_free, self._m_free, count, sigma, self.backend, tree=self.separator_tree(), rng=rng
        )
        drop = 0 if keep_rigid else rigid
        vals, vecs = vals[drop:], vecs[:, drop:]
        # deterministic sign: the largest-magnitude component of each mode is positive
        pivot = vecs[np.argmax(np.abs(vecs), axis=0), np.arange(vecs.shape[1])]
        vecs = vecs * np.sign(pivot)
        full = np.zeros((vecs.shape[1], 3 * len(self.nodes)))
        full[:, self.free_dofs] = vecs.T
        return Modes(
            frequencies_hz=np.sqrt(np.maximum(vals, 0.0)) / (2.0 * np.pi),
            node_shapes=full.reshape(vecs.shape[1], len(self.nodes), 3),
            num_vertices=len(self.vertices),
            num_rigid_modes_removed=drop,
        )
