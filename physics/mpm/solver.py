"""``MPMSolver``: particles, materials and colliders stepped by the MPM kernels."""

from __future__ import annotations

import math
import warnings
from typing import Any

import numpy as np
import warp as wp

from . import kernels as K
from .colliders import Collider, Plane, collider_array
from .config import MPMConfig, make_grid
from .materials import Material, MaterialModel
from .state import STATE_FIELDS, Particles


class SimulationDivergedError(FloatingPointError):
    """Raised when particle state became NaN/inf; ``indices`` names the particles."""

    def __init__(self, message: str, indices: np.ndarray) -> None:
        super().__init__(message)
        self.indices = indices


def material_kind(materials: list[Material]) -> int | None:
    """The material kind all of ``materials`` share, None for a mix (picks the ``stress_and_p2g`` kernel)."""
    kinds = {m.kind for m in materials}
    return kinds.pop() if len(kinds) == 1 else None


def launch_substep(
    solver: "MPMSolver",
    src: object,
    dst: object,
    mu: wp.array,
    lam: wp.array,
    F_elastic: wp.array,
    tau: wp.array,
    covariance: wp.array,
    grid_mv: wp.array,
    grid_v: wp.array,
    dt: float,
    frame_time: float,
    colliders: wp.array,
    record: bool = False,
) -> list[wp.Launch] | None:
    """Launch the kernels of one substep from state ``src`` into state ``dst``.

    With ``record`` nothing runs: the launches are returned as recorded commands (in order:
    stress and P2G, grid update, one contact launch per further ``COLLIDERS_PER_LAUNCH``
    colliders, G2P; the grid launches, ``[1:-1]``, take the ``frame_time`` parameter) to be
    replayed with ``Launch.launch()``, which skips Warp's argument packing on every substep.

    ``src`` and ``dst`` have arrays ``x, v, C, F, plastic`` (F is the trial F of the last
    G2P; after the substep ``dst.F`` is the next trial F). They may be the same object
    (in-place forward stepping, ``F_elastic`` then ``src.F``) or distinct (one state per
    substep under ``wp.Tape``, with fresh ``F_elastic``, ``tau`` and grid arrays).
    ``colliders`` is the `collider_array` of the colliders' `ColliderData`.
    ``grid_mv`` must be zero on entry; ``covariance`` is updated in place (may be empty).
    """
    p = solver.particles
    n, dev = len(p), solver.device
    in_place = src is dst
    launches: list[wp.Launch] = []

    def launch(kernel: wp.Kernel, dim: int, inputs: list, outputs: list) -> None:
        cmd = wp.launch(kernel, dim=dim, inputs=inputs, outputs=outputs, device=dev, record_cmd=record)
        if record:
            launches.append(cmd)

    launch(K.stress_and_p2g_kernel(material_kind(solver.materials)), n,
           [src.F, src.plastic, src.C, mu, lam, p.material_id, solver._material_table, src.x, src.v, p.mass, p.volume,
            solver.grid, dt, solver.config.apic_blend],
           [F_elastic, dst.plastic, tau, grid_mv])
    nodes = grid_mv.shape[0]
    launch(K.grid_update, nodes, [grid_mv, solver.grid, solver.gravity, dt, colliders, frame_time], [grid_v])
    for first in range(K.COLLIDERS_PER_LAUNCH, colliders.shape[0], K.COLLIDERS_PER_LAUNCH):
        contact_v = grid_v if in_place else wp.zeros_like(grid_v)
        launch(K.grid_collide, nodes, [grid_v, grid_mv, solver.grid, colliders, first, frame_time], [contact_v])
        grid_v = contact_v
    launch(K.g2p, n, [src.x, F_elastic, grid_v, solver.grid, dt],
           [dst.x, dst.v, dst.C, dst.F, covariance, solver._counters, solver._max_speed_sq])
    return launches if record else None


