"""Damped modal dynamics: Rayleigh or per-mode damping and the exact per-mode step.

Each mode is ``q'' + 2 xi omega q' + omega^2 q = f`` (unit modal mass, see the package
docstring). Over a step of length ``dt`` with ``f`` held constant the solution is exact:
``[q, q']_new = A(dt) [q - f/omega^2, q'] + [f/omega^2, 0]`` with the transition matrix
``A = e^{-a dt} [[C + a S, S], [-omega^2 S, C - a S]]``, ``a = xi omega``, where
``C = cos(omega_d dt)``, ``S = sin(omega_d dt) / omega_d`` (under-damped),
``C = 1, S = dt`` (critical) and ``cosh / sinh`` with ``gamma = omega sqrt(xi^2 - 1)``
(over-damped). Every coefficient is bounded, so any ``dt`` is stable.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray

from .model import Modes

CACHED_STEPS = 64  # step sizes whose transition coefficients a ModalDynamics keeps

__all__ = ["RayleighDamping", "ModalDynamics", "transition_coefficients"]


@dataclass(frozen=True)
class RayleighDamping:
    """``C = alpha M + beta K``: damping ratio ``xi = alpha / (2 omega) + beta omega / 2``."""

    alpha: float = 0.0
    beta: float = 0.0

    def __post_init__(self) -> None:
        if not (np.isfinite(self.alpha) and np.isfinite(self.beta)) or self.alpha < 0 or self.beta < 0:
            raise ValueError(f"Rayleigh coefficients must be finite and >= 0, got alpha={self.alpha}, beta={self.beta}")

    def ratios(self, omega: NDArray[np.float64]) -> NDArray[np.float64]:
        """Damping ratios of modes with angular frequencies ``omega`` (rad/s)."""
        return self.alpha / (2.0 * omega) + self.beta * omega / 2.0

    @classmethod
    def from_ratios(cls, f1_hz: float, xi1: float, f2_hz: float, xi2: float) -> "RayleighDamping":
        """Coefficients giving ratio ``xi1`` at ``f1_hz`` and ``xi2`` at ``f2_hz``."""
        w1, w2 = 2 * np.pi * f1_hz, 2 * np.pi * f2_hz
        beta, alpha = np.linalg.solve([[w1 / 2, 1 / (2 * w1)], [w2 / 2, 1 / (2 * w2)]], [xi1, xi2])
        return cls(alpha=float(alpha), beta=float(beta))


def transition_coefficients(
    omega: NDArray[np.float64], xi: NDArray[np.float64], dt: float
) -> tuple[NDArray[np.float64], ...]:
    """Per-mode ``(a11, a12, a21, a22, b1, b2)``: ``q <- a11 q + a12 v + b1 f``, ``v <- a21 q + a22 v + b2 f``."""
    a = xi * omega
    disc = omega**2 * (1.0 - xi**2)
    critical = np.abs(xi - 1.0) < 1e-8
    under = (disc > 0) & ~critical
    over = ~under & ~critical
    wd = np.sqrt(np.where(under, disc, 1.0))
    decay = np.exp(-a * dt)
    decay_c = np.where(under, decay * np.cos(wd * dt), decay)  # e^{-a dt} C (critical: C = 1)
    decay_s = np.where(under, decay * np.sin(wd * dt) / wd, decay * dt)  # e^{-a dt} S (critical: S = dt)
    gamma = np.sqrt(np.where(over, -disc, 1.0))
    grow, fall = np.exp((gamma - a) * dt), np.exp(-(gamma + a) * dt)  # both <= 1 since gamma < a
    decay_c = np.where(over, 0.5 * (grow + fall), decay_c)
    decay_s = np.where(over, 0.5 * (grow - fall) / gamma, decay_s)
    a11 = decay_c + a * decay_s
    a12 = decay_s
    a21 = -(omega**2) * decay_s
    a22 = decay_c - a * decay_s
    b1 = (1.0 - a11) / omega**2
    b2 = -a21 / omega**2
    return a11, a12, a21, a22, b1, b2


class ModalDynamics:
    """Modal coordinates ``q`` (k,) and velocities ``qdot`` of ``modes`` under damping and loads.

    ``damping`` is a :class:`RayleighDamping`, an array of per-mode ratios, or ``None``
    (the modes' own ``damping_ratios`` if measured, else undamped). Forces and impulses
    are modal (``phi^T f``); :class:`~physics.modal.embedding.PointModes` maps point forces
    to them.
    """

    def __init__(self, modes: Modes, damping: RayleighDamping | ArrayLike | None = None) -> None:
        omega = np.asarray(modes.angular_frequencies, dtype=np.float64)
        if np.any(omega <= 0):
            raise ValueError("dynamics needs elastic modes with frequency > 0; solve without keep_rigid")
        self.modes = modes
        self.omega = omega
        if damping is None:
            xi = modes.damping_ratios if modes.damping_ratios is not None else np.zeros_like(omega)
        elif isinstance(damping, RayleighDamping):
            xi = damping.ratios(omega)
        else:
            xi = np.broadcast_to(np.asarray(damping, dtype=np.float64), omega.shape)
        xi = np.asarray(xi, dtype=np.float64)
        if not np.all(np.isfinite(xi)) or np.any(xi < 0):
            raise ValueError("damping ratios must be finite and >= 0")
        self.damping_ratios = xi.copy()
        self.q = np.zeros_like(omega)
        self.qdot = np.zeros_like(omega)
        self.time = 0.0
        self._cache: dict[float, tuple[NDArray[np.float64], ...]] = {}  # transition coefficients per dt

    def reset(self, q: ArrayLike | None = None, qdot: ArrayLike | None = None) -> None:
        """Set the state (zeros by default) and the clock to 0."""
        self.q = np.zeros_like(self.omega) if q is None else self._modal(q, "q").copy()
        self.qdot = np.zeros_like(self.omega) if qdot is None else self._modal(qdot, "qdot").copy()
        self.time = 0.0

    def _modal(self, value: ArrayLike, name: str) -> NDArray[np.float64]:
        arr = np.asarray(value, dtype=np.float64)
        if arr.shape != self.omega.shape or not np.all(np.isfinite(arr)):
            raise ValueError(f"{name} must be a finite modal vector of shape {self.omega.shape}, got shape {arr.shape}")
        return arr

    def apply_impulse(self, modal_impulse: ArrayLike) -> None:
        """Add a modal impulse ``phi^T p`` (N s) to the modal velocities."""
        self.qdot = self.qdot + self._modal(modal_impulse, "modal_impulse")

    def coefficients(self, dt: float) -> tuple[NDArray[np.float64], ...]:
        """`transition_coefficients` (a11, a12, a21, a22, b1, b2) of a step ``dt``, cached per step size."""
        coef = self._cache.get(dt)
        if coef is None:
            if len(self._cache) >= CACHED_STEPS:
                self._cache.clear()
            coef = self._cache[dt] = transition_coefficients(self.omega, self.damping_ratios, dt)
        return coef

    def step(self, dt: float, modal_force: ArrayLike | None = None) -> NDArray[np.float64]:
        """Advance by ``dt`` with the modal force ``phi^T f`` held constant; returns ``q``."""
        if not np.isfinite(dt) or dt <= 0:
            raise ValueError(f"dt must be positive and finite, got {dt!r}")
        f = np.zeros_like(self.omega) if modal_force is None else self._modal(modal_force, "modal_force")
        a11, a12, a21, a22, b1, b2 = self.coefficients(dt)
        self.q, self.qdot = a11 * self.q + a12 * self.qdot + b1 * f, a21 * self.q + a22 * self.qdot + b2 * f
        self.time += dt
        return self.q

    def rollout(self, dt: float, num_steps: int, modal_forces: ArrayLike | None = None) -> NDArray[np.float64]:
        """Coordinates ``q`` after each of ``num_steps`` steps, (num_steps, k); forces (num_steps, k) or None."""
        if num_steps < 1:
            raise ValueError(f"num_steps must be >= 1, got {num_steps}")
        forces = None if modal_forces is None else np.asarray(modal_forces, dtype=np.float64)
        if forces is not None and forces.shape != (num_steps, len(self.omega)):
            raise ValueError(f"modal_forces must have shape ({num_steps}, {len(self.omega)}), got {forces.shape}")
        out = np.empty((num_steps, len(self.omega)))
        for t in range(num_steps):
            out[t] = self.step(dt, None if forces is None else forces[t])
        return out

    def energy(self) -> float:
        """Kinetic plus strain energy ``sum (qdot^2 + omega^2 q^2) / 2`` in J."""
        return float(0.5 * np.sum(self.qdot**2 + self.omega**2 * self.q**2))

    def node_displacements(self) -> NDArray[np.float64]:
        """Displacement of every FE node, (N, 3)."""
        return np.tensordot(self.q, self.modes.node_shapes, axes=1)
