"""The result of :func:`physics.mpm.estimation.estimate_material`: the estimate, its confidence and the history."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np


@dataclass(frozen=True)
class EstimationReport:
    """Result of :func:`~physics.mpm.estimation.estimate_material`.

    ``youngs_modulus`` is the global E (Pa; for a linear field its value at the particles'
    centroid, i.e. the geometric mean), ``interval95`` its formal 95% interval and
    ``log_std`` the standard error of log E. ``loss_history`` holds the loss (m^2, mean
    squared track distance) of the iterate after each iteration, starting with the initial
    guess (and the best point of the bracketing walk), ``modulus_history`` their E;
    ``evaluations`` the (E, loss) of every rollout but the finite-difference probes
    (``inf`` for a rollout that diverged). ``at_bound``: the estimate sits on a bound of the
    admissible E.
    """

    youngs_modulus: float
    interval95: tuple[float, float]
    log_std: float
    initial_velocity: np.ndarray  # (3,) m/s
    initial_velocity_std: np.ndarray  # (3,) m/s, formal standard errors (0 when not fitted)
    youngs_modulus_field: np.ndarray | None  # (N,) per-particle E for field="linear"
    loss_history: list[float]
    modulus_history: list[float]
    evaluations: list[tuple[float, float]]
    curvature: float  # Gauss-Newton d^2 L / d(log E)^2 at the estimate
    rmse: float  # m, root mean squared track distance at the estimate
    converged: bool
    iterations: int  # Levenberg-Marquardt iterations, one trial rollout each
    forward_rollouts: int  # all rollouts: the bracketing walk, probes and trial steps
    seconds: float
    num_particles: int
    num_observations: int
    frame_positions: np.ndarray = field(repr=False)  # (T, N, 3) predicted at the estimate
    substeps: tuple[int, ...] = ()  # substeps of each frame (warm-up included) at the estimate
    at_bound: bool = False
    rejected_rollouts: int = 0  # rollouts that diverged (or broke the CFL bound): treated as infinite loss

    def as_dict(self) -> dict:
        """JSON-ready summary (no per-particle arrays but the field's range)."""
        out = {
            "youngs_modulus": self.youngs_modulus,
            "youngs_modulus_ci95": list(self.interval95),
            "log_youngs_modulus_std": self.log_std,
            "initial_velocity": self.initial_velocity.tolist(),
            "initial_velocity_std": self.initial_velocity_std.tolist(),
            "loss_history": [_finite_or_none(x) for x in self.loss_history],
            "youngs_modulus_history": self.modulus_history,
            "evaluations": [[e, _finite_or_none(loss)] for e, loss in self.evaluations],
            "curvature_log_e": self.curvature,
            "rmse_m": self.rmse,
            "converged": self.converged,
            "at_bound": self.at_bound,
            "iterations": self.iterations,
            "forward_rollouts": self.forward_rollouts,
            "diverged_rollouts": self.rejected_rollouts,
            "seconds": self.seconds,
            "seconds_per_rollout": self.seconds / max(self.forward_rollouts, 1),
            "particles": self.num_particles,
            "observations": self.num_observations,
            "substeps_per_frame": list(self.substeps),
        }
        if self.youngs_modulus_field is not None:
            E = self.youngs_modulus_field
            out["youngs_modulus_field_range"] = [float(E.min()), float(E.max())]
        return out


def _finite_or_none(x: float) -> float | None:
    """``x``, or None (JSON null) for the infinite loss of a diverged rollout."""
    return x if math.isfinite(x) else None