class MPMSolver:
    """Explicit MLS/APIC material point method on a dense grid (Warp kernels).

    Typical use::

        solver = MPMSolver(MPMConfig(grid_res=32, bounds=((0, 0, 0), (1, 1, 1))))
        x, vol = sample_box((0.3, 0.3, 0.3), (0.7, 0.7, 0.7), spacing=0.0125, rng=rng)
        solver.add_particles(x, vol, FixedCorotated(1e4, 0.3, 1000.0))
        solver.add_collider(Plane((0, 0, 0.05), (0, 0, 1), contact="slip"))
        solver.step(1 / 60)

    Each ``step(frame_dt)`` runs CFL-safe substeps (or the configured fixed ``dt``).
    After a frame, particles that had to be clamped onto the bounds are reported by a
    warning (and counted in ``num_clamped``); NaN/inf state raises
    :class:`SimulationDivergedError` naming the particles.
    """

    def __init__(self, config: MPMConfig) -> None:
        if not isinstance(config, MPMConfig):
            raise ValueError(f"config must be an MPMConfig, got {type(config).__name__}")
        self.config = config
        self.device = str(wp.get_device(config.device))
        self.grid = make_grid(config)
        self.gravity = wp.vec3(*config.gravity)
        self.particles = Particles.empty(self.device)
        self.materials: list[Material] = []
        self.colliders: list[Collider] = []
        self._recorded: tuple | None = None  # (key, launches) of the in-place substep, see `substep`
        self.num_substeps_taken = 0
        self.num_clamped = 0
        self.time = 0.0
        self._max_wave_speed = 0.0
        self._material_table = wp.zeros(0, dtype=MaterialModel, device=self.device)
        self._collider_table = collider_array([], self.device)
        self._collider_versions: list[int] = []
        num_nodes = int(np.prod(config.grid_shape))
        self.grid_mv = wp.zeros(num_nodes, dtype=wp.vec4, device=self.device)
        self.grid_v = wp.zeros(num_nodes, dtype=wp.vec3, device=self.device)
        self._counters = wp.zeros(2, dtype=wp.int32, device=self.device)
        self._max_speed_sq = wp.zeros(1, dtype=float, device=self.device)
        self._host_max_speed = 0.0

    # ------------------------------------------------------------------ setup
    @property
    def num_particles(self) -> int:
        """Number of particles."""
        return len(self.particles)

    def add_particles(
        self,
        positions: np.ndarray,
        volumes: float | np.ndarray,
        material: Material,
        velocities: np.ndarray | None = None,
        covariances: np.ndarray | None = None,
    ) -> np.ndarray:
        """Add particles of one material; returns their indices.

        Args:
            positions: (N, 3) metres, inside the bounds.
            volumes: rest volume per particle (m^3, > 0), scalar or (N,).
            material: a :mod:`physics.mpm.materials` instance; E, nu, rho may be per particle.
            velocities: (N, 3) m/s, zero by default.
            covariances: (N, 3, 3) rest covariances of Gaussians carried by the particles
                (only with ``track_covariance``); isotropic (vol^(1/3) / 2)^2 I by default.
        """
        if not isinstance(material, Material):
            raise ValueError(f"material must be a physics.mpm.materials.Material, got {type(material).__name__}")
        x = np.asarray(positions, dtype=np.float64)
        if x.ndim != 2 or x.shape[1] != 3 or len(x) == 0:
            raise ValueError(f"positions must have shape (N, 3) with N >= 1, got {x.shape}")
        n = len(x)
        if not np.all(np.isfinite(x)):
            bad = np.flatnonzero(~np.all(np.isfinite(x), axis=1))
            raise ValueError(f"positions contain NaN/inf at particles {bad[:10].tolist()}")
        outside = np.flatnonzero(np.any((x < self.config.lower) | (x > self.config.upper), axis=1))
        if len(outside):
            raise ValueError(f"{len(outside)} positions lie outside the bounds {self.config.bounds}, "
                             f"e.g. particle {outside[0]} at {x[outside[0]].tolist()}")
        vol = np.asarray(volumes, dtype=np.float64)
        vol = np.full(n, float(vol)) if vol.ndim == 0 else vol
        if vol.shape != (n,):
            raise ValueError(f"volumes must be a scalar or have shape ({n},), got {vol.shape}")
        if not np.all(np.isfinite(vol) & (vol > 0.0)):
            raise ValueError("volumes must be finite and > 0")
        v = np.zeros((n, 3)) if velocities is None else np.asarray(velocities, dtype=np.float64)
        if v.shape != (n, 3) or not np.all(np.isfinite(v)):
            raise ValueError(f"velocities must be finite with shape ({n}, 3), got {v.shape}")
        moduli = material.moduli(n)
        model = material.model()
        cov = self._initial_covariances(covariances, vol, n)
        max_c = max(self._max_wave_speed, float(moduli.wave_speed.max()))
        if self.config.dt is not None:
            self._check_courant(self.config.dt, max_c, float(np.sqrt((v * v).sum(1)).max()))

        mat_id = self._material_index(material, model)
        new = {
            "x": x,
            "v": v,
            "C": np.zeros((n, 3, 3)),
            "F": np.broadcast_to(np.eye(3), (n, 3, 3)),
            "plastic": np.zeros(n),
            "tau": np.zeros((n, 3, 3)),
            "mass": vol * moduli.density,
            "volume": vol,
            "stiffness": moduli.stiffness,
            "poisson_ratio": moduli.poisson_ratio,
            "mu": np.zeros(n),
            "lam": np.zeros(n),
            "material_id": np.full(n, mat_id, dtype=np.int32),
        }
        if cov is not None:
            new["covariance"] = cov
        start = self.num_particles
        self.particles = self.particles.appended(new, self.device)
        self._max_wave_speed = max_c
        self._host_max_speed = max(self._host_max_speed, float(np.sqrt((v * v).sum(1)).max()))
        self.update_lame_parameters()
        return np.arange(start, start + n)

    def _initial_covariances(self, covariances: np.ndarray | None, vol: np.ndarray, n: int) -> np.ndarray | None:
        if not self.config.track_covariance:
            if covariances is not None:
                raise ValueError("covariances given but MPMConfig.track_covariance is False")
            return None
        if covariances is None:
            r2 = (np.cbrt(vol) / 2.0) ** 2
            return r2[:, None, None] * np.eye(3)[None]
        cov = np.asarray(covariances, dtype=np.float64)
        if cov.shape != (n, 3, 3) or not np.all(np.isfinite(cov)):
            raise ValueError(f"covariances must be finite with shape ({n}, 3, 3), got {cov.shape}")
        return cov

    def _material_index(self, material: Material, model: MaterialModel) -> int:
        for i, m in enumerate(self.materials):
            if m is material:
                return i
        self.materials.append(material)
        table = [m.model() for m in self.materials[:-1]] + [model]
        self._material_table = wp.array(table, dtype=MaterialModel, device=self.device)
        return len(self.materials) - 1

    def update_lame_parameters(self) -> None:
        """Recompute per-particle mu, lambda from ``particles.stiffness`` / ``poisson_ratio``."""
        p = self.particles
        wp.launch(K.lame, dim=len(p), inputs=[p.stiffness, p.poisson_ratio, p.material_id, self._material_table],
                  outputs=[p.mu, p.lam], device=self.device)

    def add_collider(self, collider: Collider) -> Collider:
        """Add a kinematic collider (moved by its velocity; pose settable every frame)."""
        if not isinstance(collider, Collider):
            raise ValueError(f"collider must be a physics.mpm.colliders.Collider, got {type(collider).__name__}")
        if isinstance(collider, Plane) and self.config.boundary != "open":
            self._warn_if_in_wall_band(collider)
        self.colliders.append(collider)
        self._collider_versions = []
        return collider

    def _warn_if_in_wall_band(self, plane: Plane) -> None:
        """Warn about a plane within one cell of a parallel domain face: the domain wall owns those
        nodes, so the plane's own contact law (e.g. its friction) would not act there."""
        n, x0, dx = plane.normal, np.asarray(plane.position, dtype=float), self.config.dx
        axis = int(np.argmax(np.abs(n)))
        if abs(n[axis]) < 1.0 - 1e-9:
            return
        gaps = (x0[axis] - self.config.lower[axis], self.config.upper[axis] - x0[axis])
        if min(gaps) < dx:
            warnings.warn(f"the plane at {x0[axis]:g} along axis {axis} lies within one cell ({dx:g}) of the domain "
                          "bounds, where the domain's wall acts instead of the plane's contact law; extend the "
                          "bounds past it or use boundary='open'", RuntimeWarning, stacklevel=2)

    def _sync_colliders(self) -> wp.array:
        """The colliders' `collider_array`, rebuilt when one of them moved or was added."""
        versions = [c.version for c in self.colliders]
        if versions != self._collider_versions:
            self._collider_table = collider_array(self.colliders, self.device)
            self._collider_versions = versions
        return self._collider_table

    # ---------------------------------------------------------------- stepping
    def _check_courant(self, dt: float, wave_speed: float, speed: float) -> None:
        courant = dt * (wave_speed + speed) / self.config.dx
        if courant > 1.0:
            raise ValueError(
                f"dt={dt:g} violates the CFL condition: dt (c + |v|max) / dx = {courant:.3g} > 1 "
                f"(c={wave_speed:.4g} m/s, |v|max={speed:.4g} m/s, dx={self.config.dx:.4g} m); "
                f"use dt <= {self.config.dx / (wave_speed + speed):.3g} or dt=None"
            )

    def speed_bound(self, frame_dt: float) -> float:
        """Bound on particle speed during the next frame: current max + gravity + colliders."""
        collider_speed = max((np.linalg.norm(c.linear_velocity)
                              + np.linalg.norm(c.angular_velocity) * self.config.dx * self.config.grid_res
                              for c in self.colliders), default=0.0)
        return self._host_max_speed + float(np.linalg.norm(self.config.gravity)) * frame_dt + collider_speed

    def substep_size(self, frame_dt: float) -> tuple[float, int]:
        """(dt, count) of the substeps that ``step(frame_dt)`` will take."""
        if not (math.isfinite(frame_dt) and frame_dt > 0.0):
            raise ValueError(f"frame_dt must be a finite positive number, got {frame_dt!r}")
        speed = self.speed_bound(frame_dt)
        if self.config.dt is not None:
            self._check_courant(self.config.dt, self._max_wave_speed, speed)
            dt_max = self.config.dt
        else:
            dt_max = self.config.cfl * self.config.dx / max(self._max_wave_speed + speed, 1e-12)
        count = max(1, math.ceil(frame_dt / dt_max - 1e-9))
        return frame_dt / count, count

    def step(self, frame_dt: float) -> int:
        """Advance by ``frame_dt`` seconds; returns the number of substeps taken."""
        dt, count = self.substep_size(frame_dt)
        if self.num_particles:
            colliders = self._sync_colliders()
            self._counters.zero_()
            self._max_speed_sq.zero_()
            for s in range(count):
                self.substep(dt, s * dt, colliders)
            self._after_frame()
        for c in self.colliders:
            c.advance(frame_dt)
        self.num_substeps_taken += count
        self.time += frame_dt
        return count

    def substep(self, dt: float, frame_time: float = 0.0, colliders: wp.array | None = None) -> None:
        """One MPM substep of ``dt`` seconds, in place (no checks; ``step`` is the safe entry)."""
        p = self.particles
        table = self._sync_colliders() if colliders is None else colliders
        key = (dt, table, self.grid, p)  # what the recorded launches were packed with
        rec = self._recorded
        if rec is None or rec[0][0] != dt or any(a is not b for a, b in zip(rec[0][1:], key[1:], strict=True)):
            self._recorded = (key, launch_substep(self, p, p, p.mu, p.lam, p.F, p.tau, p.covariance, self.grid_mv,
                                                  self.grid_v, dt, frame_time, table, record=True))
        launches = self._recorded[1]
        for cmd in launches[1:-1]:  # the grid launches: the colliders move within the frame
            cmd.set_param_by_name("frame_time", frame_time)
        self.grid_mv.zero_()
        for cmd in launches:
            cmd.launch()

    def _after_frame(self) -> None:
        clamped, non_finite = (int(c) for c in self._counters.numpy())
        self._host_max_speed = math.sqrt(float(self._max_speed_sq.numpy()[0]))
        if non_finite:
            v = self.velocities()
            bad = np.flatnonzero(~np.all(np.isfinite(v), axis=1))
            raise SimulationDivergedError(
                f"simulation diverged: {len(bad)} particles have NaN/inf velocity (first: {bad[:20].tolist()}); "
                "reduce dt / cfl, soften the material or check the inputs",
                bad,
            )
        if clamped:
            self.num_clamped += clamped
            warnings.warn(f"{clamped} particle positions left the bounds this frame and were clamped onto them",
                          RuntimeWarning, stacklevel=3)
        if not math.isfinite(self._host_max_speed):
            raise SimulationDivergedError("simulation diverged: particle speed is not finite", np.arange(0))

    # ----------------------------------------------------------------- outputs
    def get_state(self) -> dict[str, Any]:
        """A copy of everything `step` depends on that changes in time: the ``STATE_FIELDS`` of every particle
        (host arrays), the simulated time, the substep count and the speed bound; restore with `set_state`."""
        p = self.particles
        return {**{k: getattr(p, k).numpy().copy() for k in STATE_FIELDS}, "max_speed": self._host_max_speed,
                "time": self.time, "substeps": self.num_substeps_taken}

    def set_state(self, state: dict[str, Any]) -> None:
        """Restore a `get_state` copy (of this solver, or of one with the same particles)."""
        for k in STATE_FIELDS:
            getattr(self.particles, k).assign(state[k])
        self._host_max_speed = float(state["max_speed"])
        self.time, self.num_substeps_taken = float(state["time"]), int(state["substeps"])

    def positions(self) -> np.ndarray:
        """(N, 3) particle positions."""
        return self.particles.x.numpy().astype(np.float64)

    def velocities(self) -> np.ndarray:
        """(N, 3) particle velocities."""
        return self.particles.v.numpy().astype(np.float64)

    def masses(self) -> np.ndarray:
        """(N,) particle masses."""
        return self.particles.mass.numpy().astype(np.float64)

    def volumes(self) -> np.ndarray:
        """(N,) particle rest volumes."""
        return self.particles.volume.numpy().astype(np.float64)

    def affine_velocities(self) -> np.ndarray:
        """(N, 3, 3) APIC affine velocity matrices C (approximate velocity gradients)."""
        return self.particles.C.numpy().astype(np.float64)

    def deformation_gradients(self) -> np.ndarray:
        """(N, 3, 3) elastic deformation gradients F."""
        return self.particles.F.numpy().astype(np.float64)

    def stresses(self) -> np.ndarray:
        """(N, 3, 3) Kirchhoff stresses of the last substep."""
        return self.particles.tau.numpy().astype(np.float64)

    def plastic_state(self) -> np.ndarray:
        """(N,) plastic state: equivalent plastic strain, log J_p (snow) or damage (fracture)."""
        return self.particles.plastic.numpy().astype(np.float64)

    def material_ids(self) -> np.ndarray:
        """(N,) index into ``materials`` of each particle."""
        return self.particles.material_id.numpy()

    def momentum(self) -> tuple[np.ndarray, np.ndarray]:
        """Total linear and angular momentum about the origin (APIC affine spin included)."""
        m, x, v, C = self.masses(), self.positions(), self.velocities(), self.affine_velocities()
        linear = (m[:, None] * v).sum(0)
        spin = np.stack([C[:, 2, 1] - C[:, 1, 2], C[:, 0, 2] - C[:, 2, 0], C[:, 1, 0] - C[:, 0, 1]], axis=1)
        spin *= self.config.apic_blend * self.config.dx**2 / 4.0
        angular = (m[:, None] * (np.cross(x, v) + spin)).sum(0)
        return linear, angular

    def memory_bytes(self) -> dict[str, int]:
        """Device memory of the particle arrays and of the grid, in bytes."""
        return {"particles": self.particles.nbytes(), "grid": self.grid_mv.capacity + self.grid_v.capacity}
