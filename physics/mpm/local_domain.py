"""An MPM solver whose grid covers a square region around its particles and follows them in whole cells.

A body pushed across a large workspace needs a fine grid only where it is. `LocalDomainSolver`
keeps a ``domain_size`` square (``top`` high) of ``dx`` cells on the lattice
``lower_xy - dx + k dx`` of a workspace square, ``k`` clamped so the domain stays within one cell
beyond the workspace's faces: there the grid's slip boundary (nodes within one cell of the
bounds) is the workspace's wall. Every ``recenter_every`` substeps, if particles came within
``margin_cells`` of a face that is not a wall, the domain is re-centred on the particles'
bounding box. Shifts are whole cells, so the discretisation (and the motion) does not depend on
where the domain lies, and the choice depends only on the particle positions, so a replay
re-centres alike (`LocalDomainSolver.rollout_hook` does it for differentiable rollouts). Below,
the grid reaches two cells under z = 0 (a floor is a plane collider of the caller's).
"""

from __future__ import annotations

import math
from typing import Any, Callable

import numpy as np

from .config import MPMConfig, make_grid
from .solver import MPMSolver

MARGIN_CELLS = 3  # the domain re-centres when particles come this close to one of its faces
RECENTER_EVERY = 16  # substeps between checks (at 0.5 m/s particles move < 1 cell in between)


class LocalDomainSolver(MPMSolver):
    """An `MPMSolver` on a local grid that follows its particles (see the module docstring).

    ``dx`` is the cell size (the workspace side should be a whole number of cells),
    ``domain_size`` the side of the square domain, ``workspace`` the side of the square
    workspace centred at the origin, ``top`` how far above z = 0 the grid reaches, and
    ``positions`` (P, 3) the particles the first domain is centred on.
    """

    def __init__(self, dx: float, domain_size: float, workspace: float, top: float, positions: np.ndarray,
                 device: str = "cpu", margin_cells: int = MARGIN_CELLS, recenter_every: int = RECENTER_EVERY) -> None:
        self.cells_xy = int(math.ceil(domain_size / dx - 1e-9))
        cells_z = int(math.ceil(top / dx)) + 2
        self.margin_cells, self.recenter_every = int(margin_cells), int(recenter_every)
        self._lattice0 = -workspace / 2 - dx
        self._k_max = round(workspace / dx) + 2 - self.cells_xy
        self._z0 = -2.0 * dx
        self._extent = np.array([self.cells_xy * dx, self.cells_xy * dx, cells_z * dx])
        self.domain_cell = self._cell_for(np.asarray(positions, dtype=np.float64))
        super().__init__(MPMConfig(grid_res=self.cells_xy, bounds=self._bounds(self.domain_cell), boundary="slip",
                                   device=device))

    def _bounds(self, cell: tuple[int, int]) -> tuple[tuple[float, ...], tuple[float, ...]]:
        dx = self._extent[0] / self.cells_xy
        lower = np.array([self._lattice0 + cell[0] * dx, self._lattice0 + cell[1] * dx, self._z0])
        return tuple(lower.tolist()), tuple((lower + self._extent).tolist())

    def _cell_for(self, x: np.ndarray) -> tuple[int, int]:
        """Lattice cell of the domain centred on the xy bounding box of ``x`` (clamped to the walls)."""
        dx = self._extent[0] / self.cells_xy
        centre = (x[:, :2].min(0) + x[:, :2].max(0)) / 2
        k = np.rint((centre - self._extent[0] / 2 - self._lattice0) / dx).astype(int)
        k = np.clip(k, 0, self._k_max)
        return int(k[0]), int(k[1])

    def set_domain(self, cell: tuple[int, int]) -> None:
        """Move the grid to lattice cell ``cell`` (the grid is rebuilt from the particles every substep)."""
        if tuple(cell) == self.domain_cell:
            return
        self.domain_cell = (int(cell[0]), int(cell[1]))
        self.config = MPMConfig(grid_res=self.cells_xy, bounds=self._bounds(self.domain_cell), boundary="slip",
                                device=self.config.device)
        self.grid = make_grid(self.config)

    def recenter(self) -> None:
        """Re-centre the domain if particles came within the margin of a face that is not a wall."""
        x = self.particles.x.numpy()
        lo, hi = x[:, :2].min(0), x[:, :2].max(0)
        margin = self.margin_cells * self.config.dx
        k = np.array(self.domain_cell)
        near = (((lo - self.config.lower[:2] < margin) & (k > 0))
                | ((self.config.upper[:2] - hi < margin) & (k < self._k_max)))
        if np.any(near):
            self.set_domain(self._cell_for(x))

    def recenters_at(self, frame_time: float, dt: float) -> bool:
        """Whether the substep starting ``frame_time`` s into a frame checks the domain first."""
        return round(frame_time / dt) % self.recenter_every == 0

    def substep(self, dt: float, frame_time: float = 0.0, colliders: list | None = None) -> None:
        """One substep; every ``recenter_every``-th substep of a frame first checks the domain."""
        if self.recenters_at(frame_time, dt):
            self.recenter()
        super().substep(dt, frame_time, colliders)

    def rollout_hook(self) -> Callable[[int, Any, float, float], None]:
        """A grid hook for rollouts of other particle positions (``physics.mpm.differentiable``): it moves this
        solver's grid as its own ``substep`` does, so a replay re-centres exactly where the original run did.

        Every rollout starts from the domain the solver has now; before every checked substep the
        domain decision is taken on the rollout's positions (lent to the solver for the call).
        """
        initial = self.domain_cell

        def hook(substep: int, x: Any, frame_time: float, dt: float) -> None:
            if substep == 0:
                self.set_domain(initial)
            if self.recenters_at(frame_time, dt):
                own = self.particles.x
                self.particles.x = x
                try:
                    self.recenter()
                finally:
                    self.particles.x = own

        return hook

    def get_state(self) -> dict[str, Any]:
        """The solver's state (`MPMSolver.get_state`) and the domain's place."""
        return {**super().get_state(), "domain_cell": self.domain_cell}

    def set_state(self, state: dict[str, Any]) -> None:
        """Restore a `get_state` copy."""
        super().set_state(state)
        self.set_domain(state["domain_cell"])
