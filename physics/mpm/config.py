"""Solver configuration and the background grid it implies."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import warp as wp

BOUNDARIES = {"slip": 0, "sticky": 1, "open": 2}
GRID_PAD = 2  # ghost nodes on each side of the bounds; keeps every B-spline stencil in the grid


@dataclass(frozen=True)
class MPMConfig:
    """Settings of an :class:`~physics.mpm.MPMSolver`.

    Args:
        grid_res: number of grid cells along the longest side of ``bounds`` (>= 4);
            dx = longest side / grid_res.
        bounds: ``((x0, y0, z0), (x1, y1, z1))`` in metres; particles live inside.
        dt: ``None`` picks CFL-safe substeps every frame; a float fixes the substep and
            raises ``ValueError`` when it violates the CFL condition dt (c + |v|max) <= dx.
        gravity: acceleration in m/s^2.
        device: Warp device, ``"cpu"`` or ``"cuda"`` / ``"cuda:N"``.
        cfl: Courant number used when ``dt`` is None, in (0, 1]. The default 0.5 is the largest at which the
            contact and closed-form physics tests hold; a pushed jelly T stays stable up to 1.0, and against a
            0.15 reference its particles differ by 2.7 mm on average (1.9 mm at 0.4, 4 mm spacing).
        apic_blend: 1 for APIC, 0 for PIC (affine velocity dropped in the transfer).
        boundary: domain walls acting on grid nodes within one cell of the bounds:
            ``"slip"`` (outward normal velocity removed), ``"sticky"`` or ``"open"`` (no walls). In every case
            a particle that would leave the bounds is clamped onto them and counted.
        track_covariance: keep per-particle PhysGaussian covariances (Sigma <- F Sigma F^T).
    """

    grid_res: int = 64
    bounds: tuple[tuple[float, float, float], tuple[float, float, float]] = ((0.0, 0.0, 0.0), (1.0, 1.0, 1.0))
    dt: float | None = None
    gravity: tuple[float, float, float] = (0.0, 0.0, -9.81)
    device: str = "cpu"
    cfl: float = 0.5
    apic_blend: float = 1.0
    boundary: str = "slip"
    track_covariance: bool = False
    _lower: np.ndarray = field(init=False, repr=False, compare=False)
    _upper: np.ndarray = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if isinstance(self.grid_res, bool) or not isinstance(self.grid_res, (int, np.integer)) or self.grid_res < 4:
            raise ValueError(f"grid_res must be an integer >= 4, got {self.grid_res!r}")
        b = np.asarray(self.bounds, dtype=np.float64)
        if b.shape != (2, 3) or not np.all(np.isfinite(b)) or np.any(b[1] <= b[0]):
            raise ValueError(f"bounds must be ((x0, y0, z0), (x1, y1, z1)) with x1 > x0 etc., got {self.bounds!r}")
        g = np.asarray(self.gravity, dtype=np.float64)
        if g.shape != (3,) or not np.all(np.isfinite(g)):
            raise ValueError(f"gravity must be 3 finite numbers, got {self.gravity!r}")
        if self.dt is not None and not (math.isfinite(self.dt) and self.dt > 0.0):
            raise ValueError(f"dt must be None or a finite positive float, got {self.dt!r}")
        if not (0.0 < self.cfl <= 1.0):
            raise ValueError(f"cfl must lie in (0, 1], got {self.cfl}")
        if not (0.0 <= self.apic_blend <= 1.0):
            raise ValueError(f"apic_blend must lie in [0, 1] (1 APIC, 0 PIC), got {self.apic_blend}")
        if self.boundary not in BOUNDARIES:
            raise ValueError(f"unknown boundary {self.boundary!r}; allowed: {', '.join(BOUNDARIES)}")
        object.__setattr__(self, "_lower", b[0])
        object.__setattr__(self, "_upper", b[1])

    @property
    def lower(self) -> np.ndarray:
        """Lower corner of the bounds."""
        return self._lower.copy()

    @property
    def upper(self) -> np.ndarray:
        """Upper corner of the bounds."""
        return self._upper.copy()

    @property
    def dx(self) -> float:
        """Grid spacing in metres."""
        return float(np.max(self._upper - self._lower)) / self.grid_res

    @property
    def grid_shape(self) -> tuple[int, int, int]:
        """Number of grid nodes per axis, ghost nodes included."""
        cells = np.ceil((self._upper - self._lower) / self.dx - 1e-9).astype(int)
        return tuple(int(c) + 1 + 2 * GRID_PAD for c in cells)  # type: ignore[return-value]


@wp.struct
class Grid:
    """Kernel-side grid geometry: node (i, j, k) sits at lower + ((i, j, k) - pad) dx.

    Grid arrays are flat (one entry per node) because 1D launches and indexing are
    markedly cheaper than 3D ones on Warp's CPU backend.
    """

    lower: wp.vec3
    upper: wp.vec3
    dx: float
    inv_dx: float
    pad: float
    boundary: int
    ny: int  # nodes along y and z: node (i, j, k) is entry (i ny + j) nz + k of the flat grid arrays
    nz: int


def make_grid(cfg: MPMConfig) -> Grid:
    """The :class:`Grid` struct of a configuration."""
    g = Grid()
    g.lower = wp.vec3(*cfg.lower)
    g.upper = wp.vec3(*cfg.upper)
    g.dx = cfg.dx
    g.inv_dx = 1.0 / cfg.dx
    g.pad = float(GRID_PAD)
    g.boundary = BOUNDARIES[cfg.boundary]
    g.ny = cfg.grid_shape[1]
    g.nz = cfg.grid_shape[2]
    return g
